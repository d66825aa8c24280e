"""The sha256 of the model input made from fixed frames of the bundled clip.

Usage: python tools/input_tensor_hashes.py [--check tests/core/input_tensor_golden.json]

Prints a JSON object: for frames 0, 40 and 80 of ``models/samples/vtest_clip.mp4``, the
sha256 of the bundled model's interpreter input tensor after ``Detector.detect`` (video
decode, stretch resize, BGR → RGB, uint8 quantization table) and of a 320x320 uint8
letterbox ``Preprocessor`` output (the other resize path). Preprocessing is meant to be
bit-identical on every CPU and OpenCV wheel (x86-64 IPP, aarch64 KleidiCV; OpenCV 4 and
5): ``--check FILE`` compares with the golden hashes in FILE and exits 1, naming the
frames, when any differ. Run by tests/core/test_preprocess_golden.py in every test
environment and by tools/pi_check.sh on emulated aarch64.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

FRAMES = (0, 40, 80)


def input_hashes(clip: Path, backend: str = "auto") -> dict[str, str]:
    """``{"model frame N": sha256, "letterbox frame N": sha256}`` for ``FRAMES``."""
    import cv2
    import numpy as np

    from edgedet.detector import Detector
    from edgedet.modelcard import InputSpec
    from edgedet.models import default_model_path
    from edgedet.preprocess import Preprocessor

    detector = Detector.open(default_model_path(), backend=backend)
    letterbox = Preprocessor(InputSpec(resize="letterbox"), 320, 320, np.dtype(np.uint8), None)
    out = np.empty((320, 320, 3), np.uint8)
    capture = cv2.VideoCapture(str(clip))
    hashes = {}
    for index in range(max(FRAMES) + 1):
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{clip}: ends before frame {index}")
        if index in FRAMES:
            detector.detect(frame)
            tensor = detector.last_input()
            hashes[f"model frame {index}"] = hashlib.sha256(tensor.tobytes()).hexdigest()
            letterbox(frame, out)
            hashes[f"letterbox frame {index}"] = hashlib.sha256(out.tobytes()).hexdigest()
    capture.release()
    return hashes


def main(argv: list[str] | None = None) -> int:
    from edgedet.models import sample_clip_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, help="video (default: the bundled sample clip)")
    parser.add_argument("--backend", default="auto", help="interpreter backend")
    parser.add_argument("--check", type=Path, metavar="GOLDEN", help="compare with this JSON")
    args = parser.parse_args(argv)
    hashes = input_hashes(args.clip or sample_clip_path(), args.backend)
    print(json.dumps(hashes, indent=1))
    if args.check:
        golden = json.loads(args.check.read_text())
        differ = [k for k in golden if hashes.get(k) != golden[k]]
        if differ:
            print(f"input tensors differ from {args.check}: {', '.join(differ)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
