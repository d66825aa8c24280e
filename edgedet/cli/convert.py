"""`edgedet convert SRC --out MODEL.tflite --calib VIDEO|DIR`: full-integer TFLite + card.

Needs the optional extra ``edgedet[convert]`` (TensorFlow), imported only when run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a TensorFlow detector to a full-integer TFLite model with a card",
        description="Convert a TF1 OD API SSD frozen graph (.pb), a TF2 SavedModel folder or a "
        "Keras file (.keras/.h5) with an SSD or YOLO head to a full-integer TFLite model, "
        "calibrated on your own frames, with a model card (<out>.yaml) and a fidelity report "
        "(quantized vs float on held-back frames). Needs: pip install 'edgedet[convert]'.",
    )
    p.add_argument("source", type=Path, metavar="SRC", help="frozen graph, SavedModel or Keras")
    p.add_argument("--out", required=True, type=Path, help="output model, *.tflite")
    p.add_argument(
        "--calib", required=True, type=Path, help="calibration video or folder of images"
    )
    p.add_argument("--calib-count", type=int, default=200, help="calibration frames (default 200)")
    p.add_argument(
        "--holdout",
        type=int,
        default=50,
        help="frames held back from calibration for the fidelity report (default 50; 0 skips)",
    )
    p.add_argument(
        "--calib-range",
        metavar="START:STOP",
        help="use only frames (or sorted images) START..STOP-1 of the calibration source",
    )
    p.add_argument("--io", choices=("uint8", "int8"), default="uint8", help="I/O tensor type")
    p.add_argument(
        "--edgetpu",
        action="store_true",
        help="integer ops only (no float fallback); run edgetpu_compiler if on PATH",
    )
    p.add_argument("--input-tensor", help="frozen graph: tensor to cut the input at")
    p.add_argument(
        "--output-tensors",
        help="frozen graph: box encodings and class predictions tensors, comma-separated",
    )
    p.add_argument("--input-size", metavar="HxW", help="fix a dynamic input size, e.g. 320x320")
    p.add_argument(
        "--labels", help="label file (one per line) or comma-separated labels, e.g. person"
    )
    p.add_argument("--name", help="model name for the card (default: the output file stem)")
    p.add_argument(
        "--provenance",
        metavar="TEXT",
        help="where the model comes from, for the card's source.from (default: SRC's name)",
    )
    p.add_argument(
        "--head", choices=("ssd", "yolov8", "yolov5"), help="detection head (default: identify)"
    )
    p.add_argument("--anchors", type=Path, help="YAML anchor spec for an SSD Keras/SavedModel")
    p.add_argument("--color", choices=("rgb", "bgr"), help="input colour order")
    p.add_argument("--resize", choices=("stretch", "letterbox"), help="input resize mode")
    p.add_argument("--mean", type=float, help="input normalization: (pixel - mean) / std")
    p.add_argument("--std", type=float, help="input normalization: (pixel - mean) / std")
    p.add_argument(
        "--min-ap",
        type=float,
        default=0.9,
        help="fail when AP@0.5 of quantized vs float is below this (default 0.9)",
    )
    p.add_argument("--min-score", type=float, default=0.5, help="card default min_score")
    p.add_argument(
        "--iou",
        type=float,
        help="card default NMS IoU threshold (default: a frozen graph's own, else 0.6)",
    )
    p.add_argument("--max-detections", type=int, default=100, help="card default")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def parse_size(text: str | None) -> tuple[int, int] | None:
    from edgedet.errors import InputError

    if not text:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        height, width = (int(v) for v in parts)
    except ValueError:
        raise InputError(f"--input-size {text!r} must be HxW, e.g. 300x300") from None
    if height < 1 or width < 1:
        raise InputError(f"--input-size {text!r} must be positive")
    return height, width


def parse_range(text: str | None) -> tuple[int, int | None] | None:
    from edgedet.errors import InputError

    if not text:
        return None
    start, sep, stop = text.partition(":")
    try:
        first = int(start) if start else 0
        last = int(stop) if stop else None
    except ValueError:
        raise InputError(f"--calib-range {text!r} must be START:STOP, e.g. 0:475") from None
    if not sep or first < 0 or (last is not None and last <= first):
        raise InputError(f"--calib-range {text!r} must be START:STOP with 0 <= START < STOP")
    return first, last


def parse_labels(text: str | None) -> list[str] | None:
    from edgedet.modelcard import read_labels

    if not text:
        return None
    if Path(text).is_file():
        return list(read_labels(text))
    if "," in text or not any(c in text for c in "/\\."):
        return [t.strip() for t in text.split(",") if t.strip()]
    return list(read_labels(text))  # a missing file: read_labels names it in the error


def load_anchors(path: Path | None) -> dict | None:
    import yaml

    from edgedet.errors import InputError

    if path is None:
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read anchor spec {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("anchors"), dict):
        data = data["anchors"]
    if not isinstance(data, dict):
        raise InputError(f"anchor spec {path} must be a mapping (decoder.anchors keys)")
    return data


def main(args: argparse.Namespace) -> int:
    import os

    from edgedet.convert.pipeline import ConvertOptions, convert

    # TensorFlow's C++ INFO/WARNING lines would bury the report; --debug keeps them.
    if not getattr(args, "debug", False):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _require_tensorflow()
    opts = ConvertOptions(
        source=args.source,
        out=args.out,
        calib=args.calib,
        calib_count=args.calib_count,
        holdout_count=args.holdout,
        calib_range=parse_range(args.calib_range),
        io_type=args.io,
        edgetpu=args.edgetpu,
        input_tensor=args.input_tensor,
        output_tensors=[t.strip() for t in args.output_tensors.split(",")]
        if args.output_tensors
        else None,
        input_size=parse_size(args.input_size),
        labels=parse_labels(args.labels),
        name=args.name,
        provenance=args.provenance,
        head=args.head,
        anchors=load_anchors(args.anchors),
        color=args.color,
        resize=args.resize,
        mean=args.mean,
        std=args.std,
        min_ap=args.min_ap,
        min_score=args.min_score,
        iou=args.iou,
        max_detections=args.max_detections,
        progress=not args.quiet,
    )
    result = convert(opts)
    print_report(result)
    return 0


def _require_tensorflow() -> None:
    import importlib.util

    from edgedet.errors import EdgedetError

    if importlib.util.find_spec("tensorflow") is None:
        raise EdgedetError(
            "edgedet convert needs TensorFlow: pip install 'edgedet[convert]' "
            "(on an x86-64 or aarch64 workstation)"
        )


def print_report(result) -> None:
    s, f = result.summary, result.float_summary
    out = sys.stdout
    print(
        f"wrote {result.model_path} ({s.size_bytes / 1e6:.2f} MB) and {result.card_path}", file=out
    )
    print(
        f"  ops: {s.num_ops} ({', '.join(f'{k} {v}' for k, v in s.op_counts.items())}); "
        f"float model {f.size_bytes / 1e6:.2f} MB, {f.num_ops} ops",
        file=out,
    )
    io = ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in (*s.inputs, *s.outputs))
    print(f"  tensors: {io}", file=out)
    if s.full_integer and s.has_postprocess_op:
        print("  full-integer: yes, up to TFLite_Detection_PostProcess (float, CPU)", file=out)
    elif s.full_integer:
        print("  full-integer: yes (no float op or tensor)", file=out)
    else:
        print(f"  full-integer: NO; float ops: {'; '.join(s.float_ops)}", file=out)
    if result.fidelity is not None:
        fid = result.fidelity
        print(
            f"  fidelity on {fid.frames} held-back frames, quantized vs float: "
            f"AP@0.5 {fid.ap:.4f}; at min_score: precision {fid.precision:.3f}, "
            f"recall {fid.recall:.3f}, mean IoU {fid.mean_iou:.3f}, "
            f"same count in {fid.count_agreement:.0%} of frames",
            file=out,
        )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.edgetpu_command:
        cmd = " ".join(result.edgetpu_command)
        if result.edgetpu_output:
            print(f"  Edge TPU model: {result.edgetpu_output}", file=out)
        else:
            print(
                f"  edgetpu_compiler is not on PATH; on an x86-64 machine run:\n    {cmd}",
                file=out,
            )
