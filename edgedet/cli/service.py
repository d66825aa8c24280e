"""`edgedet service install`: put the systemd unit, the default config and the user in place.

What it does (each step printed; ``--dry-run`` prints without changing anything):
1. ``<root>/etc/systemd/system/edgedet.service`` from ``systemd/edgedet.service``
   (replaced when it differs, mode 0644);
2. ``<root>/etc/edgedet/config.yaml`` with the documented default config, only when no
   config exists there (an existing one is never overwritten);
3. the system user ``edgedet`` the systemd way: ``<root>/etc/sysusers.d/edgedet.conf``
   from ``systemd/edgedet-sysusers.conf`` (no login shell, home /var/lib/edgedet,
   supplementary groups ``video`` and ``plugdev``, created as system groups when missing),
   applied at once with ``systemd-sysusers --root <root> edgedet.conf`` (idempotent: an
   existing user only gains missing groups). When ``<root>`` has no ``etc/passwd`` yet
   (an image not booted), the file is only put in place: systemd-sysusers.service
   creates the user at first boot.
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

UNIT_NAME = "edgedet.service"
UNIT_DIR = "etc/systemd/system"
SYSUSERS_SOURCE = "edgedet-sysusers.conf"  # in systemd/ (checkout) or share/edgedet/systemd
SYSUSERS_PATH = "etc/sysusers.d/edgedet.conf"
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
        help="install unit, default config and the edgedet user (sysusers.d)",
        description=(
            "Install the systemd unit to /etc/systemd/system, the default config to "
            "/etc/edgedet/config.yaml (an existing config is kept) and the system user "
            "'edgedet' (groups video, plugdev) as /etc/sysusers.d/edgedet.conf, applied "
            "with systemd-sysusers. Run as root."
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
    return _shipped_text(UNIT_NAME, unit, "--unit")


def _shipped_text(name: str, given: str | None, flag: str | None) -> str:
    """A file shipped in ``systemd/`` (or the path ``given`` with ``flag``), as text."""
    from edgedet.errors import ConfigError

    if given:
        path = Path(given)
    else:
        # A source checkout keeps it in systemd/; a wheel installs it to share/edgedet/.
        candidates = [
            Path(__file__).resolve().parents[2] / "systemd" / name,
            Path(sys.prefix) / "share" / "edgedet" / "systemd" / name,
        ]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        if flag is None:
            hint = "this edgedet installation is incomplete; reinstall edgedet"
        elif given is None:
            hint = f"pass the file with {flag} FILE"
        else:
            hint = f"check the path given to {flag}"
        raise ConfigError(f"{name} file {path}: {exc.strerror}; {hint}") from None


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _ensure_user(root: Path, *, dry_run: bool, say) -> None:
    """Put the sysusers.d file in place and apply it with systemd-sysusers."""
    from edgedet.errors import ConfigError

    text = _shipped_text(SYSUSERS_SOURCE, None, None)
    conf = root / SYSUSERS_PATH
    prefix = "would " if dry_run else ""
    if conf.exists() and conf.read_text(encoding="utf-8") == text:
        say(f"user: {conf} is up to date")
    else:
        say(f"user: {prefix}{'replace' if conf.exists() else 'install'} {conf}")
        if not dry_run:
            _write(conf, text, 0o644)
    cmd = ["systemd-sysusers", *([] if root == Path("/") else ["--root", str(root)])]
    cmd.append(conf.name)  # looked up in <root>/etc/sysusers.d
    if root != Path("/") and not (root / "etc" / "passwd").exists():
        say(
            f"user: {root / 'etc/passwd'} does not exist; systemd-sysusers creates the user "
            f"edgedet at first boot (or run on the device: {shlex.join(cmd[:1] + cmd[-1:])})"
        )
        return
    say(f"user: {'would run' if dry_run else 'run'}: {shlex.join(cmd)}")
    if dry_run:
        return
    if shutil.which(cmd[0]) is None:
        raise ConfigError("systemd-sysusers not found; install systemd (apt install systemd)")
    done = subprocess.run(cmd, capture_output=True, text=True)
    output = (done.stderr + done.stdout).strip().splitlines()
    if done.returncode != 0:
        raise ConfigError(
            f"{shlex.join(cmd)} failed: {output[-1] if output else done.returncode}; "
            "run as root (sudo edgedet service install) or try --dry-run"
        )
    for line in output:  # "Creating user 'edgedet' ...", nothing when all exists
        say(f"user: {line}")
    if not output:
        say("user: edgedet exists, in groups video, plugdev")
