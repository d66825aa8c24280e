"""The device runtime never loads the tune extra (matplotlib, pycocotools)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import numpy as np
from edgedet.cli import build_parser
from edgedet.detector import Detector
from edgedet.models import default_model_path
import edgedet.service.runner
import edgedet.tune.cache, edgedet.tune.grid, edgedet.tune.tuner, edgedet.tune.report
import edgedet.tune.plots, edgedet.tune.coco
build_parser().parse_args(["tune", "x.mp4", "--reference", "r.tflite"])
detector = Detector.open(default_model_path())
detector.detect(np.zeros((240, 320, 3), np.uint8))
detector.candidates(np.zeros((240, 320, 3), np.uint8), floor=0.05)
print(",".join(m for m in ("matplotlib", "pycocotools", "tensorflow") if m in sys.modules))
"""


def test_runtime_and_tune_modules_load_neither_matplotlib_nor_pycocotools() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""
