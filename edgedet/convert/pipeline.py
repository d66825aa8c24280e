"""`convert`: a TensorFlow detector → full-integer TFLite model + card, or a clear error.

Steps, in order, each failing with a typed one-line error before anything is written:

1. check the output path can be written;
2. identify the source (TF1 OD API frozen graph, TF2 SavedModel, Keras file) and its head
   (SSD raw outputs, YOLOv8 ``[1, 4+C, N]``, YOLOv5 ``[1, N, 5+C]``);
3. pick frames spread over the calibration video or folder, hold some back;
4. convert to float TFLite (the reference) and to full-integer TFLite;
5. verify the integer model (float ops and tensors listed; an error with ``edgetpu``);
6. fidelity: both models through edgedet's own `Detector` on the held-back frames;
   below ``min_ap`` the conversion fails instead of shipping a model that detects nothing;
7. write model and card atomically; with ``edgetpu`` compile or print the command.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.convert import calibration, output, verify
from edgedet.convert.fidelity import Agreement, FrameResult, agreement
from edgedet.convert.verify import POSTPROCESS_OP
from edgedet.errors import InputError, ModelError
from edgedet.modelcard import CARD_FORMAT, InputSpec

HEADS = ("ssd", "yolov8", "yolov5")
DEFAULT_IOU = 0.6  # the TF OD API SSD configs' NMS IoU
# Predictions for AP are pooled from this score up, so AP traces the whole precision/recall
# curve instead of counting a 0.49-vs-0.51 threshold flip as a lost object.
AP_MIN_SCORE = 0.1


@dataclass
class ConvertOptions:
    """Everything `convert` needs; the CLI fills it from flags."""

    source: Path
    out: Path
    calib: Path
    calib_count: int = 200
    holdout_count: int = 50
    calib_range: tuple[int, int | None] | None = None
    io_type: str = "uint8"
    edgetpu: bool = False
    input_tensor: str | None = None
    output_tensors: list[str] | None = None
    input_size: tuple[int, int] | None = None
    labels: list[str] | None = None
    name: str | None = None
    provenance: str | None = None  # the card's source.from; default: the source's file name
    head: str | None = None  # ssd | yolov8 | yolov5; None = identify from the outputs
    anchors: dict[str, Any] | None = None  # SSD anchor spec for Keras/SavedModel SSD heads
    color: str | None = None
    resize: str | None = None
    mean: float | None = None
    std: float | None = None
    min_ap: float = 0.9
    min_score: float = 0.5
    iou: float | None = None  # None: the source graph's own NMS IoU, else DEFAULT_IOU
    max_detections: int = 100
    progress: bool = True


@dataclass
class ConvertResult:
    model_path: Path
    card_path: Path
    card: dict[str, Any]
    summary: verify.ModelSummary
    float_summary: verify.ModelSummary
    fidelity: Agreement | None
    edgetpu_command: list[str] | None = None
    edgetpu_output: Path | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Built:
    """A source turned into TFLite builders plus what the card needs."""

    kind: str
    input_spec: InputSpec
    decoder: dict[str, Any]
    num_classes: int
    build: Callable[[Callable | None], bytes]  # representative dataset or None → flatbuffer
    extra_source: dict[str, Any] = field(default_factory=dict)


def source_kind(path: Path) -> str:
    """frozen_graph | saved_model | keras, from the path; `ModelError` otherwise."""
    if not path.exists():
        raise ModelError(f"model source {path} does not exist")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise ModelError(
            f"{path} is a folder without saved_model.pb; pass a SavedModel folder, "
            "a .keras/.h5 file or a frozen graph .pb"
        )
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        return "keras"
    if suffix == ".pb":
        return "frozen_graph"
    raise ModelError(
        f"cannot tell what kind of model {path} is; pass a frozen graph (.pb), "
        "a SavedModel folder or a Keras file (.keras, .h5)"
    )


def convert(opts: ConvertOptions) -> ConvertResult:
    """Convert ``opts.source`` to ``opts.out`` (+ card). See the module docstring."""
    _check_options(opts)
    output.check_writable(opts.out)
    kind = source_kind(opts.source)
    frames = calibration.load_frames(
        opts.calib,
        opts.calib_count,
        opts.holdout_count,
        frame_range=opts.calib_range,
        min_calibration=min(opts.calib_count, 8),
    )
    if kind == "frozen_graph":
        built = _from_frozen_graph(opts)
    else:
        built = _from_tf2(opts, kind, frames.calibration[:4])
    labels = _labels(opts, built.num_classes)
    if opts.iou is None:
        reference_iou = built.extra_source.get("reference_nms", {}).get("iou_threshold")
        opts = dataclasses.replace(opts, iou=reference_iou or DEFAULT_IOU)

    float_model = built.build(None)

    def representative():
        return calibration.representative_dataset(
            frames.calibration, built.input_spec, progress=opts.progress
        )

    quant_model = built.build(representative)
    summary = verify.summarize(quant_model)
    float_summary = verify.summarize(float_model)
    warnings: list[str] = []
    if not summary.full_integer:
        ops = ", ".join(summary.float_op_names)
        if opts.edgetpu:
            raise ModelError(
                f"--edgetpu needs integer ops only, but {ops} has no integer kernel and stays "
                "float; replace that op in the model, or drop --edgetpu to accept float fallback"
            )
        warnings.append(
            f"the converted model is not full-integer: {ops} run(s) in float "
            f"({len(summary.float_ops)} op(s) touch float tensors; listed in the card's "
            "quantization.float_fallback_ops)"
        )

    card = _card(opts, built, labels, frames, summary, float_summary)
    fidelity = None
    if frames.holdout:
        fidelity = _fidelity(float_model, quant_model, card, frames.holdout, opts)
        card["quantization"]["fidelity"] = {
            **fidelity.to_card(),
            "reference": "float TFLite model, same decoder",
            "min_score": opts.min_score,
            "ap_min_score": min(AP_MIN_SCORE, opts.min_score),
            "iou_threshold": opts.iou,
            "min_ap": opts.min_ap,
        }
        if fidelity.reference_detections == 0:
            warnings.append(
                f"the float model detects nothing (score >= {opts.min_score}) on the "
                f"{fidelity.frames} held-back frames, so the fidelity report proves nothing; "
                "calibrate on frames that show the objects the model should find"
            )
        if fidelity.ap < opts.min_ap:
            raise ModelError(
                f"quantized model reaches AP@0.5 {fidelity.ap:.3f} against the float model on "
                f"{fidelity.frames} held-back frames, below --min-ap {opts.min_ap}; nothing "
                "written. Calibrate on more representative frames (--calib), or check "
                "--mean/--std/--color match the model's training"
            )
    else:
        warnings.append("no frames held back (--holdout 0): fidelity not measured")
        card["quantization"]["fidelity"] = {"frames": 0}

    card = finish_card(card, opts.out.name, quant_model)
    card_path = output.write_model_and_card(opts.out, quant_model, card)
    result = ConvertResult(
        opts.out, card_path, card, summary, float_summary, fidelity, warnings=warnings
    )
    if opts.edgetpu:
        _edgetpu(result)
    return result


def _check_options(opts: ConvertOptions) -> None:
    if opts.io_type not in ("uint8", "int8"):
        raise InputError(f"--io must be uint8 or int8, not {opts.io_type!r}")
    if opts.calib_count < 1:
        raise InputError("--calib-count must be at least 1")
    if opts.holdout_count < 0:
        raise InputError("--holdout must be 0 or more")
    if opts.head is not None and opts.head not in HEADS:
        raise InputError(f"--head must be one of {', '.join(HEADS)}, not {opts.head!r}")
    if not 0.0 <= opts.min_ap <= 1.0:
        raise InputError(f"--min-ap must be between 0 and 1, got {opts.min_ap}")


def _labels(opts: ConvertOptions, num_classes: int) -> list[str]:
    labels = list(opts.labels) if opts.labels else [str(i) for i in range(num_classes)]
    if len(labels) != num_classes:
        raise InputError(
            f"the model predicts {num_classes} classes but {len(labels)} labels were given; "
            "pass one label per class (background excluded) with --labels"
        )
    return labels


# -- sources --------------------------------------------------------------------------


def _input_spec(opts: ConvertOptions, height: int, width: int, defaults: dict) -> InputSpec:
    mean = opts.mean if opts.mean is not None else defaults["mean"]
    std = opts.std if opts.std is not None else defaults["std"]
    return InputSpec(
        height=height,
        width=width,
        color=opts.color or defaults.get("color", "rgb"),
        resize=opts.resize or defaults.get("resize", "stretch"),
        mean=(float(mean),),
        std=(float(std),),
    )


def _from_frozen_graph(opts: ConvertOptions) -> _Built:
    from edgedet.convert import odapi, quantize

    graph_def = odapi.load_graph_def(opts.source)
    ssd = odapi.analyze_ssd_graph(
        graph_def,
        input_tensor=opts.input_tensor,
        output_tensors=opts.output_tensors,
        input_size=opts.input_size,
    )
    _check_anchor_spec(ssd.decoder["anchors"], ssd.anchors)
    spec = _input_spec(opts, ssd.input_height, ssd.input_width, {"mean": ssd.mean, "std": ssd.std})
    shape = (1, ssd.input_height, ssd.input_width, 3)

    def build(representative):
        return quantize.convert_ssd_graph(
            graph_def,
            ssd.input_tensor,
            ssd.output_tensors,
            shape,
            representative=representative,
            io_type=opts.io_type,
            edgetpu=opts.edgetpu,
        )

    extra = {"cut": {"input": ssd.input_tensor, "outputs": list(ssd.output_tensors)}}
    if ssd.reference_nms:
        extra["reference_nms"] = ssd.reference_nms
    return _Built("frozen_graph", spec, ssd.decoder, ssd.num_classes, build, extra)


def _check_anchor_spec(spec: dict, graph_anchors: np.ndarray | None, atol: float = 1e-5) -> None:
    """The runtime regenerates anchors from the card: prove it gets the graph's own."""
    from edgedet.decoders.anchors import ssd_anchors

    if graph_anchors is None:
        return
    generated = ssd_anchors(spec)
    if generated.shape != graph_anchors.shape:
        raise ModelError(
            f"derived anchor spec gives {len(generated)} anchors, the graph has "
            f"{len(graph_anchors)}; write decoder.anchors by hand"
        )
    err = float(np.abs(generated - graph_anchors).max())
    if err > atol:
        raise ModelError(
            f"derived anchor spec reproduces the graph's anchors only to {err:.2g} "
            f"(need {atol}); the graph uses an anchor layout edgedet cannot describe"
        )


def _from_tf2(opts: ConvertOptions, kind: str, probe_frames: list[np.ndarray]) -> _Built:
    from edgedet.convert import quantize, tf2

    model = tf2.load(opts.source, kind)
    height, width = tf2.input_hw(model, opts.input_size, opts.source)
    shape = (1, height, width, 3)
    postprocess = tf2.postprocess_attrs(model)
    if postprocess is not None:
        return _postprocess_export(opts, model, postprocess, height, width)
    out_shapes = tf2.output_shapes(model, shape)
    head = opts.head or _identify_head(out_shapes, opts)
    if head == "ssd":
        if not opts.anchors:
            raise InputError(
                "an SSD head from a Keras/SavedModel needs its anchor spec: pass --anchors "
                "FILE.yaml (keys of decoder.anchors in docs/DESIGN.md)"
            )
        boxes, scores = _ssd_outputs(out_shapes)
        num_classes = scores[-1] - 1
        decoder: dict[str, Any] = {
            "type": "ssd",
            "score_activation": "sigmoid",
            "background_class": True,
            "box_scales": [10.0, 10.0, 5.0, 5.0],
            "anchors": dict(opts.anchors),
        }
        defaults = {"mean": 127.5, "std": 127.5, "resize": "stretch"}
    else:
        (out,) = out_shapes
        num_classes = _yolo_classes(out, head)
        decoder = {"type": head, "score_activation": "none"}
        defaults = {"mean": 0.0, "std": 255.0, "resize": "letterbox"}
    spec = _input_spec(opts, height, width, defaults)

    def build(representative):
        if kind == "keras":
            return quantize.convert_keras(
                model.obj,
                representative=representative,
                io_type=opts.io_type,
                edgetpu=opts.edgetpu,
                input_shape=shape,
            )
        return quantize.convert_saved_model(
            str(opts.source),
            representative=representative,
            io_type=opts.io_type,
            edgetpu=opts.edgetpu,
            input_shape=shape,
        )

    built = _Built(kind, spec, decoder, num_classes, build)
    if head != "ssd":
        decoder["box_units"] = tf2.box_units(model, spec, probe_frames, head)
    return built


def _postprocess_export(
    opts: ConvertOptions, model: Any, attrs: dict[str, str], height: int, width: int
) -> _Built:
    """A SavedModel ending in TFLite_Detection_PostProcess (``export_tflite_graph_tf2.py``)."""
    from edgedet.convert import quantize

    if tuple(model.input_shape[1:3]) != (height, width):
        raise ModelError(
            f"{opts.source} ends in {POSTPROCESS_OP} and is converted as exported; "
            f"its input is {list(model.input_shape)}, so --input-size cannot change it"
        )
    try:
        num_classes = int(attrs["num_classes"])
    except (KeyError, ValueError):
        raise ModelError(
            f"{opts.source}: the {POSTPROCESS_OP} function has no num_classes attribute"
        ) from None
    spec = _input_spec(opts, height, width, {"mean": 127.5, "std": 127.5, "resize": "stretch"})

    def build(representative):
        return quantize.convert_postprocess_saved_model(
            str(opts.source),
            representative=representative,
            io_type=opts.io_type,
            edgetpu=opts.edgetpu,
        )

    extra = {"postprocess": {k: attrs[k] for k in sorted(attrs)}}
    decoder = {"type": "tflite_postprocess"}
    return _Built("saved_model", spec, decoder, num_classes, build, extra)


def _identify_head(shapes: list[tuple[int, ...]], opts: ConvertOptions) -> str:
    if len(shapes) == 2:
        return "ssd"
    if len(shapes) == 1 and len(shapes[0]) == 3:
        _, a, b = shapes[0]
        if a < b:
            return "yolov8"  # [1, 4 + C, N]: channels first, as Ultralytics exports
        if opts.labels and b == 5 + len(opts.labels):
            return "yolov5"
        if opts.labels and b == 4 + len(opts.labels):
            return "yolov8"
    raise ModelError(
        f"cannot identify the detection head from output shapes {shapes}; "
        "pass --head ssd|yolov8|yolov5 (and --labels)"
    )


def _ssd_outputs(shapes: list[tuple[int, ...]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(box encodings, class logits) shapes of a two-output SSD head, in either order."""
    if len(shapes) == 2 and all(len(s) == 3 and s[1] == shapes[0][1] for s in shapes):
        first, second = shapes
        if first[-1] == 4 and second[-1] != 4:
            return first, second
        if second[-1] == 4 and first[-1] != 4:
            return second, first
        if first[-1] == second[-1] == 4:  # three classes + background: keep the model's order
            return first, second
    raise ModelError(
        "an SSD head needs box encodings [1, N, 4] and class logits [1, N, C+1]; "
        f"the model outputs {shapes}"
    )


def _yolo_classes(shape: tuple[int, ...], head: str) -> int:
    _, a, b = shape
    channels = min(a, b) if head == "yolov8" else b
    num = channels - (4 if head == "yolov8" else 5)
    if num < 1:
        raise ModelError(f"output {list(shape)} is not a {head} head (no class channels)")
    return num


# -- card -----------------------------------------------------------------------------


def _card(
    opts: ConvertOptions,
    built: _Built,
    labels: list[str],
    frames: calibration.FrameSet,
    summary: verify.ModelSummary,
    float_summary: verify.ModelSummary,
) -> dict[str, Any]:
    import tensorflow as tf

    from edgedet import __version__

    inp = built.input_spec
    return {
        "format": CARD_FORMAT,
        "name": opts.name or opts.out.stem,
        "file": opts.out.name,
        "sha256": None,  # set by finish_card for the bytes actually written
        "labels": labels,
        "input": {
            "height": inp.height,
            "width": inp.width,
            "color": inp.color,
            "resize": inp.resize,
            "mean": inp.mean[0],
            "std": inp.std[0],
            **({"pad_value": inp.pad_value} if inp.resize == "letterbox" else {}),
        },
        "decoder": built.decoder,
        "quantization": {
            "type": "full_int8" if summary.full_integer else "int8_float_fallback",
            "io": opts.io_type,
            "edgetpu": opts.edgetpu,
            "inputs": [t.to_card() for t in summary.inputs],
            "outputs": [t.to_card() for t in summary.outputs],
            "size_bytes": summary.size_bytes,
            "ops": summary.num_ops,
            "op_counts": summary.op_counts,
            # Ops of this model that still touch float tensors (empty when full-integer).
            "float_fallback_ops": summary.float_ops,
            "float_model": {"size_bytes": float_summary.size_bytes, "ops": float_summary.num_ops},
            **({"cpu_float_postprocess": POSTPROCESS_OP} if summary.has_postprocess_op else {}),
            "calibration": frames.summary(),
        },
        "defaults": {
            "min_score": opts.min_score,
            "iou": opts.iou,
            "max_detections": opts.max_detections,
        },
        "source": {
            "from": opts.provenance or opts.source.name,
            "kind": built.kind,
            **built.extra_source,
            "converter": f"edgedet {__version__}",
            "tensorflow": tf.__version__,
        },
    }


# -- fidelity -------------------------------------------------------------------------


def _fidelity(
    float_model: bytes,
    quant_model: bytes,
    card: dict[str, Any],
    holdout: list[np.ndarray],
    opts: ConvertOptions,
) -> Agreement:
    """The quantized model's detections against the float model's, both via `Detector`.

    The float model's detections at the card's ``min_score`` are the ground truth; the
    quantized model's are pooled from `AP_MIN_SCORE` up for AP, and judged at
    ``min_score`` for precision, recall and count agreement.
    """
    reference, predicted = run_pair(float_model, quant_model, card, holdout, opts)
    return agreement(reference, predicted, iou_match=0.5, operating_score=opts.min_score)


def run_pair(
    float_model: bytes,
    quant_model: bytes,
    card: dict[str, Any],
    frames: list[np.ndarray],
    opts: ConvertOptions,
) -> tuple[list[FrameResult], list[FrameResult]]:
    """Detections of the float (reference, at ``min_score``) and quantized (from
    `AP_MIN_SCORE`) models on ``frames``.

    Both run through edgedet's `Detector` with the card's decoder, ``min_score`` and
    IoU; each model needs its own card (the sha256 differs), written to a temp folder.
    """
    from edgedet.detector import Detector

    with tempfile.TemporaryDirectory(prefix="edgedet-fidelity-") as tmp:
        detectors = []
        for tag, model in (("float", float_model), ("quant", quant_model)):
            path = Path(tmp) / f"{tag}.tflite"
            output.write_model_and_card(path, model, finish_card(card, path.name, model))
            detectors.append(Detector.open(path))
        results: list[list[FrameResult]] = [[], []]
        min_scores = (opts.min_score, min(AP_MIN_SCORE, opts.min_score))
        for frame in frames:
            for k, det in enumerate(detectors):
                found = det.detect(
                    frame,
                    min_score=min_scores[k],
                    iou_threshold=opts.iou,
                    max_detections=opts.max_detections,
                )
                results[k].append(FrameResult.of(found))
    return results[0], results[1]


def finish_card(card: dict[str, Any], file_name: str, model: bytes) -> dict[str, Any]:
    """A copy of ``card`` naming ``file_name`` with the sha256 of ``model``."""
    import hashlib

    out = dict(card)
    out["file"] = file_name
    out["sha256"] = hashlib.sha256(model).hexdigest()
    return out


# -- Edge TPU -------------------------------------------------------------------------


def _edgetpu(result: ConvertResult) -> None:
    out_dir = result.model_path.parent
    command = ["edgetpu_compiler", "-s", "-o", str(out_dir), str(result.model_path)]
    result.edgetpu_command = command
    if shutil.which("edgetpu_compiler") is None:
        return
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise ModelError(
            f"edgetpu_compiler failed (exit {proc.returncode}) on {result.model_path}; "
            "see its output above"
        )
    result.edgetpu_output = out_dir / (result.model_path.stem + "_edgetpu.tflite")
