"""With CI=true a skip for something CI installs fails the run; other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest

def test_needs_mosquitto():
    pytest.skip("mosquitto is not installed (apt-get install mosquitto)")

def test_needs_tensorflow():
    pytest.importorskip("no_such_module_tensorflow_stand_in")

@pytest.mark.skipif(True, reason="systemd-analyze is not installed")
def test_needs_systemd_analyze():
    pass

def test_needs_a_tmpfs():
    pytest.skip("cannot mount a tmpfs here")
"""


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip


def test_skips_for_what_ci_provides_fail_under_ci(tmp_path):
    done = run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    # A skip in setup (a skipif mark) turned failure is reported as an error.
    assert "2 failed, 1 skipped, 1 error" in done.stdout
    assert "CI provides mosquitto" in done.stdout
    assert "CI provides tensorflow" in done.stdout
    assert "CI provides systemd-analyze" in done.stdout


def test_outside_ci_they_are_skips(tmp_path):
    done = run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "4 skipped" in done.stdout
