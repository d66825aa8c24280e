"""Ground truth from annotation files: COCO JSON, YOLO txt folders, Pascal VOC XML.

Each reader returns `Annotations`: per image name (the path relative to the image folder)
the objects' boxes and label names as written in the file. `resolve_labels` then maps the
names to the model's class ids (``--label-map a=b``, ``a=-`` drops a label). Boxes are
converted to edgedet's convention, normalized ``[ymin, xmin, ymax, xmax]``, once the image
size is known (`Annotations.truth`), because COCO and VOC give pixels and YOLO fractions.

Conventions: COCO ``bbox`` is ``[x, y, width, height]`` in pixels, crowd regions
(``iscrowd: 1``) are left out; VOC ``bndbox`` is 1-based inclusive pixels (``xmin - 1``
is the left edge), ``difficult`` objects count as ordinary ones; YOLO lines are
``class cx cy w h`` in fractions of the image, class names from ``classes.txt``,
``obj.names`` or a ``data.yaml`` ``names`` entry beside or above the label folder (else
the numbers themselves, to be mapped with ``--label-map 0=person``). An image without a
YOLO label file has no objects (YOLO's convention).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedet.errors import InputError


@dataclass(frozen=True)
class ImageObjects:
    """Objects of one image as the annotation file gives them."""

    boxes: np.ndarray  # float64 (M, 4) [x0, y0, x1, y1], pixels or fractions (see `normalized`)
    labels: tuple[str, ...]
    normalized: bool


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame in edgedet's convention."""

    boxes: np.ndarray  # float64 (M, 4) normalized [ymin, xmin, ymax, xmax]
    class_ids: np.ndarray  # int64 (M,), indices into the model's labels

    @classmethod
    def empty(cls) -> FrameTruth:
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Annotations:
    """Objects per image name; ``source`` is the file or folder they came from."""

    source: Path
    format: str  # coco | yolo | voc
    images: Mapping[str, ImageObjects]
    complete: bool  # True: images of the folder without an entry have no objects (YOLO)

    def label_names(self) -> set[str]:
        return {name for objs in self.images.values() for name in objs.labels}

    def truth(
        self, name: str, height: int, width: int, class_of: Mapping[str, int | None]
    ) -> FrameTruth:
        """Normalized boxes and model class ids of image ``name`` (``height`` x ``width``)."""
        objs = self.images.get(name)
        if objs is None or not objs.labels:
            return FrameTruth.empty()
        keep = [i for i, label in enumerate(objs.labels) if class_of[label] is not None]
        xyxy = objs.boxes[keep].astype(np.float64).reshape(-1, 4)
        if not objs.normalized:
            xyxy = xyxy / np.array([width, height, width, height], np.float64)
        boxes = np.clip(xyxy[:, [1, 0, 3, 2]], 0.0, 1.0)
        ids = np.array([class_of[objs.labels[i]] for i in keep], np.int64)
        return FrameTruth(boxes, ids)


def parse_label_map(items: Sequence[str]) -> dict[str, str | None]:
    """``["car=vehicle", "dog=-"]`` (or comma-separated) → ``{"car": "vehicle", "dog": None}``."""
    mapping: dict[str, str | None] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            src, sep, dst = part.partition("=")
            if not sep or not src.strip() or not dst.strip():
                raise InputError(
                    f"--label-map {part!r}: expected ANNOTATION_LABEL=MODEL_LABEL "
                    "(or LABEL=- to ignore that label)"
                )
            dst = dst.strip()
            mapping[src.strip()] = None if dst == "-" else dst
    return mapping


def resolve_labels(
    names: set[str],
    model_labels: Sequence[str],
    label_map: Mapping[str, str | None],
    where: Path | str,
) -> dict[str, int | None]:
    """Annotation label → model class id (None: ignored). Raises `InputError` for a label
    the model does not know, naming it and the fix."""
    index = {label: i for i, label in enumerate(model_labels)}
    for src, dst in label_map.items():
        if dst is not None and dst not in index:
            raise InputError(
                f"--label-map {src}={dst}: the model has no label {dst!r}; "
                f"its labels: {', '.join(model_labels)}"
            )
    result: dict[str, int | None] = {}
    for name in sorted(names):
        target = label_map[name] if name in label_map else name
        if target is not None and target not in index:
            known = ", ".join(model_labels[:10]) + (", ..." if len(model_labels) > 10 else "")
            raise InputError(
                f"{where}: label {name!r} is not one of the model's labels ({known}); "
                f"map it with --label-map {name}=LABEL or ignore it with --label-map {name}=-"
            )
        result[name] = None if target is None else index[target]
    return result


# -- readers ---------------------------------------------------------------------------


def read_annotations(path: str | Path) -> Annotations:
    """Read a COCO ``.json`` file, or a folder of VOC ``.xml`` or YOLO ``.txt`` files."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise InputError(
                f"--annotations {path}: expected a COCO .json file or a folder of "
                "YOLO .txt / Pascal VOC .xml files"
            )
        return read_coco(path)
    if path.is_dir():
        if any(path.rglob("*.xml")):
            return read_voc(path)
        if any(p.name not in _YOLO_NAME_FILES for p in path.rglob("*.txt")):
            return read_yolo(path)
        raise InputError(
            f"--annotations {path}: the folder has no .xml (Pascal VOC) or .txt (YOLO) files"
        )
    raise InputError(f"--annotations {path}: no such file or folder")


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None


def read_coco(path: Path) -> Annotations:
    data = _load_json(path)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError(f"{path}: not a COCO detection file (needs images and annotations)")
    try:
        files = {img["id"]: str(img["file_name"]) for img in data["images"]}
        categories = {c["id"]: str(c["name"]) for c in data.get("categories", [])}
        per_image: dict[str, tuple[list[list[float]], list[str]]] = {
            name: ([], []) for name in files.values()
        }
        for ann in data["annotations"]:
            if ann.get("iscrowd", 0):
                continue
            if ann["image_id"] not in files:
                raise InputError(
                    f"{path}: annotation {ann.get('id')} refers to image_id {ann['image_id']} "
                    "that is not in images; fix the file"
                )
            x, y, w, h = (float(v) for v in ann["bbox"])
            boxes, labels = per_image[files[ann["image_id"]]]
            boxes.append([x, y, x + w, y + h])
            cat = ann["category_id"]
            labels.append(categories.get(cat, str(cat)))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: malformed COCO entry ({exc!r}); fix the file") from None
    images = {
        name: ImageObjects(np.array(b, np.float64).reshape(-1, 4), tuple(lab), False)
        for name, (b, lab) in per_image.items()
    }
    return Annotations(path, "coco", images, complete=False)


def read_voc(folder: Path) -> Annotations:
    images: dict[str, ImageObjects] = {}
    for file in sorted(folder.rglob("*.xml")):
        try:
            root = ET.parse(file).getroot()
            filename = root.findtext("filename") or (file.stem + ".jpg")
            boxes, labels = [], []
            for obj in root.iter("object"):
                bb = obj.find("bndbox")
                name = (obj.findtext("name") or "").strip()
                if bb is None or not name:
                    raise ValueError("an object without name or bndbox")
                x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
                boxes.append([x0 - 1.0, y0 - 1.0, x1, y1])  # 1-based inclusive → edges
                labels.append(name)
        except (ET.ParseError, TypeError, ValueError) as exc:
            raise InputError(f"{file}: not a Pascal VOC annotation ({exc}); fix the file") from None
        images[filename] = ImageObjects(
            np.array(boxes, np.float64).reshape(-1, 4), tuple(labels), False
        )
    return Annotations(folder, "voc", images, complete=False)


_YOLO_NAME_FILES = ("classes.txt", "obj.names")


def _yolo_names(folder: Path) -> list[str] | None:
    for where in (folder, folder.parent):
        for name in _YOLO_NAME_FILES:
            file = where / name
            if file.is_file():
                return [
                    ln.strip() for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()
                ]
        for name in ("data.yaml", "dataset.yaml"):
            file = where / name
            if file.is_file():
                import yaml

                try:
                    names = (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("names")
                except yaml.YAMLError as exc:
                    raise InputError(f"{file} is not valid YAML: {exc}") from None
                if isinstance(names, dict):
                    return [str(names[k]) for k in sorted(names)]
                if isinstance(names, list):
                    return [str(n) for n in names]
    return None


def read_yolo(folder: Path) -> Annotations:
    names = _yolo_names(folder)
    images: dict[str, ImageObjects] = {}
    for file in sorted(folder.rglob("*.txt")):
        if file.name in _YOLO_NAME_FILES:
            continue
        boxes, labels = [], []
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) != 5:
                    raise ValueError
                cls = int(parts[0])
                cx, cy, w, h = (float(v) for v in parts[1:])
            except ValueError:
                raise InputError(
                    f"{file}:{n}: expected 'class cx cy w h' (fractions of the image); fix the line"
                ) from None
            if names is not None and not 0 <= cls < len(names):
                raise InputError(f"{file}:{n}: class {cls} has no name in the class list")
            labels.append(names[cls] if names is not None else str(cls))
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        # Keyed by stem: the image beside it may be .jpg or .png.
        stem = file.relative_to(folder).with_suffix("").as_posix()
        images[stem] = ImageObjects(np.array(boxes, np.float64).reshape(-1, 4), tuple(labels), True)
    return Annotations(folder, "yolo", images, complete=True)


def match_images(ann: Annotations, image_names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The image names to measure, and image name → annotation key.

    COCO and VOC: exactly the annotated images, each of which must exist in the folder
    (looked up by relative path, then by file name). YOLO: every image of the folder, a
    label file matched by stem. Raises `InputError` naming an annotation whose image is
    missing.
    """
    if ann.format == "yolo":
        by_stem = {Path(n).with_suffix("").as_posix(): n for n in image_names}
        by_base = {Path(n).stem: n for n in image_names}
        key_of: dict[str, str] = {}
        for key in ann.images:
            image = by_stem.get(key) or by_base.get(Path(key).name)
            if image is None:
                raise InputError(
                    f"{ann.source / (key + '.txt')}: no image {key}.* in the data folder; "
                    "add the image or remove the label file"
                )
            key_of[image] = key
        return list(image_names), key_of
    available = set(image_names)
    by_base: dict[str, str] = {}
    for n in image_names:
        by_base.setdefault(Path(n).name, n)
    chosen: list[str] = []
    key_of = {}
    for key in ann.images:
        image = key if key in available else by_base.get(Path(key).name)
        if image is None:
            raise InputError(
                f"{ann.source}: image {key} is annotated but not in the data folder; "
                "add it or remove its annotations"
            )
        chosen.append(image)
        key_of[image] = key
    return chosen, key_of
