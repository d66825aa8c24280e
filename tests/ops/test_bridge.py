"""Fleet delivery: the shipped mosquitto bridge template, two real brokers on loopback.

The device's broker (local) is bridged to a central broker with systemd/
mosquitto-bridge.conf. Events are published locally at QoS 1 the whole time, while the
central broker is down for 30 s in the middle; a central consumer with a persistent
session must end up with every event, deduplicated by (id, seq).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support.broker import Broker
from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "systemd" / "mosquitto-bridge.conf"
DEVICE = "cam1"

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def _broker(workdir: Path, extra: str = "") -> Broker:
    workdir.mkdir()
    b = Broker(workdir)
    b.conf.write_text(
        f"listener {b.port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "user root\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n" + extra
    )
    return b


def _render(central_port: int) -> str:
    return (
        TEMPLATE.read_text()
        .replace("@DEVICE@", DEVICE)
        .replace("@CENTRAL_HOST@", "127.0.0.1")
        .replace("@CENTRAL_PORT@", str(central_port))
    )


class Consumer:
    """A central consumer as the docs describe it: fixed client id, persistent session."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.got: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-consumer", clean_session=False
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            f"edgedet/{DEVICE}/events", qos=1
        )
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        record = json.loads(msg.payload)
        with self.lock:
            self.got.append((record["id"], record["seq"]))

    def unique(self) -> set[tuple[str, int]]:
        with self.lock:
            return set(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_event_reaches_the_central_broker_across_a_30_s_uplink_outage(tmp_path) -> None:
    import paho.mqtt.client as mqtt

    central = _broker(tmp_path / "central").start()
    local = _broker(tmp_path / "local", _render(central.port)).start()
    consumer = Consumer(central.port)
    wait_for(lambda: consumer.client.is_connected(), 10, "the consumer to connect")
    time.sleep(0.5)  # SUBACK: the central session now holds the subscription

    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgedet-cam1")
    device.connect("127.0.0.1", local.port)
    device.loop_start()
    produced: list[tuple[str, int]] = []
    stop = threading.Event()

    def produce() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            event_id = f"{time.time():.3f}-{seq % 7:06x}"
            record = {"type": "new", "seq": seq, "id": event_id, "device": DEVICE}
            info = device.publish(f"edgedet/{DEVICE}/events", json.dumps(record), qos=1)
            info.wait_for_publish(5)  # the local broker has it
            produced.append((event_id, seq))
            time.sleep(0.05)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(3)
        before = len(produced)
        wait_for(lambda: len(consumer.unique()) >= before, 10, "events before the outage")
        central.stop()  # uplink down
        time.sleep(30)
        during = len(produced) - before
        central.start()  # uplink back (same port, its persisted sessions)
        time.sleep(3)
    finally:
        stop.set()
        producer.join()
    try:
        assert during > 300  # events really were produced during the outage
        wait_for(
            lambda: consumer.unique() >= set(produced), 60, "every event at the central broker"
        )
        assert consumer.unique() == set(produced)
    finally:
        device.disconnect()
        device.loop_stop()
        consumer.close()
        local.stop()
        central.stop()


def test_the_service_events_log_and_the_central_broker_agree_after_an_outage(tmp_path) -> None:
    """The same with `edgedet run` producing the events (the bundled clip, looped in real
    time): every record of the device's events log arrives centrally."""
    from support.service import ROOT as REPO
    from support.service import Service, model_args, read_log

    central = _broker(tmp_path / "central").start()
    local = _broker(tmp_path / "local", _render(central.port)).start()
    consumer = Consumer(central.port)
    wait_for(lambda: consumer.client.is_connected(), 10, "the consumer to connect")
    time.sleep(0.5)
    run = tmp_path / "run"
    run.mkdir()
    clip = REPO / "models" / "samples" / "vtest_clip.mp4"
    svc = Service(
        run,
        [*model_args(), "--source", str(clip), "--device-id", DEVICE,
         "--mqtt", f"127.0.0.1:{local.port}",
         "--set", "source.loop=true", "--set", "source.realtime=true",
         "--set", "events.expire=1.0"],
    )  # fmt: skip
    try:
        wait_for(lambda: consumer.unique(), 60, "the first events centrally")
        central.stop()
        received_before = len(consumer.unique())
        time.sleep(30)
        logged_during = len(read_log(run / "edgedet-events.jsonl"))
        central.start()
        time.sleep(5)
    finally:
        assert svc.terminate() == 0
    try:
        logged = {(r["id"], r["seq"]) for r in read_log(run / "edgedet-events.jsonl")}
        assert logged_during > received_before  # events were made during the outage
        wait_for(lambda: consumer.unique() >= logged, 60, "every logged event centrally")
        assert consumer.unique() == logged
    finally:
        consumer.close()
        local.stop()
        central.stop()
