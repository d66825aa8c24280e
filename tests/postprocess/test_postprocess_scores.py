"""The score filters equal "activate everything, then keep score >= min_score", exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedet.postprocess import (
    code_scores,
    dequantize,
    filter_class_scores,
    filter_max_class_scores,
    logit_prefilter_threshold,
    score_filter,
    sigmoid,
    threshold_code,
)
from edgedet.postprocess import scores as scores_module


def all_codes(dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.arange(info.min, info.max + 1).astype(dtype)


def threshold_sweep(values: np.ndarray) -> list[float]:
    """Every attained score, its float32 neighbours, midpoints, a dense grid and the edges."""
    v = np.unique(values[~np.isnan(values)].astype(np.float32))
    up = np.nextafter(v, np.float32(np.inf))
    down = np.nextafter(v, np.float32(-np.inf))
    mids = (v[:-1].astype(np.float64) + v[1:]) / 2
    grid = np.linspace(-0.01, 1.01, 1031)
    edges = [0.0, 1.0, -0.0, 1e-45, 1 - 2**-24, 1.5, -1.0, math.nan]
    together = np.concatenate([v, up, down, mids, grid, edges]).astype(np.float64)
    # float64 values between float32 neighbours too: min_score is a Python float.
    return [float(x) for x in together] + [float(x) + 1e-12 for x in v[::7]]


def reference_filter(values: np.ndarray, min_score: float, first_class: int):
    """Activated scores (N, C) -> row-major entries with score >= min_score."""
    mask = values >= min_score
    mask[:, :first_class] = False
    anchor, column = np.nonzero(mask)
    return anchor, column - first_class, values[anchor, column]


def assert_same(result, expected):
    for got, want in zip(result, expected, strict=True):
        np.testing.assert_array_equal(got, want, strict=False)
    assert result[0].dtype == np.int64 and result[1].dtype == np.int64
    assert result[2].dtype == np.float32


# --- score_filter -------------------------------------------------------------------


def test_score_filter_is_inclusive_and_rejects_nan():
    scores = np.array([0.5, np.nan, 0.49999997, 0.5000001, 1.0, -np.inf], np.float32)
    assert score_filter(scores, 0.5).tolist() == [0, 3, 4]
    assert score_filter(scores, 0.0).tolist() == [0, 2, 3, 4]
    assert score_filter(scores, math.nan).tolist() == []


def test_score_filter_compares_float32_scores_with_float32_min_score():
    # float32(0.7) is below 0.7; a score equal to it passes min_score=0.7, as NumPy compares.
    scores = np.array([0.7], np.float32)
    assert float(scores[0]) < 0.7
    assert score_filter(scores, 0.7).tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=30),
    min_score=st.floats(-0.1, 1.1),
)
def test_score_filter_equals_a_python_loop(scores, min_score):
    array = np.array(scores, np.float32)
    expected = [i for i, s in enumerate(array) if s >= np.float32(min_score)]
    result = score_filter(array, min_score)
    assert result.dtype == np.int64
    assert result.tolist() == expected


# --- dequantize and sigmoid ------------------------------------------------------------


def test_dequantize_is_float32_code_minus_zero_point_times_scale():
    codes = np.array([0, 1, 128, 255], np.uint8)
    got = dequantize(codes, 0.0078125, 128)
    assert got.dtype == np.float32
    assert got.tolist() == [-1.0, -0.9921875, 0.0, 0.9921875]


def test_sigmoid_is_float32_and_accurate():
    x = np.linspace(-30, 30, 2001, dtype=np.float32)
    got = sigmoid(x)
    assert got.dtype == np.float32
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-30)
    with np.errstate(all="raise"):
        extremes = sigmoid(np.array([-1e30, -200, 200, np.inf, -np.inf], np.float32))
    assert extremes.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert np.isnan(sigmoid(np.array([np.nan], np.float32))[0])


def test_sigmoid_of_survivors_equals_sigmoid_of_the_whole_tensor():
    x = np.random.default_rng(3).normal(0, 8, (300, 91)).astype(np.float32)
    whole = sigmoid(x)
    picks = (np.array([0, 5, 299, 17]), np.array([90, 0, 3, 45]))
    np.testing.assert_array_equal(sigmoid(x[picks]), whole[picks])
    np.testing.assert_array_equal(sigmoid(x.T)[::-1], whole.T[::-1])


# --- threshold codes and the quantized filter -------------------------------------------

QUANT_PARAMS = [
    (np.uint8, 0.00390625, 0, "none"),  # a probability head, exact scale 1/256
    (np.uint8, 0.003921569, 0, "none"),  # 1/255, inexact in float32
    (np.int8, 0.00390625, -128, "none"),
    (np.uint8, 0.0999, 134, "sigmoid"),  # a logit head
    (np.int8, 0.13725491, 5, "sigmoid"),
    (np.uint8, 0.5, 0, "sigmoid"),  # saturates: many codes map to 1.0
    (np.int8, 0.05, -128, "none"),  # scores above 1: some thresholds have no pass
]


def check_quantized(dtype, scale, zero_point, activation, min_scores):
    codes = all_codes(dtype)
    values = sigmoid(dequantize(codes, scale, zero_point)) if activation == "sigmoid" else (
        dequantize(codes, scale, zero_point))  # fmt: skip
    np.testing.assert_array_equal(
        code_scores(scale, zero_point, dtype, activation)[codes.view(np.uint8)], values
    )
    # A (N, C) head holding every code in several classes, with a background column.
    head = np.stack([np.roll(codes, 37 * k) for k in range(4)], axis=1)
    head_values = values[head.astype(np.int64) - np.iinfo(dtype).min]
    for min_score in min_scores:
        passing = np.flatnonzero(values >= min_score)
        want_code = int(codes[passing[0]]) if passing.size else None
        assert threshold_code(min_score, scale, zero_point, dtype, activation) == want_code
        if want_code is not None and scale > 0:  # monotone: every code from it up passes
            assert (values[codes >= want_code] >= min_score).all()
        for first_class, layout in ((0, head), (1, head), (1, np.asfortranarray(head))):
            assert_same(
                filter_class_scores(layout, min_score, scale=scale, zero_point=zero_point,
                                    activation=activation, first_class=first_class),
                reference_filter(head_values, min_score, first_class),
            )  # fmt: skip


@pytest.mark.parametrize("dtype,scale,zero_point,activation", QUANT_PARAMS)
def test_quantized_filter_equals_dequantize_then_filter_for_every_code_and_threshold(
    dtype, scale, zero_point, activation
):
    codes = all_codes(dtype)
    values = dequantize(codes, scale, zero_point)
    if activation == "sigmoid":
        values = sigmoid(values)
    check_quantized(dtype, scale, zero_point, activation, threshold_sweep(values))


@settings(max_examples=25, deadline=None)
@given(
    unsigned=st.booleans(),
    scale=st.floats(2**-12, 0.5, width=32),
    zero_point=st.integers(-128, 255),
    activation=st.sampled_from(["none", "sigmoid"]),
    min_scores=st.lists(st.floats(-0.1, 1.1), min_size=1, max_size=20),
)
def test_quantized_filter_on_random_quantization(unsigned, scale, zero_point, activation,
                                                 min_scores):  # fmt: skip
    dtype = np.uint8 if unsigned else np.int8
    zero_point = min(max(zero_point, np.iinfo(dtype).min), np.iinfo(dtype).max)
    check_quantized(dtype, scale, zero_point, activation, min_scores)


def test_threshold_code_for_a_uint8_logit_head():
    # (code - 128) * 0.1 >= 0 exactly from code 128, and sigmoid(0) = 0.5.
    assert threshold_code(0.5, 0.1, 128, np.uint8, "sigmoid") == 128
    assert threshold_code(0.5, 0.1, 0, np.int8, "sigmoid") == 0
    assert threshold_code(1.5, 0.1, 0, np.int8, "sigmoid") is None


def test_quantized_filter_rejects_float_scores():
    with pytest.raises(ValueError):
        filter_class_scores(np.zeros((2, 2), np.float32), 0.5, scale=0.1)


# --- float logits and probabilities ------------------------------------------------------


def logits_near_thresholds(rng) -> np.ndarray:
    """Logits at and around the logit of many thresholds (float32 ULP steps), plus extremes."""
    p = np.concatenate([np.linspace(0.001, 0.999, 97), [0.25, 0.5, 0.6, 0.9999, 1e-6]])
    t = np.log(p / (1 - p)).astype(np.float32)
    steps = np.arange(-40, 41)
    around = t[:, None]
    for _ in range(2):  # walk a few ULPs each way
        around = np.concatenate(
            [np.nextafter(around, np.float32(np.inf)), around, np.nextafter(around, -np.inf)],
            axis=1,
        )
    spread = (t[:, None] + steps * np.float32(1e-5)).astype(np.float32)
    extremes = np.array([np.nan, np.inf, -np.inf, 88.0, -88.0, 104.0, -104.0, 17.0, 16.5],
                        np.float32)  # fmt: skip
    noise = rng.normal(0, 6, 2000).astype(np.float32)
    flat = np.concatenate([around.ravel(), spread.ravel(), extremes, noise])
    flat = flat[: len(flat) // 8 * 8]
    return flat.reshape(-1, 8)


def test_float_logit_filter_equals_sigmoid_then_filter():
    logits = logits_near_thresholds(np.random.default_rng(11))
    values = sigmoid(logits)
    sweep = threshold_sweep(values)
    picks = np.random.default_rng(12).choice(len(sweep), 1500, replace=False)
    for min_score in [sweep[i] for i in sorted(picks)] + [0.5, 0.25, 0.6, 1.0, 0.0]:
        for first_class in (0, 1):
            assert_same(
                filter_class_scores(logits, min_score, activation="sigmoid",
                                    first_class=first_class),
                reference_filter(values, min_score, first_class),
            )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(st.floats(width=32, allow_nan=True), min_size=1, max_size=60),
    min_score=st.one_of(st.floats(-0.1, 1.1), st.sampled_from([0.0, 0.5, 1.0, 1e-40])),
)
def test_float_logit_filter_equals_sigmoid_then_filter_on_any_floats(logits, min_score):
    array = np.array(logits, np.float32).reshape(-1, 1)
    assert_same(
        filter_class_scores(array, min_score, activation="sigmoid"),
        reference_filter(sigmoid(array), min_score, 0),
    )


def test_logit_prefilter_threshold_is_below_every_passing_logit():
    x = np.linspace(-20, 20, 400_001, dtype=np.float32)
    values = sigmoid(x)
    for min_score in [1e-6, 0.01, 0.25, 0.5, 0.6, 0.9, 0.99999, 1.0]:
        bound = logit_prefilter_threshold(min_score)
        assert (x[values >= min_score] >= np.float32(bound)).all()
        if min_score <= 0.99:  # tight enough to skip almost everything
            assert bound > math.log(min_score / (1 - min_score)) - 0.01


def test_float_probability_filter_keeps_scores_at_or_above_min_score():
    probs = np.array([[0.1, 0.6, 0.59], [0.6, np.nan, 0.9]], np.float32)
    anchor, cls, score = filter_class_scores(probs, 0.6, first_class=1)
    assert anchor.tolist() == [0, 1] and cls.tolist() == [0, 1]
    np.testing.assert_array_equal(score, np.array([0.6, 0.9], np.float32))


def test_transposed_yolov8_layout_gives_row_major_results():
    head = np.random.default_rng(2).random((80, 500), np.float32)  # (classes, anchors)
    assert_same(filter_class_scores(head.T, 0.9), reference_filter(head.T.copy(), 0.9, 0))


# --- best class per anchor ---------------------------------------------------------------


def reference_max_class(values: np.ndarray, min_score: float, first_class: int):
    body = values[:, first_class:].copy()
    body[np.isnan(body)] = -np.inf
    cls = body.argmax(axis=1)
    best = body[np.arange(len(body)), cls]
    rows = np.flatnonzero(best >= min_score)
    return rows, cls[rows], best[rows]


def check_best_class(dtype, scale, zero_point, activation):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    head = rng.integers(info.min, info.max + 1, (400, 6)).astype(dtype)
    head[:20] = info.max  # saturated rows: equal scores, the first column must win
    head[20:40, 3:] = head[20:40, 1:4]  # equal codes in one row
    values = dequantize(head, scale, zero_point)
    if activation == "sigmoid":
        values = sigmoid(values)
    # Row-contiguous (SSD-like) and anchor-contiguous (a transposed YOLOv8 tensor) heads.
    layouts = (head, np.ascontiguousarray(head.T).T)
    for min_score in threshold_sweep(values)[::11]:
        for first_class in (0, 1):
            for layout in layouts:
                assert_same(
                    filter_max_class_scores(layout, min_score, scale=scale,
                                            zero_point=zero_point, activation=activation,
                                            first_class=first_class),
                    reference_max_class(values, min_score, first_class),
                )  # fmt: skip


@pytest.mark.parametrize("dtype,scale,zero_point,activation", QUANT_PARAMS)
def test_quantized_best_class_equals_activate_then_argmax(dtype, scale, zero_point, activation):
    check_best_class(dtype, scale, zero_point, activation)


@pytest.mark.parametrize("activation", ["none", "sigmoid"])
def test_float_best_class_equals_activate_then_argmax(activation):
    rng = np.random.default_rng(6)
    head = rng.normal(0, 4, (500, 7)).astype(np.float32)
    if activation == "none":
        head = sigmoid(head)
    head[3, 2] = np.nan
    head[4, :] = np.nan
    values = sigmoid(head) if activation == "sigmoid" else head
    for min_score in [0.0, 0.25, 0.5, float(values[7, 3]), 0.99, 1.0]:
        for layout in (head, head.T.copy().T):
            assert_same(
                filter_max_class_scores(layout, min_score, activation=activation),
                reference_max_class(values, min_score, 0),
            )


@settings(max_examples=30, deadline=None)
@given(
    logits=st.lists(st.floats(-30, 30), min_size=1, max_size=40),
    min_score=st.floats(0, 1),
)
def test_float64_inputs_are_filtered_like_activating_everything(logits, min_score):
    # float64 logits go through the float32 sigmoid; float64 probabilities are compared in
    # float64 and returned as float32.
    array = np.array(logits, np.float64).reshape(-1, 1)
    assert_same(
        filter_class_scores(array, min_score, activation="sigmoid"),
        reference_filter(sigmoid(array), min_score, 0),
    )
    probs = 1 / (1 + np.exp(-array))
    anchor, cls, score = filter_class_scores(probs, min_score)
    assert anchor.tolist() == np.flatnonzero(probs[:, 0] >= min_score).tolist()
    np.testing.assert_array_equal(score, probs[anchor, 0].astype(np.float32))


def test_quantized_filter_with_survivor_recheck_gives_the_same(monkeypatch):
    # The re-check of survivors (kept for a code table that were ever not monotone) is a
    # no-op on monotone tables: forcing it must not change any result.
    real = scores_module._code_filter

    def recheck_always(*key):
        code, table, _ = real(*key)
        return code, table, False

    monkeypatch.setattr(scores_module, "_code_filter", recheck_always)
    for dtype, scale, zero_point, activation in QUANT_PARAMS[:4]:
        values = dequantize(all_codes(dtype), scale, zero_point)
        if activation == "sigmoid":
            values = sigmoid(values)
        check_quantized(dtype, scale, zero_point, activation, threshold_sweep(values)[::17])


@pytest.mark.parametrize("activation", ["none", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_a_negative_scale_still_filters_exactly(dtype, activation):
    # Scores then fall as codes rise: "codes >= threshold code" is only a superset and
    # the survivors' re-check has to do the work.
    scale, zero_point = -0.05, 3
    values = dequantize(all_codes(dtype), scale, zero_point)
    if activation == "sigmoid":
        values = sigmoid(values)
    check_quantized(dtype, scale, zero_point, activation, threshold_sweep(values)[::13])
    check_best_class(dtype, scale, zero_point, activation)
