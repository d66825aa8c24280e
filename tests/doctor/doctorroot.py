"""Fixture machines for `edgedet doctor --root`: /sys, /proc, /dev and /etc trees on disk.

`FakeRoot` writes the files the kernel, udev, systemd and Debian would have on a Pi, one
method per fact, so a test reads as a description of the machine. `doctor()` runs the
real CLI (``python -m edgedet doctor --root ... --json``) on it; nothing is patched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from support.service import run_edgedet

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "edgedet.service"
ELF_MACHINE = {"aarch64": 0xB7, "arm": 0x28, "x86_64": 0x3E}


class FakeRoot:
    """A machine's filesystem under ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str | bytes, mode: int | None = None) -> Path:
        p = self.path / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        if mode is not None:
            os.chmod(p, mode)
        return p

    # -- the board ---------------------------------------------------------------------

    def board(self, model: str) -> FakeRoot:
        self.write("/proc/device-tree/model", model + "\x00")
        return self

    def throttled(self, word: int) -> FakeRoot:
        self.write("/sys/devices/platform/soc/soc:firmware/get_throttled", f"{word:x}\n")
        return self

    def temperature(self, millidegrees: int) -> FakeRoot:
        self.write("/sys/class/thermal/thermal_zone0/temp", f"{millidegrees}\n")
        return self

    def userland(self, bits: int, machine: str) -> FakeRoot:
        """``/usr/bin/python3 -> python3.11`` whose ELF header says ``bits`` and ``machine``."""
        header = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1, 1]) + bytes(9)
        header += (3).to_bytes(2, "little") + ELF_MACHINE[machine].to_bytes(2, "little")
        self.write("/usr/bin/python3.11", header + bytes(44))
        (self.path / "usr/bin/python3").symlink_to("python3.11")
        return self

    # -- devices -----------------------------------------------------------------------

    def usb_device(
        self, name: str, vendor: str, product: str, speed: str, superspeed_port: bool | None
    ) -> FakeRoot:
        """A USB device in /sys/bus/usb/devices; ``superspeed_port``: its port has a
        SuperSpeed peer (True), has none (False), or the kernel made no port link (None)."""
        dev = f"/sys/bus/usb/devices/{name}"
        self.write(f"{dev}/idVendor", vendor + "\n")
        self.write(f"{dev}/idProduct", product + "\n")
        self.write(f"{dev}/speed", speed + "\n")
        if superspeed_port is not None:
            port = self.path / f"sys/devices/usb-port-of-{name}"
            port.mkdir(parents=True)
            (self.path / dev.lstrip("/") / "port").symlink_to(port)
            if superspeed_port:
                peer = self.path / f"sys/devices/superspeed-peer-of-{name}"
                peer.mkdir(parents=True)
                (port / "peer").symlink_to(peer)
        return self

    def pci_device(self, slot: str, vendor: str, device: str) -> FakeRoot:
        self.write(f"/sys/bus/pci/devices/{slot}/vendor", vendor + "\n")
        self.write(f"/sys/bus/pci/devices/{slot}/device", device + "\n")
        return self

    def kernel_module(self, name: str) -> FakeRoot:
        (self.path / "sys/module" / name).mkdir(parents=True, exist_ok=True)
        return self

    def dev_node(self, rel: str, mode: int = 0o660) -> FakeRoot:
        """A device node stand-in owned by this process's group (see ``groups``)."""
        self.write(rel, "", mode)
        return self

    def video_device(self, index: int, name: str, mode: int = 0o660) -> FakeRoot:
        self.dev_node(f"/dev/video{index}", mode)
        self.write(f"/sys/class/video4linux/video{index}/name", name + "\n")
        return self

    def udev_rule(self, rel: str, text: str) -> FakeRoot:
        self.write(rel, text)
        return self

    # -- users, groups, systemd ----------------------------------------------------------

    def accounts(self, users: dict[str, int], groups: dict[str, tuple[int, list[str]]]) -> FakeRoot:
        """/etc/passwd (name -> uid, primary group = uid) and /etc/group."""
        self.write(
            "/etc/passwd",
            "".join(
                f"{u}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n" for u, uid in users.items()
            ),
        )
        self.write(
            "/etc/group",
            "".join(f"{g}:x:{gid}:{','.join(m)}\n" for g, (gid, m) in groups.items()),
        )
        return self

    def unit(self, text: str | None = None) -> FakeRoot:
        self.write("/etc/systemd/system/edgedet.service", text or UNIT.read_text())
        return self

    def enable(self) -> FakeRoot:
        wants = self.path / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "edgedet.service").symlink_to("/etc/systemd/system/edgedet.service")
        return self

    def config(self, text: str, rel: str = "/etc/edgedet/config.yaml") -> Path:
        return self.write(rel, text)


def doctor(root: Path | str, *args: str, env: dict[str, str] | None = None):
    """Run the real CLI with --json; returns (exit code, document, stderr)."""
    done = run_edgedet(
        "doctor", "--root", str(root), "--json", *args, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    document = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, document, done.stderr


def results(document: dict, area: str, check: str) -> list[dict]:
    return [r for r in document["checks"] if r["area"] == area and r["check"] == check]


def one(document: dict, area: str, check: str) -> dict:
    found = results(document, area, check)
    assert len(found) == 1, f"{area}/{check}: {found} in {document['checks']}"
    return found[0]
