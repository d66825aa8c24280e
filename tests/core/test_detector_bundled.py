"""The bundled model on real frames: the output contract of docs/DESIGN.md holds."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.detector import Detector
from edgedet.postprocess import box_iou


@pytest.fixture(scope="module")
def detector(bundled_model):
    return Detector.open(bundled_model)


@pytest.mark.parametrize(("min_score", "iou"), [(0.05, 0.3), (0.3, 0.5), (0.5, 0.6), (0.2, 0.9)])
def test_output_is_sorted_clipped_thresholded_and_free_of_overlaps(
    detector, sample_frames, min_score, iou
):
    seen = 0
    for frame in sample_frames:
        det = detector.detect(frame, min_score=min_score, iou_threshold=iou, max_detections=50)
        assert det.boxes.dtype == np.float32 and det.scores.dtype == np.float32
        assert det.class_ids.dtype == np.int32
        assert len(det) <= 50
        assert np.all(det.scores >= np.float32(min_score))
        assert np.all(np.diff(det.scores) <= 0)
        assert np.all((det.boxes >= 0) & (det.boxes <= 1))
        overlaps = box_iou(det.boxes, det.boxes)
        np.fill_diagonal(overlaps, 0)
        same_class = det.class_ids[:, None] == det.class_ids[None, :]
        assert not np.any((overlaps > iou) & same_class)
        seen += len(det)
    assert seen > 0


def test_raising_min_score_cuts_the_same_ranked_list_when_nms_is_off(detector, sample_frames):
    """Raising min_score never invents a detection: with NMS off (IoU 1), the kept set at
    a higher threshold is exactly the lower threshold's set cut at that score."""
    for frame in sample_frames[:3]:
        low = detector.detect(frame, min_score=0.2, iou_threshold=1.0, max_detections=1000)
        high = detector.detect(frame, min_score=0.6, iou_threshold=1.0, max_detections=1000)
        cut = low[low.scores >= np.float32(0.6)]
        np.testing.assert_array_equal(high.scores, cut.scores)
        np.testing.assert_array_equal(high.boxes, cut.boxes)


def test_timing_is_reported_per_stage(detector, sample_frames):
    detector.detect(sample_frames[0])
    assert set(detector.last_timing_ms) == {"preprocess", "invoke", "postprocess"}
    assert all(v >= 0 for v in detector.last_timing_ms.values())
