"""Metrics registry: values, quantiles, snapshot and thread safety."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from edgedet.metrics import Metrics


def test_counters_and_gauges_per_label_set() -> None:
    m = Metrics()
    assert m.get("frames_total") == 0.0
    m.inc("frames_total")
    m.inc("frames_total", 2)
    m.inc("detections_total", label="person")
    m.inc("detections_total", 3, label="car")
    m.set("fps", 9.5)
    m.set("fps", 10.25)
    assert m.get("frames_total") == 3.0
    assert m.get("detections_total", label="car") == 3.0
    assert m.get("detections_total", label="person") == 1.0
    assert m.get("detections_total", label="dog") == 0.0
    assert m.get("fps") == 10.25


def test_counters_cannot_decrease_and_kinds_do_not_mix() -> None:
    m = Metrics()
    with pytest.raises(ValueError):
        m.inc("frames_total", -1)
    m.inc("frames_total")
    with pytest.raises(ValueError, match="counter"):
        m.set("frames_total", 5)
    with pytest.raises(ValueError):
        m.inc("bad name")
    with pytest.raises(ValueError):
        m.inc("x_total", quantile="0.5")


def test_quantiles_match_numpy_over_the_window() -> None:
    m = Metrics(window=100)
    rng = np.random.default_rng(1)
    values = rng.exponential(0.01, 250)
    for v in values:
        m.observe("stage_latency_seconds", float(v), stage="invoke")
    window = values[-100:]
    for q in (0.0, 0.5, 0.95, 1.0):
        assert m.quantile("stage_latency_seconds", q, stage="invoke") == pytest.approx(
            np.quantile(window, q), rel=1e-12
        )
    # count and sum are all-time, like Prometheus summaries
    assert m.get("stage_latency_seconds", stage="invoke") == 250
    assert m.snapshot()["stage_latency_seconds"]["stage=invoke"]["sum"] == pytest.approx(
        values.sum()
    )
    assert m.quantile("stage_latency_seconds", 0.5, stage="capture") is None


def test_snapshot_is_json_able() -> None:
    m = Metrics()
    m.inc("frames_total", 4)
    m.inc("publish_errors_total", publisher="log")
    m.set("fps", float("nan"))
    m.observe("stage_latency_seconds", 0.5, stage="invoke")
    snap = json.loads(json.dumps(m.snapshot(), allow_nan=False))
    assert snap == {
        "frames_total": 4.0,
        "fps": None,
        "publish_errors_total": {"publisher=log": 1.0},
        "stage_latency_seconds": {"stage=invoke": {"count": 1, "sum": 0.5, "p50": 0.5, "p95": 0.5}},
    }


def test_empty_summary_renders_nan_quantiles() -> None:
    m = Metrics()
    m.observe("x_seconds", 1.0, stage="a")
    text = m.render_prometheus()
    assert 'edgedet_x_seconds{stage="a",quantile="0.5"} 1\n' in text
    assert Metrics().render_prometheus() == ""


def test_concurrent_increments_are_not_lost() -> None:
    m = Metrics()

    def work() -> None:
        for i in range(5000):
            m.inc("frames_total")
            m.observe("stage_latency_seconds", 0.001, stage="invoke")
            if i % 1000 == 0:
                assert "edgedet_frames_total" in m.render_prometheus()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.get("frames_total") == 20000
    assert m.get("stage_latency_seconds", stage="invoke") == 20000
