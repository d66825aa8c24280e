"""Tracking quality on generated scenes with known identities (py-motmetrics)."""

from __future__ import annotations

import numpy as np
import pytest
from tracking_sequences import Walker, evaluate, make_scene, standard_scenes

from edgedet.detections import Detections
from edgedet.events.tracker import Tracker, assign_greedy, assign_hungarian
from edgedet.postprocess import box_iou

pytest.importorskip("motmetrics")


def _confirmed_tracks(tracker: Tracker, hits: int = 3):
    confirmed: set[int] = set()

    def track_frame(detections):
        tracks = tracker.update(detections)
        confirmed.update(tracks.ids[tracks.hits >= hits].tolist())
        keep = np.isin(tracks.ids, list(confirmed))
        return tracks.ids[keep], tracks.boxes[keep]

    return track_frame


@pytest.mark.parametrize("assignment", ["greedy", "hungarian"])
@pytest.mark.parametrize("scene", standard_scenes(), ids=lambda s: s.name)
def test_identities_survive_crossings_misses_occlusions_and_jitter(scene, assignment) -> None:
    if assignment == "hungarian":
        pytest.importorskip("scipy")
    score = evaluate(scene, _confirmed_tracks(Tracker(assignment=assignment)))
    assert score.idf1 >= 0.9, score
    assert score.transfers == 0, score  # no tracker id moves on to another object


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_other_seeds_also_reach_the_target(seed: int) -> None:
    for scene in standard_scenes(seed):
        score = evaluate(scene, _confirmed_tracks(Tracker()))
        assert score.idf1 >= 0.9, (scene.name, score)
        assert score.transfers == 0, (scene.name, score)


def test_a_deleted_id_never_comes_back_and_new_tracks_get_new_ids() -> None:
    scene = standard_scenes()[5]  # street with clutter: many tracks born and dropped
    tracker = Tracker(max_age=3)
    alive_before: set[int] = set()
    retired: set[int] = set()
    top = 0
    for frame in scene.frames:
        ids = set(tracker.update(frame.detections).ids.tolist())
        assert not ids & retired
        born = ids - alive_before
        assert all(i > top for i in born)
        top = max([top, *ids])
        retired |= alive_before - ids
        alive_before = ids


def test_occluded_object_keeps_its_id_through_a_five_frame_gap() -> None:
    walker = Walker(0.2, 0.5, 0.01, 0.0, 0.1, 0.3)
    scene = make_scene("gap", [walker], 40, seed=3)
    tracker = Tracker()
    ids = []
    for t, frame in enumerate(scene.frames):
        dets = frame.detections if not 15 <= t < 20 else frame.detections[np.zeros(0, int)]
        tracks = tracker.update(dets)
        ids += tracks.ids[tracks.matched].tolist()
    assert set(ids) == {1}


def test_classes_never_share_a_track() -> None:
    box = np.array([[0.2, 0.2, 0.6, 0.4]], np.float32)
    tracker = Tracker()
    a = tracker.update(Detections(box, [0.9], [0], ("person", "car")))
    b = tracker.update(Detections(box, [0.9], [1], ("person", "car")))
    assert a.ids[a.matched].tolist() == [1]
    assert b.ids[b.matched].tolist() == [2]


def test_hits_and_median_score_follow_the_last_frames() -> None:
    box = np.array([[0.2, 0.2, 0.6, 0.4]], np.float32)
    tracker = Tracker(window=5, score_history=3)
    scores = [0.9, 0.5, 0.6, 0.7]
    for s in scores:
        tracks = tracker.update(Detections(box, [s], [0], ("person",)))
    assert tracks.hits.tolist() == [4]
    assert tracks.median_score[0] == pytest.approx(0.6)  # median of the last 3
    assert tracks.top_score[0] == pytest.approx(0.9)
    for _ in range(3):
        tracks = tracker.update(Detections.empty(("person",)))
    assert tracks.hits.tolist() == [2] and not tracks.matched[0]


def test_greedy_and_hungarian_pick_pairs_above_the_threshold_only() -> None:
    iou = np.array([[0.9, 0.6], [0.8, 0.1]])
    r, c = assign_greedy(iou, 0.3)
    assert list(zip(r.tolist(), c.tolist(), strict=True)) == [(0, 0)]
    pytest.importorskip("scipy")
    r, c = assign_hungarian(iou, 0.3)
    # Optimal total (0.6 + 0.8) beats greedy's 0.9 + nothing.
    assert sorted(zip(r.tolist(), c.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_iou_matrix_matches_the_postprocess_definition() -> None:
    a = np.array([[0.1, 0.2, 0.3, 0.4]])
    b = np.array([[0.2, 0.25, 0.4, 0.45], [0.5, 0.5, 0.5, 0.6]])
    got = box_iou(a, b)
    assert got[0, 0] == pytest.approx(0.015 / 0.065)
    assert got[0, 1] == 0.0
