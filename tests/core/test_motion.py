"""Motion detector and gate: exact thresholds on synthetic frames, real footage, gate rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.motion import (
    FIRST,
    KEEPALIVE,
    MOTION,
    PRESENT,
    LastDetections,
    MotionConfig,
    MotionDetector,
    MotionGate,
    MotionGating,
    active_mask,
)
from edgedet.stillclip import VTEST, build_still_clip

# Full-size copy, no blur, no background learning: pixel arithmetic is exact.
EXACT = MotionConfig(width=100, blur=0, alpha=0.0, threshold=25, min_area=0.01)


def grey(value: int, size: tuple[int, int] = (100, 100)) -> np.ndarray:
    return np.full((size[1], size[0], 3), value, np.uint8)


def seeded(cfg: MotionConfig = EXACT, value: int = 100) -> MotionDetector:
    det = MotionDetector(cfg)
    first = det.detect(grey(value))
    assert first.moving  # nothing known yet about a first frame
    return det


def test_a_pixel_counts_when_it_differs_by_more_than_threshold():
    det = seeded()
    frame = grey(100)
    frame[:10, :10] = 125  # differs by exactly 25: not changed
    assert det.detect(frame).changed == 0.0
    frame[:10, :10] = 126  # by 26: changed
    assert det.detect(frame).changed == pytest.approx(0.01)
    frame[:10, :10] = 74  # darker by 26: changed too
    assert det.detect(frame).changed == pytest.approx(0.01)


def test_min_area_is_inclusive():
    det = seeded()
    frame = grey(100)
    frame[:10, :10] = 200  # 100 of 10000 pixels = min_area exactly
    assert det.detect(frame).moving
    frame[:10, :10] = 100
    frame[:9, :11] = 200  # 99 pixels
    assert not det.detect(frame).moving


def test_mask_polygons_ignore_motion_and_shrink_the_area():
    # Mask the left half: 5000 pixels remain; 50 changed pixels on the right = 0.01.
    cfg = dataclasses.replace(EXACT, mask=(((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)),))
    det = seeded(cfg)
    frame = grey(100)
    frame[:40, :40] = 255  # inside the mask only
    assert det.detect(frame).changed == 0.0
    frame = grey(100)
    frame[:5, 80:90] = 255
    m = det.detect(frame)
    assert m.changed == pytest.approx(0.01) and m.moving


def test_regions_limit_where_motion_counts():
    region = ((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0))  # bottom-right quarter
    det = seeded(dataclasses.replace(EXACT, regions=(region,)))
    frame = grey(100)
    frame[:50, :50] = 255  # top-left: outside the region
    assert not det.detect(frame).moving
    frame = grey(100)
    frame[60:65, 60:65] = 255  # 25 of the region's 2500 pixels
    assert det.detect(frame).changed == pytest.approx(0.01)


def test_active_mask_is_regions_minus_mask_in_normalized_coordinates():
    full = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    top = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5))
    m = active_mask(40, 80, [full], [top])
    assert m[:20].max() == 0 and m[20:].min() == 255  # pixel centres (i + 0.5) / 40
    assert active_mask(40, 80, [], []).min() == 255


def test_background_learns_a_change_that_stays():
    cfg = dataclasses.replace(EXACT, alpha=0.5)
    det = seeded(cfg, value=100)
    results = [det.detect(grey(200)).moving for _ in range(6)]
    # The background moves halfway each frame: 150, 175, 187.5 ... until within 25.
    assert results[0] and not results[-1]


def test_rebase_makes_the_last_frame_the_background_at_once():
    cfg = dataclasses.replace(EXACT, alpha=0.05)
    det = seeded(cfg, value=100)
    assert det.detect(grey(200)).moving
    assert det.detect(grey(200)).moving  # a running average takes many frames
    det.rebase()
    assert not det.detect(grey(200)).moving


def test_gating_rebases_on_empty_frames_and_keeps_the_background_while_objects_stay():
    gating = MotionGating(dataclasses.replace(EXACT, stationary_interval=100, keepalive=1e9))
    assert gating.admit(grey(100), 0.0) == FIRST
    gating.processed(0)
    assert gating.admit(grey(200), 0.1) == MOTION  # something came in
    gating.processed(1)  # ... and it is an object: no rebase, it stays "motion"
    assert gating.admit(grey(200), 0.2) == MOTION
    gating.processed(0)  # the detector found nothing there: that is the background now
    assert gating.admit(grey(200), 0.3) is None
    assert gating.skipped == 1


def test_a_new_frame_size_restarts_the_background():
    det = seeded()
    assert det.detect(grey(100, (50, 40))).moving  # first frame of the new size
    assert not det.detect(grey(100, (50, 40))).moving


def test_small_copy_keeps_the_aspect_and_accepts_grey_and_bgra():
    det = MotionDetector(MotionConfig(width=160))
    det.detect(np.zeros((480, 640), np.uint8))
    assert det._size == (160, 120)
    det.detect(np.zeros((576, 768, 4), np.uint8))
    assert det._size == (160, 120)


# ---------------------------------------------------------------------- the gate


def test_gate_runs_first_then_on_motion_and_skips_still_frames():
    gate = MotionGate(stationary_interval=5, keepalive=100.0, presence=LastDetections())
    assert gate.step(False, 0.0) == FIRST
    assert [gate.step(m, 0.1 * i) for i, m in enumerate([False, True, False], 1)] == [
        None,
        MOTION,
        None,
    ]
    assert gate.skipped == 2


def test_gate_redetects_present_objects_every_stationary_interval_frames():
    presence = LastDetections()
    gate = MotionGate(stationary_interval=3, keepalive=100.0, presence=presence)
    gate.step(True, 0.0)
    presence.update(2)  # that frame had detections
    decisions = [gate.step(False, 0.1 * i) for i in range(1, 8)]
    assert decisions == [None, None, PRESENT, None, None, PRESENT, None]
    presence.update(0)  # objects gone: back to motion/keepalive only
    assert [gate.step(False, 1.0 + 0.1 * i) for i in range(5)] == [None] * 5


def test_gate_keepalive_runs_at_least_every_keepalive_seconds():
    gate = MotionGate(stationary_interval=1, keepalive=2.0, presence=LastDetections())
    times = np.arange(0.0, 6.01, 0.5)
    decisions = [gate.step(False, float(t)) for t in times]
    ran = [float(t) for t, d in zip(times, decisions, strict=True) if d]
    assert ran == [0.0, 2.0, 4.0, 6.0]
    assert decisions[4] == KEEPALIVE and gate.skipped == len(times) - 4


def test_gate_rejects_a_zero_interval():
    with pytest.raises(ValueError):
        MotionGate(stationary_interval=0, keepalive=1.0, presence=LastDetections())


# ------------------------------------------------------------------ real footage


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory):
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} missing: apt-get install opencv-doc (.ci/run does)")
    out = tmp_path_factory.mktemp("clip") / "still.avi"
    return build_still_clip(out, still_seconds=3.0, passage_seconds=2.0, passages=2)


def read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def test_still_clip_has_the_layout_it_reports(still_clip):
    frames = read_all(still_clip.path)
    assert len(frames) == still_clip.frames == 3 * 30 + 2 * 20
    kinds = [s.still for s in still_clip.segments]
    assert kinds == [True, False, True, False, True]
    assert still_clip.still_fraction == pytest.approx(90 / 130)
    # Passages are the source's own frames; still frames are the background plus noise.
    src = cv2.VideoCapture(str(VTEST))
    for seg in still_clip.segments:
        if seg.still:
            continue
        src.set(cv2.CAP_PROP_POS_FRAMES, seg.source_start)
        ok, original = src.read()
        assert ok
        diff = np.abs(frames[seg.start].astype(int) - original.astype(int))
        assert diff.mean() < 3  # MJPEG re-encoding only
    src.release()
    still = np.stack([frames[i] for i in range(1, 30)]).astype(np.float32)
    assert 0.5 < still.std(axis=0).mean() < 4  # noise, no motion


def test_detector_is_still_on_still_stretches_and_moving_on_passages(still_clip):
    frames = read_all(still_clip.path)
    det = MotionDetector(MotionConfig())
    moving = np.array([det.detect(f).moving for f in frames])
    first, passage = still_clip.segments[0], still_clip.segments[1]
    assert not moving[first.start + 1 : first.stop].any()  # noise alone is not motion
    for seg in still_clip.segments:
        if not seg.still:
            assert moving[seg.start : seg.stop].all()  # people walk in every passage frame
    # After a passage the background relearns the empty street within its still stretch.
    after = still_clip.segments[2]
    assert moving[after.start] and not moving[after.stop - 5 : after.stop].any()
    assert passage.stop == after.start
