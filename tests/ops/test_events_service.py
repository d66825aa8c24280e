"""`edgedet run` with events: the events log, seq across restarts, bad input, and MQTT
as Home Assistant sees it (real mosquitto, real subprocess, the bundled model and clip)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import support.broker as mb
from support.service import ROOT, Service, clean_env, model_args, read_log
from support.waiting import wait_for

CLIP = ROOT / "models" / "samples" / "vtest_clip.mp4"
DEVICE = "cam1"
PREFIX = f"edgedet/{DEVICE}"
LEFT = "[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]"


def _run(workdir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "edgedet",
            "run",
            "--http",
            "off",
            "--device-id",
            DEVICE,
            *model_args(),
            "--source",
            str(CLIP),
            *args,
        ],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_events(records: list[dict]) -> None:
    """Every event has one new, then updates, then one end; seq strictly increasing."""
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(set(seqs))
    by_id: dict[str, list[str]] = {}
    for r in records:
        by_id.setdefault(r["id"], []).append(r["type"])
        assert r["device"] == DEVICE and r["label"] == "person"
        assert (r["end"] is None) == (r["type"] != "end")
    for kinds in by_id.values():
        assert kinds[0] == "new" and kinds[-1] == "end"
        assert set(kinds[1:-1]) <= {"update"}


def test_default_run_writes_events_not_frames_and_seq_survives_a_restart(tmp_path) -> None:
    done = _run(tmp_path, "--set", "events.snapshots=true")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "edgedet-detections.jsonl").exists()  # log.frames: off
    events = read_log(tmp_path / "edgedet-events.jsonl")
    assert events, done.stderr
    _check_events(events)  # the finite run ended every event it opened
    snaps = [r["snapshot"] for r in events if r["type"] == "new"]
    assert all((tmp_path / s).is_file() for s in snaps)
    assert all((tmp_path / s.replace(".jpg", "-crop.jpg")).is_file() for s in snaps)
    new = sum(r["type"] == "new" for r in events)
    assert f"events     {new} (person {new})" in done.stdout

    again = _run(tmp_path)  # snapshots off (the default)
    assert again.returncode == 0, again.stderr
    more = read_log(tmp_path / "edgedet-events.jsonl")[len(events) :]
    assert more and more[0]["seq"] > events[-1]["seq"]
    _check_events(events + more)


def test_log_flag_keeps_the_per_frame_records(tmp_path) -> None:
    done = _run(tmp_path, "--log", str(tmp_path / "frames.jsonl"))
    assert done.returncode == 0, done.stderr
    assert len(read_log(tmp_path / "frames.jsonl")) == 120  # every frame of the clip
    done = _run(tmp_path, "--log", str(tmp_path / "some.jsonl"), "--set", "log.frames=detections")
    assert done.returncode == 0, done.stderr
    records = read_log(tmp_path / "some.jsonl")
    assert records and all(r["detections"] for r in records)


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "zones: {door: {polygon: [[0, 0], [1, 1], [1, 0], [0, 1]]}}",
            "zones.door.polygon: edges cross",
        ),
        (
            "zones: {door: {polygon: [[0, 0], [1.5, 0], [1, 1]]}}",
            "zones.door.polygon[1]: expected x, y in [0, 1]",
        ),
        ("events: {threshold: 1.5}", "events.threshold: expected a number in [0, 1]"),
        (
            "events: {label_thresholds: {person: -0.1}}",
            "events.label_thresholds.person: expected a number in [0, 1]",
        ),
        (
            "events: {confirm_hits: 6, confirm_window: 5}",
            "events.confirm_hits (6) must not exceed events.confirm_window (5)",
        ),
        (
            f"zones: {{door: {{polygon: {LEFT}, labels: [preson]}}}}",
            "zones.door.labels[0]: 'preson' is not a label of the model; did you mean 'person'?",
        ),
        (
            f"zones: {{door: {{polygon: {LEFT}}}}}\nevents: {{required_zones: [gate]}}",
            "events.required_zones[0]: unknown zone 'gate'",
        ),
    ],
)
def test_bad_events_config_is_one_line_exit_2(tmp_path, yaml: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml + "\n")
    done = _run(tmp_path, "--config", str(config), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def _ha_config(tmp_path: Path, port: int, zones: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"mqtt: {{enabled: true, host: 127.0.0.1, port: {port}}}\n"
        "homeassistant: {enabled: true}\n"
        f"zones: {zones}\n"
        "events: {snapshots: true}\n"
    )
    return config


# What HA's MQTT discovery requires per component (state_topic), plus what it needs to
# group and keep entities (unique_id, device identifiers) and to show availability.
REQUIRED = {
    "binary_sensor": {
        "state_topic",
        "unique_id",
        "device",
        "availability_topic",
        "payload_on",
        "payload_off",
    },
    "sensor": {"state_topic", "unique_id", "device", "availability_topic"},
}


@pytest.mark.mosquitto
@pytest.mark.slow
def test_home_assistant_sees_entities_states_availability_and_removal(tmp_path, broker) -> None:
    ha = mb.Subscriber(broker.port, "#")  # as HA would: discovery, states, availability
    zones = f"{{left: {{polygon: {LEFT}}}}}"
    config = _ha_config(tmp_path, broker.port, zones)
    svc = Service(
        tmp_path,
        [
            *model_args(),
            "--source",
            str(CLIP),
            "--config",
            str(config),
            "--device-id",
            DEVICE,
            "--set",
            "source.loop=true",
            "--set",
            "source.realtime=true",
        ],
    )
    try:
        configs = lambda: {  # noqa: E731
            m.topic: m.payload for m in ha.messages if m.topic.startswith("homeassistant/")
        }
        wait_for(lambda: len(configs()) == 4, 60, "4 discovery configs")
        states: dict[str, str] = {}
        for topic, payload in configs().items():
            component = topic.split("/")[1]
            body = json.loads(payload)
            assert REQUIRED[component] <= set(body), (topic, body)
            assert {"name", "model", "sw_version", "identifiers"} <= set(body["device"])
            assert body["availability_topic"] == f"{PREFIX}/status"
            states[body["state_topic"]] = component
        assert set(states) == {
            f"{PREFIX}/all/person",
            f"{PREFIX}/all/person/occupancy",
            f"{PREFIX}/left/person",
            f"{PREFIX}/left/person/occupancy",
        }
        wait_for(lambda: ha.payloads(f"{PREFIX}/events"), 60, "an event")
        wait_for(lambda: b"ON" in ha.payloads(f"{PREFIX}/all/person/occupancy"), 30, "ON")
        assert ha.payloads(f"{PREFIX}/status")[-1] == b"online"
        event = json.loads(ha.payloads(f"{PREFIX}/events")[0])
        assert event["type"] == "new" and event["device"] == DEVICE

        # The HTTP endpoint lists events and serves their snapshots.
        status, body = svc.get("/events")
        assert status == 200
        listed = json.loads(body)
        ids = [e["id"] for e in listed["open"] + listed["recent"]]
        assert event["id"] in ids
        wait_for(
            lambda: svc.get(f"/events/{event['id']}/snapshot.jpg")[0] == 200, 30, "the snapshot"
        )
        status, jpeg = svc.get(f"/events/{event['id']}/snapshot.jpg?crop=1")
        assert status == 200 and jpeg[:2] == b"\xff\xd8"
        assert svc.get("/events/nope/snapshot.jpg")[0] == 404
        assert svc.get("/events/..%2F..%2Fetc%2Fpasswd/snapshot.jpg")[0] == 404
    finally:
        assert svc.terminate() == 0
    wait_for(lambda: ha.payloads(f"{PREFIX}/status")[-1:] == [b"offline"], 10, "offline")
    for topic, component in states.items():
        values = ha.payloads(topic)
        assert values, topic
        if component == "sensor":
            assert all(v.isdigit() for v in values)
            assert values[-1] == b"0"  # the stop ended every event
        else:
            assert set(values) <= {b"ON", b"OFF"} and values[-1] == b"OFF"

    # The zone leaves the configuration: its entities are removed (empty retained config).
    config = _ha_config(tmp_path, broker.port, "{}")
    left = f"homeassistant/sensor/{DEVICE}/left_person_count/config"
    assert mb.retained(broker.port, left)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgedet",
            "run",
            "--http",
            "off",
            *model_args(),
            "--source",
            str(CLIP),
            "--config",
            str(config),
            "--device-id",
            DEVICE,
            "--set",
            "service.max_frames=20",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert mb.retained(broker.port, left) is None
    assert mb.retained(broker.port, f"homeassistant/sensor/{DEVICE}/all_person_count/config")
    ha.close()


@pytest.mark.mosquitto
def test_a_broker_refusing_discovery_is_logged_once_and_events_go_on(tmp_path) -> None:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    acl = workdir / "acl"
    acl.write_text("topic readwrite edgedet/#\ntopic read homeassistant/#\n")
    b = mb.Broker(workdir)
    b.conf.write_text(b.conf.read_text() + f"acl_file {acl}\n")
    b.start()
    try:
        sub = mb.Subscriber(b.port, f"{PREFIX}/#")
        config = _ha_config(tmp_path, b.port, "{}")
        t0 = time.monotonic()
        done = _run(tmp_path, "--config", str(config))
        assert done.returncode == 0, done.stderr
        refused = [line for line in done.stderr.splitlines() if "Home Assistant discovery" in line]
        assert len(refused) == 1 and "ACL" in refused[0], done.stderr
        wait_for(lambda: sub.payloads(f"{PREFIX}/events"), 10, "events despite the ACL")
        assert sub.payloads(f"{PREFIX}/all/person")
        assert mb.retained(b.port, f"homeassistant/sensor/{DEVICE}/all_person_count/config") is None
        assert time.monotonic() - t0 < 60
        sub.close()
    finally:
        b.stop()
