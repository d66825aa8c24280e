"""The SSD decoder's tabulated box codes equal decoding the dequantized codes."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.decoders.base import TensorInfo
from edgedet.decoders.ssd import SsdDecoder, boxes_from_scaled, decode_boxes
from edgedet.postprocess import dequantize


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point"),
    [(np.uint8, 0.0891, 129), (np.int8, 0.05, -3), (np.uint8, 0.5, 0)],  # 0.5: exp overflows
)
def test_box_code_table_equals_decoding_every_code(dtype, scale, zero_point):
    rng = np.random.default_rng(5)
    n = 300
    anchors = np.column_stack([rng.uniform(0, 1, (n, 2)), rng.uniform(0.01, 0.9, (n, 2))]).astype(
        np.float32
    )
    box = TensorInfo(0, "boxes", (1, n, 4), np.dtype(dtype), scale, zero_point)
    score = TensorInfo(1, "scores", (1, n, 2), np.dtype(np.uint8), 0.1, 128)
    decoder = SsdDecoder(anchors, 0, 1, box, score)
    info = np.iinfo(dtype)
    codes = rng.integers(info.min, info.max + 1, (n, 4)).astype(dtype)
    codes[:256] = np.arange(256).astype(np.uint8).view(dtype)[:, None]  # every code
    with np.errstate(over="ignore"):
        plain = decode_boxes(dequantize(codes, scale, zero_point), anchors, decoder.box_scales)
    for rows in (np.arange(n), np.array([3]), rng.permutation(n)[:17]):
        from_table = decoder._scaled_codes[codes[rows].view(np.uint8), np.arange(4)]
        with np.errstate(over="ignore", invalid="ignore"):
            got = boxes_from_scaled(from_table, anchors[rows])
        np.testing.assert_array_equal(got, plain[rows])
