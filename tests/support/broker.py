"""A real mosquitto broker on a free loopback port, and a paho subscriber, for tests.

The ``broker`` and ``stopped_broker`` fixtures are made available to every test by
tests/conftest.py.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.waiting import free_port, wait_for


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if Path(candidate).is_file():
            return candidate
    return None


class Broker:
    """One mosquitto process; can be stopped, killed and started again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        # `user root`: tests run as root in CI; stops mosquitto dropping to its own user.
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "user root\n"
            "log_dest stderr\n"
            "log_type all\n"  # includes one line per PUBLISH received (see received())
        )
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 10.0) -> Broker:
        assert self.proc is None, "broker already running"
        self._log = open(self.workdir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=self._log, stderr=subprocess.STDOUT
        )

        def accepting() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.workdir / "mosquitto.log").read_text(errors="replace")
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(accepting, timeout, "mosquitto to accept connections")
        return self

    def received(self, client_id: str, topic: str) -> int:
        """How many PUBLISH packets on ``topic`` the broker got from ``client_id`` (its log)."""
        path = self.workdir / "mosquitto.log"
        if not path.exists():
            return 0
        needle = f"Received PUBLISH from {client_id} ("
        quoted = f"'{topic}'"
        return sum(
            1
            for line in path.read_text(errors="replace").splitlines()
            if needle in line and quoted in line
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to clients."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def _stop(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A paho client subscribed to ``topic`` that records every message it receives."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.subscriptions = 0  # SUBACKs received; grows by one after each reconnect
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, 10, "the test subscriber to subscribe")

    def _on_subscribe(self, client, userdata, mid, reason_codes, props) -> None:
        self.subscriptions += 1
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout: float = 5.0) -> bytes | None:
    """The retained payload on ``topic`` as a fresh subscriber sees it (None if none)."""
    import paho.mqtt.client as mqtt

    got: list[bytes] = []
    done = threading.Event()

    def on_message(client, userdata, msg) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
        done.set()

    def on_subscribe(client, userdata, mid, rcs, props) -> None:
        # Retained messages are sent before SUBACK handling completes; give the loop a
        # moment, then conclude there is none.
        threading.Timer(0.5, done.set).start()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


@pytest.fixture
def broker(tmp_path: Path):
    """A running mosquitto on a free loopback port (skips when mosquitto is absent)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Broker(workdir).start()
    yield b
    b.stop()


@pytest.fixture
def stopped_broker(tmp_path: Path):
    """A mosquitto configured on a free port but not started: ``.start()`` it later."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Broker(workdir)
    yield b
    b.stop()
