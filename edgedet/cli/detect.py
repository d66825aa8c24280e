"""`edgedet detect IMAGE...`: run a model on still images."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="detect objects in images",
        description="Detect objects in images. Prints a table, or one JSON object per image "
        "with --json (the record format of docs/DESIGN.md).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--model", help="model .tflite (default: the bundled person detector)")
    p.add_argument("--labels", help="label file, one per line (default: the model card's)")
    p.add_argument("--min-score", type=float, help="keep detections with score >= this")
    p.add_argument("--iou", type=float, help="NMS: suppress overlaps with IoU > this")
    p.add_argument("--max-detections", type=int, help="at most this many per image")
    p.add_argument("--agnostic", action="store_true", help="class-agnostic NMS")
    p.add_argument("--json", action="store_true", help="JSON lines output")
    p.add_argument("--annotate", metavar="DIR", help="write annotated copies into DIR")
    p.add_argument("--backend", default="auto", help="auto, litert, tflite_runtime, tensorflow")
    p.add_argument("--threads", type=int, help="interpreter threads")
    p.add_argument("--edgetpu", action="store_true", default=None, help="use the Coral Edge TPU")
    p.set_defaults(func=main)


# What a shell reports for a writer ended by SIGPIPE (128 + 13), as `yes | head -1` does.
EXIT_BROKEN_PIPE = 141


def main(args: argparse.Namespace) -> int:
    """Detect and print; a reader that stops early (``| head -1``) ends it quietly."""
    try:
        return _detect(args)
    except BrokenPipeError:
        # Python ignores SIGPIPE and raises instead. Point stdout at /dev/null so the
        # interpreter's final flush of the unsent rest cannot raise (and print) again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _detect(args: argparse.Namespace) -> int:
    import cv2

    from edgedet.annotate import draw_detections
    from edgedet.detector import Detector
    from edgedet.errors import InputError
    from edgedet.models import default_model_path
    from edgedet.sources.opencv import opencv_errors_only

    opencv_errors_only()  # we report bad images ourselves
    detector = Detector.open(
        args.model or default_model_path(),
        labels_path=args.labels,
        backend=args.backend,
        num_threads=args.threads,
        edgetpu=args.edgetpu,
    )
    params = dict(
        min_score=args.min_score,
        iou_threshold=args.iou,
        max_detections=args.max_detections,
        agnostic=args.agnostic,
    )
    detector.params(**params)  # validate thresholds before reading any image
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create --annotate directory {out_dir}: {exc.strerror}"
            ) from None
    for path in args.images:
        if not Path(path).is_file():
            raise InputError(f"cannot read image {path}: no such file")
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"cannot read image {path}: missing, unreadable or not an image")
        if image.dtype != "uint8":
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
        detections = detector.detect(image, **params)
        h, w = image.shape[:2]
        if args.json:
            record = {"image": path, "width": w, "height": h, "detections": detections.to_records()}
            print(json.dumps(record), flush=True)
        else:
            print(f"{path}  {w}x{h}  {len(detections)} detection(s)")
            for d in detections.to_records():
                box = ", ".join(f"{v:.3f}" for v in d["box"])
                # The record's score, already rounded down: never above the true one.
                print(f"  {d['label']:<16} {d['score']:.4f}  [{box}]")
        if out_dir is not None:
            target = out_dir / Path(path).name
            if not cv2.imwrite(str(target), draw_detections(image, detections)):
                raise InputError(f"cannot write annotated image {target}")
    sys.stdout.flush()
    return 0
