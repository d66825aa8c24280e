"""The events stage as the run loop uses it, and the events config checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.errors import ConfigError
from edgedet.events.config import (
    EventsConfig,
    HomeAssistantConfig,
    TrackingConfig,
    check_events_config,
)
from edgedet.events.pipeline import EventsStage
from edgedet.events.seqstate import SeqCounter
from edgedet.events.zones import ZoneConfig

ZONES = {"door": ZoneConfig(polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))}


def _person(x: float, score: float = 0.8) -> Detections:
    box = np.array([[0.3, x - 0.05, 0.7, x + 0.05]], np.float32)
    return Detections(box, [score], [0], ("person",))


def test_a_finite_run_starts_counts_at_zero_and_ends_every_open_event(tmp_path) -> None:
    cfg = EventsConfig(snapshots=True, snapshot_dir=str(tmp_path / "snaps"))
    stage = EventsStage(cfg, TrackingConfig(), ZONES, ("person",), "cam1", seq=SeqCounter(None))
    assert sorted(stage.start().counts) == [("all", "person", 0), ("door", "person", 0)]
    batches = [stage.process(_person(0.2 + 0.001 * t), t / 10) for t in range(20)]
    new = [e for b in batches for e in b.events]
    assert [e["type"] for e in new] == ["new"]
    assert new[0]["snapshot"] == f"{tmp_path / 'snaps'}/{new[0]['id']}.jpg"
    snaps = [s for b in batches for s in b.snapshots]
    assert snaps[0].event_id == new[0]["id"] and snaps[0].box.shape == (4,)
    counts = [c for b in batches for c in b.counts]
    assert ("all", "person", 1) in counts
    final = stage.finish()
    assert [e["type"] for e in final.events] == ["end"]
    assert final.events[0]["seq"] > new[0]["seq"]
    assert sorted(final.counts) == [("all", "person", 0), ("door", "person", 0)]
    assert stage.open_events() == []


def test_frames_without_change_produce_empty_batches(tmp_path) -> None:
    stage = EventsStage(
        EventsConfig(snapshots=False),
        TrackingConfig(),
        {},
        ("person",),
        "cam1",
        seq=SeqCounter(None),
    )
    stage.start()
    batches = [stage.process(_person(0.5), t / 10) for t in range(30)]
    assert sum(bool(b) for b in batches) == 1  # only the frame the event starts in
    assert all(b.snapshots == [] for b in batches)  # snapshots off


@pytest.mark.parametrize(
    ("events", "zones", "ha", "message"),
    [
        (
            EventsConfig(confirm_hits=6, confirm_window=5),
            {},
            HomeAssistantConfig(),
            "events.confirm_hits (6) must not exceed events.confirm_window (5)",
        ),
        (
            EventsConfig(required_zones=("door", "gate")),
            ZONES,
            HomeAssistantConfig(),
            "events.required_zones[1]: unknown zone 'gate'",
        ),
        (
            EventsConfig(),
            {"x": ZoneConfig(polygon=((0, 0), (1, 1), (1, 0), (0, 1)))},
            HomeAssistantConfig(),
            "zones.x.polygon: edges cross",
        ),
        (
            EventsConfig(),
            {},
            HomeAssistantConfig(enabled=True, prefix="/"),
            "homeassistant.prefix: expected a topic prefix",
        ),
    ],
)
def test_inconsistent_events_config_is_one_line_naming_the_key(events, zones, ha, message):
    with pytest.raises(ConfigError) as info:
        check_events_config(events, zones, ha)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_defaults_pass_the_checks() -> None:
    check_events_config(EventsConfig(), ZONES, HomeAssistantConfig(enabled=True))
    assert dataclasses.asdict(EventsConfig())["confirm_hits"] == 3
