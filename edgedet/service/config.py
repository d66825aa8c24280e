"""The `edgedet run` configuration tree: the components' sections, loaded and resolved.

Each section is a frozen dataclass owned by the component it configures, with every key
defined once by ``edgedet.schema.setting`` (type, default, range, one-line doc). This
module only assembles them into ``Config`` and loads it: ``load_config(path, overrides)``
reads the YAML file (optional), applies command-line overrides on top, validates every key
(``edgedet.schema.build``) and resolves the machine-dependent defaults. Anything wrong
raises ``ConfigError`` with one line naming the key path and what is expected, before
anything starts:

- unknown key  → ``config.yaml: unknown key 'model.min_scor'; did you mean 'min_score'?``
- wrong type   → ``config.yaml: model.iou: expected a number in [0, 1], got 'high'``
- out of range → ``--min-score: model.min_score: expected a number in [0, 1], got 1.5``

The flags live in ``edgedet.cli.options``; they become ``Override`` entries here.

Defaults that depend on the machine (resolved by ``load_config``):

- ``model.path``: the bundled model ``ssdlite_mobilenet_v2_person_uint8.tflite``, looked
  up in ``models/`` of the source checkout next to the ``edgedet`` package, then in
  ``<sys.prefix>/share/edgedet/models``.
- ``log.path``: ``$LOGS_DIRECTORY/detections.jsonl`` when systemd sets ``LOGS_DIRECTORY``
  (``LogsDirectory=`` in the unit), else ``./edgedet-detections.jsonl``.
- ``snapshots.directory``: ``$STATE_DIRECTORY/snapshots`` under systemd, else
  ``./edgedet-snapshots``.
- ``device_id``: the host name; ``mqtt.prefix``: ``edgedet/<device_id>``;
  ``mqtt.client_id``: ``edgedet-<device_id>``.
- ``model.min_score``, ``model.iou``, ``model.max_detections``: null means the model
  card's ``defaults`` (resolved by the runner once the model is open).

Adding a section: define its dataclass in the component that owns it (see
``edgedet.schema``) and add one ``name: TheConfig = section(TheConfig)`` line to ``Config``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedet.errors import ConfigError
from edgedet.events.config import (
    EventsConfig,
    HomeAssistantConfig,
    TrackingConfig,
    check_events_config,
    resolve_paths,
)
from edgedet.events.zones import ZoneConfig
from edgedet.models import bundled_model_path
from edgedet.motion import MotionConfig
from edgedet.publishers.http import HttpConfig
from edgedet.publishers.jsonl import LogConfig
from edgedet.publishers.mqtt import MqttConfig
from edgedet.publishers.snapshot import SnapshotsConfig
from edgedet.schema import build, key_type, parse_text, render_yaml, section, setting, to_plain
from edgedet.service.filters import FiltersConfig
from edgedet.sources import SourceConfig

# edgedet.backends.BACKENDS plus auto (kept literal so loading a config imports no backend).
BACKEND_CHOICES = ("auto", "litert", "tflite_runtime", "tensorflow")


@dataclass(frozen=True)
class ModelConfig:
    """The detector: model file, interpreter, thresholds."""

    path: str | None = setting(
        None, doc="null: the bundled ssdlite_mobilenet_v2_person_uint8.tflite"
    )
    labels: str | None = setting(None, doc="label file (one per line); null: the card's labels")
    backend: str = setting(
        "auto", choices=BACKEND_CHOICES, doc="auto | litert | tflite_runtime | tensorflow"
    )
    threads: int | None = setting(
        None, lo=1, hi=64, doc="interpreter threads; null: the interpreter's default"
    )
    edgetpu: bool | None = setting(
        None, doc="null: use the Edge TPU when the model is compiled for it"
    )
    edgetpu_device: str | None = setting(None, doc="e.g. usb, usb:0, pci:0")
    allow_cpu_fallback: bool = setting(False)
    min_score: float | None = setting(
        None, lo=0.0, hi=1.0, doc="keep detections with score >= min_score; null: card default"
    )
    iou: float | None = setting(None, lo=0.0, hi=1.0, doc="NMS IoU threshold; null: card default")
    max_detections: int | None = setting(
        None, lo=1, hi=10000, doc="kept after NMS; null: card default"
    )
    agnostic: bool = setting(False, doc="true: NMS across classes")


@dataclass(frozen=True)
class ServiceConfig:
    """The run loop itself."""

    stall_timeout: float = setting(
        10.0, lo=0.5, hi=3600, doc="no processed frame for this long: /healthz 503, no watchdog"
    )
    status_interval: float = setting(
        5.0, lo=0.5, hi=3600, doc="seconds between status updates (systemd STATUS=, stderr)"
    )
    max_frames: int | None = setting(None, lo=1, doc="stop after this many processed frames")
    summary: bool = setting(True, doc="print a summary when a finite run ends")


@dataclass(frozen=True)
class Config:
    """The whole `edgedet run` configuration. Build it with ``load_config``."""

    device_id: str | None = setting(
        None, doc="null: the host name; used in MQTT topics and records"
    )
    source: SourceConfig = section(SourceConfig)
    model: ModelConfig = section(ModelConfig)
    filters: FiltersConfig = section(FiltersConfig)
    log: LogConfig = section(LogConfig)
    mqtt: MqttConfig = section(MqttConfig)
    http: HttpConfig = section(HttpConfig)
    snapshots: SnapshotsConfig = section(SnapshotsConfig)
    service: ServiceConfig = section(ServiceConfig)
    tracking: TrackingConfig = section(TrackingConfig)
    events: EventsConfig = section(EventsConfig)
    zones: dict[str, ZoneConfig] = setting(
        {}, doc="named zones: {name: {polygon: [[x, y], ...], labels: [...], inertia: 3}}"
    )
    homeassistant: HomeAssistantConfig = section(HomeAssistantConfig)
    motion: MotionConfig = section(MotionConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (tuples become lists)."""
        return to_plain(self)


_HEADER = """\
# edgedet run configuration (YAML). Every key is optional; shown are the defaults.
# Any key can also be set from the command line: --set KEY.PATH=VALUE, or its own flag
# (--source, --model, --min-score, --iou, --log, --mqtt, --http, --device-id ...).
# Unknown keys, wrong types and out-of-range values stop `edgedet run` with exit code 2.
# SIGHUP reloads this file: filters, model thresholds and source take effect at once;
# other changes are reported and need a restart (systemctl restart edgedet).
"""


def default_config_yaml() -> str:
    """The documented default config (commented YAML), as `edgedet config --print-default`."""
    return _HEADER + "\n" + render_yaml(Config).lstrip("\n")


# ---------------------------------------------------------------------------- defaults


def _systemd_dir(variable: str) -> Path | None:
    # systemd may pass several colon-separated directories; the first is ours.
    value = os.environ.get(variable, "").split(":")[0]
    return Path(value) if value else None


def default_log_path() -> str:
    logs = _systemd_dir("LOGS_DIRECTORY")
    return str(logs / "detections.jsonl") if logs else "edgedet-detections.jsonl"


def default_snapshot_dir() -> str:
    state = _systemd_dir("STATE_DIRECTORY")
    return str(state / "snapshots") if state else "edgedet-snapshots"


def _check_consistency(cfg: Config) -> None:
    f = cfg.filters
    if f.min_area > f.max_area:
        raise ConfigError(
            f"filters.min_area ({f.min_area:g}) must not exceed filters.max_area ({f.max_area:g})"
        )
    if f.roi is not None:
        _check_polygon("filters.roi", f.roi)
    if (cfg.source.lores_width is None) != (cfg.source.lores_height is None):
        raise ConfigError(
            "source.lores_width and source.lores_height: set both, or neither (null: the "
            "model's input size)"
        )
    for key in ("regions", "mask"):
        for i, poly in enumerate(getattr(cfg.motion, key)):
            _check_polygon(f"motion.{key}[{i}]", poly)
    if cfg.motion.blur > 1 and cfg.motion.blur % 2 == 0:
        raise ConfigError(f"motion.blur: expected an odd kernel size or 0, got {cfg.motion.blur}")
    if cfg.source.backoff_initial > cfg.source.backoff_max:
        raise ConfigError("source.backoff_initial must not exceed source.backoff_max")
    if cfg.mqtt.password_file and not cfg.mqtt.username:
        raise ConfigError("mqtt.password_file is set but mqtt.username is not; set both")
    check_events_config(cfg.events, cfg.zones, cfg.homeassistant)


def _check_polygon(path: str, poly: Sequence[Any]) -> None:
    if len(poly) < 3:
        raise ConfigError(
            f"{path}: expected a polygon of at least 3 [x, y] points, got {len(poly)}"
        )


def _resolve(cfg: Config) -> Config:
    """Fill the machine-dependent defaults (see the module docstring)."""
    device_id = cfg.device_id or socket.gethostname() or "edgedet"
    model = cfg.model
    if model.path is None:
        bundled = bundled_model_path()
        if bundled is not None:
            model = dataclasses.replace(model, path=str(bundled))
    log = cfg.log
    if log.path is None:
        log = dataclasses.replace(log, path=default_log_path())
    mqtt = cfg.mqtt
    mqtt = dataclasses.replace(
        mqtt,
        prefix=(mqtt.prefix or f"edgedet/{device_id}").rstrip("/"),
        client_id=mqtt.client_id or f"edgedet-{device_id}",
    )
    snaps = cfg.snapshots
    if snaps.directory is None:
        snaps = dataclasses.replace(snaps, directory=default_snapshot_dir())
    events = resolve_paths(
        cfg.events, _systemd_dir("LOGS_DIRECTORY"), _systemd_dir("STATE_DIRECTORY")
    )
    return dataclasses.replace(
        cfg, device_id=device_id, model=model, log=log, mqtt=mqtt, snapshots=snaps, events=events
    )


# ---------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """One value from the command line: ``path`` like ``model.min_score``, ``text`` raw."""

    path: str
    text: str
    flag: str  # the flag it came from, for error messages


def _apply_overrides(raw: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    for ov in overrides:
        try:
            tp, _ = key_type(Config, ov.path)
            value = parse_text(ov.text, tp, ov.path)
        except ConfigError as exc:
            raise ConfigError(f"{ov.flag}: {exc}") from None
        node = raw
        parts = ov.path.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            shorthand = getattr(key_type(Config, ".".join(parts[: i + 1]))[0], "SHORTHAND", None)
            if child is None:
                child = node[part] = {}
            elif shorthand and isinstance(child, (str, int)) and not isinstance(child, bool):
                child = node[part] = {shorthand: child}
            elif not isinstance(child, dict):
                raise ConfigError(f"{ov.flag}: {part} in the config file is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def _flag_for_error(message: str, overrides: list[Override]) -> str | None:
    # Name the flag when the bad key came from one (the last override of a path wins).
    for ov in reversed(overrides):
        if message.startswith(f"{ov.path}:") or message.startswith(f"{ov.path}["):
            return ov.flag
    return None


# ------------------------------------------------------------------------------ loading


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML file as a dict; ConfigError (one line) when missing or malformed."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} does not exist; create it (edgedet config --print-default)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: not valid YAML{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of keys at the top level")
    return raw


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[Override] | None = None
) -> Config:
    """Read ``path`` (optional), apply ``overrides``, validate, resolve defaults.

    Raises ConfigError with one line (key path + what is expected) on any problem.
    """
    raw = read_config_file(path) if path else {}
    raw = _apply_overrides(raw, list(overrides or []))
    origin = str(path) if path else "config"
    if overrides and not path:
        origin = "flags"
    try:
        cfg = build(Config, raw)
        _check_consistency(cfg)
    except ConfigError as exc:
        flag = _flag_for_error(str(exc), overrides or [])
        raise ConfigError(f"{flag or origin}: {exc}") from None
    return _resolve(cfg)
