"""`edgedet service install`: put the systemd unit, the default config and the user in place.

What it does (each step printed; ``--dry-run`` prints without changing anything):
1. ``<root>/etc/systemd/system/edgedet.service`` from ``systemd/edgedet.service``
   (replaced when it differs, mode 0644);
2. ``<root>/etc/edgedet/config.yaml`` with the documented default config, only when no
   config exists there (an existing one is never overwritten);
3. the system user ``edgedet`` (``useradd --system``, no login shell, home
   /var/lib/edgedet) in the supplementary groups ``video`` and ``plugdev`` (created as
   system groups when missing); an existing user only gains missing groups. With
   ``--root DIR`` the user is added to ``DIR/etc/passwd`` through ``useradd --prefix``,
   or skipped (with the command to run on the device) when DIR has no ``etc/passwd``.
Then it prints the next step: ``systemctl daemon-reload && systemctl enable --now edgedet``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

SERVICE_USER = "edgedet"
SERVICE_GROUPS = ("video", "plugdev")
UNIT_NAME = "edgedet.service"
UNIT_DIR = "etc/systemd/system"
CONFIG_PATH = "etc/edgedet/config.yaml"
VENV = "/opt/edgedet/venv"
NEXT_STEP = "systemctl daemon-reload && systemctl enable --now edgedet"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "service",
        help="install the systemd service (unit, default config, user)",
        description="Manage the edgedet systemd service.",
    )
    sub = p.add_subparsers(dest="service_command", metavar="ACTION")
    inst = sub.add_parser(
        "install",
        help="install unit, default config and the edgedet user",
        description=(
            "Install the systemd unit to /etc/systemd/system, the default config to "
            "/etc/edgedet/config.yaml (an existing config is kept) and the system user "
            "'edgedet' (groups video, plugdev). Run as root."
        ),
    )
    inst.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="install into DIR instead of / (e.g. a mounted SD-card image)",
    )
    inst.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    inst.add_argument(
        "--unit",
        metavar="FILE",
        help="unit file to install (default: systemd/edgedet.service of this edgedet)",
    )
    p.set_defaults(func=main, _service_parser=p)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "service_command", None) != "install":
        args._service_parser.print_help()
        return 2
    return install(Path(args.root), dry_run=args.dry_run, unit=args.unit)


def install(root: Path, *, dry_run: bool = False, unit: str | None = None) -> int:
    """Install unit, config and user under ``root``; returns the exit code (0)."""
    from edgedet.errors import ConfigError

    if not root.is_dir():
        raise ConfigError(f"--root {root}: not a directory; create it or pass an existing one")
    unit_text = _unit_text(unit)
    prefix = "would " if dry_run else ""
    say = print

    # 1. unit
    unit_path = root / UNIT_DIR / UNIT_NAME
    if unit_path.exists() and unit_path.read_text() == unit_text:
        say(f"unit: {unit_path} is up to date")
    else:
        verb = "replace" if unit_path.exists() else "install"
        say(f"unit: {prefix}{verb} {unit_path}")
        if not dry_run:
            _write(unit_path, unit_text, 0o644)

    # 2. config, never overwritten
    config_path = root / CONFIG_PATH
    if config_path.exists():
        say(f"config: keeping existing {config_path}")
    else:
        from edgedet.service.config import default_config_yaml

        say(f"config: {prefix}write the default config to {config_path}")
        if not dry_run:
            _write(config_path, default_config_yaml(), 0o644)

    # 3. user and groups
    _ensure_user(root, dry_run=dry_run, say=say)

    # 4. what is left to do
    exe = root / VENV.lstrip("/") / "bin" / "edgedet"
    if not exe.exists():
        say(
            f"note: the unit runs {VENV}/bin/edgedet, which does not exist yet; create it with:\n"
            f"  python3 -m venv --system-site-packages {VENV} && "
            f"{VENV}/bin/pip install 'edgedet[mqtt]'"
        )
    if root != Path("/"):
        say(f"next, on the device: {NEXT_STEP}")
    else:
        say(f"next: {NEXT_STEP}")
    return 0


def _unit_text(unit: str | None) -> str:
    from edgedet.errors import ConfigError

    if unit:
        path = Path(unit)
    else:
        # A source checkout keeps it in systemd/; a wheel installs it to share/edgedet/.
        candidates = [
            Path(__file__).resolve().parents[2] / "systemd" / UNIT_NAME,
            Path(sys.prefix) / "share" / "edgedet" / "systemd" / UNIT_NAME,
        ]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = (
            "pass the unit file with --unit FILE"
            if unit is None
            else "check the path given to --unit"
        )
        raise ConfigError(f"unit file {path}: {exc.strerror}; {hint}") from None


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _names(db: Path) -> dict[str, list[str]]:
    """``name -> fields`` of a passwd/group style file (empty when missing)."""
    try:
        lines = db.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    return {f[0]: f for f in (line.split(":") for line in lines if line and ":" in line)}


def _ensure_user(root: Path, *, dry_run: bool, say) -> None:
    from edgedet.errors import ConfigError

    etc = root / "etc"
    prefix_args = [] if root == Path("/") else ["--prefix", str(root)]
    useradd_cmd = [
        "useradd", "--system", "--user-group", "--no-create-home",
        "--home-dir", "/var/lib/edgedet", "--shell", "/usr/sbin/nologin",
        "--comment", "edgedet service", "--groups", ",".join(SERVICE_GROUPS), SERVICE_USER,
    ]  # fmt: skip
    if root != Path("/") and not (etc / "passwd").exists():
        say(
            f"user: skipped, {etc / 'passwd'} does not exist; on the device run:\n"
            f"  {shlex.join(useradd_cmd)}"
        )
        return
    groups = _names(etc / "group")
    users = _names(etc / "passwd")
    commands: list[list[str]] = []
    for group in SERVICE_GROUPS:
        if group not in groups:
            commands.append(["groupadd", *prefix_args, "--system", group])
    if SERVICE_USER in users:
        members = {g for g, f in groups.items() if SERVICE_USER in f[-1].split(",")}
        missing = [g for g in SERVICE_GROUPS if g not in members]
        if missing:
            commands.append(
                ["usermod", *prefix_args, "--append", "--groups", ",".join(missing), SERVICE_USER]
            )
        else:
            say(f"user: {SERVICE_USER} exists, in groups {', '.join(SERVICE_GROUPS)}")
    else:
        commands.append([useradd_cmd[0], *prefix_args, *useradd_cmd[1:]])
    for cmd in commands:
        say(f"user: {'would run' if dry_run else 'run'}: {shlex.join(cmd)}")
        if dry_run:
            continue
        if shutil.which(cmd[0]) is None:
            raise ConfigError(f"{cmd[0]} not found; install the 'passwd' package (shadow utils)")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise ConfigError(
                f"{shlex.join(cmd)} failed: {detail[-1] if detail else done.returncode}; "
                "run as root (sudo edgedet service install) or try --dry-run"
            )
