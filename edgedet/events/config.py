"""The config sections the events stage owns: ``tracking``, ``events``, ``zones``,
``homeassistant``; and ``check_events_config``, their cross-key checks.

The three knobs that decide what is reported, side by side:

- ``model.min_score`` (per detection, per frame): drops weak boxes before NMS. Lower
  finds more, including more false boxes in every frame.
- ``model.iou`` (NMS, per frame): merges duplicate boxes of one object. Lower merges
  people standing close together; higher leaves duplicates, which become extra tracks.
- ``events.threshold`` (per track, over time): the median score a tracked object needs,
  with ``confirm_hits`` of ``confirm_window`` frames seen, before it becomes an event.
  Higher means fewer false events from a flickering shadow, but an object detected only
  weakly (far, dark) never becomes an event; it costs a few frames of delay, not recall
  per frame.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from edgedet.errors import ConfigError
from edgedet.events.tracker import ASSIGNMENTS
from edgedet.events.zones import ZoneConfig, build_zones, check_zone_names
from edgedet.schema import setting


@dataclass(frozen=True)
class TrackingConfig:
    """Object tracking (edgedet.events.tracker): stable ids across frames."""

    assignment: str = setting(
        "greedy",
        choices=ASSIGNMENTS,
        doc="greedy (numpy only) | hungarian (needs scipy: pip install 'edgedet[tracking]')",
    )
    match_iou: float = setting(
        0.2,
        lo=0.0,
        hi=1.0,
        lo_open=True,
        doc="min IoU between a track's predicted box and a detection to match",
    )
    max_distance: float = setting(
        0.3,
        lo=0.0,
        hi=10.0,
        doc="second pass for what IoU left: centre distance in box heights (0: off)",
    )
    max_age: int = setting(
        15, lo=0, hi=10000, doc="frames a track survives unseen (occlusions, missed frames)"
    )
    score_history: int = setting(
        30, lo=1, hi=1000, doc="matched scores kept per track for its median score"
    )


@dataclass(frozen=True)
class EventsConfig:
    """Events (edgedet.events.machine): what happened, not every frame."""

    enabled: bool = setting(True, doc="track objects and publish events and counts")
    labels: tuple[str, ...] = setting((), doc="labels that make events; empty: every label")
    confirm_hits: int = setting(3, lo=1, hi=63, doc="K: seen in K of the last N frames ...")
    confirm_window: int = setting(5, lo=1, hi=63, doc="N: ... to become an event")
    threshold: float = setting(
        0.6, lo=0.0, hi=1.0, doc="median score over the track needed to become an event"
    )
    label_thresholds: dict[str, float] = setting(
        {}, lo=0.0, hi=1.0, doc="per-label threshold, e.g. {car: 0.7}"
    )
    expire: float = setting(5.0, lo=0.0, lo_open=True, hi=86400, doc="seconds unseen: end")
    update_interval: float = setting(
        10.0, lo=0.0, hi=86400, doc="min seconds between score/snapshot updates of an event"
    )
    update_min_gain: float = setting(
        0.05, lo=0.0, hi=1.0, doc="top score rise worth an update (and a better snapshot)"
    )
    rejoin_distance: float = setting(
        1.0,
        lo=0.0,
        hi=100.0,
        doc="a new track within this many box heights of a lost object's open event "
        "continues that event (0: off)",
    )
    counts_interval: float = setting(
        5.0,
        lo=0.0,
        hi=3600,
        doc="min seconds between two publications of one count (a first change is at once)",
    )
    required_zones: tuple[str, ...] = setting(
        (), doc="an object becomes an event only after entering one of these zones"
    )
    log_path: str | None = setting(
        None, doc="null: $LOGS_DIRECTORY/events.jsonl or ./edgedet-events.jsonl"
    )
    log_max_bytes: int = setting(10_000_000, lo=1024, doc="rotate the events log past this")
    log_backups: int = setting(5, lo=0, hi=1000, doc="rotated events logs kept")
    state_file: str | None = setting(
        None,
        doc="event seq kept across restarts; null: $STATE_DIRECTORY/events.seq or "
        "./edgedet-events.seq",
    )
    snapshots: bool = setting(
        False,
        doc="keep the best snapshot (frame and crop) per event; off by default: each is tens "
        "of kB written to the card",
    )
    snapshot_dir: str | None = setting(
        None, doc="null: $STATE_DIRECTORY/events or ./edgedet-events"
    )
    snapshot_max_count: int = setting(100, lo=1, hi=1_000_000, doc="events with snapshots kept")
    snapshot_max_bytes: int = setting(50_000_000, lo=1, doc="bytes of snapshots kept")


@dataclass(frozen=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery (needs mqtt.enabled)."""

    enabled: bool = setting(False, doc="publish discovery configs for counts and occupancy")
    prefix: str = setting("homeassistant", doc="HA's discovery prefix")
    name: str | None = setting(None, doc="device name in HA; null: device_id")


def check_events_config(
    events: EventsConfig, zones: dict[str, ZoneConfig], homeassistant: HomeAssistantConfig
) -> None:
    """Cross-key checks the per-key validation cannot make; ConfigError naming the key."""
    if events.confirm_hits > events.confirm_window:
        raise ConfigError(
            f"events.confirm_hits ({events.confirm_hits}) must not exceed "
            f"events.confirm_window ({events.confirm_window}): K of the last N frames"
        )
    build_zones(zones)
    check_zone_names(events.required_zones, zones, "events.required_zones")
    if homeassistant.enabled and not homeassistant.prefix.strip("/"):
        raise ConfigError("homeassistant.prefix: expected a topic prefix, got ''")


def resolve_paths(events: EventsConfig, logs_dir: Any, state_dir: Any) -> EventsConfig:
    """Fill the null paths: under systemd's LogsDirectory/StateDirectory when given
    (``pathlib.Path`` or None), else in the working directory."""
    return dataclasses.replace(
        events,
        log_path=events.log_path
        or (str(logs_dir / "events.jsonl") if logs_dir else "edgedet-events.jsonl"),
        state_file=events.state_file
        or (str(state_dir / "events.seq") if state_dir else "edgedet-events.seq"),
        snapshot_dir=events.snapshot_dir
        or (str(state_dir / "events") if state_dir else "edgedet-events"),
    )


def check_labels(
    events: EventsConfig, zones: dict[str, ZoneConfig], labels: tuple[str, ...]
) -> None:
    """ConfigError when an events or zone key names a label the model does not have
    (checked once the model is open)."""
    named = [(f"events.labels[{i}]", n) for i, n in enumerate(events.labels)]
    named += [(f"events.label_thresholds.{n}", n) for n in events.label_thresholds]
    for zone, zc in zones.items():
        named += [(f"zones.{zone}.labels[{i}]", n) for i, n in enumerate(zc.labels)]
    for key, name in named:
        if name not in labels:
            near = difflib.get_close_matches(name, labels, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            shown = ", ".join(labels[:20])
            raise ConfigError(
                f"{key}: '{name}' is not a label of the model{hint} (labels: {shown})"
            )
