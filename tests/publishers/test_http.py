"""HTTP endpoint: real requests with urllib against a server on a free loopback port."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.errors import EdgedetError
from edgedet.metrics import Metrics
from edgedet.publishers.http import PROMETHEUS_CONTENT_TYPE, HttpPublisher


def get(pub: HttpPublisher, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{pub.port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def served():
    state = {"healthy": True}
    metrics = Metrics()
    pub = HttpPublisher("127.0.0.1", 0, metrics=metrics, healthy=lambda: state["healthy"])
    yield pub, metrics, state
    pub.close()


def test_port_zero_binds_a_free_loopback_port(served) -> None:
    pub, _, _ = served
    assert pub.port > 0 and pub.host == "127.0.0.1"


def test_healthz_follows_healthy(served) -> None:
    pub, _, state = served
    assert get(pub, "/healthz")[0] == 200
    assert json.loads(get(pub, "/healthz")[2]) == {"status": "ok"}
    state["healthy"] = False
    status, _, body = get(pub, "/healthz")
    assert status == 503 and json.loads(body) == {"status": "stalled"}
    state["healthy"] = True
    assert get(pub, "/healthz")[0] == 200


def test_healthz_is_503_when_the_health_check_itself_fails() -> None:
    def broken() -> bool:
        raise RuntimeError("bug")

    metrics = Metrics()
    pub = HttpPublisher("127.0.0.1", 0, metrics=metrics, healthy=broken)
    try:
        assert get(pub, "/healthz")[0] == 503
    finally:
        pub.close()
    assert metrics.get("publish_errors_total", publisher="http") == 1


# One sample line of the text format: name, optional {labels}, value.
SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
    r"(NaN|[+-]Inf|-?[0-9.]+(e[+-]?[0-9]+)?)$"
)


def parse_prometheus(text: str) -> dict[str, str]:
    """Strict-enough parse of the 0.0.4 text format: returns family -> type."""
    types: dict[str, str] = {}
    helped: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}
            assert name not in types, f"duplicate TYPE for {name}"
            types[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name = m.group(1)
            family = re.sub(r"_(sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample {name} before its TYPE line"
    assert helped == set(types)
    return types


def test_metrics_is_prometheus_text(served) -> None:
    pub, metrics, _ = served
    metrics.inc("frames_total", 7)
    metrics.inc("detections_total", 2, label='pe"rson')
    metrics.set("fps", 14.5)
    for v in (0.010, 0.020, 0.030):
        metrics.observe("stage_latency_seconds", v, stage="invoke")
    status, headers, body = get(pub, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
    text = body.decode("utf-8")
    types = parse_prometheus(text)
    assert types == {
        "edgedet_frames_total": "counter",
        "edgedet_detections_total": "counter",
        "edgedet_fps": "gauge",
        "edgedet_stage_latency_seconds": "summary",
    }
    assert "edgedet_frames_total 7\n" in text
    assert 'edgedet_detections_total{label="pe\\"rson"} 2\n' in text
    assert 'edgedet_stage_latency_seconds{stage="invoke",quantile="0.5"} 0.02\n' in text
    assert 'edgedet_stage_latency_seconds_count{stage="invoke"} 3\n' in text


def frame_and_detections() -> tuple[np.ndarray, Detections]:
    frame = np.full((120, 160, 3), 40, np.uint8)
    dets = Detections(
        np.array([[0.25, 0.25, 0.75, 0.75]]), np.array([0.9]), np.array([0]), ("person",)
    )
    return frame, dets


def test_latest_and_snapshot_are_404_before_the_first_record(served) -> None:
    pub, _, _ = served
    assert get(pub, "/latest")[0] == 404
    assert get(pub, "/snapshot.jpg")[0] == 404
    assert get(pub, "/nothing-here")[0] == 404


def test_latest_returns_the_last_record(served) -> None:
    pub, _, _ = served
    frame, dets = frame_and_detections()
    for i in range(3):
        pub.publish({"frame": i, "detections": dets.to_records()}, frame, dets)
    status, headers, body = get(pub, "/latest")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"frame": 2, "detections": dets.to_records()}


def test_snapshot_is_the_annotated_last_frame_as_jpeg(served) -> None:
    pub, _, _ = served
    frame, dets = frame_and_detections()
    pub.publish({"frame": 0}, frame, dets)
    status, headers, body = get(pub, "/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == frame.shape
    # The box was drawn: its outline differs from the flat background, the centre does not.
    assert np.abs(image[30, 40:120].astype(int) - 40).max() > 60
    assert np.abs(image[60, 80].astype(int) - 40).max() < 10
    assert frame.max() == 40, "the published frame must not be drawn on"
    head = get(pub, "/snapshot.jpg", method="HEAD")
    assert head[0] == 200 and head[2] == b"" and int(head[1]["Content-Length"]) == len(body)


def test_bind_failure_names_host_port_and_the_fix() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EdgedetError, match=rf"127\.0\.0\.1:{port}: cannot listen .*--http"):
            HttpPublisher("127.0.0.1", port, metrics=Metrics(), healthy=lambda: True)


def test_concurrent_requests_while_publishing(served) -> None:
    pub, _, _ = served
    frame, dets = frame_and_detections()
    pub.publish({"frame": 0}, frame, dets)
    stop = threading.Event()

    def feed() -> None:
        i = 1
        while not stop.is_set():
            pub.publish({"frame": i}, frame, dets)
            i += 1

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        results = []
        threads = [
            threading.Thread(target=lambda p=p: results.append(get(pub, p)[0]))
            for p in ["/latest", "/snapshot.jpg", "/metrics", "/healthz"] * 5
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        feeder.join()
    assert results == [200] * 20
    assert pub.metrics.get("publish_errors_total", publisher="http") == 0


def test_close_releases_the_port() -> None:
    pub = HttpPublisher("127.0.0.1", 0, metrics=Metrics(), healthy=lambda: True)
    port = pub.port
    pub.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    again = HttpPublisher("127.0.0.1", port, metrics=Metrics(), healthy=lambda: True)
    again.close()
