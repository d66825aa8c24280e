"""Config settings: one definition per key, and the walker that reads them.

A config section is a frozen dataclass owned by the component it configures
(``SourceConfig`` in ``edgedet.sources``, ``LogConfig`` beside the JSONL publisher ...);
each field is made with ``setting()``, which keeps the key's type (the annotation), its
default, its range or choices and a one-line doc together. ``edgedet.service.config``
assembles the sections into the ``Config`` tree, and everything else comes from that one
definition:

- ``build(cls, raw)`` validates a parsed YAML mapping into the dataclass tree, rejecting
  unknown keys (with the nearest valid name) and naming the key path in every type or
  range error (``ConfigError``, one line, exit code 2);
- ``render_yaml(cls)`` is the commented default config (`edgedet config --print-default`);
- ``key_type(cls, path)`` and ``parse_text`` turn a command-line value into the key's type.

Adding a section: write the dataclass (fields with ``setting(..., doc=...)``, a docstring
whose first line describes the section) in the component, and add one line to ``Config``.

This module sits low in the layers (it imports nothing from edgedet but ``errors``), so a
component can own its config without importing the service. Plain dataclasses were chosen
over msgspec: the run path imports ``dataclasses`` anyway, so the schema costs no extra
import time or memory, and the error texts (nearest key name, the value that was given)
need no translation.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import textwrap
import types
import typing
from dataclasses import field
from typing import Any

from edgedet.errors import ConfigError


def setting(
    default: Any = None,
    *,
    doc: str = "",
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    int_as_str: bool = False,
) -> Any:
    """A config field with its validation limits and doc line kept beside it (``metadata``).

    ``lo``/``hi`` bound numbers (inclusive; ``lo_open`` makes ``lo`` exclusive), also the
    numbers inside lists and mappings; ``choices`` restricts a string; ``int_as_str``
    accepts a YAML integer for a string key (``uri: 0``). ``doc`` is the comment
    `--print-default` shows and the help of the key's flag, if it has one.
    """
    meta = {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "lo_open": lo_open,
        "choices": choices,
        "int_as_str": int_as_str,
    }
    if isinstance(default, list):
        raise TypeError("use tuples for sequence defaults")  # frozen defaults only
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A sub-section field of the tree: ``source: SourceConfig = section(SourceConfig)``."""
    return field(default_factory=cls)


# -------------------------------------------------------------------------- validation


def build(cls: type, raw: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from mapping ``raw`` (None: all defaults).

    A section may name a ``SHORTHAND`` key (class attribute): a plain string or integer in
    place of the mapping sets that key (``source: /dev/video0``). Raises ConfigError.
    """
    if raw is None:
        raw = {}
    where = f"{path}: " if path else ""
    shorthand = getattr(cls, "SHORTHAND", None)
    if shorthand and isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = {shorthand: raw}
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


def to_plain(value: Any) -> Any:
    """A dataclass tree as plain YAML-able data (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


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


def _number(value: Any, tp: type, path: str, meta: dict[str, Any]) -> float | int:
    what = "an integer" if tp is int else "a number"
    ok = isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        ok = ok or isinstance(value, float)
    if not ok:
        raise ConfigError(f"{path}: expected {what}{_range_text(meta)}, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value}")
    lo, hi = meta.get("lo"), meta.get("hi")
    below = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
    if below or (hi is not None and value > hi):
        raise ConfigError(f"{path}: expected {what}{_range_text(meta)}, got {_describe(value)}")
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
        return build(tp, value, path)
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


# ------------------------------------------------------------------- command-line text


def key_type(cls: type, path: str) -> tuple[Any, dict[str, Any]]:
    """The annotation and ``setting`` metadata of key ``path`` (``model.min_score``).

    Raises ConfigError for an unknown key, with the nearest valid name.
    """
    tp: Any = cls
    meta: dict[str, Any] = {}
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown key '{path}': '{'.'.join(parts[:i])}' has no sub-keys")
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if part not in fields:
            prefix = ".".join(parts[:i])
            shown = f"{prefix}.{part}" if prefix else part
            raise ConfigError(f"unknown key '{shown}'{_suggest(part, list(fields))}")
        meta = dict(fields[part].metadata)
        tp = typing.get_type_hints(tp)[part]
    return tp, meta


def parse_text(text: str, tp: Any, path: str) -> Any:
    """Command-line text → a value for a key of type ``tp``, for ``build`` to validate.

    The key's type decides, so ``--device-id 0123`` stays text; lists and mappings are
    parsed as YAML. Text that does not fit is passed on unchanged so the error names the
    key path.
    """
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
                return text
    if base is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        return text
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse {text!r} as YAML ({line})") from None


# ------------------------------------------------------------------------ default YAML

_COMMENT_COLUMN = 27
_WIDTH = 92


def render_yaml(cls: type) -> str:
    """The commented YAML of ``cls``'s defaults: every key, its default and its doc."""
    return "\n".join(_render(cls, 0)) + "\n"


def _render(cls: type, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            doc = (tp.__doc__ or "").strip()
            if indent == 0:
                lines.append("")
            for paragraph in doc.split("\n\n"):
                text = " ".join(paragraph.split())
                wrapped = textwrap.wrap(text, _WIDTH - indent - 2) if text else []
                lines += [f"{pad}# {w}" for w in wrapped]
            lines.append(f"{pad}{f.name}:")
            lines += _render(tp, indent + 2)
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        lines += _commented(f"{pad}{f.name}: {_yaml_value(default)}", f.metadata.get("doc", ""))
    return lines


def _commented(text: str, doc: str) -> list[str]:
    if not doc:
        return [text]
    column = max(_COMMENT_COLUMN, len(text) + 2)
    wrapped = textwrap.wrap(doc, max(30, _WIDTH - column - 2))
    out = [f"{text.ljust(column)}# {wrapped[0]}"]
    out += [f"{' ' * column}# {w}" for w in wrapped[1:]]
    return out


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]
