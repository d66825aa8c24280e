"""`edgedet service install` through the real CLI, into temporary roots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgedet.service.config import default_config_yaml, load_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "edgedet.service"


def edgedet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgedet", *args], capture_output=True, text=True, timeout=60
    )


def fake_etc(root: Path, groups: dict[str, int], users: str = "") -> None:
    """Minimal passwd/group/shadow/gshadow so `useradd --prefix` can work on ``root``."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n" + users)
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "group").write_text(
        "root:x:0:\n" + "".join(f"{g}:x:{gid}:\n" for g, gid in groups.items())
    )
    (etc / "gshadow").write_text("root:*::\n" + "".join(f"{g}:*::\n" for g in groups))
    for name in ("shadow", "gshadow"):
        os.chmod(etc / name, 0o600)


needs_useradd = pytest.mark.skipif(
    shutil.which("useradd") is None or os.geteuid() != 0,
    reason="needs useradd (passwd package) and root",
)


def test_dry_run_changes_nothing_and_lists_every_step(tmp_path: Path) -> None:
    done = edgedet("service", "install", "--root", str(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
    out = done.stdout
    assert f"would install {tmp_path}/etc/systemd/system/edgedet.service" in out
    assert f"would write the default config to {tmp_path}/etc/edgedet/config.yaml" in out
    assert "useradd --system" in out and "--groups video,plugdev edgedet" in out
    assert "systemctl daemon-reload && systemctl enable --now edgedet" in out


@needs_useradd
def test_install_into_a_root_creates_unit_config_and_user(tmp_path: Path) -> None:
    fake_etc(tmp_path, {"video": 44})  # plugdev missing: created as a system group
    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr

    unit = tmp_path / "etc/systemd/system/edgedet.service"
    assert unit.read_text() == UNIT.read_text()
    assert unit.stat().st_mode & 0o777 == 0o644
    config = tmp_path / "etc/edgedet/config.yaml"
    assert config.read_text() == default_config_yaml()
    load_config(config)  # the installed default is valid

    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc/passwd").read_text().splitlines()
    }
    assert passwd["edgedet"][5] == "/var/lib/edgedet"
    assert passwd["edgedet"][6] == "/usr/sbin/nologin"
    assert int(passwd["edgedet"][2]) < 1000  # a system user
    groups = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert groups["video"][2] == "44"
    assert "edgedet" in groups["video"][3].split(",")
    assert "edgedet" in groups["plugdev"][3].split(",")
    assert not (tmp_path / "var/lib/edgedet").exists()  # systemd's StateDirectory makes it
    assert "systemctl daemon-reload && systemctl enable --now edgedet" in done.stdout


@needs_useradd
def test_second_install_keeps_an_edited_config_and_is_idempotent(tmp_path: Path) -> None:
    fake_etc(tmp_path, {"video": 44, "plugdev": 46})
    assert edgedet("service", "install", "--root", str(tmp_path)).returncode == 0
    config = tmp_path / "etc/edgedet/config.yaml"
    config.write_text("device_id: porch-cam\n")
    passwd_before = (tmp_path / "etc/passwd").read_text()

    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert config.read_text() == "device_id: porch-cam\n"
    assert "keeping existing" in done.stdout
    assert "is up to date" in done.stdout
    assert "edgedet exists, in groups video, plugdev" in done.stdout
    assert (tmp_path / "etc/passwd").read_text() == passwd_before


@needs_useradd
def test_existing_user_gains_missing_groups(tmp_path: Path) -> None:
    fake_etc(
        tmp_path,
        {"video": 44, "plugdev": 46, "edgedet": 990},
        users="edgedet:x:990:990::/var/lib/edgedet:/usr/sbin/nologin\n",
    )
    (tmp_path / "etc/shadow").write_text("root:*:19000:0:99999:7:::\nedgedet:!:19000::::::\n")
    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "usermod --prefix" in done.stdout
    groups = {
        line.split(":")[0]: line.split(":")[3]
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert groups["video"] == "edgedet" and groups["plugdev"] == "edgedet"


def test_root_without_etc_passwd_skips_the_user_with_instructions(tmp_path: Path) -> None:
    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc/systemd/system/edgedet.service").exists()
    assert "user: skipped" in done.stdout and "useradd --system" in done.stdout


def test_bad_root_or_unit_is_one_line_exit_2(tmp_path: Path) -> None:
    done = edgedet("service", "install", "--root", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--root" in done.stderr
    assert "Traceback" not in done.stderr
    done = edgedet(
        "service", "install", "--root", str(tmp_path), "--unit", str(tmp_path / "nope.service")
    )
    assert done.returncode == 2 and "nope.service" in done.stderr
    assert done.stderr.strip().count("\n") == 0
