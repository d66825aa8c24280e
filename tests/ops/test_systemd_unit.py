"""systemd/edgedet.service: systemd's own checks, the required directives, and MDWE safety."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "edgedet.service"
INSTALLED_EXEC = "/opt/edgedet/venv/bin/edgedet"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def directives(text: str) -> dict[str, list[str]]:
    """``Section.Key -> [values]`` (keys may repeat, as in systemd unit files)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an edgedet that exists on this machine.

    ``systemd-analyze verify`` checks that the ExecStart binary exists; the installed path
    /opt/edgedet/venv/bin/edgedet does not exist on a build machine.
    """
    local = Path(sys.executable).with_name("edgedet")
    exe = str(local) if local.exists() else shutil.which("edgedet") or sys.executable
    text = UNIT.read_text()
    assert INSTALLED_EXEC in text
    copy = tmp_path / "edgedet.service"
    copy.write_text(text.replace(INSTALLED_EXEC, exe))
    return copy


@needs_analyze
def test_systemd_analyze_verify_passes_without_warnings(tmp_path: Path) -> None:
    copy = runnable_copy(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


@needs_analyze
def test_security_exposure_is_at_most_1_5(tmp_path: Path) -> None:
    copy = runnable_copy(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for edgedet\.service: (\d+(?:\.\d+)?)", done.stdout)
    assert m, done.stdout + done.stderr
    exposure = float(m.group(1))
    assert exposure <= 1.5, done.stdout


def test_unit_has_the_required_service_settings() -> None:
    d = directives(UNIT.read_text())

    def one(key: str) -> str:
        values = d.get(f"Service.{key}")
        assert values and len(values) == 1, f"{key}: {values}"
        return values[0]

    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "User": "edgedet",
        "SupplementaryGroups": "video plugdev",
        "StateDirectory": "edgedet",
        "LogsDirectory": "edgedet",
        "ConfigurationDirectory": "edgedet",
        "ExecStart": f"{INSTALLED_EXEC} run --config /etc/edgedet/config.yaml",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
        "SystemCallArchitectures": "native",
        "UMask": "0027",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
    }
    for key, value in expected.items():
        assert one(key) == value, key
    assert float(one("RestartSec")) > 0
    families = set(one("RestrictAddressFamilies").split())
    assert (
        {"AF_UNIX", "AF_INET", "AF_INET6"}
        <= families
        <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    )
    allowed = d["Service.DeviceAllow"]
    for group in ("char-video4linux", "char-media", "char-dma_heap", "char-usb_device"):
        assert f"{group} rw" in allowed
    assert not any("*" in v for v in allowed), "DeviceAllow= does not take globs"
    assert "@system-service" in d["Service.SystemCallFilter"]
    # PrivateDevices would hide /dev/video*; it must not be switched on.
    assert d.get("Service.PrivateDevices", ["no"]) == ["no"]
    assert d["Install.WantedBy"] == ["multi-user.target"]


MDWE_CHILD = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_MDWE (65), PR_MDWE_REFUSE_EXEC_GAIN (1): the kernel's MemoryDenyWriteExecute.
if libc.prctl(65, 1, 0, 0, 0) != 0:
    print("unsupported", ctypes.get_errno())
    sys.exit(0)
import numpy as np
from edgedet.detector import Detector
from edgedet.annotate import draw_detections
import cv2
detector = Detector.open(sys.argv[1])
frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
for _ in range(3):
    dets = detector.detect(frame)
ok, _ = cv2.imencode(".jpg", draw_detections(frame, dets))
print("ok", ok, len(dets))
"""


def test_inference_runs_with_memory_deny_write_execute() -> None:
    models = sorted((ROOT / "models").glob("*.tflite"))
    if not models:
        pytest.skip("no bundled model in models/ yet")
    done = subprocess.run(
        [sys.executable, "-c", MDWE_CHILD, str(models[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.stdout.startswith("unsupported"):
        pytest.skip(f"kernel lacks PR_SET_MDWE (errno {done.stdout.split()[1]})")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok True"), done.stdout + done.stderr[-2000:]
