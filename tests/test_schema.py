"""edgedet.schema: a section is one dataclass, and validation, the documented default and
flag parsing all follow from it (the way the next sections, e.g. `log.frames`, are added)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from edgedet.errors import ConfigError
from edgedet.schema import build, key_type, parse_text, render_yaml, section, setting


@dataclass(frozen=True)
class FramesConfig:
    """Frames saved beside the log."""

    every: int = setting(10, lo=1, hi=1000, doc="save one frame in this many")
    quality: float = setting(0.9, lo=0.0, hi=1.0, lo_open=True)


@dataclass(frozen=True)
class LogSection:
    """The log."""

    enabled: bool = setting(True)
    labels: tuple[str, ...] = setting(("person",), doc="labels to keep")
    frames: FramesConfig = section(FramesConfig)


@dataclass(frozen=True)
class Tree:
    """A tree of two levels."""

    name: str | None = setting(None, doc="who")
    log: LogSection = section(LogSection)


def test_a_nested_section_is_validated_with_its_key_path() -> None:
    tree = build(Tree, {"log": {"frames": {"every": 5}}})
    assert tree.log.frames.every == 5 and tree.log.frames.quality == 0.9
    with pytest.raises(
        ConfigError, match=r"log\.frames\.every: expected an integer in \[1, 1000\]"
    ):
        build(Tree, {"log": {"frames": {"every": 0}}})
    with pytest.raises(ConfigError, match=r"unknown key 'log\.frames\.evry'; did you mean 'every'"):
        build(Tree, {"log": {"frames": {"evry": 3}}})
    with pytest.raises(ConfigError, match=r"log\.frames\.quality: expected a number in \(0, 1\]"):
        build(Tree, {"log": {"frames": {"quality": 0}}})


def test_the_rendered_default_lists_every_key_with_its_default_and_doc() -> None:
    text = render_yaml(Tree)
    assert build(Tree, yaml.safe_load(text)) == Tree()
    assert yaml.safe_load(text) == {
        "name": None,
        "log": {"enabled": True, "labels": ["person"], "frames": {"every": 10, "quality": 0.9}},
    }
    assert "# Frames saved beside the log." in text
    assert "every: 10" in text and "# save one frame in this many" in text


def test_flag_text_takes_the_type_of_its_key() -> None:
    tp, meta = key_type(Tree, "log.frames.every")
    assert meta["doc"] == "save one frame in this many"
    assert parse_text("7", tp, "log.frames.every") == 7
    tp, _ = key_type(Tree, "name")
    assert parse_text("0123", tp, "name") == "0123"
    assert parse_text("null", tp, "name") is None
    with pytest.raises(ConfigError, match=r"unknown key 'log\.frame'; did you mean 'frames'"):
        key_type(Tree, "log.frame.every")
