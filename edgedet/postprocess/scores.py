"""Score arithmetic and the exact score filter.

Every score in edgedet goes through the two functions at the top of this module,
:func:`dequantize` and :func:`sigmoid`, so that "filter on raw codes" and "filter on
activated floats" see the very same float32 numbers and agree bit for bit.

Comparison rule used everywhere: a score passes when ``score >= min_score`` (inclusive)
with ``min_score`` rounded to the score's float dtype, which is what NumPy does when a
float32 array is compared with a Python float (NumPy 1 and 2 alike). So a float32 score
equal to ``np.float32(min_score)`` passes. NaN never passes.
"""

from __future__ import annotations

import functools
import math

import numpy as np

ACTIVATIONS = ("none", "sigmoid")

# Relative margin for the logit-space pre-filter. The float32 sigmoid below is within a
# few ULP (~1e-6 relative) of the true sigmoid; a 1e-4 margin in probability makes the
# pre-filter a strict superset of the exact test with room to spare. The exact test on
# the survivors then decides.
_LOGIT_MARGIN = 1e-4
# Below this probability the float32 sigmoid is subnormal or flushed to 0, so the
# relative-error argument fails: pre-filter nothing and let the exact test decide.
_TINY_SCORE = 1e-30


def dequantize(codes: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Real values of quantized codes: ``(codes - zero_point) * scale`` in float32.

    The subtraction is exact in float32 for 8-bit codes; the product rounds once. This is
    the one dequantization the runtime uses, so threshold tables built from it are exact.
    """
    return (np.asarray(codes).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))`` in float32, the one formula edgedet uses.

    Inputs are cast to contiguous float32 first: NumPy's float32 ``exp`` takes the same
    code path for every element then, so a value computed on a few survivors equals the
    value computed on the whole tensor. ``exp`` overflow for very negative inputs gives 0,
    as it should, without a warning. NaN stays NaN.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-x)
    e += np.float32(1.0)
    return np.reciprocal(e, out=e)


def _activate(values: np.ndarray, activation: str) -> np.ndarray:
    if activation == "none":
        return values
    if activation == "sigmoid":
        return sigmoid(values)
    raise ValueError(f"unknown score activation {activation!r}; expected one of {ACTIVATIONS}")


def score_filter(scores: np.ndarray, min_score: float) -> np.ndarray:
    """Indices of ``scores >= min_score``, ascending, as int64.

    ``scores`` is a 1-D float array. The threshold is inclusive and compared in the
    scores' dtype (a float32 score equal to ``np.float32(min_score)`` passes). NaN never
    passes.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"score_filter expects a 1-D array, got shape {scores.shape}")
    return np.flatnonzero(scores >= min_score).astype(np.int64, copy=False)


@functools.lru_cache(maxsize=64)
def _code_table(scale: float, zero_point: int, dtype_str: str, activation: str) -> np.ndarray:
    """float32 scores of all 256 codes, indexed by the code's byte (``codes.view(uint8)``).

    For int8 the byte of code -128 is 128, so the table is in byte order, not code order.
    """
    dtype = np.dtype(dtype_str)
    table = np.empty(256, np.float32)
    codes = np.arange(256, dtype=np.uint8).view(dtype)
    table[:] = _activate(dequantize(codes, scale, zero_point), activation)
    table.setflags(write=False)
    return table


def _check_code_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise ValueError(f"quantized scores must be uint8 or int8, got {dtype}")
    return dtype


def code_scores(
    scale: float, zero_point: int, dtype: np.dtype | type, activation: str = "none"
) -> np.ndarray:
    """The cached 256-entry table of ``activation(dequantize(code))`` in float32.

    Indexed by the code's byte: look codes up with ``table[codes.view(np.uint8)]``
    (for uint8 the byte is the code; for int8 code -1 is byte 255). Read-only.
    """
    dtype = _check_code_dtype(dtype)
    return _code_table(float(scale), int(zero_point), dtype.str, activation)


def threshold_code(
    min_score: float,
    scale: float,
    zero_point: int,
    dtype: np.dtype | type,
    activation: str = "none",
) -> int | None:
    """Smallest code ``c`` of ``dtype`` (uint8 or int8) whose score passes, or None.

    "Passes" means ``activation(dequantize(c, scale, zero_point)) >= min_score`` with the
    functions of this module and the comparison rule of the module docstring. Scores are
    non-decreasing in the code, so ``codes >= threshold_code(...)`` selects exactly the
    passing codes. :func:`filter_class_scores` does not rely on that blindly: it checks
    once per (threshold, quantization) that every code from the threshold up passes and
    otherwise re-checks each survivor, so even a one-ULP wobble of ``exp`` could not admit
    a failing code.
    """
    dtype = _check_code_dtype(dtype)
    return _threshold_code(float(min_score), float(scale), int(zero_point), dtype.str, activation)


@functools.lru_cache(maxsize=256)
def _threshold_code(
    min_score: float, scale: float, zero_point: int, dtype_str: str, activation: str
) -> int | None:
    table = _code_table(scale, zero_point, dtype_str, activation)
    int8 = np.dtype(dtype_str) == np.int8
    # Walk codes in ascending code order (for int8: bytes 128..255 then 0..127).
    in_code_order = np.roll(table, -128) if int8 else table
    passing = np.flatnonzero(in_code_order >= min_score)
    if passing.size == 0:
        return None
    first = int(passing[0])
    return first - 128 if int8 else first


def logit_prefilter_threshold(min_score: float) -> float:
    """A float32 logit ``t`` with ``sigmoid(x) >= min_score  =>  x >= t`` for float32 ``x``.

    Used to skip the sigmoid for almost every entry of a logit tensor; the survivors still
    get the exact test. ``-inf`` when no useful bound exists (tiny or non-positive
    ``min_score``); ``+inf`` when nothing can pass (``min_score > 1``).
    """
    p = float(min_score)
    if math.isnan(p):
        return math.inf  # nothing compares >= NaN
    if p > 1.0:
        return math.inf
    q = min(p * (1.0 - _LOGIT_MARGIN), 1.0 - _LOGIT_MARGIN)
    if q < _TINY_SCORE:
        return -math.inf
    t = math.log(q / (1.0 - q))
    t32 = np.float32(t)
    if float(t32) > t:  # round toward -inf so float32 rounding cannot tighten the bound
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return float(t32)


def _empty_result() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def _check_scores_2d(scores: np.ndarray, first_class: int) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"class scores must be 2-D (anchors, classes), got shape {scores.shape}")
    if not 0 <= first_class <= scores.shape[1]:
        raise ValueError(f"first_class {first_class} outside 0..{scores.shape[1]}")
    return scores


def _prefilter(
    scores: np.ndarray,
    min_score: float,
    scale: float | None,
    zero_point: int,
    activation: str,
    first_class: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool] | None:
    """Entries that may pass, as (anchor, column) in row-major order, the code table, and
    whether they all pass for sure.

    Otherwise a superset of the passing entries: the caller applies the exact test. None
    when no entry can pass.
    """
    if scale is not None:
        code, table, all_pass = _code_filter(
            float(min_score), float(scale), int(zero_point), scores.dtype.char, activation
        )
        if code is None:
            return None
        mask = scores >= code
    else:
        _check_activation(activation)
        table, all_pass = None, False
        if activation == "sigmoid":
            mask = scores >= np.float32(logit_prefilter_threshold(min_score))
        else:
            mask = scores >= min_score
    if first_class:
        mask[:, :first_class] = False
    anchor, column = _nonzero_row_major(mask)
    if anchor.size == 0:
        return None
    return anchor, column, table, all_pass


@functools.lru_cache(maxsize=256)
def _code_filter(
    min_score: float, scale: float, zero_point: int, dtype_char: str, activation: str
) -> tuple[np.generic | None, np.ndarray, bool]:
    """(threshold code as a scalar of the codes' dtype or None, code table, whether every
    code from the threshold up passes), cached: one lookup per frame instead of several.
    The last is what the scores' monotonicity promises; when it holds, survivors need no
    re-check."""
    dtype = _check_code_dtype(np.dtype(dtype_char))
    code = _threshold_code(min_score, scale, zero_point, dtype.str, activation)
    table = _code_table(scale, zero_point, dtype.str, activation)
    if code is None:
        return None, table, True
    codes = np.arange(code, np.iinfo(dtype).max + 1).astype(dtype)
    all_pass = bool(np.all(table[codes.view(np.uint8)] >= min_score))
    return dtype.type(code), table, all_pass


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown score activation {activation!r}; expected one of {ACTIVATIONS}")


_LANES = np.arange(8)


def _flatnonzero_sparse(flat: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a contiguous 1-D bool array with few True values.

    Reads the mask eight bytes at a time and expands only the words that hold a True:
    a score mask has a handful of hits among ~10^5 entries, and this is ~1.5x faster than
    a byte-by-byte scan. Same result, ascending.
    """
    n8 = flat.size & ~7
    words = np.flatnonzero(flat[:n8].view(np.uint64) != 0)
    hits = (words[:, None] * 8 + _LANES).ravel()
    hits = hits[flat[hits]]
    if n8 < flat.size:
        tail = np.flatnonzero(flat[n8:])
        if tail.size:
            hits = np.concatenate([hits, tail + n8])
    return hits


def _nonzero_row_major(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(mask)`` for a 2-D mask, scanning memory in its own layout.

    A YOLOv8 head read as (anchors, classes) is a transposed view; scanning it row-major
    would gather with a stride.
    """
    if mask.flags.c_contiguous:
        return np.divmod(_flatnonzero_sparse(mask.reshape(-1)), mask.shape[1])
    if not mask.T.flags.c_contiguous:
        return np.divmod(np.flatnonzero(mask), mask.shape[1])
    # Anchor-contiguous: OR-reducing over classes streams whole rows of mask.T, then only
    # the few anchors with a hit are gathered.
    rows = np.flatnonzero(mask.any(axis=1))
    hit_row, column = np.nonzero(mask[rows])
    return rows[hit_row], column


def filter_class_scores(
    scores: np.ndarray,
    min_score: float,
    *,
    scale: float | None = None,
    zero_point: int = 0,
    activation: str = "none",
    first_class: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (anchor, class) entry of a detection head whose score is ``>= min_score``.

    ``scores`` is (N, C), any strides (a transposed YOLOv8 head is fine): uint8/int8 codes
    when ``scale`` is given, else float (probabilities for ``activation="none"``, logits for
    ``"sigmoid"``). Columns ``< first_class`` are ignored (the SSD background column).

    Returns ``(anchor_idx int64, class_idx int64, score float32)`` in row-major order, with
    ``class_idx = column - first_class`` and ``score = activation(dequantize(entry))``.
    The result equals activating every entry and then keeping ``score >= min_score``, bit
    for bit, but only survivors are dequantized and activated: quantized inputs are
    compared on their raw codes against :func:`threshold_code`, float logits against
    :func:`logit_prefilter_threshold`, and survivors then get the exact test.
    """
    scores = _check_scores_2d(scores, first_class)
    found = _prefilter(scores, min_score, scale, zero_point, activation, first_class)
    if found is None:
        return _empty_result()
    anchor, column, table, all_pass = found
    raw = scores[anchor, column]
    if table is not None:
        values = table[raw.view(np.uint8)]
    else:
        values = _activate(raw, activation).astype(np.float32, copy=False)
    if not all_pass:
        exact = values >= min_score
        if not exact.all():
            anchor, column, values = anchor[exact], column[exact], values[exact]
    if first_class:
        column = column - first_class
    return anchor.astype(np.int64, copy=False), column.astype(np.int64, copy=False), values


def filter_max_class_scores(
    scores: np.ndarray,
    min_score: float,
    *,
    scale: float | None = None,
    zero_point: int = 0,
    activation: str = "none",
    first_class: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best class of each anchor whose best score is ``>= min_score`` (YOLO-style heads).

    Same inputs as :func:`filter_class_scores`. For each row, the class is the first
    column (from ``first_class``) holding the row's maximum activated score, exactly as
    ``argmax`` over the fully activated row would pick it, NaN entries ignored; rows whose
    maximum is below ``min_score`` (or that hold only NaN) are dropped. Returns
    ``(anchor_idx int64 ascending, class_idx int64, score float32)``. Only rows that can
    pass are activated.
    """
    scores = _check_scores_2d(scores, first_class)
    body = scores[:, first_class:]
    if body.shape[1] == 0:
        return _empty_result()
    # A YOLOv8 head read as (anchors, classes) is anchor-contiguous: reducing over classes
    # then streams whole rows of the tensor, cheaper than a mask and a scan.
    anchor_contiguous = body.strides[0] < body.strides[1]
    rowmax = None
    if scale is not None:
        dtype = _check_code_dtype(scores.dtype)
        code, _, _ = _code_filter(
            float(min_score), float(scale), int(zero_point), dtype.char, activation
        )
        if code is None:
            return _empty_result()
        if anchor_contiguous:
            rowmax = body.max(axis=1)
            rows = np.flatnonzero(rowmax >= code)
        else:
            rows = _candidate_rows(scores, min_score, scale, zero_point, activation, first_class)
        codes = np.ascontiguousarray(body[rows])
        cls, best = _best_code_class(codes, scale, zero_point, dtype, activation)
    else:
        _check_activation(activation)
        if anchor_contiguous:
            bound = logit_prefilter_threshold(min_score) if activation == "sigmoid" else min_score
            # fmax skips NaN, so a row with one NaN and one passing score is still found.
            rows = np.flatnonzero(np.fmax.reduce(body, axis=1) >= bound)
        else:
            rows = _candidate_rows(scores, min_score, None, 0, activation, first_class)
        values = _activate(body[rows], activation).astype(np.float32, copy=False)
        # NaN must not win argmax; -inf never passes.
        values = np.where(np.isnan(values), np.float32(-np.inf), values)
        cls = values.argmax(axis=1)
        best = values[np.arange(len(rows)), cls]
    exact = best >= min_score
    return rows[exact].astype(np.int64), cls[exact].astype(np.int64), best[exact]


def _candidate_rows(
    scores: np.ndarray,
    min_score: float,
    scale: float | None,
    zero_point: int,
    activation: str,
    first_class: int,
) -> np.ndarray:
    """Ascending anchors with at least one entry that may pass (row-contiguous heads)."""
    found = _prefilter(scores, min_score, scale, zero_point, activation, first_class)
    if found is None:
        return np.zeros(0, np.intp)
    anchor = found[0]
    return anchor[np.r_[True, anchor[1:] != anchor[:-1]]]  # unique; anchor is sorted


def _best_code_class(
    codes: np.ndarray, scale: float, zero_point: int, dtype: np.dtype, activation: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of quantized codes: (first column with the maximum score, that score).

    Scores are non-decreasing in the code, so the row's maximum score is the score of its
    maximum code, and the first column holding that score is the first whose code reaches
    the lowest code sharing it (several codes can share a score where sigmoid saturates).
    This needs no per-entry table lookup. If the table were ever not monotone, every entry
    is looked up instead.
    """
    key = (float(scale), int(zero_point), dtype.str, activation)
    table = _code_table(*key)
    if len(codes) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.float32)
    first_equal = _first_equal_code(*key)
    if first_equal is None:
        values = table[codes.view(np.uint8)]
        cls = values.argmax(axis=1)
        return cls, values[np.arange(len(codes)), cls]
    top = codes.max(axis=1).view(np.uint8)
    cls = (codes >= first_equal[top][:, None]).argmax(axis=1)
    return cls, table[top]


@functools.lru_cache(maxsize=64)
def _first_equal_code(
    scale: float, zero_point: int, dtype_str: str, activation: str
) -> np.ndarray | None:
    """For each code (indexed by byte), the lowest code with the same score; None if the
    scores are not non-decreasing in the code."""
    dtype = np.dtype(dtype_str)
    table = _code_table(scale, zero_point, dtype_str, activation)
    codes = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1)
    values = table[codes.astype(dtype).view(np.uint8)]
    if np.any(values[1:] < values[:-1]):
        return None
    run_start = np.r_[True, values[1:] != values[:-1]]
    first = np.maximum.accumulate(np.where(run_start, np.arange(256), 0))
    result = np.empty(256, dtype)
    result[codes.astype(dtype).view(np.uint8)] = codes[first].astype(dtype)
    result.setflags(write=False)
    return result
