"""The systemd service: unit installed, enabled, active, and its user's groups.

The unit is the one `edgedet service install` writes (``Context.unit_path``, the CLI passes
``/etc/systemd/system/edgedet.service`` under the root);
its ``User=`` and ``SupplementaryGroups=`` say who opens the devices. ``systemctl show`` is
asked only on the live system with systemd running; otherwise the check says why not.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result, Unit, read_text

AREA = "service"
SHOW_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "NRestarts",
)
# exit codes of `edgedet run` (README: Exit codes)
EXIT_MEANING = {
    1: "an unexpected failure (traceback in the journal)",
    2: "a bad config, model or camera (the one-line reason is in the journal)",
}


def read_unit(path: Path | None) -> Unit | None:
    """The unit file at ``path``: its ``[Service]`` and ``[Install]`` settings (repeatable
    keys kept), or None when there is none."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        if sep and section in ("Service", "Install"):
            settings.setdefault(key.strip(), []).append(value.strip())
    return Unit(path, text, settings)


def service_environment(unit: Unit | None) -> dict[str, str]:
    """The directory variables systemd sets for the unit (``LogsDirectory=`` ...), which
    decide where `edgedet run` puts its log and snapshots by default."""
    env = {}
    for key, variable, base in (
        ("LogsDirectory", "LOGS_DIRECTORY", "/var/log"),
        ("StateDirectory", "STATE_DIRECTORY", "/var/lib"),
    ):
        value = unit.get(key) if unit else ""
        if value:
            env[variable] = f"{base}/{value.split()[0]}"
    return env


def unit_config(unit: Unit | None) -> str | None:
    """The ``--config FILE`` the unit's ExecStart passes, or None."""
    words = unit.get("ExecStart").split() if unit else []
    for i, word in enumerate(words):
        if word == "--config" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--config="):
            return word.partition("=")[2]
    return None


def unit_check(ctx: Context) -> Result:
    unit = ctx.unit
    if unit is None:
        where = ctx.shown(ctx.unit_path) if ctx.unit_path else "the edgedet unit"
        return Result(
            AREA, "unit", WARN, f"{where} is not installed", "sudo edgedet service install"
        )
    exe = unit.get("ExecStart").lstrip("@-:+!").split(" ")[0]
    if exe and not ctx.path(exe).exists():
        return Result(
            AREA,
            "unit",
            FAIL,
            f"{ctx.shown(unit.path)} runs {exe}, which does not exist",
            f"create the venv it names: python3 -m venv --system-site-packages "
            f"{Path(exe).parent.parent} && {Path(exe).parent}/pip install 'edgedet[mqtt]'",
        )
    return Result(AREA, "unit", OK, f"{ctx.shown(unit.path)}, runs {exe}")


def enabled_check(ctx: Context) -> Result:
    """Enabled = the ``<target>.wants/`` symlink ``systemctl enable`` makes exists."""
    unit = ctx.unit
    if unit is None:
        return Result(AREA, "enabled", SKIP, "the unit is not installed")
    targets = " ".join(unit.service.get("WantedBy", [])).split() or ["multi-user.target"]
    links = [unit.path.parent / f"{t}.wants" / unit.path.name for t in targets]
    found = [link for link in links if link.is_symlink() or link.exists()]
    if found:
        return Result(AREA, "enabled", OK, f"{ctx.shown(found[0])}")
    return Result(
        AREA,
        "enabled",
        WARN,
        f"not enabled: no {ctx.shown(links[0])} (it will not start at boot)",
        "sudo systemctl enable --now edgedet",
    )


def systemctl_show(unit_name: str) -> str:
    """``systemctl show``'s ``KEY=VALUE`` lines for the unit's state properties."""
    done = subprocess.run(
        ["systemctl", "show", unit_name, "--property=" + ",".join(SHOW_PROPERTIES)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"systemctl exited with {done.returncode}")
    return done.stdout


def unit_state(show_output: str) -> Result:
    """The ``active`` result for ``systemctl show`` output (``KEY=VALUE`` lines).

    OK while active; FAIL once systemd gave up (``failed``); WARN otherwise (inactive,
    or activating between restarts). The last exit is read from ``ExecMainCode`` (1: it
    exited with ``ExecMainStatus``; 2, 3: killed by that signal) and ``Result``.
    """
    props = dict(line.partition("=")[::2] for line in show_output.splitlines() if "=" in line)
    active = props.get("ActiveState", "?")
    state = f"{active} ({props.get('SubState', '?')}), {props.get('NRestarts', '0')} restart(s)"
    status = props.get("ExecMainStatus", "0")
    if props.get("ExecMainCode") in ("2", "3"):
        last = f"last run killed by signal {status}"
    else:
        last = f"last exit status {status}"
        if status.isdigit() and int(status) in EXIT_MEANING:
            last += f": {EXIT_MEANING[int(status)]}"
    if props.get("Result") == "watchdog":
        last += "; the watchdog stopped it (no frame processed within WatchdogSec=)"
    elif props.get("Result") == "start-limit-hit":
        last += "; systemd stopped restarting it (StartLimitBurst=)"
    facts = dict(props)
    if active == "active":
        return Result(AREA, "active", OK, state, facts=facts)
    journal = "see `journalctl -u edgedet -n 30`, fix it, then `sudo systemctl restart edgedet`"
    status_word = FAIL if active == "failed" else WARN
    return Result(AREA, "active", status_word, f"{state}, {last}", journal, facts)


def active_check(ctx: Context) -> Result:
    """Active state and the last exit status, from ``systemctl show`` (live system only)."""
    if ctx.unit is None:
        return Result(AREA, "active", SKIP, "the unit is not installed")
    if not ctx.live:
        return Result(AREA, "active", SKIP, "--root: systemctl reports on the live system only")
    if not ctx.path("/run/systemd/system").is_dir():
        return Result(AREA, "active", SKIP, "systemd is not running here (container or chroot)")
    if shutil.which("systemctl") is None:
        return Result(AREA, "active", SKIP, "no systemctl on PATH")
    try:
        return unit_state(systemctl_show(ctx.unit.path.name))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Result(AREA, "active", WARN, f"systemctl show failed: {exc}", "run it as root")


def _required_groups(ctx: Context) -> dict[str, str]:
    """group -> why the service user needs it."""
    from edgedet.doctor import camera, edgetpu

    needed: dict[str, str] = {}
    kind = camera.source_kind(ctx)
    by_gid = {gid: name for name, (gid, _) in ctx.groups.items()}
    coral = ctx.coral_configured or bool(edgetpu.usb_corals(ctx) or edgetpu.pci_corals(ctx))
    for node in camera.device_nodes(ctx):
        if node.name.startswith("apex_") and not coral:
            continue
        if not node.name.startswith("apex_") and kind == "other":
            continue
        try:
            st = node.stat()
        except OSError:
            continue
        if st.st_mode & stat.S_IROTH and st.st_mode & stat.S_IWOTH:
            continue  # anyone may open it
        group = by_gid.get(st.st_gid, str(st.st_gid))
        if group != "root":
            needed.setdefault(group, f"{ctx.shown(node)} (mode {stat.S_IMODE(st.st_mode):04o})")
    if kind != "other":
        needed.setdefault("video", "cameras and /dev/dma_heap")
    wants_pci = (ctx.cfg.model.edgetpu_device or "").startswith("pci")
    if coral and (edgetpu.usb_corals(ctx) or not wants_pci):
        for group in sorted(edgetpu.rule_groups(ctx)):
            needed.setdefault(group, "the Coral USB (udev rule)")
    return needed


SYSUSERS_DIRS = ("/etc/sysusers.d", "/run/sysusers.d", "/usr/lib/sysusers.d")


def sysusers_declared(ctx: Context) -> dict[str, Path]:
    """Users (``name``) and groups (``group name``) that sysusers.d files under the root
    declare, with the file declaring them; systemd-sysusers creates them at boot."""
    found: dict[str, Path] = {}
    for directory in SYSUSERS_DIRS:
        for conf in ctx.glob(f"{directory}/*.conf"):
            for line in (read_text(conf) or "").splitlines():
                fields = line.split()
                if len(fields) >= 2 and fields[0] in ("u", "u!"):
                    found.setdefault(fields[1], conf)
                    found.setdefault(f"group {fields[1]}", conf)  # u also makes its group
                elif len(fields) >= 2 and fields[0] == "g":
                    found.setdefault(f"group {fields[1]}", conf)
    return found


def user_check(ctx: Context) -> Result:
    """The service user exists and is in the groups its devices belong to."""
    unit = ctx.unit
    user = unit.get("User", "edgedet") if unit else "edgedet"
    supplementary = " ".join(unit.service.get("SupplementaryGroups", [])).split() if unit else []
    facts = {"user": user}
    declared = sysusers_declared(ctx)
    if user not in ctx.users:
        if user in declared:  # an image prepared with --root, not booted yet
            return Result(
                AREA,
                "user",
                WARN,
                f"user {user} is declared in {ctx.shown(declared[user])} but not created yet",
                "reboot, or run `sudo systemd-sysusers` (systemd-sysusers.service creates it)",
                facts,
            )
        return Result(
            AREA,
            "user",
            FAIL if unit else WARN,
            f"user {user} does not exist in /etc/passwd",
            "sudo edgedet service install (creates it in groups video, plugdev)",
            facts,
        )
    absent = [g for g in supplementary if g not in ctx.groups]
    if absent:
        return Result(
            AREA,
            "user",
            FAIL,
            f"the unit's SupplementaryGroups {', '.join(absent)} do not exist in /etc/group: "
            "systemd refuses to start it (status 216/GROUP)",
            "sudo systemd-sysusers"
            if all(f"group {g}" in declared for g in absent)
            else f"sudo groupadd --system {absent[0]}",
            facts,
        )
    _, primary_gid = ctx.users[user]
    member_of = {name for name, (gid, members) in ctx.groups.items() if user in members}
    member_of |= {name for name, (gid, _) in ctx.groups.items() if gid == primary_gid}
    effective = member_of | set(supplementary)
    needed = _required_groups(ctx)
    missing = {g: why for g, why in needed.items() if g not in effective}
    facts.update(groups=sorted(effective), needed=sorted(needed))
    if missing:
        names = ",".join(sorted(missing))
        why = "; ".join(f"{g} for {w}" for g, w in sorted(missing.items()))
        return Result(
            AREA,
            "user",
            FAIL,
            f"{user} is not in group(s) {names}: needed ({why})",
            f"sudo usermod -aG {names} {user} && sudo systemctl restart edgedet",
            facts,
        )
    shown = ", ".join(sorted(effective)) or "no supplementary groups"
    via = " (with the unit's SupplementaryGroups)" if supplementary else ""
    return Result(AREA, "user", OK, f"{user} in {shown}{via}", facts=facts)


CHECKS = [unit_check, enabled_check, active_check, user_check]
