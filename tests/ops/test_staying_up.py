"""Staying up: `edgedet run` as a real process against a real broker, files and signals.

Each run reads a short generated clip looped at its own frame rate (--loop --realtime, a
steady, cheap stand-in for a camera), publishes to the JSONL log, a mosquitto started by
the test and the loopback HTTP endpoint, and is stopped with SIGTERM.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import support.broker as mb
import support.service as sp
from support.waiting import wait_for

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

DEVICE = "e2e"
PREFIX = f"edgedet/{DEVICE}"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return sp.make_clip(tmp_path / "clip.avi")


def start(tmp_path: Path, clip: Path, *extra: str) -> sp.Service:
    return sp.Service(
        tmp_path,
        [
            *sp.model_args(),
            "--source",
            str(clip),
            "--loop",
            "--realtime",
            "--device-id",
            DEVICE,
            *extra,
        ],
    )


def mqtt_frames(sub: mb.Subscriber) -> list[int]:
    return [json.loads(p)["frame"] for p in sub.payloads(PREFIX + "/detections")]


def test_broker_down_at_start_then_started_then_sigterm_flushes_and_says_offline(
    tmp_path: Path, clip: Path, stopped_broker: mb.Broker
) -> None:
    log = tmp_path / "det.jsonl"
    svc = start(tmp_path, clip, "--log", str(log), "--mqtt", f"127.0.0.1:{stopped_broker.port}")
    sub = None
    try:
        # No broker: inference runs, records reach the log, failed attempts are counted.
        wait_for(lambda: svc.metric("edgedet_frames_total") >= 10, 60, "frames")
        wait_for(
            lambda: svc.metric('edgedet_publish_errors_total{publisher="mqtt"}') >= 1,
            30,
            "a failed MQTT connection attempt to be counted",
        )
        assert svc.get("/healthz")[0] == 200
        assert len(sp.read_log(log)) >= 5

        stopped_broker.start()
        sub = mb.Subscriber(stopped_broker.port, PREFIX + "/#")
        wait_for(lambda: len(mqtt_frames(sub)) >= 5, 60, "records over MQTT")
        assert mb.retained(stopped_broker.port, PREFIX + "/status") == b"online"
        assert svc.metric('edgedet_publisher_connected{publisher="mqtt"}') == 1

        assert svc.terminate(within=5.0) == 0
    finally:
        svc.kill()
    wait_for(
        lambda: sub.payloads(PREFIX + "/status")[-1:] == [b"offline"],
        10,
        "offline on the status topic",
    )
    sub.close()
    assert mb.retained(stopped_broker.port, PREFIX + "/status") == b"offline"

    records = sp.read_log(log)
    # Queued records were flushed: the log holds every processed frame.
    assert len(records) == sp.summary_frames(svc.stdout())
    sp.assert_frames_accounted(records)
    by_frame = {r["frame"]: r for r in records}
    for payload in sub.payloads(PREFIX + "/detections"):
        got = json.loads(payload)
        assert by_frame[got["frame"]] == got  # MQTT carries the same record as the log
    assert "Traceback" not in svc.stderr()


def test_broker_killed_mid_run_and_restarted_inference_and_log_continue_mqtt_resumes(
    tmp_path: Path, clip: Path, broker: mb.Broker
) -> None:
    log = tmp_path / "det.jsonl"
    sub = mb.Subscriber(broker.port, PREFIX + "/detections")
    svc = start(tmp_path, clip, "--log", str(log), "--mqtt", f"127.0.0.1:{broker.port}")
    try:
        wait_for(lambda: len(mqtt_frames(sub)) >= 5, 60, "records over MQTT")
        broker.kill()
        wait_for(
            lambda: svc.metric('edgedet_publisher_connected{publisher="mqtt"}') == 0,
            30,
            "the service to notice the broker is gone",
        )
        during = svc.metric("edgedet_frames_total")
        wait_for(
            lambda: svc.metric("edgedet_frames_total") >= during + 20,
            60,
            "inference to continue without the broker",
        )
        assert svc.get("/healthz")[0] == 200

        broker.start()
        wait_for(
            lambda: svc.metric('edgedet_publisher_connected{publisher="mqtt"}') == 1,
            60,
            "the service to reconnect",
        )
        wait_for(lambda: sub.subscriptions >= 2, 30, "the subscriber to resubscribe")
        resumed_after = svc.metric("edgedet_frames_total")
        wait_for(lambda: max(mqtt_frames(sub)) > resumed_after, 60, "MQTT to resume")
        assert svc.metric('edgedet_publish_reconnects_total{publisher="mqtt"}') == 1
        assert svc.terminate(within=5.0) == 0
    finally:
        svc.kill()
        sub.close()
    records = sp.read_log(log)
    assert len(records) == sp.summary_frames(svc.stdout())  # every record is in the log
    sp.assert_frames_accounted(records)
    assert set(mqtt_frames(sub)) <= {r["frame"] for r in records}
    assert svc.stderr().count("lost the connection") == 1  # one line per outage


def test_disk_full_log_is_counted_in_metrics_and_the_service_continues(
    tmp_path: Path, clip: Path
) -> None:
    svc = start(tmp_path, clip, "--log", "/dev/full")
    try:
        wait_for(
            lambda: svc.metric('edgedet_publish_errors_total{publisher="log"}') >= 10,
            60,
            "log write failures to be counted",
        )
        errors = svc.metric('edgedet_publish_errors_total{publisher="log"}')
        frames = svc.metric("edgedet_frames_total")
        wait_for(
            lambda: svc.metric("edgedet_frames_total") >= frames + 10,
            60,
            "the service to keep processing frames",
        )
        assert svc.metric('edgedet_publish_errors_total{publisher="log"}') > errors
        assert svc.get("/healthz")[0] == 200
        status, latest = svc.get("/latest")
        assert status == 200 and json.loads(latest)["frame"] >= frames
        assert svc.terminate(within=5.0) == 0
    finally:
        svc.kill()
    stderr = svc.stderr()
    assert stderr.count("cannot write") == 1, "one line per failure episode"
    assert "ENOSPC" in stderr and "Traceback" not in stderr


def test_log_directory_replaced_mid_run_is_counted_and_writing_resumes(
    tmp_path: Path, clip: Path
) -> None:
    logs = tmp_path / "logs"
    log = logs / "det.jsonl"
    svc = start(tmp_path, clip, "--log", str(log))
    try:
        wait_for(lambda: len(sp.read_log(log)) >= 10, 60, "records in the log")
        shutil.rmtree(logs)
        logs.write_text("someone put a file here")  # the log's directory is now unusable
        wait_for(
            lambda: svc.metric('edgedet_publish_errors_total{publisher="log"}') >= 5,
            60,
            "write failures to be counted",
        )
        assert svc.get("/healthz")[0] == 200
        broken_at = svc.metric("edgedet_frames_total")
        logs.unlink()
        logs.mkdir()
        wait_for(lambda: len(sp.read_log(log)) >= 5, 60, "the log to be written again")
        assert svc.terminate(within=5.0) == 0
    finally:
        svc.kill()
    records = sp.read_log(log)
    assert records[0]["frame"] >= broken_at  # a new file, started after the repair
    sp.assert_frames_accounted(records)
    stderr = svc.stderr()
    assert stderr.count("cannot write") == 1 and "writing again after" in stderr
