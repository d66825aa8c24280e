"""`edgedet run` as a real subprocess, and what its tests need: a clean environment, a
steady clip, a systemd-like notify socket, the JSONL log read back."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_MODEL = ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite"


def edgedet_cmd(*args: str) -> list[str]:
    """``python -m edgedet ARGS`` with this interpreter (and so this checkout)."""
    return [sys.executable, "-m", "edgedet", *args]


def model_args() -> list[str]:
    """``--model`` (and ``--labels``) for the runs: the bundled model.

    ``EDGEDET_TEST_MODEL=PATH[:LABELS]`` points the tests at another model (for working
    on another model).
    """
    override = os.environ.get("EDGEDET_TEST_MODEL")
    if override:
        path, _, labels = override.partition(":")
        return ["--model", path] + (["--labels", labels] if labels else [])
    if not BUNDLED_MODEL.is_file():
        pytest.fail(f"the bundled model {BUNDLED_MODEL} is missing")
    return ["--model", str(BUNDLED_MODEL)]


def run_edgedet(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``edgedet ARGS`` to completion (in ``cwd``, default the current directory) with
    :func:`clean_env`; text output captured."""
    return subprocess.run(
        edgedet_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
        cwd=cwd,
    )


def make_clip(path: Path, frames: int = 40, fps: float = 20.0) -> Path:
    """A short MJPEG AVI with a moving disc; looped and paced (--loop --realtime) it is a
    steady, cheap camera stand-in. The disc is dark, not an isoluminant red: motion
    gating (on by default) works on brightness and must see it move in every frame."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(frames):
        image = np.full((240, 320, 3), 90, np.uint8)
        cv2.circle(image, (40 + 6 * i, 120), 30, (20, 20, 60), -1)
        writer.write(image)
    writer.release()
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without systemd variables that would leak into the child."""
    drop = (
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LOGS_DIRECTORY",
        "STATE_DIRECTORY",
        "JOURNAL_STREAM",
        "INVOCATION_ID",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Service:
    """One `python -m edgedet run ...` process with --http 127.0.0.1:0."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str] | None = None):
        self.workdir = workdir
        self.stdout_path = workdir / "run.stdout"
        self.stderr_path = workdir / "run.stderr"
        cmd = edgedet_cmd("run", "--http", "127.0.0.1:0", *args)
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(self.stdout_path, "wb"),
            stderr=open(self.stderr_path, "wb"),
            env=env or clean_env(),
            cwd=workdir,
        )
        self.port = self._http_port()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def _http_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"HTTP endpoint on http://127\.0\.0\.1:(\d+)/", self.stderr())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"edgedet run exited {self.proc.returncode}:\n{self.stderr()[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError("edgedet run did not start its HTTP endpoint:\n" + self.stderr())

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def metric(self, sample: str) -> float:
        """Value of one sample of /metrics, e.g. ``edgedet_frames_total`` or
        ``edgedet_publish_errors_total{publisher="log"}``; 0 when absent."""
        status, body = self.get("/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def terminate(self, within: float = 5.0) -> int:
        """SIGTERM; the process must exit within ``within`` seconds (the systemd budget)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"edgedet run did not stop within {within} s after SIGTERM:\n"
                + self.stderr()[-3000:]
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def read_log(path: Path) -> list[dict]:
    """Every record of a JSONL log (none when it does not exist yet); fails on a partial
    or corrupt line."""
    data = path.read_bytes() if path.exists() else b""
    assert data == b"" or data.endswith(b"\n"), f"{path} ends inside a record"
    return [json.loads(line) for line in data.decode().splitlines()]


def count_lines(path: Path) -> int:
    """Complete lines in ``path`` so far (0 when it does not exist yet)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def summary_frames(stdout: str) -> int:
    m = re.search(r"frames\s+(\d+) processed", stdout)
    assert m, f"no run summary in:\n{stdout}"
    return int(m.group(1))


def assert_frames_accounted(records: list[dict]) -> None:
    """DESIGN.md: every delivered frame is a record or counted in the next record's dropped."""
    for prev, cur in zip(records, records[1:], strict=False):
        assert cur["frame"] - prev["frame"] - 1 == cur["dropped"], (prev, cur)


class NotifyListener:
    """A systemd-like ``NOTIFY_SOCKET``: a bound AF_UNIX datagram socket recording every
    sd_notify line it receives, with the time it arrived."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self._messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                self._messages += [(now, line) for line in data.decode().splitlines()]

    def all(self) -> list[str]:
        """Every line so far, in order."""
        with self._lock:
            return [line for _, line in self._messages]

    def count(self, message: str) -> int:
        return self.all().count(message)

    def lines(self, prefix: str, since: float = 0.0) -> list[str]:
        """Lines starting with ``prefix`` that arrived at or after ``since`` (monotonic)."""
        with self._lock:
            return [m for t, m in self._messages if m.startswith(prefix) and t >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
