"""MQTT publisher against a real mosquitto broker, subscribed with paho."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import support.broker as mb
from support.waiting import wait_for

from edgedet.detections import Detections
from edgedet.errors import ConfigError
from edgedet.metrics import Metrics
from edgedet.publishers.mqtt import MqttPublisher

pytestmark = pytest.mark.mosquitto

FRAME = np.zeros((4, 4, 3), np.uint8)
NONE = Detections.empty(("person",))
PREFIX = "edgedet/test-device"


def record(i: int) -> dict:
    return {
        "ts": 1700000000.0 + i,
        "frame": i,
        "source": "test",
        "width": 64,
        "height": 48,
        "dropped": 0,
        "timing_ms": {"invoke": 1.0},
        "detections": [
            {"label": "person", "class_id": 0, "score": 0.9, "box": [0.1, 0.1, 0.5, 0.5]}
        ],
    }


def make(port: int, metrics: Metrics | None = None, **kw) -> MqttPublisher:
    kw.setdefault("reconnect_min_delay", 0.2)
    kw.setdefault("reconnect_max_delay", 1.0)
    return MqttPublisher(
        "127.0.0.1",
        port,
        prefix=PREFIX,
        client_id=kw.pop("client_id", "det-1"),
        metrics=metrics or Metrics(),
        **kw,
    )


def test_records_status_and_stats_reach_a_subscriber(broker: mb.Broker) -> None:
    sub = mb.Subscriber(broker.port, PREFIX + "/#")
    metrics = Metrics()
    metrics.inc("frames_total", 3)
    pub = make(broker.port, metrics, stats_interval=0.2)
    try:
        wait_for(lambda: pub.connected, what="publisher to connect")
        for i in range(20):
            pub.publish(record(i), FRAME, NONE)
        wait_for(lambda: len(sub.on(PREFIX + "/detections")) == 20, what="20 records")
        wait_for(lambda: sub.on(PREFIX + "/stats"), what="a stats message")
    finally:
        pub.close()
    wait_for(lambda: b"offline" in sub.payloads(PREFIX + "/status"), what="offline")
    sub.close()

    received = [json.loads(p) for p in sub.payloads(PREFIX + "/detections")]
    assert received == [record(i) for i in range(20)]  # in order, unchanged
    assert sub.payloads(PREFIX + "/status") == [b"online", b"offline"]
    stats = json.loads(sub.payloads(PREFIX + "/stats")[0])
    assert stats["metrics"]["frames_total"] == 3 and stats["ts"] > 1.7e9
    assert pub.metrics.get("publish_dropped_total", publisher="mqtt") == 0
    assert pub.metrics.get("publish_errors_total", publisher="mqtt") == 0
    # A clean close leaves `offline` retained for late subscribers.
    assert mb.retained(broker.port, PREFIX + "/status") == b"offline"


def test_status_online_is_retained_while_running(broker: mb.Broker) -> None:
    pub = make(broker.port)
    try:
        wait_for(lambda: pub.connected, what="publisher to connect")
        assert mb.retained(broker.port, PREFIX + "/status") == b"online"
    finally:
        pub.close()


CHILD = r"""
import sys, time
from edgedet.publishers.mqtt import MqttPublisher
from edgedet.metrics import Metrics
pub = MqttPublisher("127.0.0.1", int(sys.argv[1]), prefix=sys.argv[2], client_id="child",
                    metrics=Metrics(), keepalive=5)
while not pub.connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(60)
"""


def test_last_will_marks_a_killed_service_offline(broker: mb.Broker) -> None:
    sub = mb.Subscriber(broker.port, PREFIX + "/status")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(broker.port), PREFIX], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "connected"
        wait_for(lambda: sub.payloads(PREFIX + "/status") == [b"online"], what="online")
        os.kill(child.pid, signal.SIGKILL)  # no clean close: only the will can say offline
        child.wait(10)
        wait_for(
            lambda: sub.payloads(PREFIX + "/status") == [b"online", b"offline"],
            what="the last will",
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        sub.close()
    assert mb.retained(broker.port, PREFIX + "/status") == b"offline"


def test_broker_down_at_start_then_started_delivers_the_queued_records(
    stopped_broker: mb.Broker, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.INFO, logger="edgedet.publishers.mqtt"):
        pub = make(stopped_broker.port, metrics)  # must neither block nor raise
        try:
            for i in range(10):
                pub.publish(record(i), FRAME, NONE)
            wait_for(
                lambda: metrics.get("publish_errors_total", publisher="mqtt") >= 2,
                what="failed attempts",
            )
            assert not pub.connected
            stopped_broker.start()
            wait_for(lambda: pub.connected, what="publisher to connect after start")
            # The records queued during the outage went out, in order, once connected.
            wait_for(
                lambda: stopped_broker.received("det-1", PREFIX + "/detections") == 10,
                what="the broker to receive the 10 queued records",
            )
            sub = mb.Subscriber(stopped_broker.port, PREFIX + "/detections")
            pub.publish(record(10), FRAME, NONE)
            wait_for(lambda: sub.on(PREFIX + "/detections"), what="a live record")
            sub.close()
        finally:
            pub.close()
    assert json.loads(sub.payloads(PREFIX + "/detections")[0])["frame"] == 10
    assert metrics.get("publish_dropped_total", publisher="mqtt") == 0
    outage = [r for r in caplog.records if "cannot reach the broker" in r.getMessage()]
    assert len(outage) == 1, "one log line per outage, not per attempt"


def test_broker_killed_and_restarted_reconnects_and_resumes(
    broker: mb.Broker, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    sub = mb.Subscriber(broker.port, PREFIX + "/#")
    with caplog.at_level(logging.INFO, logger="edgedet.publishers.mqtt"):
        pub = make(broker.port, metrics)
        try:
            wait_for(lambda: pub.connected, what="publisher to connect")
            for i in range(5):
                pub.publish(record(i), FRAME, NONE)
            wait_for(lambda: len(sub.on(PREFIX + "/detections")) == 5, what="5 records")

            broker.kill()
            wait_for(lambda: not pub.connected, what="publisher to notice")
            for i in range(5, 10):
                pub.publish(record(i), FRAME, NONE)  # queued while the broker is gone
            broker.start()
            wait_for(lambda: pub.connected, what="publisher to reconnect")
            # The broker log spans both runs: 5 records before the kill, 5 queued ones after.
            wait_for(
                lambda: broker.received("det-1", PREFIX + "/detections") == 10,
                what="the restarted broker to receive the queued records",
            )
            wait_for(lambda: sub.subscriptions >= 2, what="subscriber to resubscribe")
            pub.publish(record(10), FRAME, NONE)
            wait_for(
                lambda: any(
                    json.loads(p)["frame"] == 10 for p in sub.payloads(PREFIX + "/detections")
                ),
                what="records to resume",
            )
            assert mb.retained(broker.port, PREFIX + "/status") == b"online"
        finally:
            pub.close()
            sub.close()
    assert metrics.get("publish_reconnects_total", publisher="mqtt") == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost the connection" in m for m in messages) == 1
    assert sum(f"connected to 127.0.0.1:{broker.port} again" in m for m in messages) == 1


def test_full_queue_while_disconnected_drops_and_counts(stopped_broker: mb.Broker) -> None:
    metrics = Metrics()
    pub = make(stopped_broker.port, metrics, queue_size=5)
    for i in range(20):
        pub.publish(record(i), FRAME, NONE)
    pub.close(timeout=3)
    # Nothing reached a broker, and every record is accounted for as dropped.
    assert metrics.get("publish_dropped_total", publisher="mqtt") == 20


def test_credentials_from_a_password_file_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-Pa55-word"
    (tmp_path / "broker").mkdir()
    passwd = tmp_path / "broker" / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "edge", secret],
        check=True,
        capture_output=True,
    )
    b = mb.Broker(tmp_path / "broker")
    b.conf.write_text(
        b.conf.read_text().replace(
            "allow_anonymous true", f"allow_anonymous false\npassword_file {passwd}"
        )
    )
    b.start()
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(secret + "\n")
    bad.write_text("wrong-" + secret)
    try:
        with caplog.at_level(logging.DEBUG):
            ok = make(b.port, username="edge", password_file=good, client_id="ok")
            refused = make(b.port, username="edge", password_file=bad, client_id="refused")
            wait_for(lambda: ok.connected, what="the right password to be accepted")
            wait_for(
                lambda: refused.metrics.get("publish_errors_total", publisher="mqtt") >= 1,
                what="the wrong one refused",
            )
            assert not refused.connected
            ok.close()
            refused.close()
    finally:
        b.stop()
    assert secret not in caplog.text
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_missing_password_file_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password file .*nope.*create it"):
        make(1, username="u", password_file=tmp_path / "nope")


def test_missing_paho_is_a_config_error_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['paho'] = None\n"
        "from edgedet.errors import ConfigError\n"
        "from edgedet.publishers.mqtt import MqttPublisher\n"
        "from edgedet.metrics import Metrics\n"
        "try:\n"
        "    MqttPublisher('127.0.0.1', 1, prefix='p', client_id='c', metrics=Metrics())\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'edgedet[mqtt]'" in out.stdout


def test_close_does_not_wait_for_a_connect_that_never_completes() -> None:
    # A listener whose backlog is full drops SYNs, like a broker host that has gone dark:
    # paho's connect() blocks for its 5 s connect timeout. Closing must not wait for it,
    # or SIGTERM would overrun systemd's stop budget.
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    probe = socket.socket()
    probe.settimeout(1.0)
    try:
        with pytest.raises(TimeoutError):
            probe.connect(("127.0.0.1", port))  # the precondition: connects hang here
        pub = make(port)
        pub.publish(record(0), FRAME, NONE)
        time.sleep(0.3)  # paho's thread is now inside connect()
        started = time.monotonic()
        pub.close(timeout=3)
        assert time.monotonic() - started < 2.5
        assert pub.metrics.get("publish_dropped_total", publisher="mqtt") == 1
    finally:
        for s in [probe, server, *fillers]:
            s.close()
