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

- ``new``: once, when the track is confirmed; unless the track continues an open event
  whose object the tracker lost (``rejoin_distance``): a newly confirmed track whose box
  is within that many box heights of such an event's last box takes the event over.
- ``update``: at once when the object's current zones change; when its top score rose by
  ``update_min_gain`` or more since the last record (which also means a better
  snapshot), at most every ``update_interval`` seconds.
- ``end``: when the object has not been seen for ``expire`` seconds (``end`` = the time it
  was last seen); ``finish()`` ends every open event (a finite run, a shutdown).

Counts: per label, the number of open events, overall (zone ``all``) and per zone (by
current zones); ``counts()`` returns every (zone, label) pair configured, zeros included.
Times are the frames' capture times (seconds), not the wall clock at processing.
"""

from __future__ import annotations

import math
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
    update_interval: float = 10.0  # seconds between score/snapshot updates of one event
    update_min_gain: float = 0.05  # top score rise worth an update (and a new snapshot)
    required_zones: tuple[str, ...] = ()  # empty: anywhere
    labels: tuple[str, ...] = ()  # labels that make events; empty: every model label
    rejoin_distance: float = 1.0  # box heights; a new track this near a lost event goes on

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
        # Every configured (zone or "all", label) pair, in publication order.
        self._zero_counts = {("all", label): 0 for label in self.labels}
        for z in zones:
            for label in self.labels:
                if z.accepts(label):
                    self._zero_counts[(z.name, label)] = 0
        self.device = device
        self.seq = seq
        self.snapshot_path = snapshot_path
        self._open: dict[int, _Event] = {}  # track id → open event
        self._pending: dict[int, ZonePresence] = {}  # zone state of unconfirmed tracks
        self._matched_now: set[int] = set()  # track ids matched in the current frame

    # -- public ---------------------------------------------------------------------

    def update(self, tracks: Tracks, ts: float) -> list[Change]:
        """Advance to the frame captured at ``ts`` whose tracks are ``tracks``."""
        changes: list[Change] = []
        live = set()
        self._matched_now = set(tracks.ids[tracks.matched].tolist())
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
                if not self._steady(tracks, i, label):
                    continue
                lost = self._rejoin(label, box)
                if lost is None:
                    if self._in_required_zone(presence):
                        del self._pending[tid]
                        changes.append(self._start(tracks, i, tid, label, presence, ts))
                    continue
                # The object came back as a new track: its event goes on.
                del self._pending[tid]
                ev = self._open[tid] = self._open.pop(lost)
                ev.track_id = tid
            ev.last_seen = ts
            ev.box = _box(box)
            ev.median_score = float(tracks.median_score[i])
            zones_changed = ev.presence.update(box)
            better = float(tracks.top_score[i]) > ev.top_score
            if better:
                ev.top_score = float(tracks.top_score[i])
            due = ts - ev.last_update >= self.rules.update_interval
            gain = ev.top_score - ev.published_top >= self.rules.update_min_gain
            if zones_changed or (gain and due):
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
        out = dict(self._zero_counts)
        for ev in self._open.values():
            out[("all", ev.label)] += 1
            for name in ev.presence.current:
                out[(name, ev.label)] += 1
        return out

    def open_events(self) -> list[dict[str, Any]]:
        """The current state of every open event (records without ``type``/``seq``)."""
        return [self._body(ev) for ev in self._open.values()]

    def has_open_events(self) -> bool:
        """Whether any event is open (without building its record)."""
        return bool(self._open)

    # -- internals ------------------------------------------------------------------

    def _label(self, class_id: int) -> str:
        if 0 <= class_id < len(self.model_labels):
            return self.model_labels[class_id]
        return str(class_id)

    def _steady(self, tracks: Tracks, i: int, label: str) -> bool:
        """Seen in K of the last N frames with a median score >= the label's threshold."""
        r = self.rules
        return bool(
            tracks.hits[i] >= r.confirm_hits and tracks.median_score[i] >= r.threshold_for(label)
        )

    def _in_required_zone(self, presence: ZonePresence) -> bool:
        required = self.rules.required_zones
        return not required or any(z in presence.entered for z in required)

    def _rejoin(self, label: str, box: np.ndarray) -> int | None:
        """The track id of the open event a newly confirmed track continues, or None.

        Candidates: open events of ``label`` not seen in this frame whose last box's
        bottom centre is within ``rejoin_distance`` box heights of the new one's (the
        nearest wins). Detectors miss people for a second or two, longer than a track
        coasts; without this every such gap would end one event and start another.
        """
        limit = self.rules.rejoin_distance
        if limit <= 0:
            return None
        best, best_d = None, limit
        y1, x1 = float(box[2]), (float(box[1]) + float(box[3])) / 2
        for tid, ev in self._open.items():
            if ev.label != label or tid in self._matched_now:
                continue
            b = ev.box
            height = max(b[2] - b[0], float(box[2]) - float(box[0]), 1e-3)
            d = math.hypot(x1 - (b[1] + b[3]) / 2, y1 - b[2]) / height
            if d <= best_d:
                best, best_d = tid, d
        return best

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
    """Which counts to publish: a value that differs from the last one published for its
    (zone, label), at most once per ``min_interval`` seconds per (zone, label). A change
    held back by the interval is published when the interval has passed, if the count is
    still different then (a person stepping out and back in within it sends nothing)."""

    def __init__(self, min_interval: float = 0.0) -> None:
        self.min_interval = float(min_interval)
        self._last: dict[tuple[str, str], int] = {}
        self._when: dict[tuple[str, str], float] = {}
        self.pending = False  # a change is held back: call again on later frames

    def changed(
        self, counts: dict[tuple[str, str], int], ts: float = 0.0, *, force: bool = False
    ) -> list[tuple[str, str, int]]:
        """[(zone, label, value)] to publish now (every pair at the first call).
        ``force``: ignore the interval and start none (the start and end of a run)."""
        out = []
        self.pending = False
        for key, value in counts.items():
            if self._last.get(key) == value:
                continue
            if not force and key in self._when and ts - self._when[key] < self.min_interval:
                self.pending = True
                continue
            self._last[key] = value
            if not force:  # the initial and final publications start no interval
                self._when[key] = ts
            out.append((key[0], key[1], value))
        return out
