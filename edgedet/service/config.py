"""The `edgedet run` configuration: YAML validated into frozen dataclasses at start-up.

One tree, one place. ``load_config(path, overrides)`` reads the YAML file (optional),
applies flag overrides on top, validates every key and resolves the environment-dependent
defaults (bundled model, log path, device id, MQTT prefix). Anything wrong raises
``ConfigError`` with one line naming the key path and what is expected, before anything
starts:

- unknown key  → ``config.yaml: unknown key 'model.min_scor'; did you mean 'min_score'?``
- wrong type   → ``config.yaml: model.iou: expected a number, got 'high'``
- out of range → ``--min-score: model.min_score: expected a number in [0, 1], got 1.5``

Every key can be set from the command line: a few have their own flag (``--source``,
``--model``, ``--min-score`` ...; see ``add_config_arguments``) and any key can be set with
``--set KEY.PATH=VALUE`` (VALUE is parsed as YAML). Flags override the file.

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
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import socket
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedet.errors import ConfigError
from edgedet.models import bundled_model_path
from edgedet.motion import MotionConfig

# edgedet.backends.BACKENDS plus auto (kept literal so loading a config imports no backend).
BACKEND_CHOICES = ("auto", "litert", "tflite_runtime", "tensorflow")


def _f(
    default: Any = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    int_as_str: bool = False,
) -> Any:
    """A config field with its validation limits kept beside it (in ``metadata``)."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices, "int_as_str": int_as_str}
    if isinstance(default, list):
        raise TypeError("use tuples for sequence defaults")  # frozen defaults only
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from (see ``edgedet.sources``)."""

    # auto | picamera2 | camera index | /dev/videoN | rtsp://, http(s):// URL | file | folder
    uri: str = _f("auto", int_as_str=True)
    loop: bool = _f(False)  # video file / image folder: start again at the end
    # video file / folder: False = as fast as inference consumes (nothing dropped);
    # True = paced at the file's FPS like a live camera (frames inference misses are dropped)
    realtime: bool = _f(False)
    width: int | None = _f(None, lo=16, hi=8192)  # camera capture size request
    height: int | None = _f(None, lo=16, hi=8192)
    fps: float | None = _f(None, lo=0.1, hi=1000)  # camera rate request; image folder rate
    lores_width: int = _f(640, lo=64, hi=4096)  # picamera2 inference stream
    lores_height: int = _f(480, lo=64, hi=4096)
    read_timeout: float = _f(5.0, lo=0.1, hi=600)  # no frame for this long → reconnect
    backoff_initial: float = _f(0.5, lo=0.01, hi=60)  # first reconnect delay, doubled after
    backoff_max: float = _f(30.0, lo=0.01, hi=30)  # reconnect delay cap


@dataclass(frozen=True)
class ModelConfig:
    """The detector (``edgedet.detector.Detector.open`` arguments and thresholds)."""

    path: str | None = _f(None)  # null → bundled model
    labels: str | None = _f(None)  # label file, one per line; overrides the card's labels
    backend: str = _f("auto", choices=BACKEND_CHOICES)
    threads: int | None = _f(None, lo=1, hi=64)
    edgetpu: bool | None = _f(None)  # null → use the Edge TPU when the model is compiled for it
    edgetpu_device: str | None = _f(None)  # e.g. usb, usb:0, pci:0
    allow_cpu_fallback: bool = _f(False)
    min_score: float | None = _f(None, lo=0.0, hi=1.0)  # null → model card default
    iou: float | None = _f(None, lo=0.0, hi=1.0)  # NMS IoU threshold; null → card default
    max_detections: int | None = _f(None, lo=1, hi=10000)  # null → card default
    agnostic: bool = _f(False)  # class-agnostic NMS


@dataclass(frozen=True)
class FiltersConfig:
    """Post-NMS user filters (``edgedet.service.filters``)."""

    labels: tuple[str, ...] = _f(())  # allow-list; empty = every label
    min_score: dict[str, float] = _f({}, lo=0.0, hi=1.0)  # per-label score floor
    min_area: float = _f(0.0, lo=0.0, hi=1.0)  # normalized box area (fraction of the frame)
    max_area: float = _f(1.0, lo=0.0, hi=1.0)
    roi: tuple[tuple[float, float], ...] | None = _f(None, lo=0.0, hi=1.0)  # [[x, y], ...]


@dataclass(frozen=True)
class LogConfig:
    """The JSON-lines detections log (one DESIGN.md record per processed frame)."""

    enabled: bool = _f(True)
    path: str | None = _f(None)  # null → $LOGS_DIRECTORY/detections.jsonl or ./edgedet-...
    max_bytes: int = _f(10_000_000, lo=1024)  # rotate when the file would exceed this
    backups: int = _f(5, lo=0, hi=1000)  # rotated files kept
    queue_size: int = _f(1000, lo=1, hi=1_000_000)


@dataclass(frozen=True)
class MqttConfig:
    """MQTT to a broker on the device (topics in DESIGN.md)."""

    enabled: bool = _f(False)
    host: str = _f("localhost")
    port: int = _f(1883, lo=1, hi=65535)
    prefix: str | None = _f(None)  # null → edgedet/<device_id>
    client_id: str | None = _f(None)  # null → edgedet-<device_id>
    username: str | None = _f(None)
    password_file: str | None = _f(None)  # the password is read from this file, never logged
    keepalive: int = _f(30, lo=5, hi=3600)
    tls: bool = _f(False)
    stats_interval: float = _f(10.0, lo=0.5, hi=86400)
    queue_size: int = _f(1000, lo=1, hi=1_000_000)


@dataclass(frozen=True)
class HttpConfig:
    """Loopback HTTP: /healthz, /metrics, /latest, /snapshot.jpg."""

    enabled: bool = _f(True)
    host: str = _f("127.0.0.1")
    port: int = _f(8080, lo=0, hi=65535)  # 0 → a free port


@dataclass(frozen=True)
class SnapshotsConfig:
    """Annotated JPEGs written when chosen labels appear."""

    enabled: bool = _f(False)
    directory: str | None = _f(None)  # null → $STATE_DIRECTORY/snapshots or ./edgedet-snapshots
    labels: tuple[str, ...] = _f(("person",))
    min_interval: float = _f(10.0, lo=0.0, hi=86400)  # seconds between snapshots
    keep: int = _f(100, lo=1, hi=1_000_000)


@dataclass(frozen=True)
class ServiceConfig:
    """The run loop itself."""

    stall_timeout: float = _f(10.0, lo=0.5, hi=3600)  # no frame for this long → unhealthy
    status_interval: float = _f(5.0, lo=0.5, hi=3600)  # seconds between STATUS= lines
    max_frames: int | None = _f(None, lo=1)  # stop after this many processed frames
    summary: bool = _f(True)  # print a summary at the end of a finite run


@dataclass(frozen=True)
class Config:
    """The whole `edgedet run` configuration. Build it with ``load_config``."""

    device_id: str | None = _f(None)  # null → host name
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    snapshots: SnapshotsConfig = field(default_factory=SnapshotsConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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


# -------------------------------------------------------------------------- validation


def _suggest(name: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if near:
        return f"; did you mean '{near[0]}'?"
    return f"; valid keys: {', '.join(valid)}"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range_text(meta: dict[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f" in {'(' if meta.get('lo_open') else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f" >= {lo:g}"
    if hi is not None:
        return f" <= {hi:g}"
    return ""


def _check_range(value: float, meta: dict[str, Any], path: str, what: str) -> None:
    lo, hi = meta.get("lo"), meta.get("hi")
    bad = (lo is not None and value < lo) or (hi is not None and value > hi)
    if bad:
        raise ConfigError(f"{path}: expected {what}{_range_text(meta)}, got {_describe(value)}")


def _number(value: Any, tp: type, path: str, meta: dict[str, Any]) -> float | int:
    what = "an integer" if tp is int else "a number"
    ok = isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        ok = ok or isinstance(value, float)
    if not ok:
        raise ConfigError(f"{path}: expected {what}{_range_text(meta)}, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value}")
    _check_range(value, meta, path, what)
    return tp(value)


def _convert(value: Any, tp: Any, path: str, meta: dict[str, Any]) -> Any:
    """Validate ``value`` against the annotation ``tp``; return it in the typed form."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], path, meta)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_describe(value)}")
        return value
    if tp in (int, float):
        return _number(value, tp, path, meta)
    if tp is str:
        if meta.get("int_as_str") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_describe(value)}")
        choices = meta.get("choices")
        if choices and value not in choices:
            near = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(
                f"{path}: expected one of {', '.join(choices)}, got {_describe(value)}{hint}"
            )
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is str and any(not isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: expected a list of strings, got {_describe(value)}")
            return tuple(_convert(v, args[0], f"{path}[{i}]", meta) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(
                f"{path}: expected a list of {len(args)} numbers, got {_describe(value)}"
            )
        return tuple(
            _convert(v, a, f"{path}[{i}]", meta)
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of label: value, got {_describe(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, key_tp):
                raise ConfigError(f"{path}: expected {key_tp.__name__} keys, got {_describe(k)}")
            out[k] = _convert(v, val_tp, f"{path}.{k}", meta)
        return out
    raise TypeError(f"unsupported config annotation {tp!r} at {path}")  # programming error


def _build(cls: type, raw: Any, path: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, rejecting unknown keys."""
    if raw is None:
        raw = {}
    where = f"{path}: " if path else ""
    if cls is SourceConfig and isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = {"uri": raw}  # `source: /dev/video0` shorthand
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}expected a mapping of keys, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ConfigError(f"unknown key '{key_path}'{_suggest(str(key), list(fields))}")
        kwargs[key] = _convert(value, hints[key], key_path, dict(fields[key].metadata))
    return cls(**kwargs)


def _check_consistency(cfg: Config) -> None:
    f = cfg.filters
    if f.min_area > f.max_area:
        raise ConfigError(
            f"filters.min_area ({f.min_area:g}) must not exceed filters.max_area ({f.max_area:g})"
        )
    if f.roi is not None and len(f.roi) < 3:
        raise ConfigError(
            f"filters.roi: expected a polygon of at least 3 [x, y] points, got {len(f.roi)}"
        )
    for key in ("regions", "mask"):
        for i, poly in enumerate(getattr(cfg.motion, key)):
            if len(poly) < 3:
                raise ConfigError(
                    f"motion.{key}[{i}]: expected a polygon of at least 3 [x, y] points, "
                    f"got {len(poly)}"
                )
    if cfg.motion.blur > 1 and cfg.motion.blur % 2 == 0:
        raise ConfigError(f"motion.blur: expected an odd kernel size or 0, got {cfg.motion.blur}")
    if cfg.source.backoff_initial > cfg.source.backoff_max:
        raise ConfigError("source.backoff_initial must not exceed source.backoff_max")
    if cfg.mqtt.password_file and not cfg.mqtt.username:
        raise ConfigError("mqtt.password_file is set but mqtt.username is not; set both")


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
    return dataclasses.replace(
        cfg, device_id=device_id, model=model, log=log, mqtt=mqtt, snapshots=snaps
    )


# ---------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """One value from the command line: ``path`` like ``model.min_score``, ``text`` raw."""

    path: str
    text: str
    flag: str  # the flag it came from, for error messages


def _field_type(path: str) -> tuple[Any, dict[str, Any]]:
    cls: Any = Config
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(f"unknown key '{path}': '{'.'.join(parts[:i])}' has no sub-keys")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            prefix = ".".join(parts[:i])
            shown = f"{prefix}.{part}" if prefix else part
            raise ConfigError(f"unknown key '{shown}'{_suggest(part, list(fields))}")
        tp = typing.get_type_hints(cls)[part]
        meta = dict(fields[part].metadata)
        cls = tp
    return cls, meta


def _parse_flag_text(text: str, tp: Any, path: str) -> Any:
    """Flag text → Python value; types follow the key so ``--device-id 0123`` stays text."""
    import yaml

    base = tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        base = next(a for a in typing.get_args(tp) if a is not type(None))
        if text.strip().lower() in ("null", "none", "~"):
            return None
    if base is str:
        return text
    if base in (int, float):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text  # validation reports it with the key path
    if base is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse {text!r} as YAML ({line})") from None


def _apply_overrides(raw: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    for ov in overrides:
        try:
            tp, _ = _field_type(ov.path)
            value = _parse_flag_text(ov.text, tp, ov.path)
        except ConfigError as exc:
            raise ConfigError(f"{ov.flag}: {exc}") from None
        node = raw
        parts = ov.path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, (str, int)) and part == "source":
                child = node[part] = {"uri": child}
            elif not isinstance(child, dict):
                raise ConfigError(f"{ov.flag}: {part} in the config file is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def _split_host_port(text: str, flag: str, default_port: int) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(default_port)
    host = host.strip("[]")  # [::1]:8080
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {text!r}") from None
    if not host or not 0 <= port <= 65535:
        raise ConfigError(f"{flag}: expected HOST:PORT with a port in [0, 65535], got {text!r}")
    return host, port


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by `edgedet run`, `edgedet bench` and `edgedet config`."""
    g = parser.add_argument_group("configuration (each flag overrides the config file)")
    g.add_argument("--config", metavar="FILE", help="YAML config file")
    g.add_argument(
        "--source",
        metavar="SRC",
        help="auto, picamera2, camera index, "
        "/dev/videoN, rtsp:// or http:// URL, video file or image folder",
    )
    g.add_argument("--model", metavar="PATH", help="model .tflite (default: the bundled model)")
    g.add_argument("--labels", metavar="FILE", help="label file, one label per line")
    g.add_argument("--min-score", metavar="F", help="score threshold (default: model card)")
    g.add_argument("--iou", metavar="F", help="NMS IoU threshold (default: model card)")
    g.add_argument("--max-detections", metavar="N", help="detections kept per frame after NMS")
    g.add_argument("--threads", metavar="N", help="interpreter threads")
    g.add_argument("--backend", metavar="NAME", help="auto, litert, tflite_runtime")
    g.add_argument("--log", metavar="PATH", help="JSON-lines detections log ('off' disables)")
    g.add_argument("--mqtt", metavar="HOST:PORT", help="publish to this MQTT broker")
    g.add_argument("--http", metavar="HOST:PORT", help="HTTP endpoint address, or 'off'")
    g.add_argument("--device-id", metavar="ID", help="device id (default: host name)")
    g.add_argument("--loop", action="store_true", default=None, help="loop a video file/folder")
    g.add_argument(
        "--realtime",
        action="store_true",
        default=None,
        help="pace a video file/folder at its FPS, dropping what inference misses",
    )
    g.add_argument("--max-frames", metavar="N", help="stop after N processed frames")
    g.add_argument(
        "--no-summary",
        action="store_true",
        default=None,
        help="no summary at the end of a finite run",
    )
    g.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="set_",
        help="set any config key, e.g. --set filters.min_area=0.01 (repeatable)",
    )


def overrides_from_args(args: argparse.Namespace) -> list[Override]:
    """Translate parsed flags into ``Override`` entries, in a stable order."""
    out: list[Override] = []

    def put(path: str, text: Any, flag: str) -> None:
        out.append(Override(path, str(text), flag))

    simple = [
        ("source", "source.uri", "--source"),
        ("model", "model.path", "--model"),
        ("labels", "model.labels", "--labels"),
        ("min_score", "model.min_score", "--min-score"),
        ("iou", "model.iou", "--iou"),
        ("max_detections", "model.max_detections", "--max-detections"),
        ("threads", "model.threads", "--threads"),
        ("backend", "model.backend", "--backend"),
        ("device_id", "device_id", "--device-id"),
        ("max_frames", "service.max_frames", "--max-frames"),
    ]
    for attr, path, flag in simple:
        value = getattr(args, attr, None)
        if value is not None:
            put(path, value, flag)
    if getattr(args, "loop", None):
        put("source.loop", "true", "--loop")
    if getattr(args, "realtime", None):
        put("source.realtime", "true", "--realtime")
    if getattr(args, "no_summary", None):
        put("service.summary", "false", "--no-summary")
    log = getattr(args, "log", None)
    if log is not None:
        if log.lower() == "off":
            put("log.enabled", "false", "--log")
        else:
            put("log.enabled", "true", "--log")
            put("log.path", log, "--log")
    # --mqtt / --http: HOST:PORT enables the section at that address, 'off' disables it.
    for section, default_port in (("mqtt", 1883), ("http", 8080)):
        value = getattr(args, section, None)
        if value is None:
            continue
        flag = f"--{section}"
        if value.lower() == "off":
            put(f"{section}.enabled", "false", flag)
            continue
        host, port = _split_host_port(value, flag, default_port)
        put(f"{section}.enabled", "true", flag)
        put(f"{section}.host", host, flag)
        put(f"{section}.port", port, flag)
    for item in getattr(args, "set_", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}")
        put(key.strip(), value, f"--set {key.strip()}")
    return out


# ------------------------------------------------------------------------------ loading


def parse_config(raw: Any, *, origin: str = "config") -> Config:
    """Validate an already-parsed YAML document into a ``Config`` (no defaults resolved)."""
    try:
        cfg = _build(Config, raw, "")
        _check_consistency(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return cfg


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
        cfg = _build(Config, raw, "")
        _check_consistency(cfg)
    except ConfigError as exc:
        flag = _flag_for_error(str(exc), overrides or [])
        raise ConfigError(f"{flag or origin}: {exc}") from None
    return _resolve(cfg)


def _flag_for_error(message: str, overrides: list[Override]) -> str | None:
    # Name the flag when the bad key came from one (the last override of a path wins).
    for ov in reversed(overrides):
        if message.startswith(f"{ov.path}:") or message.startswith(f"{ov.path}["):
            return ov.flag
    return None


def config_from_args(args: argparse.Namespace) -> Config:
    """``load_config`` from the flags ``add_config_arguments`` defined."""
    return load_config(getattr(args, "config", None), overrides_from_args(args))


def default_config_yaml() -> str:
    """The documented default config (commented YAML), as `edgedet config --print-default`."""
    return _DEFAULT_YAML


_DEFAULT_YAML = """\
# edgedet run configuration (YAML). Every key is optional; shown are the defaults.
# Any key can also be set from the command line: --set KEY.PATH=VALUE, or its own flag
# (--source, --model, --min-score, --iou, --log, --mqtt, --http, --device-id ...).
# Unknown keys, wrong types and out-of-range values stop `edgedet run` with exit code 2.
# SIGHUP reloads this file: filters, model thresholds and source take effect at once;
# other changes are reported and need a restart (systemctl restart edgedet).

device_id: null            # null: the host name; used in MQTT topics and records

source:
  # auto: the Pi camera (picamera2) if present, else /dev/video0 if it exists,
  # else the bundled sample clip. Or: picamera2, a camera index (0), /dev/videoN,
  # rtsp:// or http(s):// URL, a video file, a folder of images (sorted by name).
  uri: auto
  loop: false              # video file / image folder: start again when it ends
  realtime: false          # video file / folder: true paces frames at the file's FPS
                           # (like a camera; frames inference misses are dropped and
                           # counted); false hands over frames as fast as they are used
  width: null              # camera capture size request (null: the camera's default)
  height: null
  fps: null                # camera frame rate request; frame rate of an image folder
  lores_width: 640         # picamera2: the low-resolution stream inference runs on
  lores_height: 480
  read_timeout: 5.0        # seconds without a frame before the source is reopened
  backoff_initial: 0.5     # first reconnect delay (s), doubled after each failure
  backoff_max: 30.0        # reconnect delay cap (s), at most 30

model:
  path: null               # null: the bundled ssdlite_mobilenet_v2_person_uint8.tflite
  labels: null             # label file (one per line); null: the model card's labels
  backend: auto            # auto | litert | tflite_runtime | tensorflow
  threads: null            # interpreter threads; null: the interpreter's default
  edgetpu: null            # null: use the Edge TPU when the model is compiled for it
  edgetpu_device: null     # e.g. usb, usb:0, pci:0
  allow_cpu_fallback: false
  min_score: null          # keep detections with score >= min_score; null: card default
  iou: null                # NMS IoU threshold; null: card default
  max_detections: null     # kept after NMS; null: card default
  agnostic: false          # true: NMS across classes

filters:                   # applied after NMS, to what the model already reported
  labels: []               # allow-list of labels; empty: every label
  min_score: {}            # per-label floor above model.min_score, e.g. {person: 0.6}
  min_area: 0.0            # box area as a fraction of the frame, inclusive
  max_area: 1.0
  roi: null                # polygon [[x, y], ...] in normalized frame coordinates;
                           # a detection is kept when its box centre is inside

log:                       # JSON-lines detections log, one record per processed frame
  enabled: true
  path: null               # null: $LOGS_DIRECTORY/detections.jsonl under systemd,
                           # else ./edgedet-detections.jsonl
  max_bytes: 10000000      # rotate when the file would grow past this
  backups: 5               # rotated files kept
  queue_size: 1000

mqtt:
  enabled: false
  host: localhost
  port: 1883
  prefix: null             # null: edgedet/<device_id>
  client_id: null          # null: edgedet-<device_id>
  username: null
  password_file: null      # file holding the password (never logged)
  keepalive: 30
  tls: false
  stats_interval: 10.0     # seconds between <prefix>/stats messages
  queue_size: 1000

http:                      # /healthz /metrics /latest /snapshot.jpg
  enabled: true
  host: 127.0.0.1
  port: 8080               # 0: pick a free port

snapshots:                 # annotated JPEGs when one of these labels is detected
  enabled: false
  directory: null          # null: $STATE_DIRECTORY/snapshots, else ./edgedet-snapshots
  labels: [person]
  min_interval: 10.0       # seconds between two snapshots
  keep: 100                # newest files kept

service:
  stall_timeout: 10.0      # no processed frame for this long: /healthz 503, no watchdog
  status_interval: 5.0     # seconds between status updates (systemd STATUS=, stderr)
  max_frames: null         # stop after this many processed frames
  summary: true            # print a summary when a finite run ends
"""
