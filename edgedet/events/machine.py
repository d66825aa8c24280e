"""Tracks → events: confirmation, the new / update / end state machine, and counts.

Confirmation. A track becomes an event when it is confirmed: matched in at least
``confirm_hits`` (K) of the last ``confirm_window`` (N) frames, and the median of its
recent matched scores is ``>= threshold`` for its label (``label_thresholds`` overrides
per label). With ``required_zones``, it must also have entered one of them. This is the
third knob beside ``model.min_score`` (per-frame, per-detection) and ``model.iou`` (NMS):
one confident frame does not make an event, a steady mediocre detection does not either.

Records (DESIGN.md "Events"), one per change::

    {"type": "new"|"update"|"end", "seq": int, "id": str, "device": str, "label": str,
     "start": unix s, "end": null|unix s, "top_score": f, "median_score": f,
     "box": [ymin, xmin, ymax, xmax], "zones": [..], "entered_zones": [..],
     "snapshot": path|null}

- ``new``: once, when the track is confirmed.
- ``update``: at once when the object's current zones change; when its top score rose
  (which also means a better snapshot), at most every ``update_interval`` seconds.
- ``end``: when the object has not been seen for ``expire`` seconds (``end`` = the time it
  was last seen); ``finish()`` ends every open event (a finite run, a shutdown).

Counts: per label, the number of open events, overall (zone ``all``) and per zone (by
current zones); ``counts()`` returns every (zone, label) pair configured, zeros included.
Times are the frames' capture times (seconds), not the wall clock at processing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgedet.events.seqstate import SeqCounter
from edgedet.events.tracker import Tracks
from edgedet.events.zones import Zone, ZonePresence


@dataclass(frozen=True)
class EventRules:
    """The event-making knobs (built from the ``events:`` config section)."""

    confirm_hits: int = 3  # K: matched frames ...
    confirm_window: int = 5  # N: ... among the last N
    threshold: float = 0.6  # median score a track needs to become an event
    label_thresholds: dict[str, float] = field(default_factory=dict)
    expire: float = 5.0  # seconds unseen before an event ends
    update_interval: float = 5.0  # seconds between score/snapshot updates of one event
    required_zones: tuple[str, ...] = ()  # empty: anywhere
    labels: tuple[str, ...] = ()  # labels that make events; empty: every model label

    def threshold_for(self, label: str) -> float:
        return self.label_thresholds.get(label, self.threshold)


@dataclass
class _Event:
    id: str
    track_id: int
    label: str
    start: float
    last_seen: float
    top_score: float
    median_score: float
    box: list[float]
    presence: ZonePresence
    published_top: float = 0.0
    last_update: float = 0.0
    snapshot: str | None = None
    ended: bool = False


@dataclass
class Change:
    """One event record plus, for ``new`` and score updates, the detection row whose
    frame is the event's best so far (for the snapshot); -1 when there is none."""

    record: dict[str, Any]
    detection: int = -1


def new_event_id(start: float) -> str:
    """``<start seconds>.<ms>-<6 hex>``: sortable by start, unique without coordination."""
    return f"{start:.3f}-{secrets.token_hex(3)}"


class EventMachine:
    """Turns each frame's ``Tracks`` into event changes; see the module docstring.

    ``snapshot_path(event_id)`` names the snapshot file a change with a detection will
    get (None: no snapshots). ``labels`` is the model's label list (class id → name).
    """

    def __init__(
        self,
        rules: EventRules,
        zones: list[Zone],
        labels: Iterable[str],
        device: str,
        seq: SeqCounter,
        *,
        snapshot_path: Callable[[str], str] | None = None,
    ) -> None:
        self.rules = rules
        self.zones = zones
        self.model_labels = tuple(labels)
        self.labels = rules.labels or self.model_labels
        self._wanted = set(self.labels)
        self.device = device
        self.seq = seq
        self.snapshot_path = snapshot_path
        self._open: dict[int, _Event] = {}  # track id → open event
        self._pending: dict[int, ZonePresence] = {}  # zone state of unconfirmed tracks

    # -- public ---------------------------------------------------------------------

    def update(self, tracks: Tracks, ts: float) -> list[Change]:
        """Advance to the frame captured at ``ts`` whose tracks are ``tracks``."""
        changes: list[Change] = []
        live = set()
        for i in range(len(tracks)):
            tid = int(tracks.ids[i])
            label = self._label(int(tracks.class_ids[i]))
            if label not in self._wanted:
                continue
            live.add(tid)
            if not tracks.matched[i]:
                continue
            box = tracks.boxes[i]
            ev = self._open.get(tid)
            if ev is None:
                presence = self._pending.get(tid) or ZonePresence(self.zones, label)
                self._pending[tid] = presence
                presence.update(box)
                if self._confirmed(tracks, i, label, presence):
                    del self._pending[tid]
                    changes.append(self._start(tracks, i, tid, label, presence, ts))
                continue
            ev.last_seen = ts
            ev.box = _box(box)
            ev.median_score = float(tracks.median_score[i])
            zones_changed = ev.presence.update(box)
            better = float(tracks.top_score[i]) > ev.top_score
            if better:
                ev.top_score = float(tracks.top_score[i])
            due = ts - ev.last_update >= self.rules.update_interval
            if zones_changed or (ev.top_score > ev.published_top and due):
                det = int(tracks.detection[i]) if better else -1
                changes.append(self._emit(ev, "update", ts, det))
        # Forget the zone state of unconfirmed tracks the tracker dropped.
        for tid in [t for t in self._pending if t not in live]:
            del self._pending[tid]
        for tid, ev in list(self._open.items()):
            if ts - ev.last_seen >= self.rules.expire:
                changes.append(self._end(tid, ev))
        return changes

    def finish(self) -> list[Change]:
        """End every open event (at its last-seen time); the machine is empty after."""
        return [self._end(tid, ev) for tid, ev in list(self._open.items())]

    def counts(self) -> dict[tuple[str, str], int]:
        """{(zone or "all", label): open events}, every configured pair, zeros included."""
        out = {("all", label): 0 for label in self.labels}
        for z in self.zones:
            for label in self.labels:
                if z.accepts(label):
                    out[(z.name, label)] = 0
        for ev in self._open.values():
            out[("all", ev.label)] += 1
            for name in ev.presence.current:
                out[(name, ev.label)] += 1
        return out

    def open_events(self) -> list[dict[str, Any]]:
        """The current state of every open event (records without ``type``/``seq``)."""
        return [self._body(ev) for ev in self._open.values()]

    # -- internals ------------------------------------------------------------------

    def _label(self, class_id: int) -> str:
        if 0 <= class_id < len(self.model_labels):
            return self.model_labels[class_id]
        return str(class_id)

    def _confirmed(self, tracks: Tracks, i: int, label: str, presence: ZonePresence) -> bool:
        r = self.rules
        if tracks.hits[i] < r.confirm_hits:
            return False
        if tracks.median_score[i] < r.threshold_for(label):
            return False
        return not r.required_zones or any(z in presence.entered for z in r.required_zones)

    def _start(
        self, tracks: Tracks, i: int, tid: int, label: str, presence: ZonePresence, ts: float
    ) -> Change:
        ev = _Event(
            id=new_event_id(ts),
            track_id=tid,
            label=label,
            start=ts,
            last_seen=ts,
            top_score=float(tracks.top_score[i]),
            median_score=float(tracks.median_score[i]),
            box=_box(tracks.boxes[i]),
            presence=presence,
        )
        self._open[tid] = ev
        return self._emit(ev, "new", ts, int(tracks.detection[i]))

    def _end(self, tid: int, ev: _Event) -> Change:
        del self._open[tid]
        ev.ended = True
        return Change(self._record(ev, "end"))

    def _emit(self, ev: _Event, kind: str, ts: float, detection: int) -> Change:
        if detection >= 0 and self.snapshot_path is not None:
            ev.snapshot = self.snapshot_path(ev.id)
        ev.published_top = ev.top_score
        ev.last_update = ts
        return Change(self._record(ev, kind), detection)

    def _body(self, ev: _Event) -> dict[str, Any]:
        return {
            "id": ev.id,
            "device": self.device,
            "label": ev.label,
            "start": round(ev.start, 3),
            "end": round(ev.last_seen, 3) if ev.ended else None,
            "top_score": round(ev.top_score, 4),
            "median_score": round(ev.median_score, 4),
            "box": ev.box,
            "zones": ev.presence.current,
            "entered_zones": list(ev.presence.entered),
            "snapshot": ev.snapshot,
        }

    def _record(self, ev: _Event, kind: str) -> dict[str, Any]:
        return {"type": kind, "seq": self.seq.next(), **self._body(ev)}


def _box(box: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in box]


class CountChanges:
    """Remembers the last published value per topic; ``changed`` yields only news."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def changed(self, counts: dict[tuple[str, str], int]) -> list[tuple[str, str, int]]:
        """[(zone, label, value)] whose value differs from the last call (all at first)."""
        out = []
        for key, value in counts.items():
            if self._last.get(key) != value:
                self._last[key] = value
                out.append((key[0], key[1], value))
        return out
