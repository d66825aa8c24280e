"""Preprocessing: geometry, colour order and exact input quantization."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.modelcard import InputSpec
from edgedet.preprocess import Preprocessor, quantize_table


def test_letterbox_geometry_maps_model_coordinates_back_to_the_frame():
    pre = Preprocessor(InputSpec(resize="letterbox", color="rgb"), 320, 320, np.float32)
    frame = np.zeros((240, 480, 3), np.uint8)  # wide: padded top and bottom
    out = np.empty((320, 320, 3), np.float32)
    geom = pre(frame, out)
    assert geom.x_offset == 0 and geom.x_extent == 1
    assert geom.y_extent == pytest.approx(160 / 320) and geom.y_offset == pytest.approx(80 / 320)
    # The frame's full extent in model coordinates maps back to [0, 1].
    model_box = np.array([[80 / 320, 0.0, 240 / 320, 1.0]], np.float32)
    np.testing.assert_allclose(geom.to_frame(model_box), [[0, 0, 1, 1]], atol=1e-6)
    # Padding rows carry the pad value (114), normalized.
    assert out[0, 0, 0] == pytest.approx((114 - 127.5) / 127.5)


def test_bgr_frames_become_rgb_and_grey_and_bgra_are_converted():
    pre = Preprocessor(InputSpec(color="rgb", mean=(0.0,), std=(1.0,)), 4, 4, np.float32)
    out = np.empty((4, 4, 3), np.float32)
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    pre(bgr, out)
    assert out[0, 0].tolist() == [0, 0, 200]
    pre(np.full((8, 8), 77, np.uint8), out)
    assert out[0, 0].tolist() == [77, 77, 77]
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 2] = 50
    bgra[..., 3] = 255
    pre(bgra, out)
    assert out[0, 0].tolist() == [50, 0, 0]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantized_input_equals_normalize_then_quantize(dtype):
    scale, zero_point = 0.0078125, (128 if dtype == np.uint8 else 0)
    pre = Preprocessor(InputSpec(color="bgr"), 16, 16, dtype, scale, zero_point)
    frame = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = np.empty((16, 16, 3), dtype)
    pre(frame, out)
    info = np.iinfo(dtype)
    expected = np.clip(
        np.round(((frame.astype(np.float32) - 127.5) / 127.5) / np.float32(scale)) + zero_point,
        info.min,
        info.max,
    ).astype(dtype)
    np.testing.assert_array_equal(out, expected)


def test_quantize_table_is_monotonic_and_in_range():
    table = quantize_table([127.5] * 3, [127.5] * 3, 0.00784, 127, np.uint8)
    assert table.shape == (256, 3)
    assert np.all(np.diff(table.astype(int), axis=0) >= 0)


def test_per_channel_mean_and_std_quantize_each_channel_with_its_own_table():
    spec = InputSpec(color="rgb", mean=(120.0, 110.0, 100.0), std=(60.0, 58.0, 57.0))
    scale, zero_point = 0.02, 128
    pre = Preprocessor(spec, 8, 8, np.uint8, scale, zero_point)
    frame = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = np.empty((8, 8, 3), np.uint8)
    pre(frame, out)
    rgb = frame[..., ::-1].astype(np.float32)
    normalized = (rgb - np.float32([120, 110, 100])) / np.float32([60, 58, 57])
    expected = np.clip(np.round(normalized / np.float32(scale)) + zero_point, 0, 255)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
