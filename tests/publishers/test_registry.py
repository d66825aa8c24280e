"""The publisher registry: each config section with `enabled` builds its publisher."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from edgedet.errors import ConfigError
from edgedet.metrics import Metrics
from edgedet.publishers import REGISTRY, PublisherContext, build_publishers, publisher_class
from edgedet.service.config import Config, Override, load_config


def test_every_registered_publisher_has_a_config_section_and_from_config() -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    for name in REGISTRY:
        assert name in names
        assert hasattr(getattr(Config(), name), "enabled")
        cls = publisher_class(name)
        assert "from_config" in vars(cls), f"{cls.__name__} must define from_config"


def test_the_enabled_sections_are_built_from_their_config_in_registry_order(
    tmp_path: Path,
) -> None:
    cfg = load_config(
        None,
        [
            Override("log.path", str(tmp_path / "det.jsonl"), "--log"),
            Override("log.max_bytes", "2048", "--set"),
            Override("http.port", "0", "--http"),
            Override("snapshots.enabled", "true", "--set"),
            Override("snapshots.directory", str(tmp_path / "snaps"), "--set"),
            Override("snapshots.keep", "7", "--set"),
            Override("events.log_path", str(tmp_path / "events.jsonl"), "--set"),
        ],
    )
    built = build_publishers(cfg, PublisherContext(metrics=Metrics(), healthy=lambda: True))
    try:
        assert [p.name for p in built] == ["log", "events", "http", "snapshot"]
        log, events, http, snaps = built
        assert log.path == tmp_path / "det.jsonl" and log.max_bytes == 2048
        assert events.path == tmp_path / "events.jsonl"
        assert http.host == "127.0.0.1" and http.port > 0
        assert snaps.directory == tmp_path / "snaps" and snaps.keep == 7
    finally:
        for p in built:
            p.close(timeout=2)


def test_a_publisher_failing_to_start_closes_the_ones_already_built(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = load_config(
            None,
            [
                Override("log.path", str(tmp_path / "det.jsonl"), "--log"),
                Override("events.log_path", str(tmp_path / "events.jsonl"), "--set"),
                Override("http.port", str(port), "--http"),
            ],
        )
        context = PublisherContext(metrics=Metrics(), healthy=lambda: True)
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: cannot listen"):
            build_publishers(cfg, context)
