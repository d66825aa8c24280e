"""`source: auto` on a machine without a camera: the demo clip only for the interactive
demo, otherwise one line saying why there is no camera (picamera2's own error)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_VARS = ("INVOCATION_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")
# What apt's simplejpeg (picamera2's JPEG encoder) raises next to a pip NumPy 2.
DTYPE_ERROR = (
    "numpy.dtype size changed, may indicate binary incompatibility. "
    "Expected 96 from C header, got 88 from PyObject"
)

pytestmark = pytest.mark.skipif(
    Path("/dev/video0").exists(), reason="a camera is present: `source: auto` would pick it"
)


def edgedet_run(tmp_path: Path, *args: str, pythonpath: str = "", **env_extra: str):
    env = {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, str(ROOT)) if p)
    env.update(env_extra)
    log = tmp_path / "det.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "edgedet", "run", "--log", str(log), "--http", "off", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    return done, log


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("source:\n  uri: auto\n")
    return path


@pytest.fixture
def broken_picamera2(tmp_path) -> str:
    """A picamera2 whose import fails the way it does on Raspberry Pi OS when pip put
    NumPy 2 in the venv (picamera2 itself is apt-only, so it is not installed here)."""
    package = tmp_path / "site" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ValueError({DTYPE_ERROR!r})\n")
    return str(tmp_path / "site")


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    line = lines[0]
    assert line.startswith("edgedet run: error: source auto: no camera: picamera2 does not import")
    for needle in needles:
        assert needle in line


def test_with_a_config_auto_without_camera_is_an_error_naming_the_import_error(tmp_path, config):
    done, log = edgedet_run(tmp_path, "--config", str(config), "--max-frames", "3")
    assert_one_line_error(done, "ModuleNotFoundError: No module named 'picamera2'")
    assert not log.exists() or log.read_text() == ""


@pytest.mark.parametrize("var", ["INVOCATION_ID", "NOTIFY_SOCKET"])
def test_under_systemd_auto_never_falls_back_to_the_sample_clip(tmp_path, var):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:  # what systemd listens on
        notify.bind(str(tmp_path / "notify"))
        value = "0123456789abcdef" if var == "INVOCATION_ID" else str(tmp_path / "notify")
        done, log = edgedet_run(tmp_path, "--max-frames", "3", **{var: value})
    assert_one_line_error(done, "No module named 'picamera2'")
    assert not log.exists() or log.read_text() == ""


def test_the_reason_is_picamera2s_own_import_error(tmp_path, config, broken_picamera2):
    done, _ = edgedet_run(
        tmp_path, "--config", str(config), "--max-frames", "3", pythonpath=broken_picamera2
    )
    assert_one_line_error(done, f"ValueError: {DTYPE_ERROR}")


def test_picamera2_problem_keeps_the_reason(broken_picamera2, monkeypatch):
    from edgedet.sources import picamera2_available, picamera2_problem

    monkeypatch.syspath_prepend(broken_picamera2)
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    assert picamera2_problem() == f"picamera2 does not import (ValueError: {DTYPE_ERROR})"
    assert picamera2_available() is False


def test_the_interactive_demo_still_runs_on_the_sample_clip(tmp_path, sample_clip, config):
    done, log = edgedet_run(tmp_path, "--max-frames", "2")
    assert done.returncode == 0, done.stderr
    assert sample_clip.name in log.read_text()
    assert "no module named 'picamera2'" in done.stderr.lower()  # the log line says why
