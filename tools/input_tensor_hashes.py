"""The sha256 of the model input made from fixed frames of the bundled clip.

Usage: python tools/input_tensor_hashes.py [--check tests/core/input_tensor_golden.json]

Prints a JSON object: for each frame in ``tests/core/data/`` (frames 0 and 80 of
``models/samples/vtest_clip.mp4``, stored as PNG), the sha256 of the bundled model's
interpreter input tensor after ``Detector.detect`` (stretch resize, BGR → RGB, uint8
quantization table) and of a 320x320 uint8 letterbox ``Preprocessor`` output (the other
resize path). Preprocessing is meant to be bit-identical on every CPU and OpenCV wheel
(x86-64 IPP, aarch64; OpenCV 4 and 5): ``--check FILE`` compares with the golden hashes
in FILE and exits 1, naming the frames, when any differ. Run by
tests/core/test_preprocess_golden.py in every test environment and by tools/pi_check.sh
on emulated aarch64.

The frames are PNG, not decoded from the clip at run time, because the clip's MPEG-4
Part 2 video does not decode to the same pixels everywhere: FFmpeg's aarch64 IDCT differs
from its x86-64 one by up to 4 levels (tests/core/test_preprocess_golden.py shows it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMES_DIR = ROOT / "tests" / "core" / "data"


def input_hashes(frames: list[Path], backend: str = "auto") -> dict[str, str]:
    """``{"model NAME": sha256, "letterbox NAME": sha256}`` for each image file."""
    import cv2
    import numpy as np

    from edgedet.detector import Detector
    from edgedet.modelcard import InputSpec
    from edgedet.models import default_model_path
    from edgedet.preprocess import Preprocessor

    detector = Detector.open(default_model_path(), backend=backend)
    letterbox = Preprocessor(InputSpec(resize="letterbox"), 320, 320, np.dtype(np.uint8), None)
    out = np.empty((320, 320, 3), np.uint8)
    hashes = {}
    for path in frames:
        frame = cv2.imread(str(path))
        if frame is None:
            raise SystemExit(f"cannot read {path}")
        detector.detect(frame)
        tensor = detector.last_input()
        hashes[f"model {path.name}"] = hashlib.sha256(tensor.tobytes()).hexdigest()
        letterbox(frame, out)
        hashes[f"letterbox {path.name}"] = hashlib.sha256(out.tobytes()).hexdigest()
    return hashes


def golden_frames() -> list[Path]:
    return sorted(FRAMES_DIR.glob("vtest_clip_frame*.png"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="auto", help="interpreter backend")
    parser.add_argument("--check", type=Path, metavar="GOLDEN", help="compare with this JSON")
    args = parser.parse_args(argv)
    hashes = input_hashes(golden_frames(), args.backend)
    print(json.dumps(hashes, indent=1))
    if args.check:
        golden = json.loads(args.check.read_text())
        differ = [k for k in golden if hashes.get(k) != golden[k]]
        if differ or not golden:
            print(f"input tensors differ from {args.check}: {', '.join(differ)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
