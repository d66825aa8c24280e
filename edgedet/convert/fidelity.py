"""Fidelity: how closely one detector's output follows a reference detector's.

The math is pure numpy over per-frame detections: AP@IoU of predictions against reference
detections taken as ground truth (VOC all-point interpolation, per class, averaged over
the classes the reference found), the mean IoU of matched boxes and how often the two
agree on the number of detections per frame. `compare_detectors` runs two edgedet
`Detector`s on the same frames; `report` adds sizes and op counts for the model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgedet.detections import Detections


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (K, 4) with every box in ``b`` (M, 4); boxes (lo, lo, hi, hi).

    Same convention as edgedet's NMS: no +1, IoU 0 when the union is not positive.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass(frozen=True)
class FrameResult:
    """One frame's detections reduced to what the metrics need."""

    boxes: np.ndarray  # (N, 4)
    scores: np.ndarray  # (N,)
    class_ids: np.ndarray  # (N,)

    @classmethod
    def of(cls, detections: Detections, min_score: float = 0.0) -> FrameResult:
        keep = detections.scores >= min_score
        return cls(
            np.asarray(detections.boxes)[keep],
            np.asarray(detections.scores)[keep],
            np.asarray(detections.class_ids)[keep],
        )


@dataclass(frozen=True)
class Agreement:
    """Metrics of predictions against reference detections over a set of frames."""

    ap: float  # mean over reference classes of AP@iou_match; 1.0 when both found nothing
    mean_iou: float  # over greedily matched pairs (score order); nan when nothing matched
    count_agreement: float  # fraction of frames with equal counts at the operating score
    precision: float  # at the operating score: matched / predictions
    recall: float  # at the operating score: matched / reference detections
    reference_detections: int
    predicted_detections: int  # at the operating score
    matched: int  # at the operating score
    frames: int

    def to_card(self) -> dict:
        def r(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x), 4)

        return {
            "ap50": r(self.ap),
            "mean_iou": r(self.mean_iou),
            "count_agreement": r(self.count_agreement),
            "precision": r(self.precision),
            "recall": r(self.recall),
            "reference_detections": self.reference_detections,
            "detections": self.predicted_detections,
            "matched": self.matched,
            "frames": self.frames,
        }


def _match_frame(
    ref: FrameResult, pred: FrameResult, iou_match: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy VOC matching in descending prediction score, same class only.

    Returns per prediction: 1 if it is a true positive else 0, and its IoU with the
    matched reference box (0 for false positives).
    """
    order = np.argsort(-pred.scores, kind="stable")
    tp = np.zeros(len(pred.scores), np.int8)
    matched_iou = np.zeros(len(pred.scores), np.float64)
    if len(ref.scores) == 0 or len(pred.scores) == 0:
        return tp, matched_iou
    ious = iou_matrix(pred.boxes, ref.boxes)
    same_class = pred.class_ids[:, None] == ref.class_ids[None, :]
    ious = np.where(same_class, ious, -1.0)
    taken = np.zeros(len(ref.scores), bool)
    for i in order:
        candidates = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= iou_match:
            taken[j] = True
            tp[i] = 1
            matched_iou[i] = candidates[j]
    return tp, matched_iou


def average_precision(tp_sorted: np.ndarray, num_reference: int) -> float:
    """VOC all-point interpolated AP from true-positive flags in descending score order."""
    if num_reference == 0:
        return float("nan")
    tp_cum = np.cumsum(tp_sorted)
    fp_cum = np.cumsum(1 - tp_sorted)
    recall = tp_cum / num_reference
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    # Precision envelope (monotone non-increasing), then area under the step curve.
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def agreement(
    reference: Sequence[FrameResult],
    predictions: Sequence[FrameResult],
    *,
    iou_match: float = 0.5,
    operating_score: float = 0.0,
) -> Agreement:
    """Compare ``predictions`` with ``reference`` detections taken as ground truth.

    AP@``iou_match`` uses every prediction given (pool them from a low ``min_score`` to
    trace the whole precision/recall curve, as detection benchmarks do): predictions are
    pooled over frames and ranked by score per class (VOC). Precision, recall, matched
    IoU and per-frame count agreement are measured at the operating point: predictions
    scoring ``>= operating_score``, the threshold the device will use.
    """
    if len(reference) != len(predictions):
        raise ValueError("reference and predictions must cover the same frames")
    classes = sorted(set(np.concatenate([r.class_ids for r in reference] or [[]]).tolist()))
    per_class: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in classes}
    ious: list[np.ndarray] = []
    same_count = 0
    n_operating = 0
    for ref, pred in zip(reference, predictions, strict=True):
        tp, _ = _match_frame(ref, pred, iou_match)
        for c in classes:
            mask = pred.class_ids == c
            per_class[c].append((pred.scores[mask], tp[mask]))
        keep = pred.scores >= operating_score
        operating = FrameResult(pred.boxes[keep], pred.scores[keep], pred.class_ids[keep])
        op_tp, op_iou = _match_frame(ref, operating, iou_match)
        ious.append(op_iou[op_tp == 1])
        n_operating += len(operating.scores)
        same_count += int(len(operating.scores) == len(ref.scores))
    aps = []
    for c in classes:
        scores = np.concatenate([s for s, _ in per_class[c]])
        flags = np.concatenate([t for _, t in per_class[c]])
        order = np.argsort(-scores, kind="stable")
        n_ref = int(sum(int(np.sum(r.class_ids == c)) for r in reference))
        aps.append(average_precision(flags[order].astype(np.float64), n_ref))
    n_ref_total = int(sum(len(r.scores) for r in reference))
    ap = float(np.mean(aps)) if aps else (1.0 if n_operating == 0 else 0.0)
    matched = np.concatenate(ious) if ious else np.zeros(0)
    return Agreement(
        ap=ap,
        mean_iou=float(matched.mean()) if len(matched) else float("nan"),
        count_agreement=same_count / len(reference) if reference else 1.0,
        precision=len(matched) / n_operating if n_operating else float("nan"),
        recall=len(matched) / n_ref_total if n_ref_total else float("nan"),
        reference_detections=n_ref_total,
        predicted_detections=n_operating,
        matched=int(len(matched)),
        frames=len(reference),
    )
