"""The model card (``<model>.yaml`` beside ``<model>.tflite``) and model file checks.

The card says how to feed the model (input spec), how to read it (decoder spec), what it
detects (labels) and where it came from; its schema is fixed in docs/DESIGN.md. The
runtime verifies the card's sha256 and that the file is a TFLite flatbuffer before the
interpreter sees it: a corrupt flatbuffer can crash the process instead of raising.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedet import atomicfile
from edgedet.errors import InputError, ModelError

CARD_FORMAT = "edgedet-model/1"
TFLITE_IDENTIFIER = b"TFL3"
_TOP_KEYS = {
    "format",
    "name",
    "file",
    "sha256",
    "labels",
    "input",
    "decoder",
    "quantization",
    "defaults",
    "source",
}
_INPUT_KEYS = {"height", "width", "color", "resize", "mean", "std", "pad_value"}


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the model input. ``mean``/``std`` apply to 0..255 pixel values:
    the model sees ``(pixel - mean) / std`` (then quantized with the input tensor's
    scale and zero point for integer inputs)."""

    height: int | None = None
    width: int | None = None
    color: str = "rgb"  # rgb | bgr
    resize: str = "stretch"  # stretch | letterbox
    mean: tuple[float, ...] = (127.5,)
    std: tuple[float, ...] = (127.5,)
    pad_value: int = 114  # letterbox padding, 0..255


@dataclass(frozen=True)
class Defaults:
    min_score: float = 0.5
    iou: float = 0.6
    max_detections: int = 100


@dataclass(frozen=True)
class ModelCard:
    name: str
    file: str
    sha256: str | None = None
    labels: tuple[str, ...] = ()
    input: InputSpec = field(default_factory=InputSpec)
    decoder: Mapping[str, Any] = field(default_factory=dict)
    quantization: Mapping[str, Any] = field(default_factory=dict)
    defaults: Defaults = field(default_factory=Defaults)
    source: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None  # where the card was read from; None when inferred

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: Path | None = None) -> ModelCard:
        where = str(path) if path else "model card"
        if not isinstance(data, Mapping):
            raise ModelError(f"{where}: expected a YAML mapping (see docs/DESIGN.md)")
        unknown = set(data) - _TOP_KEYS
        if unknown and "format" not in data:
            # e.g. Ultralytics' model config yolov8n.yaml left beside yolov8n.tflite
            raise ModelError(
                f"{where} is not an edgedet model card (no format: {CARD_FORMAT}, unknown keys "
                f"{sorted(unknown)}); move it away from the model or write a card (docs/DESIGN.md)"
            )
        if unknown:
            raise ModelError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
        fmt = data.get("format", CARD_FORMAT)
        if fmt != CARD_FORMAT:
            raise ModelError(f"{where}: format {fmt!r} is not {CARD_FORMAT!r}")
        inp = dict(data.get("input") or {})
        unknown = set(inp) - _INPUT_KEYS
        if unknown:
            raise ModelError(f"{where}: unknown input keys {sorted(unknown)}")
        for key in ("mean", "std"):
            if key in inp:
                value = inp[key]
                inp[key] = tuple(float(v) for v in (value if isinstance(value, list) else [value]))
        if "color" in inp and inp["color"] not in ("rgb", "bgr"):
            raise ModelError(f"{where}: input.color must be rgb or bgr, not {inp['color']!r}")
        if "resize" in inp and inp["resize"] not in ("stretch", "letterbox"):
            raise ModelError(
                f"{where}: input.resize must be stretch or letterbox, not {inp['resize']!r}"
            )
        defaults = dict(data.get("defaults") or {})
        try:
            return cls(
                name=str(data.get("name", Path(str(data.get("file", "model"))).stem)),
                file=str(data.get("file", "")),
                sha256=data.get("sha256"),
                labels=tuple(str(v) for v in (data.get("labels") or ())),
                input=InputSpec(**inp),
                decoder=dict(data.get("decoder") or {}),
                quantization=dict(data.get("quantization") or {}),
                defaults=Defaults(
                    min_score=float(defaults.get("min_score", 0.5)),
                    iou=float(defaults.get("iou", 0.6)),
                    max_detections=int(defaults.get("max_detections", 100)),
                ),
                source=dict(data.get("source") or {}),
                path=path,
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelCard:
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read model card {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ModelError(f"model card {path} is not valid YAML: {exc}") from None
        return cls.from_mapping(data or {}, path)


def card_path_for(model_path: str | os.PathLike[str]) -> Path | None:
    """The card beside a model: ``<stem>.yaml``; for ``x_edgetpu.tflite`` also ``x.yaml``
    (the card of the CPU model it was compiled from)."""
    model_path = Path(model_path)
    candidates = [model_path.with_suffix(".yaml")]
    if model_path.stem.endswith("_edgetpu"):
        candidates.append(model_path.with_name(model_path.stem[: -len("_edgetpu")] + ".yaml"))
    return next((c for c in candidates if c.is_file()), None)


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_tflite_file(path: str | os.PathLike[str]) -> bytes:
    """Read a model file and check it is a complete TFLite flatbuffer; return its bytes.

    Checks the ``TFL3`` identifier and that the root table, the subgraph and buffer
    vectors and every embedded buffer lie inside the file, which catches truncated
    downloads and copies. Raises `ModelError` naming the file and the fix.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist; check --model / model.path") from None
    except IsADirectoryError:
        raise ModelError(f"model path {path} is a directory, not a .tflite file") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(
            f"{path} is not a TFLite model (no 'TFL3' identifier); "
            "export or convert it with `edgedet convert`"
        )
    problem = _flatbuffer_problem(data)
    if problem:
        raise ModelError(
            f"{path} is a corrupt or truncated TFLite model ({problem}); copy or download it again"
        )
    return data


def _flatbuffer_problem(data: bytes) -> str | None:
    """Bounds-check the parts of a TFLite Model flatbuffer the interpreter reads first."""
    size = len(data)

    def u32(pos: int) -> int:
        if pos < 0 or pos + 4 > size:
            raise IndexError(pos)
        return struct.unpack_from("<I", data, pos)[0]

    def table_field(table: int, field_index: int) -> int | None:
        """Absolute position of a table field, or None when absent."""
        vtable = table - struct.unpack_from("<i", data, table)[0]
        if vtable < 0 or vtable + 4 > size:
            raise IndexError(vtable)
        vt_size = struct.unpack_from("<H", data, vtable)[0]
        slot = 4 + 2 * field_index
        if slot + 2 > vt_size:
            return None
        off = struct.unpack_from("<H", data, vtable + slot)[0]
        return table + off if off else None

    def vector(pos: int) -> tuple[int, int]:
        start = pos + u32(pos)
        length = u32(start)
        return start + 4, length

    try:
        root = u32(0)
        if root >= size:
            return "root table outside the file"
        for field_index, item_size in ((2, 4), (4, 4)):  # subgraphs, buffers
            pos = table_field(root, field_index)
            if pos is None:
                if field_index == 2:
                    return "no subgraphs"
                continue
            start, length = vector(pos)
            if start + length * item_size > size:
                return "vector outside the file"
            if field_index != 4:
                continue
            for i in range(length):
                buf = start + 4 * i + u32(start + 4 * i)
                data_pos = table_field(buf, 0)
                if data_pos is not None:
                    data_start, data_len = vector(data_pos)
                    if data_start + data_len > size:
                        return f"buffer {i} extends past the end of the file"
                offset_pos = table_field(buf, 1)
                if offset_pos is not None:
                    offset, nbytes = struct.unpack_from("<QQ", data, offset_pos)[0], 0
                    size_pos = table_field(buf, 2)
                    if size_pos is not None:
                        nbytes = struct.unpack_from("<Q", data, size_pos)[0]
                    if offset > 1 and offset + nbytes > size:
                        return f"buffer {i} extends past the end of the file"
    except (IndexError, struct.error):
        return "offsets point outside the file"
    return None


def load_model(
    model_path: str | os.PathLike[str], *, verify_sha: bool = True
) -> tuple[bytes, ModelCard | None]:
    """Check and read a model and its card (if any). Returns (model bytes, card or None)."""
    model_path = Path(model_path)
    data = check_tflite_file(model_path)
    card_file = card_path_for(model_path)
    card = ModelCard.load(card_file) if card_file else None
    if card is not None and verify_sha and card.sha256 and card.file == model_path.name:
        actual = hashlib.sha256(data).hexdigest()
        if actual != card.sha256:
            raise ModelError(
                f"{model_path} does not match its card {card_file} (sha256 {actual[:12]}… "
                f"!= {str(card.sha256)[:12]}…): the file is corrupt or the card belongs to "
                "another model; copy both again or re-run `edgedet convert`"
            )
    return data, card


# Largest metadata entry read from a model file; Ultralytics' is a few KB.
_METADATA_MAX_BYTES = 1 << 20


def ultralytics_metadata(data: bytes) -> dict[str, Any] | None:
    """The metadata Ultralytics embeds in its ``.tflite`` exports, or None.

    Ultralytics appends a zip archive holding one ``metadata.json`` to the flatbuffer (the
    TFLite loader ignores trailing bytes; a zip is read from its end). Both its export
    routes do so (``litert`` and the onnx2tf ``saved_model``/``edgetpu`` route). Keys used
    by edgedet: ``names`` (class id → name), ``imgsz`` ([h, w]), ``stride``, ``task``,
    ``end2end`` and ``args`` (``nms``, ``iou``...). A file without such an archive, or with
    one that does not parse as a JSON object, gives None (the model then runs as any
    card-less model).
    """
    if b"PK\x05\x06" not in data[-(1 << 16) - 22 :]:  # no end-of-central-directory record
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            name = "metadata.json" if "metadata.json" in names else (names[0] if names else None)
            if name is None or archive.getinfo(name).file_size > _METADATA_MAX_BYTES:
                return None
            metadata = json.loads(archive.read(name).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, EOFError):
        return None
    return metadata if isinstance(metadata, dict) else None


def read_labels(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """A label file: one label per line, or ``<id> <label>`` lines (Coral's format), in
    which case missing ids become ``str(id)``. Blank lines are ignored."""
    path = Path(path)
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise InputError(f"cannot read label file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"label file {path} is not UTF-8 text") from None
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"label file {path} is empty")
    numbered = [ln.split(maxsplit=1) for ln in lines]
    if all(len(p) == 2 and p[0].isdigit() for p in numbered):
        by_id = {int(i): name.strip() for i, name in numbered}
        return tuple(by_id.get(i, str(i)) for i in range(max(by_id) + 1))
    return tuple(lines)


class _BlockMapping(dict):
    """A mapping `write_defaults` writes in YAML block style."""


def write_defaults(
    card_path: str | os.PathLike[str],
    *,
    min_score: float,
    iou: float,
    tuned: Mapping[str, Any],
) -> None:
    """Set ``defaults.min_score`` and ``defaults.iou`` of an existing card, with their
    provenance under ``defaults.tuned``; every other key is kept as read.

    The new card is checked (`ModelCard.from_mapping`), written to a temporary file in the
    card's folder and renamed over it (``os.replace``), so the card is whole before and
    after. The model file is not touched, so its sha256 still holds. Raises `InputError`
    naming the card when it cannot be read or written.
    """

    import yaml

    card_path = Path(card_path)
    try:
        data = yaml.safe_load(card_path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"cannot read model card {card_path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"model card {card_path} is not valid YAML: {exc}") from None
    defaults = dict(data.get("defaults") or {})
    defaults.update(min_score=float(min_score), iou=float(iou), tuned=dict(tuned))
    data["defaults"] = defaults
    ModelCard.from_mapping(data, card_path)

    # The rest of the card keeps the converter's style (flow style for short leaf maps);
    # the provenance block reads better one key per line.
    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _BlockMapping, lambda d, m: d.represent_mapping("tag:yaml.org,2002:map", m, False)
    )
    defaults["tuned"] = _BlockMapping(defaults["tuned"])
    text = yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=None, width=100)
    try:
        atomicfile.write(card_path, text.encode("utf-8"))
    except OSError as exc:
        raise InputError(
            f"cannot write model card {card_path}: {exc.strerror or exc}; "
            "make the card and its folder writable or copy the model somewhere writable"
        ) from None


def check_card_writable(card_path: str | os.PathLike[str]) -> None:
    """Fail early, before a long run, when `write_defaults` could not replace the card."""
    card_path = Path(card_path)
    folder = card_path.parent
    fix = "make the card and its folder writable or copy the model somewhere writable"
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot write model card {card_path}: folder {folder} is not writable; {fix}"
        )
    if card_path.exists() and not os.access(card_path, os.W_OK):
        raise InputError(f"cannot write model card {card_path}: the file is read-only; {fix}")
