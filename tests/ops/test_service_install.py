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
SYSUSERS = ROOT / "systemd" / "edgedet-sysusers.conf"


def edgedet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgedet", *args], capture_output=True, text=True, timeout=60
    )


def fake_etc(root: Path, groups: dict[str, int], users: str = "") -> None:
    """A minimal passwd/group/shadow/gshadow, as in an image, for systemd-sysusers --root."""
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


def table(path: Path) -> dict[str, list[str]]:
    """name -> fields of a passwd/group file."""
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


needs_sysusers = pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or os.geteuid() != 0,
    reason="needs systemd-sysusers (systemd package) and root",
)


def test_dry_run_changes_nothing_and_lists_every_step(tmp_path: Path) -> None:
    fake_etc(tmp_path, {"video": 44})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = edgedet("service", "install", "--root", str(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    out = done.stdout
    assert f"would install {tmp_path}/etc/systemd/system/edgedet.service" in out
    assert f"would write the default config to {tmp_path}/etc/edgedet/config.yaml" in out
    assert f"would install {tmp_path}/etc/sysusers.d/edgedet.conf" in out
    assert f"would run: systemd-sysusers --root {tmp_path} edgedet.conf" in out
    assert "systemctl daemon-reload && systemctl enable --now edgedet" in out


@needs_sysusers
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
    sysusers = tmp_path / "etc/sysusers.d/edgedet.conf"
    assert sysusers.read_text() == SYSUSERS.read_text()
    assert sysusers.stat().st_mode & 0o777 == 0o644

    passwd = table(tmp_path / "etc/passwd")
    assert passwd["edgedet"][5] == "/var/lib/edgedet"
    assert passwd["edgedet"][6] == "/usr/sbin/nologin"
    assert int(passwd["edgedet"][2]) < 1000  # a system user
    groups = table(tmp_path / "etc/group")
    assert groups["video"][2] == "44"
    assert "edgedet" in groups["video"][3].split(",")
    assert "edgedet" in groups["plugdev"][3].split(",")
    assert int(groups["plugdev"][2]) < 1000
    assert passwd["edgedet"][3] == groups["edgedet"][2]  # its own primary group
    assert not (tmp_path / "var/lib/edgedet").exists()  # systemd's StateDirectory makes it
    assert "Creating user 'edgedet'" in done.stdout
    assert "systemctl daemon-reload && systemctl enable --now edgedet" in done.stdout


@needs_sysusers
def test_second_install_keeps_an_edited_config_and_is_idempotent(tmp_path: Path) -> None:
    fake_etc(tmp_path, {"video": 44, "plugdev": 46})
    assert edgedet("service", "install", "--root", str(tmp_path)).returncode == 0
    config = tmp_path / "etc/edgedet/config.yaml"
    config.write_text("device_id: porch-cam\n")
    passwd_before = (tmp_path / "etc/passwd").read_text()
    group_before = (tmp_path / "etc/group").read_text()

    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert config.read_text() == "device_id: porch-cam\n"
    assert "keeping existing" in done.stdout
    assert done.stdout.count("is up to date") == 2  # the unit and the sysusers.d file
    assert "edgedet exists, in groups video, plugdev" in done.stdout
    assert (tmp_path / "etc/passwd").read_text() == passwd_before
    assert (tmp_path / "etc/group").read_text() == group_before


@needs_sysusers
def test_existing_user_gains_missing_groups(tmp_path: Path) -> None:
    fake_etc(
        tmp_path,
        {"video": 44, "plugdev": 46, "edgedet": 990},
        users="edgedet:x:990:990::/var/lib/edgedet:/usr/sbin/nologin\n",
    )
    (tmp_path / "etc/shadow").write_text("root:*:19000:0:99999:7:::\nedgedet:!:19000::::::\n")
    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    groups = {name: f[3] for name, f in table(tmp_path / "etc/group").items()}
    assert groups["video"] == "edgedet" and groups["plugdev"] == "edgedet"
    assert table(tmp_path / "etc/passwd")["edgedet"][2] == "990"  # the same user, kept


def test_root_without_etc_passwd_leaves_the_user_to_first_boot(tmp_path: Path) -> None:
    done = edgedet("service", "install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc/systemd/system/edgedet.service").exists()
    assert (tmp_path / "etc/sysusers.d/edgedet.conf").read_text() == SYSUSERS.read_text()
    assert not (tmp_path / "etc/passwd").exists()
    assert "creates the user edgedet at first boot" in done.stdout


@needs_sysusers
def test_the_shipped_sysusers_file_is_valid_for_systemd_sysusers(tmp_path: Path) -> None:
    fake_etc(tmp_path, {})
    done = subprocess.run(
        ["systemd-sysusers", "--root", str(tmp_path), "--dry-run", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'edgedet'" in done.stderr + done.stdout
    assert "Failed" not in done.stderr and "Ignoring" not in done.stderr


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
