"""The events stage of the run loop: detections → tracker → event machine → counts.

``EventsStage.process(detections, ts)`` is called once per processed frame, on the run
loop's thread, and returns an ``EventBatch``: the event records to publish, the counts
that changed, and for each record that deserves a new snapshot the detection row to take
it from. It does no I/O; the publishers write, send and encode (on their own threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgedet.detections import Detections
from edgedet.events.config import EventsConfig, TrackingConfig, check_labels
from edgedet.events.machine import CountChanges, EventMachine, EventRules
from edgedet.events.seqstate import SeqCounter
from edgedet.events.tracker import Tracker
from edgedet.events.zones import ZoneConfig, build_zones


@dataclass
class Snapshot:
    """Take the best snapshot of event ``event_id`` from this frame at ``box``."""

    event_id: str
    path: str
    box: np.ndarray
    label: str
    score: float


@dataclass
class EventBatch:
    """What one frame changed. Empty batches are the common case."""

    events: list[dict[str, Any]] = field(default_factory=list)
    counts: list[tuple[str, str, int]] = field(default_factory=list)  # (zone, label, n)
    snapshots: list[Snapshot] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.counts)


class EventsStage:
    """Tracker + event machine + count changes, built from the config sections.

    ConfigError (one line naming the key) when a label in ``events`` or ``zones`` is not
    one of the model's ``labels``."""

    def __init__(
        self,
        events: EventsConfig,
        tracking: TrackingConfig,
        zones: dict[str, ZoneConfig],
        labels: tuple[str, ...],
        device: str,
        *,
        seq: SeqCounter | None = None,
    ) -> None:
        check_labels(events, zones, tuple(labels))
        self.tracker = Tracker(
            iou_threshold=tracking.match_iou,
            max_age=tracking.max_age,
            window=events.confirm_window,
            score_history=tracking.score_history,
            assignment=tracking.assignment,
            max_distance=tracking.max_distance,
        )
        rules = EventRules(
            confirm_hits=events.confirm_hits,
            confirm_window=events.confirm_window,
            threshold=events.threshold,
            label_thresholds=dict(events.label_thresholds),
            expire=events.expire,
            update_interval=events.update_interval,
            update_min_gain=events.update_min_gain,
            rejoin_distance=events.rejoin_distance,
            required_zones=tuple(events.required_zones),
            labels=tuple(events.labels),
        )
        snapshot_dir = events.snapshot_dir if events.snapshots else None
        self.machine = EventMachine(
            rules,
            build_zones(zones),
            labels,
            device,
            seq or SeqCounter(events.state_file),
            snapshot_path=(lambda eid: f"{snapshot_dir}/{eid}.jpg") if snapshot_dir else None,
        )
        self._counts = CountChanges(events.counts_interval)

    @property
    def tracks_started(self) -> int:
        return self.tracker.started

    def start(self) -> EventBatch:
        """The initial counts (every configured zone and label, zeros), before any frame."""
        return EventBatch(counts=self._counts.changed(self.machine.counts(), force=True))

    def process(self, detections: Detections, ts: float) -> EventBatch:
        """One frame: its (post-filter) detections and capture time ``ts`` (seconds)."""
        tracks = self.tracker.update(detections)
        changes = self.machine.update(tracks, ts)
        batch = EventBatch()
        if not changes:
            if self._counts.pending:  # a held-back count change may be due now
                batch.counts = self._counts.changed(self.machine.counts(), ts)
            return batch  # otherwise counts only change with events
        for change in changes:
            record = change.record
            batch.events.append(record)
            if change.detection >= 0 and record["snapshot"]:
                i = change.detection
                batch.snapshots.append(
                    Snapshot(
                        record["id"],
                        record["snapshot"],
                        detections.boxes[i].copy(),
                        record["label"],
                        float(detections.scores[i]),
                    )
                )
        batch.counts = self._counts.changed(self.machine.counts(), ts)
        return batch

    def finish(self) -> EventBatch:
        """End every open event (end of a finite run, shutdown) and zero the counts."""
        batch = EventBatch([c.record for c in self.machine.finish()])
        batch.counts = self._counts.changed(self.machine.counts(), force=True)
        return batch

    def open_events(self) -> list[dict[str, Any]]:
        return self.machine.open_events()

    def has_open_events(self) -> bool:
        return self.machine.has_open_events()
