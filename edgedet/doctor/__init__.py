"""`edgedet doctor`: check the environment a detector runs in, one line of fix per problem.

What breaks a Pi + Coral detector is mostly the environment, not the model: a NumPy ABI
clash in a ``--system-site-packages`` venv, a Coral on a USB 2 port, a weak power supply,
a service user outside group ``video``. Each area has one module of checks:

- `edgedet.doctor.pyenv`: Python, NumPy (apt vs pip), OpenCV, the interpreter package
  and XNNPACK;
- `edgedet.doctor.model`: model file, card, sha256, full-integer, Edge TPU compiled;
- `edgedet.doctor.camera`: picamera2/libcamera, ``/dev/video*``, ``/dev/dma_heap``;
- `edgedet.doctor.edgetpu`: Coral USB ids and link speed, PCIe ``/dev/apex_0`` and its
  driver, ``libedgetpu.so.1``, udev rule;
- `edgedet.doctor.board`: throttling flags, SoC temperature, 64-bit userland;
- `edgedet.doctor.service`: unit installed, enabled, active; the service user's groups;
- `edgedet.doctor.outputs`: MQTT broker reachable, HTTP port free, log and state
  directories writable with free space.

A check is a function of a `Context` (filesystem root, config, cached interpreter probe)
returning one `Result` or a list of them. Every filesystem path the checks read
(``/sys``, ``/proc``, ``/dev``, ``/etc``, ``/run``, ``/usr/lib`` ...) goes through
``Context.path``, so ``--root DIR`` runs them on a fixture tree or a mounted SD card.
What belongs to this Python process (its packages, the interpreter, ``libedgetpu``
loading) is always checked in the running environment; checks that only make sense on
the live system (``systemctl``) are skipped under another root.

The interpreter itself is exercised in a child process (`edgedet.doctor.probe`), so a
native crash (XNNPACK under emulation, a broken delegate) becomes a FAIL line instead of
killing the doctor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgedet.doctor.probe import ProbeReport
    from edgedet.service.config import Config

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
STATUSES = (OK, WARN, FAIL, SKIP)


@dataclass(frozen=True)
class Result:
    """One finding. ``fix`` is one line saying what to do; empty for OK and SKIP."""

    area: str
    check: str
    status: str
    detail: str
    fix: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # machine-readable values read

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What every check may look at: the filesystem root, the config and its origin.

    ``cfg`` is the config ``edgedet run`` would use (defaults when the file is broken;
    ``config_error`` then says why). ``bundled_model`` is the model this edgedet ships,
    which lives where edgedet is installed, not under ``root``. ``unit_path`` is where
    `edgedet service install` puts the unit under ``root`` (the CLI knows it).
    """

    root: Path
    cfg: Config
    config_path: Path | None = None
    config_error: str | None = None
    bundled_model: Path | None = None
    unit_path: Path | None = None  # where the systemd unit is installed, under the root
    probe_timeout: float = 120.0
    _probe: ProbeReport | None = field(default=None, init=False, repr=False)

    @property
    def live(self) -> bool:
        """True when the checks look at the running system (``--root /``)."""
        return self.root.resolve() == Path("/")

    def path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` under the root: absolute paths are re-rooted, relative ones kept."""
        p = Path(path)
        if not p.is_absolute():
            return p
        return self.root / p.relative_to("/")

    def read(self, path: str | os.PathLike[str]) -> str | None:
        """The stripped text of a (sysfs) file named as on the device, under the root."""
        return read_text(self.path(path))

    def glob(self, pattern: str) -> list[Path]:
        """Sorted matches of an absolute glob pattern under the root."""
        return sorted(self.root.glob(pattern.lstrip("/")))

    def shown(self, path: Path) -> str:
        """How a path under the root is named in messages: as on the device."""
        if self.live:
            return str(path)
        try:
            return "/" + path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)  # not under the root (the bundled model, a relative path)

    @cached_property
    def model_path(self) -> Path | None:
        """The model ``edgedet run`` would open: the config's, re-rooted, or the bundled one."""
        configured = self.cfg.model.path
        if configured is None:
            return self.bundled_model
        if self.bundled_model is not None and Path(configured) == self.bundled_model:
            return self.bundled_model  # the resolved default lives with edgedet, not in root
        return self.path(configured)

    @cached_property
    def unit(self) -> Unit | None:
        from edgedet.doctor.service import read_unit

        return read_unit(self.unit_path)

    @cached_property
    def groups(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """``/etc/group`` under the root: name -> (gid, members)."""
        out: dict[str, tuple[int, tuple[str, ...]]] = {}
        for fields in _colon_file(self.read("/etc/group")):
            if len(fields) >= 4 and fields[2].isdigit():
                members = tuple(m for m in fields[3].split(",") if m)
                out[fields[0]] = (int(fields[2]), members)
        return out

    @cached_property
    def users(self) -> dict[str, tuple[int, int]]:
        """``/etc/passwd`` under the root: name -> (uid, primary gid)."""
        out: dict[str, tuple[int, int]] = {}
        for fields in _colon_file(self.read("/etc/passwd")):
            if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
                out[fields[0]] = (int(fields[2]), int(fields[3]))
        return out

    @cached_property
    def coral_configured(self) -> bool:
        """The config asks for the Edge TPU (``model.edgetpu`` or an ``_edgetpu`` file)."""
        from edgedet.backends.edgetpu import wants_edgetpu

        model = self.cfg.model.path or ""
        return wants_edgetpu(str(model), self.cfg.model.edgetpu)

    def probe(self) -> ProbeReport:
        """The interpreter probe (run once, in a child process)."""
        if self._probe is None:
            from edgedet.doctor.probe import run_probe

            self._probe = run_probe(self)
        return self._probe


@dataclass(frozen=True)
class Unit:
    """The installed systemd unit: where it is and its ``[Service]`` settings."""

    path: Path
    text: str
    service: dict[str, list[str]]

    def get(self, key: str, default: str = "") -> str:
        values = self.service.get(key)
        return values[-1] if values else default


def read_text(path: Path) -> str | None:
    """The stripped text of a file (a path already under the root), or None when unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _colon_file(text: str | None) -> Iterable[list[str]]:
    for line in (text or "").splitlines():
        if line and not line.startswith("#") and ":" in line:
            yield line.split(":")


Check = Callable[[Context], "Result | list[Result]"]


AREAS = ("python", "model", "camera", "edgetpu", "board", "service", "outputs")


def all_checks(areas: Iterable[str] | None = None) -> list[Check]:
    """The checks of ``areas`` (default: every area), in table order, area by area."""
    from edgedet.doctor import board, camera, edgetpu, model, outputs, pyenv, service

    modules = (pyenv, model, camera, edgetpu, board, service, outputs)
    wanted = set(AREAS if areas is None else areas)
    unknown = wanted - set(AREAS)
    if unknown:
        raise ValueError(f"unknown areas {sorted(unknown)}")  # the CLI validates first
    return [check for module in modules if module.AREA in wanted for check in module.CHECKS]


def run_checks(ctx: Context, checks: list[Check] | None = None) -> list[Result]:
    """Run the checks in order; a config error comes first as its own FAIL line."""
    results: list[Result] = []
    if ctx.config_error:
        results.append(
            Result(
                "config",
                "config",
                FAIL,
                ctx.config_error,
                "fix the key named above (`edgedet config --config FILE` validates it); "
                "the other checks use the defaults",
            )
        )
    elif ctx.config_path is not None:
        results.append(Result("config", "config", OK, f"{ctx.shown(ctx.config_path)} is valid"))
    else:
        results.append(Result("config", "config", OK, "no config file: the defaults"))
    for check in checks if checks is not None else all_checks():
        found = check(ctx)
        results.extend(found if isinstance(found, list) else [found])
    return results


def exit_code(results: list[Result]) -> int:
    """0 when nothing failed, else 1."""
    return 1 if any(r.status == FAIL for r in results) else 0
