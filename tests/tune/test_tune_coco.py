"""edgedet's matching and AP agree with pycocotools on the same real detections."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.convert.fidelity import FrameResult, agreement
from edgedet.tune.annotations import FrameTruth
from edgedet.tune.cache import build_cache
from edgedet.tune.coco import coco_ap
from edgedet.tune.grid import match_frame


def ap101(scores: np.ndarray, tp: np.ndarray, n_truth: int) -> float:
    """COCO's interpolated AP (101 recall points) from pooled match flags."""
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[order].astype(np.float64)
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(1 - tp)
    recall = tp_cum / n_truth
    precision = np.maximum.accumulate((tp_cum / (tp_cum + fp_cum))[::-1])[::-1]
    at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in at]))


@pytest.fixture(scope="module")
def case(detector, sample_frames):
    """Candidates of real frames; truth: detections at another setting, boxes jittered."""
    rng = np.random.default_rng(7)
    cache = build_cache(detector, ((f"f{i}", f) for i, f in enumerate(sample_frames)), 0.05)
    truths = []
    for frame in sample_frames:
        d = detector.detect(frame, min_score=0.45, iou_threshold=0.5)
        jitter = rng.normal(0, 0.01, d.boxes.shape)
        boxes = np.clip(d.boxes.astype(np.float64) + jitter, 0, 1)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.01)
        truths.append(FrameTruth(boxes, d.class_ids.astype(np.int64)))
    return cache, truths


@pytest.mark.parametrize("iou", [0.3, 0.6, 0.8])
def test_grid_matching_gives_pycocotools_ap(case, iou):
    cache, truths = case
    dets = [cache.kept_at_floor(i, iou) for i in range(len(cache))]
    coco = coco_ap(truths, dets, cache.sizes, 1, cache.max_detections)
    n_truth = sum(len(t.class_ids) for t in truths)
    scores = np.concatenate([d.scores for d in dets])
    ours = []
    for match in np.linspace(0.5, 0.95, 10):
        tp = np.concatenate(
            [
                match_frame(d.boxes, d.class_ids, t, match)[0]
                for d, t in zip(dets, truths, strict=True)
            ]
        )
        ours.append(ap101(scores, tp, n_truth))
    assert 0.3 < coco.ap50[0] < 1.0 and coco.ap[0] < coco.ap50[0]  # a real, imperfect case
    assert abs(ours[0] - coco.ap50[0]) < 1e-3
    assert abs(np.mean(ours) - coco.ap[0]) < 1e-3


def test_fidelity_report_ap_agrees_with_pycocotools(case):
    """The converter's fidelity AP@0.5 is VOC's all-point area under the precision
    envelope; pycocotools computes the same area when it samples the envelope at many
    recall points instead of COCO's 101 (which differs by ~0.006 here)."""
    cache, truths = case
    dets = [cache.kept_at_floor(i, 0.6) for i in range(len(cache))]
    fine = coco_ap(truths, dets, cache.sizes, 1, cache.max_detections, recall_points=20001)
    ref = [FrameResult(t.boxes, np.ones(len(t.class_ids)), t.class_ids) for t in truths]
    pred = [FrameResult.of(d) for d in dets]
    ours = agreement(ref, pred, iou_match=0.5).ap
    assert 0.3 < ours < 1.0
    assert abs(ours - fine.ap50[0]) < 1e-3
