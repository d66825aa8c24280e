"""Greedy non-maximum suppression, exact and memory-bounded.

Semantics (DESIGN.md): visit candidates by descending score, equal scores lower index
first; keep a candidate unless an already-kept box (of its class, in per-class mode) has
IoU with it strictly greater than ``iou_threshold``. IoU uses areas
``(max0 - min0) * (max1 - min1)`` with no +1, and is 0 when the union is <= 0.

IoU is computed in float64 with one fixed operation order, ``inter / ((area_a + area_b)
- inter)``, in every code path, so the result equals a plain Python loop over the same
boxes bit for bit. Classes are never mixed by offsetting coordinates (the "batched"
trick), which would change the rounding.

Work is done on blocks of at most ``_BLOCK`` candidates: a block is first checked
against the boxes kept so far (in chunks), then resolved greedily inside itself. Memory
stays O(_BLOCK**2) whatever the number of candidates; the Python loop runs once per
kept box of a block, each step a vectorized operation.
"""

from __future__ import annotations

import numpy as np

# Largest IoU matrix built at once is _BLOCK x _BLOCK float64 (2 MiB at 512).
_BLOCK = 512


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU, float64 (len(a), len(b)), of boxes ``(lo0, lo1, hi0, hi1)``.

    Any consistent coordinate order works (``[ymin, xmin, ymax, xmax]`` or
    ``[xmin, ymin, xmax, ymax]``). Zero-area and inverted boxes have zero intersection
    with everything; IoU is 0 where the union is <= 0. NaN coordinates give NaN IoU,
    which compares false against any threshold.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return _iou(a, _areas(a), b, _areas(b))


def _areas(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _iou(a: np.ndarray, area_a: np.ndarray, b: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """IoU matrix of float64 boxes with precomputed areas; rows a, columns b."""
    ih = np.minimum(a[:, None, 2], b[None, :, 2])
    ih -= np.maximum(a[:, None, 0], b[None, :, 0])
    np.maximum(ih, 0.0, out=ih)
    iw = np.minimum(a[:, None, 3], b[None, :, 3])
    iw -= np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(iw, 0.0, out=iw)
    inter = np.multiply(ih, iw, out=ih)
    union = np.add(area_a[:, None], area_b[None, :], out=iw)
    union -= inter
    # union <= 0 happens only when inter == 0 (zero-area or inverted boxes): IoU 0.
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _resolve(suppresses: np.ndarray) -> np.ndarray:
    """Greedy keep mask of a block given ``suppresses[i, j]`` (i before j in score order)."""
    n = len(suppresses)
    keep = np.zeros(n, dtype=bool)
    dead = np.zeros(n, dtype=bool)
    i = 0
    while i < n:
        keep[i] = True
        row = suppresses[i]
        dead[i + 1 :] |= row[i + 1 :]
        # Next candidate not suppressed by anything kept so far.
        alive = np.flatnonzero(~dead[i + 1 :])
        if alive.size == 0:
            break
        i += 1 + int(alive[0])
    return keep


def _greedy(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Keep mask for float64 boxes already sorted by descending priority (one class)."""
    n = len(boxes)
    areas = _areas(boxes)
    if n <= _BLOCK:
        return _resolve(_iou(boxes, areas, boxes, areas) > iou_threshold)
    keep = np.zeros(n, dtype=bool)
    kept_boxes: list[np.ndarray] = []  # chunks of at most _BLOCK kept boxes
    kept_areas: list[np.ndarray] = []
    for start in range(0, n, _BLOCK):
        idx = np.arange(start, min(start + _BLOCK, n))
        for kb, ka in zip(kept_boxes, kept_areas, strict=True):
            hit = (_iou(kb, ka, boxes[idx], areas[idx]) > iou_threshold).any(axis=0)
            idx = idx[~hit]
            if idx.size == 0:
                break
        if idx.size == 0:
            continue
        b, a = boxes[idx], areas[idx]
        k = _resolve(_iou(b, a, b, a) > iou_threshold)
        keep[idx[k]] = True
        new_b, new_a = b[k], a[k]
        # Top up the last chunk so chunks stay near _BLOCK rows (fewer, larger matmuls).
        if kept_boxes and len(kept_boxes[-1]) + len(new_b) <= _BLOCK:
            kept_boxes[-1] = np.concatenate([kept_boxes[-1], new_b])
            kept_areas[-1] = np.concatenate([kept_areas[-1], new_a])
        else:
            kept_boxes.append(new_b)
            kept_areas.append(new_a)
    return keep


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: np.ndarray | None = None,
    max_detections: int | None = None,
) -> np.ndarray:
    """Greedy NMS; returns kept indices (int64) in kept order (descending score).

    boxes:          (N, 4) ``[lo0, lo1, hi0, hi1]`` in any consistent order, e.g.
                    ``[ymin, xmin, ymax, xmax]``; any real dtype (IoU is float64).
    scores:         (N,) floats. NaN scores are never kept and never suppress.
    iou_threshold:  a box is suppressed when IoU with a kept box is ``> iou_threshold``
                    (strictly; IoU equal to the threshold is kept).
    class_ids:      (N,) integers: per-class NMS (a box only suppresses its own class).
                    None: class-agnostic.
    max_detections: keep at most this many, taken after NMS (the top of the kept order).

    Ties in score are visited lower index first (a stable sort), so the result is fully
    determined by the inputs.
    """
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if scores.ndim != 1 or boxes.shape != (len(scores), 4):
        raise ValueError(
            f"nms expects boxes (N, 4) and scores (N,), got {boxes.shape} and {scores.shape}"
        )
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)  # negating unsigned ints would wrap
    if (max_detections is not None and max_detections <= 0) or len(scores) == 0:
        return np.zeros(0, np.int64)

    order = np.argsort(-scores, kind="stable")
    # NaN sorts last under argsort; drop it there.
    nan_count = int(np.count_nonzero(np.isnan(scores)))
    if nan_count:
        order = order[: len(order) - nan_count]
    sorted_boxes = boxes[order].astype(np.float64, copy=False)

    if class_ids is None:
        keep = _greedy(sorted_boxes, iou_threshold)
    else:
        class_ids = np.asarray(class_ids)
        if class_ids.shape != scores.shape:
            raise ValueError(f"class_ids shape {class_ids.shape} != scores shape {scores.shape}")
        keep = _greedy_per_class(sorted_boxes, class_ids[order], iou_threshold)
    kept = order[keep]
    if max_detections is not None:
        kept = kept[:max_detections]
    return kept.astype(np.int64, copy=False)


def _greedy_per_class(
    sorted_boxes: np.ndarray, sorted_classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    n = len(sorted_boxes)
    if n <= _BLOCK:
        # One masked matrix for all classes: cheaper than a Python loop over classes.
        areas = _areas(sorted_boxes)
        suppresses = _iou(sorted_boxes, areas, sorted_boxes, areas) > iou_threshold
        suppresses &= sorted_classes[:, None] == sorted_classes[None, :]
        return _resolve(suppresses)
    # Group by class, keeping score order inside each group (stable sort).
    by_class = np.argsort(sorted_classes, kind="stable")
    grouped = sorted_classes[by_class]
    bounds = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
    keep = np.zeros(n, dtype=bool)
    for members in np.split(by_class, bounds):
        keep[members[_greedy(sorted_boxes[members], iou_threshold)]] = True
    return keep
