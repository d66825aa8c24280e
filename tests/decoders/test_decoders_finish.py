"""`finish`, the last step every decoder shares: frame mapping, clipping, NMS."""

from __future__ import annotations

import numpy as np
import pytest
from decoder_reference import letterbox_geometry

from edgedet.decoders.base import DecodeParams, FrameGeometry, finish


@pytest.mark.parametrize("agnostic", [False, True])
def test_boxes_with_no_area_left_after_clipping_are_dropped_before_nms(agnostic):
    # A 4:3 frame letterboxed into a square input: the frame spans y 0.125..0.875.
    geometry = letterbox_geometry((480, 640), (320, 320))
    boxes = np.array(
        [
            [0.30, 0.20, 0.60, 0.50],  # inside the frame
            [0.02, 0.10, 0.10, 0.40],  # in the top padding: height 0 after clipping
            [0.03, 0.12, 0.11, 0.42],  # another one there, overlapping the first
            [0.90, 0.60, 0.98, 0.90],  # in the bottom padding
            [0.10, 0.60, 0.40, 0.90],  # straddles the top edge: clipped, kept
            [0.50, 0.95, 0.70, 1.30],  # straddles the right edge: clipped, kept
            [np.nan, 0.1, 0.2, 0.3],  # NaN: no area either
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95], np.float32)
    classes = np.zeros(7, np.int64)
    result = finish(boxes, scores, classes, DecodeParams(0.3, 0.5, 100, agnostic), geometry)
    np.testing.assert_array_equal(result.scores, np.float32([0.9, 0.5, 0.4]))
    assert np.all(result.boxes[:, 2:] > result.boxes[:, :2])
    assert result.boxes[1, 0] == 0.0 and result.boxes[2, 3] == 1.0  # clipped, not dropped


def test_a_box_outside_a_stretched_frame_is_dropped_too():
    geometry = FrameGeometry(input_height=300, input_width=300)
    boxes = np.array([[0.2, 0.2, 0.4, 0.4], [1.1, 0.2, 1.3, 0.4], [0.2, -0.5, 0.4, -0.1]])
    scores = np.array([0.5, 0.9, 0.8], np.float32)
    result = finish(boxes, scores, np.zeros(3, np.int64), DecodeParams(0.3, 0.5), geometry)
    assert result.scores.tolist() == [0.5]


def test_max_detections_counts_only_boxes_that_remain():
    geometry = FrameGeometry(input_height=300, input_width=300)
    boxes = np.array([[1.2, 0, 1.4, 0.1], [0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]])
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    result = finish(boxes, scores, np.zeros(3), DecodeParams(0.3, 0.5, max_detections=1), geometry)
    assert result.scores.tolist() == [np.float32(0.8)]
