"""Preprocessing is bit-identical across CPUs and OpenCV wheels: the interpreter input
tensor for fixed frames of the bundled clip has a golden sha256.

The same golden file is checked by tests/ops/test_tflite_runtime_env.py (NumPy 1,
OpenCV 4, tflite-runtime) and by tools/pi_check.sh on emulated aarch64 (KleidiCV).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import platform
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.modelcard import InputSpec
from edgedet.preprocess import RESIZE_INTERPOLATION, Preprocessor

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("input_tensor_golden.json")


def _hash_tool():
    spec = importlib.util.spec_from_file_location(
        "input_tensor_hashes", ROOT / "tools" / "input_tensor_hashes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_input_tensors_of_fixed_clip_frames_match_the_golden_hashes():
    tool = _hash_tool()
    frames = tool.golden_frames()
    assert [f.name for f in frames] == ["vtest_clip_frame000.png", "vtest_clip_frame080.png"]
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == {f"{kind} {f.name}" for kind in ("model", "letterbox") for f in frames}
    assert tool.input_hashes(frames) == golden


@pytest.mark.skipif(
    platform.machine() != "x86_64",
    reason="FFmpeg's aarch64 IDCT decodes the clip's MPEG-4 Part 2 video to other pixels",
)
def test_the_golden_frames_are_the_clips_frames_as_decoded_on_x86_64(sample_clip):
    cap = cv2.VideoCapture(str(sample_clip))
    decoded = [cap.read()[1] for _ in range(81)]
    cap.release()
    for path in _hash_tool().golden_frames():
        index = int(path.stem.removeprefix("vtest_clip_frame"))
        assert np.array_equal(cv2.imread(str(path)), decoded[index]), path.name


def test_preprocessing_resizes_with_linear_exact(sample_frames):
    # The golden hashes pin INTER_LINEAR_EXACT: plain INTER_LINEAR gives other bytes here
    # (and differs between the x86-64 and aarch64 wheels), so a revert fails above too.
    assert RESIZE_INTERPOLATION == cv2.INTER_LINEAR_EXACT
    frame = sample_frames[0]
    prep = Preprocessor(InputSpec(color="bgr"), 300, 300, np.dtype(np.uint8), None)
    out = np.empty((300, 300, 3), np.uint8)
    prep(frame, out)
    exact = cv2.resize(frame, (300, 300), interpolation=cv2.INTER_LINEAR_EXACT)
    linear = cv2.resize(frame, (300, 300), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out, exact)
    assert hashlib.sha256(linear).digest() != hashlib.sha256(exact).digest()
