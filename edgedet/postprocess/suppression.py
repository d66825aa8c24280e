"""Greedy non-maximum suppression, exact and memory-bounded.

Semantics (DESIGN.md): visit candidates by descending score, equal scores lower index
first; keep a candidate unless an already-kept box (of its class, in per-class mode) has
IoU with it strictly greater than ``iou_threshold``. IoU uses areas
``(max0 - min0) * (max1 - min1)`` with no +1, and is 0 when the union is <= 0.

IoU is computed in float64 with one fixed operation order, ``inter / ((area_a + area_b)
- inter)``, so the result equals a plain Python loop over the same boxes bit for bit.
Classes are never mixed by offsetting coordinates (the "batched" trick), which would
change the rounding.

Up to ``_SMALL`` candidates, a plain loop over Python floats (the same float64
operations in the same order). Above, one vectorized algorithm for every size: the
candidates still in play are kept in visiting order; the next ``_BLOCK`` of them (none
suppressed by any box kept so far) are resolved greedily among themselves with one
small IoU matrix, then the boxes kept from that block remove every later candidate they
suppress in one vectorized pass, chunked so that no matrix exceeds ``_MAX_ELEMENTS``.
Real heads fire clusters of overlapping candidates, so a block or two usually settle
everything: O(kept x candidates) work, never an N x N matrix. Per-class NMS visits the
candidates class by class (score order within a class, which is all greedy NMS needs,
as classes do not interact), so a block can hold many small classes at once and a pass
only meets candidates of one class.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 64  # candidates resolved together with one IoU matrix
_MAX_ELEMENTS = 1 << 18  # largest kept x candidates IoU matrix built at once (2 MiB f64)
# Up to this many candidates (what a frame of a real head leaves after the score filter),
# a plain loop over Python floats: the vectorized path's few dozen numpy calls cost more,
# right after invoke() with cold caches, than its at most 120 IoU evaluations
# (BENCHMARKS.md, "Post-processing").
_SMALL = 16


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU, float64 (len(a), len(b)), of boxes ``(lo0, lo1, hi0, hi1)``.

    Any consistent coordinate order works (``[ymin, xmin, ymax, xmax]`` or
    ``[xmin, ymin, xmax, ymax]``). Zero-area and inverted boxes have zero intersection
    with everything; IoU is 0 where the union is <= 0. NaN coordinates give NaN IoU,
    which compares false against any threshold (such a box neither suppresses nor is
    suppressed).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inter, union = _inter_union(_columns(a), np.arange(len(a)), _columns(b), np.arange(len(b)))
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _columns(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    """float64 coordinate columns ``lo0, lo1, hi0, hi1`` and the areas of (N, 4) boxes."""
    lo0, lo1, hi0, hi1 = np.ascontiguousarray(boxes.T, dtype=np.float64)
    return lo0, lo1, hi0, hi1, (hi0 - lo0) * (hi1 - lo1)


def _inter_union(
    a: tuple[np.ndarray, ...], rows: np.ndarray, b: tuple[np.ndarray, ...], cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union matrices (len(rows), len(cols)) of ``a[rows]`` x ``b[cols]``."""
    lo0, lo1, hi0, hi1, area = a
    ih = np.minimum(hi0[rows, None], b[2][cols])
    ih -= np.maximum(lo0[rows, None], b[0][cols])
    np.maximum(ih, 0.0, out=ih)
    iw = np.minimum(hi1[rows, None], b[3][cols])
    iw -= np.maximum(lo1[rows, None], b[1][cols])
    np.maximum(iw, 0.0, out=iw)
    inter = np.multiply(ih, iw, out=ih)
    union = np.add(area[rows, None], b[4][cols], out=iw)
    union -= inter
    return inter, union


def _suppresses(
    boxes: tuple[np.ndarray, ...], rows: np.ndarray, cols: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """``IoU(boxes[rows], boxes[cols]) > iou_threshold`` as a bool matrix.

    Where the union is <= 0 the quotient is -0.0 or NaN, both of which compare false:
    the right answer (IoU 0 is not > threshold) unless the threshold is negative.
    """
    inter, union = _inter_union(boxes, rows, boxes, cols)
    result = np.divide(inter, union, out=inter) > iou_threshold
    if iou_threshold < 0:
        result |= ~(union > 0)
    return result


def _resolve(suppresses: np.ndarray) -> np.ndarray:
    """Greedy keep positions of a block of candidates in visiting order.

    ``suppresses[i, j]``: candidate i, if kept, removes j. Rows are packed into bytes
    once and turned into Python int bitmasks only for kept rows, so the sequential part
    of greedy NMS costs a few integer operations per *kept* box.
    """
    n = len(suppresses)
    packed = np.packbits(suppresses, axis=1, bitorder="little")
    width = packed.shape[1]
    data = packed.tobytes()
    alive = (1 << n) - 1
    keep = []
    while alive:
        lowest = alive & -alive  # the first candidate not yet removed
        i = lowest.bit_length() - 1
        keep.append(i)
        row = int.from_bytes(data[i * width : (i + 1) * width], "little")
        alive &= ~(row | lowest)
    return np.array(keep, dtype=np.intp)


def _greedy(
    boxes: tuple[np.ndarray, ...], classes: np.ndarray | None, iou_threshold: float
) -> np.ndarray:
    """Kept positions (ascending) of boxes in visiting order.

    Per-class, ``classes`` (the class of each position) is sorted: the visiting order is
    class-major, so a kept box only meets the candidates of its own class after its block.
    """
    n = len(boxes[4])
    remaining = np.arange(n)
    kept_parts = []
    while True:
        block, rest = remaining[:_BLOCK], remaining[_BLOCK:]
        suppresses = _suppresses(boxes, block, block, iou_threshold)
        if classes is not None:
            suppresses &= classes[block, None] == classes[block]
        kept = block[_resolve(suppresses)]
        kept_parts.append(kept)
        if rest.size == 0:
            break
        # Every class of the block but the last one has ended inside the block; the
        # candidates of the last one continue at the start of ``rest``.
        if classes is None:
            same, suppressors = rest.size, kept
        else:
            last = classes[block[-1]]
            same = int(np.searchsorted(rest, np.searchsorted(classes, last, side="right")))
            suppressors = kept[classes[kept] == last]
        if same:
            rest = np.concatenate([_survivors(boxes, iou_threshold, suppressors, rest[:same]),
                                   rest[same:]])  # fmt: skip
            if rest.size == 0:
                break
        remaining = rest
    return np.concatenate(kept_parts) if len(kept_parts) > 1 else kept_parts[0]


def _survivors(
    boxes: tuple[np.ndarray, ...], iou_threshold: float, kept: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """``cols`` minus every candidate a ``kept`` box suppresses (order preserved)."""
    step = max(1, _MAX_ELEMENTS // len(kept))
    parts = []
    for start in range(0, len(cols), step):
        chunk = cols[start : start + step]
        parts.append(chunk[~_suppresses(boxes, kept, chunk, iou_threshold).any(axis=0)])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


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
    determined by the inputs. Memory is bounded (no N x N matrix) for any N.
    """
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if scores.ndim != 1 or boxes.shape != (len(scores), 4):
        raise ValueError(
            f"nms expects boxes (N, 4) and scores (N,), got {boxes.shape} and {scores.shape}"
        )
    if class_ids is not None:
        class_ids = np.asarray(class_ids)
        if class_ids.shape != scores.shape:
            raise ValueError(f"class_ids shape {class_ids.shape} != scores shape {scores.shape}")
    if (max_detections is not None and max_detections <= 0) or len(scores) == 0:
        return np.zeros(0, np.int64)
    if len(scores) <= _SMALL:
        kept = _greedy_small(boxes, scores, class_ids, iou_threshold)
        if kept is not None:
            return np.array(kept[:max_detections], np.int64)
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)  # negating unsigned ints would wrap
    # argsort puts NaN last; NaN scores take no part.
    order = np.argsort(-scores, kind="stable")[: len(scores) - np.count_nonzero(scores != scores)]
    if len(order) == 0:
        return np.zeros(0, np.int64)
    visit, classes = order, None
    if class_ids is not None:
        by_class = np.argsort(class_ids[order], kind="stable")  # score order kept per class
        visit = order[by_class]
        classes = class_ids[visit]
        if classes[0] == classes[-1]:  # one class: per-class is class-agnostic
            visit, classes = order, None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # 0/0 and inf - inf (zero-area, inverted or non-finite boxes) are handled by the
        # comparisons; their warnings are noise.
        kept = _greedy(_columns(boxes[visit]), classes, iou_threshold)
    if classes is not None:
        kept = np.sort(by_class[kept])  # positions in descending-score order
    return order[kept][:max_detections].astype(np.int64, copy=False)


def _greedy_small(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray | None, iou_threshold: float
) -> list[int] | None:
    """Kept indices by the definition, in Python floats; None (use the vectorized path)
    unless every coordinate is a finite float.

    The same float64 operations as :func:`_inter_union`, in the same order, so the
    result equals the vectorized path's; a handful of numpy calls instead of dozens.
    """
    if boxes.dtype.kind != "f":
        return None
    rows = boxes.tolist()
    if not math.isfinite(sum(map(sum, rows))):
        return None
    values = scores.tolist()
    labels = None if class_ids is None else class_ids.tolist()
    # Descending score, ties by index (sorted is stable); NaN never takes part.
    order = sorted((i for i, v in enumerate(values) if v == v), key=lambda i: -values[i])
    zero_suppresses = 0.0 > iou_threshold  # what IoU 0 (no overlap, union <= 0) does
    kept: list[int] = []
    for i in order:
        lo0, lo1, hi0, hi1 = rows[i]
        area = (hi0 - lo0) * (hi1 - lo1)
        for k in kept:
            if labels is not None and labels[k] != labels[i]:
                continue
            klo0, klo1, khi0, khi1 = rows[k]
            ih = min(khi0, hi0) - max(klo0, lo0)
            iw = min(khi1, hi1) - max(klo1, lo1)
            if ih <= 0.0 or iw <= 0.0:
                suppressed = zero_suppresses
            else:
                inter = ih * iw
                union = ((khi0 - klo0) * (khi1 - klo1) + area) - inter
                suppressed = inter / union > iou_threshold if union > 0.0 else zero_suppresses
            if suppressed:
                break
        else:
            kept.append(i)
    return kept
