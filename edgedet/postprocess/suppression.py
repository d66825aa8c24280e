"""Greedy non-maximum suppression, exact and memory-bounded.

Semantics (DESIGN.md): visit candidates by descending score, equal scores lower index
first; keep a candidate unless an already-kept box (of its class, in per-class mode) has
IoU with it strictly greater than ``iou_threshold``. IoU uses areas
``(max0 - min0) * (max1 - min1)`` with no +1, and is 0 when the union is <= 0.

IoU is computed in float64 with one fixed operation order, ``inter / ((area_a + area_b)
- inter)``, in every code path, so the result equals a plain Python loop over the same
boxes bit for bit. Classes are never mixed by offsetting coordinates (the "batched"
trick), which would change the rounding.

How, by size (all paths give the same answer; the tests run each one):

- few candidates (the common case on a device): a plain Python loop in float64, kept
  boxes bucketed by class, while the number of IoU evaluations stays within a budget;
  numpy's per-call cost would dominate there;
- otherwise blocks: the candidates still in play are kept in score order; the next
  ``_BLOCK`` of them (none suppressed by any box kept so far) are resolved greedily among
  themselves with one small IoU matrix, then the boxes kept from that block remove every
  remaining candidate they suppress in one vectorized pass (chunked so no matrix exceeds
  ``_MAX_ELEMENTS``). Real heads fire clusters of overlapping candidates, so a block or
  two usually settle everything: O(kept x candidates) work, never an N x N matrix;
- per-class, when a pass leaves many candidates (scattered boxes that overlap nothing),
  the rest is split by class so cross-class pairs are not computed.

Greedy NMS can switch strategy between candidates: once every kept box has removed what
it suppresses, the outcome of the rest depends on the rest alone.
"""

from __future__ import annotations

import itertools

import numpy as np

_Index = slice | np.ndarray  # a slice where positions are contiguous: views, not copies

_BLOCK = 64  # candidates resolved together with one IoU matrix
# A plain Python loop over finite candidates beats numpy's per-call overhead while the
# number of IoU evaluations stays small. Per-class, a candidate only meets the kept boxes
# of its class: up to _PYTHON_MAX candidates, while the projected number of evaluations
# stays within _PYTHON_WORK per candidate (+ _PYTHON_WORK_BASE); past that (many boxes
# kept) the vectorized path takes over from where the loop stopped. Class-agnostic, a
# candidate meets every kept box: only up to _PYTHON_MAX_AGNOSTIC candidates.
_PYTHON_MAX = 256
_PYTHON_MAX_AGNOSTIC = 16
_PYTHON_WORK = 2
_PYTHON_WORK_BASE = 128
_MAX_ELEMENTS = 1 << 18  # largest kept x remaining IoU matrix built at once (2 MiB f64)
_GROUP_ABOVE = 512  # per-class NMS splits what is left by class above this many


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
        return _Boxes(a).iou(np.arange(len(a)), _Boxes(b), np.arange(len(b)))


class _Boxes:
    """float64 coordinate columns and areas of a box array, for repeated IoU rows."""

    __slots__ = ("lo0", "lo1", "hi0", "hi1", "area")

    def __init__(self, boxes: np.ndarray) -> None:
        cols = np.ascontiguousarray(boxes.T, dtype=np.float64)
        self.lo0, self.lo1, self.hi0, self.hi1 = cols
        self.area = (self.hi0 - self.lo0) * (self.hi1 - self.lo1)

    def subset(self, index: np.ndarray) -> _Boxes:
        sub = _Boxes.__new__(_Boxes)
        sub.lo0, sub.lo1 = self.lo0[index], self.lo1[index]
        sub.hi0, sub.hi1 = self.hi0[index], self.hi1[index]
        sub.area = self.area[index]
        return sub

    def iou(self, rows: _Index, other: _Boxes, cols: _Index) -> np.ndarray:
        """IoU matrix (len(rows), len(cols)) of ``self[rows]`` against ``other[cols]``."""
        inter, union = self._inter_union(rows, other, cols)
        # union <= 0 only happens with inter == 0 (zero-area or inverted boxes): IoU 0.
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

    def suppresses(self, rows: _Index, cols: _Index, iou_threshold: float) -> np.ndarray:
        """``iou(rows, self, cols) > iou_threshold`` without materializing the IoU 0 fix-up.

        Where union <= 0 the quotient is -0.0 or NaN, both of which compare false, which
        is the right answer (IoU 0 is not > threshold) unless the threshold is negative.
        """
        inter, union = self._inter_union(rows, self, cols)
        result = np.divide(inter, union, out=inter) > iou_threshold
        if iou_threshold < 0:
            result |= ~(union > 0)
        return result

    def _inter_union(
        self, rows: _Index, other: _Boxes, cols: _Index
    ) -> tuple[np.ndarray, np.ndarray]:
        ih = np.minimum(self.hi0[rows, None], other.hi0[cols])
        ih -= np.maximum(self.lo0[rows, None], other.lo0[cols])
        np.maximum(ih, 0.0, out=ih)
        iw = np.minimum(self.hi1[rows, None], other.hi1[cols])
        iw -= np.maximum(self.lo1[rows, None], other.lo1[cols])
        np.maximum(iw, 0.0, out=iw)
        inter = np.multiply(ih, iw, out=ih)
        union = np.add(self.area[rows, None], other.area[cols], out=iw)
        union -= inter
        return inter, union


def _resolve(suppresses: np.ndarray) -> np.ndarray:
    """Greedy keep positions of a block of candidates in score order.

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
        lowest = alive & -alive  # the best candidate not yet removed
        i = lowest.bit_length() - 1
        keep.append(i)
        row = int.from_bytes(data[i * width : (i + 1) * width], "little")
        alive &= ~(row | lowest)
    return np.array(keep, dtype=np.intp)


def _greedy(
    boxes: _Boxes,
    classes: np.ndarray | None,
    iou_threshold: float,
    kept_before: np.ndarray = np.zeros(0, np.intp),  # noqa: B008 (read-only default)
    start: int = 0,
) -> np.ndarray:
    """Kept positions (ascending) among boxes sorted by priority; ``classes`` masks pairs.

    ``kept_before``/``start``: greedy already decided positions ``< start`` and kept
    ``kept_before`` among them.

    Per-class: once a suppression pass leaves more than ``_GROUP_ABOVE`` candidates (many
    boxes that overlap nothing kept so far, e.g. scattered low scores), the rest is split
    by class, so cross-class pairs are no longer computed. Greedy NMS allows the switch at
    any point: the survivors of a pass are suppressed by no kept box, so their outcome
    depends on each other alone.
    """
    n = len(boxes.area)
    kept_parts = []
    if len(kept_before):  # greedy already ran on [0, start): continue from there
        kept_parts.append(kept_before)
        remaining = _survivors(boxes, classes, iou_threshold, kept_before, np.arange(start, n))
        if remaining.size == 0:
            return kept_before
        block, remaining = remaining[:_BLOCK], remaining[_BLOCK:]
    else:
        # Until the first suppression pass, the remaining candidates are a contiguous range.
        block = slice(start, min(n, start + _BLOCK))
        remaining = slice(block.stop, n)
    while True:
        suppresses = boxes.suppresses(block, block, iou_threshold)
        if classes is not None:
            suppresses &= classes[block, None] == classes[block]
        kept = _resolve(suppresses)
        kept = kept + block.start if isinstance(block, slice) else block[kept]
        kept_parts.append(kept)
        if isinstance(remaining, slice):
            remaining = np.arange(remaining.start, remaining.stop)
        if remaining.size == 0:
            break
        remaining = _survivors(boxes, classes, iou_threshold, kept, remaining)
        if remaining.size == 0:
            break
        if classes is not None and remaining.size > _GROUP_ABOVE:
            rest = _greedy_by_class(boxes.subset(remaining), classes[remaining], iou_threshold)
            kept_parts.append(remaining[rest])
            break
        block, remaining = remaining[:_BLOCK], remaining[_BLOCK:]
    return np.concatenate(kept_parts) if len(kept_parts) > 1 else kept_parts[0]


def _survivors(
    boxes: _Boxes,
    classes: np.ndarray | None,
    iou_threshold: float,
    kept: np.ndarray,
    remaining: np.ndarray,
) -> np.ndarray:
    """``remaining`` minus every candidate a ``kept`` box suppresses (order preserved)."""
    step = max(1, _MAX_ELEMENTS // len(kept))
    parts = []
    for start in range(0, len(remaining), step):
        cols = remaining[start : start + step]
        hit = boxes.suppresses(kept, cols, iou_threshold)
        if classes is not None:
            hit &= classes[kept, None] == classes[cols]
        parts.append(cols[~hit.any(axis=0)])
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
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)  # negating unsigned ints would wrap
    if (max_detections is not None and max_detections <= 0) or len(scores) == 0:
        return np.zeros(0, np.int64)

    order = np.argsort(-scores, kind="stable")
    # argsort puts NaN last; NaN scores take no part.
    if np.isnan(scores[order[-1]]):
        order = order[: len(order) - int(np.count_nonzero(np.isnan(scores)))]
        if order.size == 0:
            return np.zeros(0, np.int64)
    if class_ids is not None:
        class_ids = np.asarray(class_ids)
        if class_ids.shape != scores.shape:
            raise ValueError(f"class_ids shape {class_ids.shape} != scores shape {scores.shape}")

    n = len(order)
    ordered = boxes[order].astype(np.float64, copy=False)
    sorted_classes = None if class_ids is None else class_ids[order]
    kept_before, start = np.zeros(0, np.intp), 0
    limit = _PYTHON_MAX_AGNOSTIC if class_ids is None else _PYTHON_MAX
    if n <= limit and np.isfinite(ordered).all():
        budget = _PYTHON_WORK * n + _PYTHON_WORK_BASE
        python_kept, start = _greedy_python(
            ordered.tolist(),
            None if sorted_classes is None else sorted_classes.tolist(),
            iou_threshold,
            budget,
        )
        if start < n <= _BLOCK:  # handed over: one block from scratch is cheapest
            start = 0
        else:
            kept_before = np.array(python_kept, dtype=np.intp)
    if start == n:
        kept = kept_before
    else:
        # 0/0 and inf - inf (zero-area, inverted or non-finite boxes) are handled by the
        # comparisons; their warnings are noise.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            kept = _greedy(_Boxes(ordered), sorted_classes, iou_threshold, kept_before, start)
    result = order[kept]
    if max_detections is not None:
        result = result[:max_detections]
    return result.astype(np.int64, copy=False)


def _greedy_python(
    boxes: list[list[float]], classes: list[int] | None, iou_threshold: float, budget: int
) -> tuple[list[int], int]:
    """Greedy over finite boxes in priority order, in Python floats, while the projected
    number of IoU evaluations stays within ``budget``. Returns the kept positions and
    where it stopped (``len(boxes)`` when it finished).

    The same float64 operations in the same order as :class:`_Boxes` (finite inputs make
    Python's min/max agree with numpy's), so the result is identical to the vectorized
    path. Kept boxes are bucketed by class, so a candidate only meets its own class.
    """
    zero_suppresses = 0.0 > iou_threshold  # IoU 0 (no overlap, union <= 0) vs threshold
    buckets: dict[int, list[tuple[float, float, float, float, float]]] = {}
    kept: list[int] = []
    work = 0
    labels = itertools.repeat(0) if classes is None else classes
    remaining = len(boxes)
    for i, ((lo0, lo1, hi0, hi1), label) in enumerate(zip(boxes, labels, strict=False)):
        bucket = buckets.get(label)
        if bucket is None:
            bucket = buckets[label] = []
        # Hand over as soon as the work projected from the current bucket size exceeds
        # the budget: many kept boxes mean many evaluations per candidate from here on.
        if work + remaining * len(bucket) > budget:
            return kept, i
        remaining -= 1
        work += len(bucket)
        area = (hi0 - lo0) * (hi1 - lo1)
        for klo0, klo1, khi0, khi1, karea in bucket:
            # Conditional expressions instead of min/max calls (about twice as fast);
            # for finite floats they give the same values (the sign of a zero extent
            # cannot change the IoU).
            ih = (khi0 if khi0 < hi0 else hi0) - (klo0 if klo0 > lo0 else lo0)
            if ih <= 0.0:  # no overlap: IoU 0
                if zero_suppresses:
                    break
                continue
            iw = (khi1 if khi1 < hi1 else hi1) - (klo1 if klo1 > lo1 else lo1)
            if iw <= 0.0:
                if zero_suppresses:
                    break
                continue
            inter = ih * iw
            union = karea + area - inter
            if (inter / union > iou_threshold) if union > 0.0 else zero_suppresses:
                break
        else:
            bucket.append((lo0, lo1, hi0, hi1, area))
            kept.append(i)
    return kept, len(boxes)


def _greedy_by_class(boxes: _Boxes, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Per-class greedy on each class's candidates alone; kept positions ascending."""
    by_class = np.argsort(classes, kind="stable")  # score order kept within a class
    grouped = classes[by_class]
    bounds = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
    kept = []
    for members in np.split(by_class, bounds):
        kept.append(members[_greedy(boxes.subset(members), None, iou_threshold)])
    return np.sort(np.concatenate(kept))
