"""Ultralytics-style input (issue 12): letterbox 114, RGB, pixel / 255, NCHW, rounding."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.detector import ULTRALYTICS_INPUT
from edgedet.preprocess import Preprocessor


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_float_input_is_pixel_over_255_exactly_and_padded_with_114():
    pre = Preprocessor(ULTRALYTICS_INPUT, 64, 64, np.float32)
    frame = _frame(32, 64)  # wide, not scaled: 16 rows of padding above and below
    out = np.empty((64, 64, 3), np.float32)
    pre(frame, out)
    rgb = frame[:, :, ::-1]
    np.testing.assert_array_equal(out[16:48], rgb / np.float32(255))
    assert np.all(out[:16] == np.float32(114) / np.float32(255))


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8])
def test_nchw_is_the_transpose_of_nhwc(dtype):
    scale, zero_point = (
        (None, 0) if dtype == np.float32 else (0.0078, -3 if dtype == np.int8 else 5)
    )
    nhwc = Preprocessor(ULTRALYTICS_INPUT, 48, 40, dtype, scale, zero_point)
    nchw = Preprocessor(ULTRALYTICS_INPUT, 48, 40, dtype, scale, zero_point, "nchw")
    frame = _frame(70, 33, seed=1)
    a = np.empty((48, 40, 3), dtype)
    b = np.empty((3, 48, 40), dtype)
    assert nhwc(frame, a) == nchw(frame, b)
    np.testing.assert_array_equal(b, a.transpose(2, 0, 1))


def test_int8_input_codes_are_rounded_not_truncated():
    scale, zero_point = 0.0078, -3  # pixel / 255 / scale has fractional parts of all sizes
    pre = Preprocessor(ULTRALYTICS_INPUT, 16, 16, np.int8, scale, zero_point)
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    frame = np.stack([pixels] * 3, axis=2)
    out = np.empty((16, 16, 3), np.int8)
    pre(frame, out)
    real = pixels.astype(np.float64) / 255 / scale + zero_point
    want = np.clip(np.round(real), -128, 127)
    np.testing.assert_array_equal(out[:, :, 0], want)
    assert np.any(want != np.clip(np.trunc(real), -128, 127))  # truncation would differ
