"""Precision, recall, F1 and duplicates over the (min_score, iou) grid, from the cache.

Matching (COCO's rule, per class): detections are visited by descending score; each takes
the not-yet-matched true object of its class with the highest IoU, if that IoU is
``>= iou_match`` (0.5): a true positive. A detection that finds no free object but
overlaps an already matched one by ``>= iou_match`` is a *duplicate* (what NMS exists to
remove); any other is a false positive on background. Duplicates count as false
positives in precision too.

Both NMS and this matching decide each detection from the higher-scoring ones alone, so
for one IoU setting a single pass at the cache floor gives the outcome at every
``min_score``: the detections scoring ``>= min_score`` (`score_filter`) and their flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgedet.postprocess import box_iou, score_filter
from edgedet.tune.annotations import FrameTruth
from edgedet.tune.cache import CandidateCache

IOU_MATCH = 0.5


def grid_values(lo: float, hi: float, step: float) -> np.ndarray:
    """``lo, lo + step, ..., hi`` rounded to 2 decimals (0.35, not 0.35000000000000003),
    so each value is the number a user would type."""
    n = int(round((hi - lo) / step)) + 1
    return np.round(lo + step * np.arange(n), 2)


MIN_SCORES = grid_values(0.05, 0.95, 0.01)
IOUS = grid_values(0.3, 0.8, 0.05)


def match_frame(
    boxes: np.ndarray, class_ids: np.ndarray, truth: FrameTruth, iou_match: float = IOU_MATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Flags (true positive, duplicate) per detection; detections in descending score order."""
    n = len(boxes)
    tp = np.zeros(n, bool)
    dup = np.zeros(n, bool)
    if n == 0 or len(truth.class_ids) == 0:
        return tp, dup
    ious = box_iou(boxes, truth.boxes)
    ious[np.asarray(class_ids)[:, None] != truth.class_ids[None, :]] = -1.0
    free = np.ones(len(truth.class_ids), bool)
    for i in range(n):
        row = ious[i]
        best = int(np.argmax(np.where(free, row, -1.0)))
        if free[best] and row[best] >= iou_match:
            free[best] = False
            tp[i] = True
        elif row.max() >= iou_match:
            dup[i] = True
    return tp, dup


@dataclass(frozen=True)
class Grid:
    """Counts per class over ``min_scores`` x ``ious`` (arrays shaped (classes, S, T)).

    ``detections``: detections kept; ``tp``: matched ones; ``duplicates``: see the module
    docstring; ``truth``: true objects per class.
    """

    labels: tuple[str, ...]
    min_scores: np.ndarray
    ious: np.ndarray
    detections: np.ndarray
    tp: np.ndarray
    duplicates: np.ndarray
    truth: np.ndarray  # (classes,)

    def counts(self, label: int | None = None) -> tuple[np.ndarray, ...]:
        """(detections, tp, duplicates, truth) for one class, or summed over all (None)."""
        if label is None:
            return (
                self.detections.sum(0),
                self.tp.sum(0),
                self.duplicates.sum(0),
                int(self.truth.sum()),
            )
        return (
            self.detections[label],
            self.tp[label],
            self.duplicates[label],
            int(self.truth[label]),
        )

    def metrics(self, label: int | None = None) -> dict[str, np.ndarray]:
        """precision, recall, f1, duplicates per true object, false positives per frame...
        as (S, T) float arrays. Precision is NaN where nothing is detected; recall NaN
        where there is nothing to find."""
        det, tp, dup, truth = self.counts(label)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(det > 0, tp / det, np.nan)
            recall = tp / truth if truth else np.full(det.shape, np.nan)
            f1 = np.where(tp > 0, 2 * tp / (det + truth), 0.0)
            dup_rate = dup / truth if truth else np.full(det.shape, np.nan)
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "duplicates_per_object": dup_rate,
            "false_positives": (det - tp).astype(float),
            "detections": det.astype(float),
        }


def evaluate_grid(
    cache: CandidateCache,
    truths: Sequence[FrameTruth],
    min_scores: Sequence[float] = MIN_SCORES,
    ious: Sequence[float] = IOUS,
    iou_match: float = IOU_MATCH,
) -> Grid:
    """Count detections, matches and duplicates at every (min_score, iou) from the cache."""
    min_scores = np.asarray(min_scores, np.float64)
    ious = np.asarray(ious, np.float64)
    if len(min_scores) and min_scores.min() < cache.floor:
        raise ValueError(f"min_score {min_scores.min()} is below the cache floor {cache.floor}")
    k = len(cache.labels)
    shape = (k, len(min_scores), len(ious))
    det_n, tp_n, dup_n = (np.zeros(shape, np.int64) for _ in range(3))
    truth_n = np.zeros(k, np.int64)
    for truth in truths:
        truth_n += np.bincount(truth.class_ids, minlength=k)[:k]
    for ti, iou in enumerate(ious):
        scores, classes, tps, dups = [], [], [], []
        for i, truth in enumerate(truths):
            kept = cache.kept_at_floor(i, float(iou))
            tp, dup = match_frame(kept.boxes, kept.class_ids, truth, iou_match)
            scores.append(kept.scores)
            classes.append(kept.class_ids)
            tps.append(tp)
            dups.append(dup)
        scores_all = np.concatenate(scores) if scores else np.zeros(0, np.float32)
        classes_all = np.concatenate(classes) if classes else np.zeros(0, np.int32)
        tp_all = np.concatenate(tps) if tps else np.zeros(0, bool)
        dup_all = np.concatenate(dups) if dups else np.zeros(0, bool)
        for c in np.unique(classes_all):
            mask = classes_all == c
            s_c, tp_c, dup_c = scores_all[mask], tp_all[mask], dup_all[mask]
            for si, s in enumerate(min_scores):
                sel = score_filter(s_c, float(s))
                det_n[c, si, ti] = len(sel)
                tp_n[c, si, ti] = np.count_nonzero(tp_c[sel])
                dup_n[c, si, ti] = np.count_nonzero(dup_c[sel])
    return Grid(tuple(cache.labels), min_scores, ious, det_n, tp_n, dup_n, truth_n)


@dataclass(frozen=True)
class OperatingPoint:
    """One (min_score, iou) setting and what it achieves on the frames (all labels)."""

    min_score: float
    iou: float
    precision: float
    recall: float
    f1: float
    duplicates_per_object: float
    detections: int
    true_positives: int
    false_positives: int
    truth: int

    def to_dict(self) -> dict[str, float | int]:
        def r(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x), 4)

        return {
            "min_score": self.min_score,
            "iou": self.iou,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "f1": r(self.f1),
            "duplicates_per_object": r(self.duplicates_per_object),
            "detections": self.detections,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "objects": self.truth,
        }


def point(grid: Grid, si: int, ti: int) -> OperatingPoint:
    m = grid.metrics()
    det, tp, _, truth = grid.counts()
    return OperatingPoint(
        min_score=float(grid.min_scores[si]),
        iou=float(grid.ious[ti]),
        precision=float(m["precision"][si, ti]),
        recall=float(m["recall"][si, ti]),
        f1=float(m["f1"][si, ti]),
        duplicates_per_object=float(m["duplicates_per_object"][si, ti]),
        detections=int(det[si, ti]),
        true_positives=int(tp[si, ti]),
        false_positives=int(det[si, ti] - tp[si, ti]),
        truth=truth,
    )


class NoOperatingPoint(ValueError):
    """No setting of the grid reaches the requested target."""


def recommend(
    grid: Grid,
    current: tuple[float, float],
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
) -> tuple[OperatingPoint, str]:
    """The recommended setting and the rule that chose it.

    Default: the highest F1. ``target_precision``: the highest recall among settings with
    precision >= target (``target_recall``: the highest precision with recall >= target).
    Ties go to the setting nearest the ``current`` (min_score, iou), then the higher
    min_score: a default is not moved for nothing.
    """
    m = grid.metrics()
    precision = np.nan_to_num(m["precision"], nan=0.0)
    recall = np.nan_to_num(m["recall"], nan=0.0)
    if target_precision is not None:
        ok = precision >= target_precision
        objective, secondary = recall, m["f1"]
        rule = f"highest recall with precision >= {target_precision:g}"
        what = f"precision {target_precision:g}"
        best_seen = f"best precision {precision.max():.3f}"
    elif target_recall is not None:
        ok = recall >= target_recall
        objective, secondary = precision, m["f1"]
        rule = f"highest precision with recall >= {target_recall:g}"
        what = f"recall {target_recall:g}"
        best_seen = f"best recall {recall.max():.3f}"
    else:
        ok = np.ones(precision.shape, bool)
        objective, secondary = m["f1"], m["f1"]
        rule = "highest F1"
        what = best_seen = ""
    if not ok.any():
        raise NoOperatingPoint(f"no setting reaches {what} on these frames ({best_seen})")
    s_grid, t_grid = np.meshgrid(grid.min_scores, grid.ious, indexing="ij")
    distance = np.abs(s_grid - current[0]) + np.abs(t_grid - current[1])
    # lexsort: last key is primary.
    order = np.lexsort(
        (
            -s_grid.ravel(),
            distance.ravel(),
            -secondary.ravel(),
            -np.where(ok, objective, -1).ravel(),
        )
    )
    si, ti = np.unravel_index(order[0], s_grid.shape)
    return point(grid, int(si), int(ti)), rule


def find_point(grid: Grid, min_score: float, iou: float) -> OperatingPoint | None:
    """The grid point at exactly this setting, if the grid has it."""
    si = np.flatnonzero(np.isclose(grid.min_scores, min_score, rtol=0, atol=1e-9))
    ti = np.flatnonzero(np.isclose(grid.ious, iou, rtol=0, atol=1e-9))
    if len(si) and len(ti):
        return point(grid, int(si[0]), int(ti[0]))
    return None
