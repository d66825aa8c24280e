"""The source article's three examples (DESIGN.md) reproduce exactly."""

import numpy as np

from edgedet.postprocess import box_iou, nms, score_filter


def test_example_1_inclusive_threshold_keeps_score_equal_to_min_score():
    scores = np.array([0.4, 0.8, 0.6], np.float32)
    kept = score_filter(scores, 0.6)
    assert kept.dtype == np.int64
    assert kept.tolist() == [1, 2]
    np.testing.assert_array_equal(scores[kept], np.array([0.8, 0.6], np.float32))


def test_example_2_two_thresholds():
    scores = np.array([0.3, 0.7, 0.5, 0.9], np.float32)
    np.testing.assert_array_equal(
        scores[score_filter(scores, 0.4)], np.array([0.7, 0.5, 0.9], np.float32)
    )
    np.testing.assert_array_equal(scores[score_filter(scores, 0.8)], np.array([0.9], np.float32))


def _example_3():
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [0.2, 0.25, 0.4, 0.45], [0.7, 0.8, 0.9, 1.0]])
    scores = np.array([0.8, 0.7, 0.9])
    classes = np.array([1, 1, 3])
    return boxes, scores, classes


def test_example_3_filter_then_nms_keeps_all_at_iou_0_5():
    boxes, scores, classes = _example_3()
    candidates = score_filter(scores, 0.6)
    kept = candidates[nms(boxes[candidates], scores[candidates], 0.5, classes[candidates])]
    assert kept.tolist() == [2, 0, 1]


def test_example_3_iou_of_boxes_0_and_1_is_0_015_over_0_065():
    boxes, _, _ = _example_3()
    assert abs(box_iou(boxes[:1], boxes[1:2])[0, 0] - 0.015 / 0.065) < 1e-12


def test_example_3_suppresses_box_1_at_iou_0_2():
    boxes, scores, classes = _example_3()
    candidates = score_filter(scores, 0.6)
    kept = candidates[nms(boxes[candidates], scores[candidates], 0.2, classes[candidates])]
    assert kept.tolist() == [2, 0]


def test_example_3_float32_boxes_give_the_same_result():
    boxes, scores, classes = _example_3()
    kept = nms(boxes.astype(np.float32), scores.astype(np.float32), 0.2, classes)
    assert kept.tolist() == [2, 0]
