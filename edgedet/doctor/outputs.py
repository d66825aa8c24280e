"""Where the results go: MQTT broker reachable, HTTP port free, log and state directories.

The broker and the HTTP port are checked on this machine's network stack (``--root`` does
not change them): a TCP connect to ``mqtt.host:mqtt.port``, a bind on
``http.host:http.port``. A port that is taken is fine when the one taking it is a running
edgedet (its ``/healthz`` answers).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result

AREA = "outputs"
CONNECT_TIMEOUT = 3.0
MIN_FREE_BYTES = 100_000_000  # below this a directory is WARN whatever it holds
SNAPSHOT_BYTES = 300_000  # a generous annotated JPEG, for the snapshots budget


def broker_check(ctx: Context) -> Result:
    mqtt = ctx.cfg.mqtt
    if not mqtt.enabled:
        return Result(AREA, "mqtt broker", SKIP, "mqtt.enabled is false")
    where = f"{mqtt.host}:{mqtt.port}"
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, socket.gaierror):
            fix = f"mqtt.host {mqtt.host!r} does not resolve: fix mqtt.host"
        elif mqtt.host in ("localhost", "127.0.0.1", "::1"):
            fix = (
                "start the broker: sudo apt-get install mosquitto && "
                "sudo systemctl enable --now mosquitto (or fix mqtt.port)"
            )
        else:
            fix = "start the broker there, open its firewall, or fix mqtt.host / mqtt.port"
        return Result(AREA, "mqtt broker", FAIL, f"cannot connect to {where}: {reason}", fix)
    return Result(AREA, "mqtt broker", OK, f"{where} accepts TCP connections")


def _healthz(host: str, port: int) -> str | None:
    """The ``status`` a running edgedet's /healthz reports on host:port, or None."""
    shown = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(
            f"http://{shown}:{port}/healthz", timeout=CONNECT_TIMEOUT
        ) as response:
            body = response.read(4096)
    except urllib.error.HTTPError as exc:  # 503 while stalled still carries the JSON
        body = exc.read(4096)
    except (OSError, ValueError):
        return None
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        return None
    return str(status) if status else None


def http_port_check(ctx: Context) -> Result:
    http = ctx.cfg.http
    if not http.enabled:
        return Result(AREA, "http port", SKIP, "http.enabled is false")
    if http.port == 0:
        return Result(AREA, "http port", OK, "http.port 0: a free port is picked at start")
    where = f"{http.host}:{http.port}"
    family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As the HTTP publisher binds (allow_reuse_address), so TIME_WAIT does not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((http.host, http.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return Result(
                    AREA,
                    "http port",
                    FAIL,
                    f"cannot bind {where}: {exc.strerror or exc}",
                    "set http.host to an address of this machine (127.0.0.1)",
                )
            status = _healthz(http.host, http.port)
            if status == "ok":
                return Result(AREA, "http port", OK, f"{where} is served by a running edgedet")
            if status is not None:
                return Result(
                    AREA,
                    "http port",
                    WARN,
                    f"{where} is served by a running edgedet whose /healthz is {status!r}",
                    "see service / active and `journalctl -u edgedet`",
                )
            return Result(
                AREA,
                "http port",
                FAIL,
                f"{where} is in use by another program",
                f"stop it (`ss -ltnp 'sport = :{http.port}'` names it) or set http.port",
            )
    return Result(AREA, "http port", OK, f"{where} is free")


def _resolve(ctx: Context, path: str) -> Path:
    """A config path as the service sees it: absolute ones under the root."""
    p = Path(path)
    return ctx.path(p) if p.is_absolute() else Path.cwd() / p


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(directory: Path) -> str | None:
    """None when a file can be created in ``directory``, else why not."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".edgedet-doctor-"):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def directory_check(ctx: Context, name: str, directory: Path, need: int, what: str) -> Result:
    """``directory`` (or the parent it will be created in) is writable with ``need`` bytes."""
    existing = _existing(directory)
    shown = ctx.shown(directory)
    created = "" if existing == directory else f" (to be created in {ctx.shown(existing)})"
    if not existing.is_dir():
        return Result(AREA, name, FAIL, f"{shown}: {ctx.shown(existing)} is not a directory",
                      f"point {what} at a directory")  # fmt: skip
    problem = _writable(existing)
    if problem:
        return Result(
            AREA,
            name,
            FAIL,
            f"{shown}{created} is not writable by uid {os.geteuid()}: {problem}",
            f"sudo chown edgedet {ctx.shown(existing)}, or set {what}",
        )
    usage = shutil.disk_usage(existing)
    free_mb, need_mb = usage.free / 1e6, need / 1e6
    detail = f"{shown}{created}: writable, {free_mb:,.0f} MB free, needs up to {need_mb:,.0f} MB"
    facts = {"path": str(directory), "free_bytes": usage.free, "need_bytes": need}
    if usage.free < need:
        return Result(AREA, name, FAIL, detail, f"free space on that disk or lower {what}", facts)
    if usage.free < max(2 * need, MIN_FREE_BYTES) or usage.free < 0.05 * usage.total:
        return Result(AREA, name, WARN, detail + " (low)", "free space on that disk", facts)
    return Result(AREA, name, OK, detail, facts=facts)


def log_dir_check(ctx: Context) -> Result:
    log = ctx.cfg.log
    if not log.enabled or not log.path:
        return Result(AREA, "log directory", SKIP, "log.enabled is false")
    path = _resolve(ctx, log.path)
    need = log.max_bytes * (log.backups + 1)  # the rotated log at its largest
    return directory_check(ctx, "log directory", path.parent, need, "log.path / log.max_bytes")


def state_dir_check(ctx: Context) -> Result:
    snaps = ctx.cfg.snapshots
    if snaps.enabled and snaps.directory:
        need = snaps.keep * SNAPSHOT_BYTES
        return directory_check(
            ctx, "state directory", _resolve(ctx, snaps.directory), need, "snapshots.directory"
        )
    unit = ctx.unit
    if unit is not None and unit.get("StateDirectory"):
        state = ctx.path(f"/var/lib/{unit.get('StateDirectory').split()[0]}")
        return directory_check(ctx, "state directory", state, 0, "StateDirectory=")
    return Result(AREA, "state directory", SKIP, "snapshots.enabled is false, no unit installed")


CHECKS = [broker_check, http_port_check, log_dir_check, state_dir_check]
