"""nms equals a plain Python greedy loop, on adversarial and on realistic inputs."""

from __future__ import annotations

import math
import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.reference import reference_nms

from edgedet.postprocess import box_iou, nms
from edgedet.postprocess import suppression as nms_module


@contextmanager
def small_blocks(**values: int):
    """Run nms with other size limits (module constants without the underscore), so both
    paths run on the same inputs and the large-N steps (several blocks, chunked
    suppression passes) run on small N."""
    saved = {name: getattr(nms_module, "_" + name) for name in values}
    for name, value in values.items():
        setattr(nms_module, "_" + name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(nms_module, "_" + name, value)


PATHS = {
    "defaults": {},
    "loop only": {"SMALL": 10**6},
    "vectorized": {"SMALL": 0},
    "blocks of 3, chunks of 4": {"SMALL": 0, "BLOCK": 3, "MAX_ELEMENTS": 4},
    "blocks of 1": {"SMALL": 0, "BLOCK": 1, "MAX_ELEMENTS": 1},
}


# Coordinates on a coarse grid make exact ties, duplicates, IoU exactly equal to the
# threshold, zero-area and inverted boxes common; free floats cover the general case.
grid = st.sampled_from([0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0])
coordinate = st.one_of(grid, st.floats(-0.5, 1.5, width=32))
score = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, math.nan]),
    st.floats(0, 1, width=32),
)
# Thresholds outside [0, 1] and NaN are well defined too (everything / nothing suppresses).
threshold = st.one_of(
    st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 0.6, 1.0, -0.25, 1.5, math.nan]),
    st.floats(0, 1, allow_nan=False),
)


@st.composite
def candidates(draw, max_size=40):
    n = draw(st.integers(0, max_size))
    boxes = [draw(st.lists(coordinate, min_size=4, max_size=4)) for _ in range(n)]
    # Sorting each axis pair makes most boxes valid; some stay inverted on purpose.
    for box in boxes:
        if draw(st.booleans()):
            box[0], box[2] = sorted((box[0], box[2]))
            box[1], box[3] = sorted((box[1], box[3]))
    for _ in range(draw(st.integers(0, n // 3))):  # exact duplicates
        boxes.append(list(boxes[draw(st.integers(0, n - 1))]))
    n = len(boxes)
    scores = draw(st.lists(score, min_size=n, max_size=n))
    classes = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    return (
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int32),
    )


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=150, deadline=None)
@given(data=candidates(), iou_threshold=threshold, per_class=st.booleans(),
       max_detections=st.one_of(st.none(), st.integers(0, 10)))  # fmt: skip
def test_nms_equals_plain_greedy_loop(path, data, iou_threshold, per_class, max_detections):
    boxes, scores, classes = data
    class_ids = classes if per_class else None
    with small_blocks(**PATHS[path]):
        kept = nms(boxes, scores, iou_threshold, class_ids, max_detections)
    assert kept.dtype == np.int64
    assert kept.tolist() == reference_nms(boxes, scores, iou_threshold, class_ids, max_detections)


def clustered_candidates(rng, objects, per_object, classes):
    """Each object fires a cluster of jittered boxes of one class, as real heads do."""
    centres = rng.uniform(0.1, 0.9, (objects, 2))
    sizes = rng.uniform(0.05, 0.3, (objects, 2))
    cls = rng.integers(0, classes, objects)
    jitter = rng.normal(0, 0.02, (objects, per_object, 4))
    lo = centres[:, None, :] - sizes[:, None, :] / 2 + jitter[..., :2]
    hi = centres[:, None, :] + sizes[:, None, :] / 2 + jitter[..., 2:]
    boxes = np.concatenate([lo, hi], axis=-1).reshape(-1, 4).astype(np.float32)
    scores = rng.uniform(0.01, 1.0, len(boxes)).astype(np.float32)
    scores[rng.random(len(scores)) < 0.05] = 0.5  # ties
    return boxes, scores, np.repeat(cls, per_object).astype(np.int32)


@pytest.mark.parametrize("per_class", [True, False])
@pytest.mark.parametrize("objects", [10, 60])
def test_nms_on_thousands_of_clustered_candidates_equals_reference(per_class, objects):
    rng = np.random.default_rng(7)
    boxes, scores, classes = clustered_candidates(rng, objects, per_object=40, classes=5)
    class_ids = classes if per_class else None
    kept = nms(boxes, scores, 0.5, class_ids)
    assert len(boxes) > nms_module._BLOCK  # several blocks
    assert kept.tolist() == reference_nms(boxes, scores, 0.5, class_ids)


def test_nms_keeps_iou_exactly_equal_to_threshold():
    # IoU of these two boxes is exactly 1/2 in binary floating point.
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert box_iou(boxes[:1], boxes[1:])[0, 0] == 0.5
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, np.nextafter(0.5, 0)).tolist() == [0]


def test_nms_breaks_score_ties_by_lower_index():
    boxes = np.array([[0, 0, 1, 1]] * 3, np.float32)
    scores = np.array([0.5, 0.7, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1]


def test_nms_never_keeps_nan_scores_and_nan_never_suppresses():
    boxes = np.array([[0, 0, 1, 1]] * 2, np.float32)
    scores = np.array([np.nan, 0.1], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1]


def test_zero_area_and_inverted_boxes_neither_suppress_nor_get_suppressed():
    boxes = np.array([[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.9], [0.9, 0.9, 0.1, 0.1], [0, 0, 1, 1]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.0).tolist() == [0, 1, 2]
    assert box_iou(boxes[1:3], boxes).max() == 0.0


def test_per_class_nms_only_suppresses_within_a_class():
    boxes = np.array([[0, 0, 1, 1]] * 3, np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5, np.array([0, 1, 0])).tolist() == [0, 1]
    assert nms(boxes, scores, 0.5).tolist() == [0]


def test_max_detections_truncates_after_nms():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # Truncating before NMS would keep [0] only; after NMS it is the top two survivors.
    assert nms(boxes, scores, 0.5, max_detections=2).tolist() == [0, 2]
    assert nms(boxes, scores, 0.5, max_detections=0).tolist() == []


def test_nms_of_nothing_is_an_empty_int64_array():
    kept = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, np.zeros(0, np.int32))
    assert kept.dtype == np.int64 and kept.shape == (0,)


def test_nms_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)


@pytest.mark.parametrize("class_ids", [None, np.array([0, 1])])
def test_nms_with_only_nan_scores_keeps_nothing(class_ids):
    boxes = np.array([[0, 0, 1, 1]] * 2, np.float32)
    kept = nms(boxes, np.array([np.nan, np.nan], np.float32), 0.5, class_ids)
    assert kept.dtype == np.int64 and kept.tolist() == []


@pytest.mark.parametrize("path", PATHS)
def test_nan_and_infinite_boxes_never_suppress_at_non_negative_thresholds(path):
    boxes = np.array(
        [[0, 0, 1, 1], [np.nan, 0, 1, 1], [0, 0, np.inf, np.inf], [0, 0, 1, 1]], np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    with small_blocks(**PATHS[path]):
        assert nms(boxes, scores, 0.5).tolist() == [0, 1, 2]
        assert nms(boxes, scores, 0.0, np.array([0, 0, 0, 1])).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("path", PATHS)
def test_negative_threshold_suppresses_even_at_iou_zero(path):
    # IoU is 0 for zero-area boxes (union <= 0) and for disjoint boxes; 0 > -0.25.
    boxes = np.array([[0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [2, 2, 3, 3]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    with small_blocks(**PATHS[path]):
        assert nms(boxes, scores, -0.25).tolist() == [0]
        assert nms(boxes, scores, 0.0).tolist() == [0, 1, 2]
        assert nms(boxes, scores, -0.25, np.array([0, 1, 0])).tolist() == [0, 1]


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (len(a), len(b)) in float64, written out independently of edgedet."""
    a, b = a.astype(np.float64)[:, None], b.astype(np.float64)[None]
    ih = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iw = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ih * iw
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@pytest.mark.parametrize("per_class", [True, False])
def test_twenty_thousand_candidates_stay_within_16_mib_and_are_greedy(per_class):
    rng = np.random.default_rng(11)
    boxes, scores, classes = clustered_candidates(rng, objects=500, per_object=40, classes=80)
    assert len(boxes) == 20_000
    class_ids = classes if per_class else None
    tracemalloc.start()
    try:
        kept = nms(boxes, scores, 0.5, class_ids)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    # Greedy NMS is the one set where a candidate is kept exactly when no kept candidate
    # ranked before it (of its class) overlaps it with IoU > threshold; kept in rank order.
    rank = np.empty(len(scores), np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    assert np.all(np.diff(rank[kept]) > 0)
    suppressed = np.zeros(len(scores), bool)
    for start in range(0, len(scores), 2000):
        cols = np.arange(start, min(start + 2000, len(scores)))
        hit = pairwise_iou(boxes[kept], boxes[cols]) > 0.5
        hit &= rank[kept][:, None] < rank[cols]
        if per_class:
            hit &= classes[kept][:, None] == classes[cols]
        suppressed[cols] = hit.any(axis=0)
    assert np.flatnonzero(~suppressed).tolist() == sorted(kept.tolist())
