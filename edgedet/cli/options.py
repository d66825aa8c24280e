"""The configuration flags shared by `edgedet run`, `edgedet bench` and `edgedet config`.

Every flag sets config keys; their types, ranges and help text come from the keys'
definitions (``edgedet.schema.setting`` in the owning component), and validation happens
once, in ``edgedet.service.config.load_config``, where an error names the flag. Any key
without a flag of its own can be set with ``--set KEY.PATH=VALUE`` (VALUE parsed as YAML).
Flags override the config file.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from edgedet.errors import ConfigError

if TYPE_CHECKING:
    from edgedet.service.config import Config, Override

# flag → (config key, metavar): a flag that sets exactly one key to its text.
KEY_FLAGS = {
    "--source": ("source.uri", "SRC"),
    "--model": ("model.path", "PATH"),
    "--labels": ("model.labels", "FILE"),
    "--min-score": ("model.min_score", "F"),
    "--iou": ("model.iou", "F"),
    "--max-detections": ("model.max_detections", "N"),
    "--threads": ("model.threads", "N"),
    "--backend": ("model.backend", "NAME"),
    "--device-id": ("device_id", "ID"),
    "--max-frames": ("service.max_frames", "N"),
}
# switch → (config key, value it sets, help)
SWITCHES = {
    "--loop": ("source.loop", "true", "loop a video file or image folder"),
    "--realtime": (
        "source.realtime",
        "true",
        "pace a video file/folder at its FPS, dropping what inference misses",
    ),
    "--no-summary": ("service.summary", "false", "no summary at the end of a finite run"),
}
# --mqtt / --http HOST:PORT enable the section at that address; 'off' disables it.
ADDRESS_FLAGS = {"--mqtt": "mqtt", "--http": "http"}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _key_doc(path: str) -> str:
    from edgedet.schema import key_type
    from edgedet.service.config import Config

    _, meta = key_type(Config, path)
    return (meta.get("doc") or path).replace("%", "%%")  # argparse formats help with %


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the configuration flags to ``parser`` (help texts from the key definitions)."""
    g = parser.add_argument_group("configuration (each flag overrides the config file)")
    g.add_argument("--config", metavar="FILE", help="YAML config file")
    for flag, (path, metavar) in KEY_FLAGS.items():
        g.add_argument(flag, metavar=metavar, help=f"{_key_doc(path)} [{path}]")
    g.add_argument(
        "--log",
        metavar="PATH",
        help="JSON-lines detections log, one record per frame (sets log.frames: all); 'off'",
    )
    g.add_argument("--mqtt", metavar="HOST:PORT", help="publish to this MQTT broker ('off')")
    g.add_argument("--http", metavar="HOST:PORT", help="HTTP endpoint address, or 'off'")
    for flag, (path, value, text) in SWITCHES.items():
        g.add_argument(flag, action="store_true", default=None, help=f"{text} [{path}={value}]")
    g.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="set_",
        help="set any config key, e.g. --set filters.min_area=0.01 (repeatable)",
    )


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


def overrides_from_args(args: argparse.Namespace) -> list[Override]:
    """Translate parsed flags into ``Override`` entries, in a stable order."""
    from edgedet.service.config import Config, Override

    out: list[Override] = []

    def put(path: str, text: Any, flag: str) -> None:
        out.append(Override(path, str(text), flag))

    for flag, (path, _) in KEY_FLAGS.items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            put(path, value, flag)
    for flag, (path, value, _) in SWITCHES.items():
        if getattr(args, _dest(flag), None):
            put(path, value, flag)
    log = getattr(args, "log", None)
    if log is not None:
        if log.lower() == "off":
            put("log.enabled", "false", "--log")
        else:
            put("log.enabled", "true", "--log")
            put("log.path", log, "--log")
            # Asking for the detections log by flag asks for its per-frame records
            # (a later --set log.frames=... still wins).
            put("log.frames", "all", "--log")
    for flag, section in ADDRESS_FLAGS.items():
        value = getattr(args, section, None)
        if value is None:
            continue
        if value.lower() == "off":
            put(f"{section}.enabled", "false", flag)
            continue
        default_port = getattr(Config(), section).port
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


def config_from_args(args: argparse.Namespace) -> Config:
    """``load_config`` from the flags ``add_config_arguments`` defined."""
    from edgedet.service.config import load_config

    return load_config(getattr(args, "config", None), overrides_from_args(args))
