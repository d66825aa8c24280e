"""sd_notify on real AF_UNIX datagram sockets: a filesystem path and an abstract name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edgedet.service.sdnotify import Notifier


def receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_messages_arrive_on_a_socket_path(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with receiver(path) as sock:
        n = Notifier(path)
        assert n.enabled
        n.ready()
        n.status("12.5 fps, 3 detections\nsecond line")
        n.watchdog()
        n.stopping()
        n.notify("EXTEND_TIMEOUT_USEC=5000000\nSTATUS=two")
        got = [sock.recv(4096) for _ in range(5)]
    assert got == [
        b"READY=1",
        b"STATUS=12.5 fps, 3 detections second line",  # one line, as systemctl shows it
        b"WATCHDOG=1",
        b"STOPPING=1",
        b"EXTEND_TIMEOUT_USEC=5000000\nSTATUS=two",
    ]


def test_abstract_socket_from_notify_socket_env(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edgedet-test-{uuid.uuid4().hex}"
    with receiver(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        n = Notifier()
        n.ready()
        assert sock.recv(4096) == b"READY=1"


def test_a_child_process_notifies_through_the_environment(tmp_path: Path) -> None:
    # What systemd does: the service process inherits NOTIFY_SOCKET.
    path = str(tmp_path / "n.sock")
    with receiver(path) as sock:
        code = "from edgedet.service.sdnotify import Notifier; Notifier().ready()"
        env = dict(os.environ, NOTIFY_SOCKET=path)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        data, sender = sock.recvfrom(4096)
    assert data == b"READY=1"


def test_unset_socket_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    n.ready()
    n.watchdog()  # nothing to send to, nothing raised


def test_a_missing_socket_never_raises_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "gone.sock")
    n = Notifier(path)
    for _ in range(5):
        n.watchdog()
    warnings = [r for r in caplog.records if "sd_notify" in r.getMessage()]
    assert len(warnings) == 1
    # The socket appears (systemd restarted?): messages flow again.
    with receiver(path) as sock:
        n.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("30000000", "1", None),  # the watchdog belongs to another process
        ("0", None, None),
        ("garbage", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for key, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, str(os.getpid()) if value == "self" else value)
    assert Notifier().watchdog_interval == expected


def test_unsupported_addresses_disable_notify() -> None:
    n = Notifier("vsock:2:1234")
    assert not n.enabled
    n.ready()
