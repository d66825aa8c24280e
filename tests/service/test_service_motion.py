"""Motion gating in the run loop: real model, real clips with still stretches, real records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.service import clean_env, edgedet_cmd
from support.service import read_log as read_records

from edgedet.metrics import Metrics
from edgedet.service.config import Override, load_config
from edgedet.service.runner import Runner
from edgedet.stillclip import VTEST, build_still_clip


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory):
    """vtest.avi: 3 s still, 2 s of people, 3 s still, 2 s of people, 3 s still."""
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} missing: apt-get install opencv-doc (.ci/run does)")
    out = tmp_path_factory.mktemp("motion") / "still.avi"
    return build_still_clip(out, still_seconds=3.0, passage_seconds=2.0, passages=2)


def run(tmp_path: Path, model: Path, source: Path, *settings: str) -> tuple[list[dict], Runner]:
    log = tmp_path / "det.jsonl"
    overrides = [
        Override("model.path", str(model), "test"),
        Override("source.uri", str(source), "test"),
        Override("log.path", str(log), "test"),
        Override("log.frames", "all", "test"),
        Override("http.enabled", "false", "test"),
        Override("service.summary", "false", "test"),
    ]
    overrides += [Override(k, v, "--set") for k, v in (s.split("=", 1) for s in settings)]
    runner = Runner(load_config(None, overrides), metrics=Metrics(), install_signals=False)
    runner.run()
    return read_records(log), runner


def frames_in(records: list[dict]) -> set[int]:
    return {r["frame"] for r in records}


def test_gating_skips_still_frames_detects_every_moving_one_and_counts_the_rest(
    tmp_path, run_model, still_clip
):
    # keepalive beyond the clip's run time: only motion and presence may admit a frame.
    records, runner = run(tmp_path, run_model, still_clip.path, "motion.keepalive=3600")
    processed = frames_in(records)
    for seg in still_clip.segments:
        if not seg.still:
            assert set(range(seg.start, seg.stop)) <= processed  # every moving frame
    first = still_clip.segments[0]
    assert processed & set(range(first.start, first.stop)) == {0}  # an empty still street
    # Nothing lost silently: every frame is a record or counted in the next `dropped`.
    previous = -1
    for rec in records:
        assert rec["frame"] - previous - 1 == rec["dropped"]
        previous = rec["frame"]
    m = runner.metrics
    skipped = int(m.get("frames_skipped_total"))
    trailing = still_clip.frames - 1 - records[-1]["frame"]  # after the last record
    assert skipped == still_clip.frames - len(records)
    assert m.get("frames_dropped_total") == sum(r["dropped"] for r in records) + trailing
    assert m.get("frames_total") == len(records)
    still = sum(s.stop - s.start for s in still_clip.segments if s.still)
    # The background relearns the empty street within ~2 s of a passage; the rest is skipped.
    assert runner.summary.motion_skipped == skipped and skipped >= still // 2
    text = m.render_prometheus()
    assert f"edgedet_frames_skipped_total {skipped}" in text
    assert 'edgedet_motion_admitted_total{reason="motion"}' in text
    assert 'stage="motion"' in text


def test_motion_disabled_detects_every_frame_as_before(tmp_path, run_model, still_clip):
    records, runner = run(tmp_path, run_model, still_clip.path, "motion.enabled=false")
    assert [r["frame"] for r in records] == list(range(still_clip.frames))
    assert all(r["dropped"] == 0 for r in records)
    text = runner.metrics.render_prometheus()
    assert "frames_skipped_total" not in text and 'stage="motion"' not in text
    assert runner.summary.motion_skipped == 0
    assert "by motion gating" not in runner.summary.render()


def test_present_objects_are_redetected_every_stationary_interval_frames(
    tmp_path, run_model, sample_frames
):
    # A real frame with people, held still (with sensor noise): nothing moves, but the
    # people are there, so they are re-detected every 4th frame.
    frame = sample_frames[0]
    path = tmp_path / "people_still.avi"
    h, w = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    rng = np.random.default_rng(1)
    for _ in range(21):
        noise = rng.normal(0, 1.5, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    records, _ = run(
        tmp_path, run_model, path, "motion.keepalive=3600", "motion.stationary_interval=4"
    )
    assert records[0]["detections"]  # people are seen in the first frame
    assert [r["frame"] for r in records] == [0, 4, 8, 12, 16, 20]
    assert all(r["detections"] for r in records)  # kept, not lost


def test_the_model_resize_runs_once_per_processed_frame_never_for_skipped_ones(
    tmp_path, run_model, still_clip
):
    from edgedet.detector import Detector

    detector = Detector.open(run_model)
    calls = []

    class Counting:  # the real preprocessor, its calls counted
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __call__(self, frame, out):
            calls.append(frame.shape)
            return self.real(frame, out)

    detector.preprocessor = Counting(detector.preprocessor)
    log = tmp_path / "det.jsonl"
    cfg = load_config(
        None,
        [
            Override("source.uri", str(still_clip.path), "test"),
            Override("log.path", str(log), "test"),
            Override("log.frames", "all", "test"),
            Override("http.enabled", "false", "test"),
            Override("service.summary", "false", "test"),
            Override("motion.keepalive", "3600", "test"),
        ],
    )
    Runner(cfg, detector=detector, metrics=Metrics(), install_signals=False).run()
    records = read_records(log)
    assert len(calls) == len(records) < still_clip.frames


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("motion.threshold=300", "motion.threshold: expected an integer in [1, 254], got 300"),
        ("motion.min_area=1.5", "motion.min_area: expected a number in [0, 1], got 1.5"),
        ("motion.keepalive=fast", "motion.keepalive: expected a number"),
        ("motion.stationary_interval=0", "motion.stationary_interval: expected an integer"),
        ("motion.blur=4", "motion.blur: expected an odd kernel size or 0, got 4"),
        ("motion.mask=[[[0, 0], [1, 1]]]", "motion.mask[0]: expected a polygon of at least 3"),
        ("motion.regions=[[[0, 0], [2, 0], [0, 1]]]", "motion.regions[0][1][0]: expected"),
        ("motion.treshold=3", "unknown key 'motion.treshold'; did you mean 'threshold'?"),
        ("source.lores_width=320", "source.lores_width and source.lores_height: set both"),
    ],
)
def test_bad_motion_settings_are_one_line_exit_2(tmp_path, run_model, setting, message):
    proc = subprocess.run(
        edgedet_cmd("run", "--model", str(run_model), "--http", "off", "--set", setting),
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
