"""Confirmation, the new / update / end state machine, zones, counts, seq numbers."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.errors import ConfigError
from edgedet.events.machine import CountChanges, EventMachine, EventRules
from edgedet.events.seqstate import SeqCounter
from edgedet.events.tracker import Tracker
from edgedet.events.zones import ZoneConfig, ZonePresence, build_zones, check_zone_names

LABELS = ("person", "car")
LEFT = ZoneConfig(polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)), inertia=2)
RIGHT = ZoneConfig(polygon=((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)), labels=("car",))


def _box(cx: float, cy: float = 0.5, w: float = 0.1, h: float = 0.3) -> list[float]:
    return [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2]


def _dets(*rows: tuple[list[float], float, int]) -> Detections:
    if not rows:
        return Detections.empty(LABELS)
    boxes, scores, cls = zip(*rows, strict=True)
    return Detections(np.array(boxes, np.float32), scores, cls, LABELS)


def _machine(tmp_path, rules: EventRules | None = None, zones=None) -> EventMachine:
    return EventMachine(
        rules or EventRules(),
        build_zones(zones or {}),
        LABELS,
        "cam1",
        SeqCounter(tmp_path / "seq"),
        snapshot_path=lambda eid: f"/snaps/{eid}.jpg",
    )


def _run(machine: EventMachine, frames, fps: float = 10.0, tracker: Tracker | None = None):
    tracker = tracker or Tracker(window=machine.rules.confirm_window)
    records = []
    for t, dets in enumerate(frames):
        records += [c.record for c in machine.update(tracker.update(dets), t / fps)]
    return records


def test_one_confident_frame_is_not_an_event_but_k_of_n_steady_frames_are(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(confirm_hits=3, confirm_window=5, threshold=0.6))
    flash = [_dets((_box(0.3), 0.95, 0)), *[_dets()] * 30]
    assert _run(m, flash) == []
    m = _machine(tmp_path, EventRules(confirm_hits=3, confirm_window=5, threshold=0.6))
    frames = [_dets((_box(0.3), 0.7, 0)), _dets(), _dets((_box(0.3), 0.7, 0))]
    frames += [_dets((_box(0.3), 0.7, 0))]
    recs = _run(m, frames)
    assert [r["type"] for r in recs] == ["new"]
    assert recs[0]["label"] == "person" and recs[0]["start"] == pytest.approx(0.3)


def test_median_below_the_label_threshold_makes_no_event(tmp_path) -> None:
    rules = EventRules(threshold=0.5, label_thresholds={"person": 0.8})
    frames = [_dets((_box(0.3), 0.7, 0), (_box(0.8), 0.7, 1))] * 10
    recs = _run(_machine(tmp_path, rules), frames)
    assert {r["label"] for r in recs} == {"car"}


def test_end_after_expire_and_finish_ends_the_rest(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(expire=1.0))
    frames = [_dets((_box(0.3), 0.8, 0), (_box(0.8), 0.8, 1))] * 5
    frames += [_dets((_box(0.8), 0.8, 1))] * 15  # the person leaves at t = 0.5 s
    recs = _run(m, frames)
    ends = [r for r in recs if r["type"] == "end"]
    assert [r["label"] for r in ends] == ["person"]
    assert ends[0]["end"] == pytest.approx(0.4)  # last seen
    final = [c.record for c in m.finish()]
    assert [(r["type"], r["label"]) for r in final] == [("end", "car")]
    assert final[0]["end"] == pytest.approx(1.9)
    assert m.finish() == [] and m.open_events() == []


def test_records_have_the_design_keys_and_strictly_increasing_seq(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(expire=0.5))
    frames = [_dets((_box(0.3 + 0.01 * t), 0.6 + 0.01 * t, 0)) for t in range(30)]
    recs = _run(m, frames) + [c.record for c in m.finish()]
    keys = [
        "type",
        "seq",
        "id",
        "device",
        "label",
        "start",
        "end",
        "top_score",
        "median_score",
        "box",
        "zones",
        "entered_zones",
        "snapshot",
    ]
    for r in recs:
        assert list(r) == keys
        assert r["device"] == "cam1"
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs))
    assert recs[-1]["type"] == "end" and recs[-1]["end"] is not None
    assert all(r["end"] is None for r in recs[:-1])
    assert len({r["id"] for r in recs}) == 1


def test_score_updates_are_rate_limited_and_carry_a_snapshot(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(update_interval=1.0))
    frames = [_dets((_box(0.3), 0.6 + 0.01 * t, 0)) for t in range(35)]  # rises each frame
    recs = _run(m, frames)
    updates = [r for r in recs if r["type"] == "update"]
    assert 2 <= len(updates) <= 4  # 3.4 s of rising scores, one update a second at most
    assert all(r["snapshot"] == f"/snaps/{r['id']}.jpg" for r in recs)
    assert updates[-1]["top_score"] > recs[0]["top_score"]


def test_zone_change_updates_at_once_and_counts_follow(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(update_interval=100.0), {"left": LEFT, "right": RIGHT})
    tracker = Tracker()
    seen = []
    counts = CountChanges()
    published = []
    for t in range(40):
        x = 0.2 + 0.015 * t  # walks from the left half into the right half
        changes = m.update(tracker.update(_dets((_box(x), 0.8, 0))), t / 10)
        seen += [c.record for c in changes]
        published += counts.changed(m.counts())
    kinds = [(r["type"], r["zones"]) for r in seen]
    assert kinds[0] == ("new", ["left"])
    assert ("update", []) in kinds  # left the left zone; "right" is for cars only
    assert seen[-1]["entered_zones"] == ["left"]
    # Counts: all/person and left/person go 0 → 1, then left/person back to 0; right has
    # only a car count (its label filter).
    assert ("all", "person", 1) in published and ("left", "person", 0) in published
    assert {(z, lb) for z, lb, _ in published} == {
        ("all", "person"),
        ("all", "car"),
        ("left", "person"),
        ("left", "car"),
        ("right", "car"),
    }
    history: dict[tuple[str, str], list[int]] = {}
    for z, lb, v in published:
        history.setdefault((z, lb), []).append(v)
    assert history[("left", "person")] == [0, 1, 0]  # published only on change
    assert history[("all", "car")] == [0]


def test_required_zone_delays_the_event_until_the_object_enters_it(tmp_path) -> None:
    rules = EventRules(required_zones=("right",))
    zones = {"right": ZoneConfig(polygon=RIGHT.polygon, inertia=1)}
    m = _machine(tmp_path, rules, zones)
    frames = [_dets((_box(0.2 + 0.02 * t), 0.8, 0)) for t in range(30)]
    recs = _run(m, frames)
    assert recs[0]["type"] == "new" and recs[0]["zones"] == ["right"]
    assert recs[0]["start"] >= 1.4  # bottom centre crosses x = 0.5 at t = 15


def test_inertia_ignores_a_box_flickering_across_an_edge() -> None:
    (zone,) = build_zones({"z": ZoneConfig(polygon=LEFT.polygon, inertia=3)})
    p = ZonePresence([zone], "person")
    inside, outside = np.array(_box(0.3)), np.array(_box(0.7))
    assert [p.update(inside) for _ in range(3)] == [False, False, True]
    assert [p.update(b) for b in (outside, inside, outside, outside, inside)] == [False] * 5
    assert p.current == ["z"]
    assert [p.update(outside) for _ in range(3)] == [False, False, True]
    assert p.current == [] and p.entered == ["z"]


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        (
            {"a": ZoneConfig(polygon=((0, 0), (1, 1), (1, 0), (0, 1)))},
            "zones.a.polygon: edges cross",
        ),
        (
            {"a": ZoneConfig(polygon=((0, 0), (1.2, 0), (1, 1)))},
            "zones.a.polygon[1]: expected x, y in [0, 1]",
        ),
        ({"a": ZoneConfig(polygon=((0, 0), (1, 0)))}, "zones.a.polygon: expected at least 3"),
        (
            {"a": ZoneConfig(polygon=((0, 0), (0.5, 0.5), (1, 1)))},
            "zones.a.polygon: the points enclose no area",
        ),
        ({"all": LEFT}, "zones.all: 'all' is reserved"),
        ({"a/b": LEFT}, "zones.a/b: zone names may use"),
    ],
)
def test_bad_zones_are_one_line_naming_the_key(zones, message) -> None:
    with pytest.raises(ConfigError) as info:
        build_zones(zones)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unknown_zone_name_in_a_list_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^events.required_zones\[1\]: unknown zone 'drive'"):
        check_zone_names(["left", "drive"], {"left": LEFT}, "events.required_zones")


def test_seq_continues_strictly_increasing_after_a_restart(tmp_path) -> None:
    state = tmp_path / "state" / "events.seq"
    first = SeqCounter(state, block=10)
    a = [first.next() for _ in range(25)]
    second = SeqCounter(state, block=10)  # a restart (or a crash: nothing else is saved)
    b = [second.next() for _ in range(5)]
    assert a == list(range(1, 26))
    assert b[0] > a[-1] and b == list(range(b[0], b[0] + 5))
    assert b[0] - a[-1] <= 10


def test_seq_without_state_file_starts_from_the_clock() -> None:
    a = SeqCounter(None)
    b = SeqCounter(None)
    x = [a.next() for _ in range(3)]
    assert x == sorted(x) and b.next() >= x[0]


def _gap_frames(gap: int) -> list[Detections]:
    """A person seen for 10 frames, missed for ``gap`` frames, seen again nearby."""
    seen = [_dets((_box(0.3 + 0.005 * t), 0.8, 0)) for t in range(10)]
    back = [_dets((_box(0.3 + 0.005 * (t + 10 + gap)), 0.8, 0)) for t in range(10)]
    return seen + [_dets()] * gap + back


def test_an_object_lost_longer_than_a_track_lives_keeps_its_event(tmp_path) -> None:
    # 25 missed frames: the tracker drops the track after 15, the event lives 5 s.
    m = _machine(tmp_path, EventRules(expire=5.0))
    recs = _run(m, _gap_frames(25), tracker=Tracker(max_age=15))
    recs += [c.record for c in m.finish()]
    assert [r["type"] for r in recs] == ["new", "end"]
    assert recs[1]["end"] == pytest.approx(4.4)  # last seen in the last frame


def test_without_rejoin_the_same_gap_makes_two_events(tmp_path) -> None:
    m = _machine(tmp_path, EventRules(expire=5.0, rejoin_distance=0.0))
    recs = _run(m, _gap_frames(25), tracker=Tracker(max_age=15))
    recs += [c.record for c in m.finish()]
    assert [r["type"] for r in recs] == ["new", "new", "end", "end"]


def test_rejoin_never_takes_the_event_of_an_object_seen_in_this_frame(tmp_path) -> None:
    m = _machine(tmp_path)
    # Two people side by side, both steady: two events, never merged.
    frames = [_dets((_box(0.3), 0.8, 0), (_box(0.42), 0.8, 0))] * 10
    recs = _run(m, frames)
    assert [r["type"] for r in recs] == ["new", "new"]
    assert len({r["id"] for r in recs}) == 2


def test_counts_are_throttled_per_key_but_a_first_change_is_at_once() -> None:
    c = CountChanges(min_interval=5.0)
    key = ("all", "person")
    assert c.changed({key: 0}, 0.0) == [("all", "person", 0)]
    assert c.changed({key: 1}, 10.0) == [("all", "person", 1)]  # first change: at once
    assert c.changed({key: 2}, 11.0) == [] and c.pending
    assert c.changed({key: 3}, 12.0) == []
    assert c.changed({key: 3}, 15.0) == [("all", "person", 3)]  # the latest, when due
    assert c.changed({key: 2}, 16.0) == [] and c.changed({key: 3}, 17.0) == []
    assert not c.pending  # back to the published value: nothing to send
    assert c.changed({key: 0}, 18.0, force=True) == [("all", "person", 0)]
