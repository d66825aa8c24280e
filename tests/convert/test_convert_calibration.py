"""Calibration frames: spread over the whole source, hold-out interleaved, runtime preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedet.convert.calibration import load_frames, preprocess, split_holdout, spread


def test_spread_picks_centres_of_equal_slices():
    assert spread(4, 0, 100) == [12, 37, 62, 87]
    assert spread(5, 10, 13) == [10, 11, 12]  # fewer available than asked: all of them
    assert spread(0, 0, 10) == []


def test_split_holdout_interleaves():
    picks = list(range(10))
    calib, hold = split_holdout(picks, 0.5)
    assert calib == [0, 2, 4, 6, 8] and hold == [1, 3, 5, 7, 9]
    calib, hold = split_holdout(picks, 0.0)
    assert calib == picks and hold == []


def test_calibration_frames_sample_the_whole_source(sample_clip):
    """Frames are spread over the video; hold-out frames interleave and never overlap."""

    frames = load_frames(sample_clip, 20, 10)
    assert len(frames.calibration) == 20 and len(frames.holdout) == 10
    assert not set(frames.calibration_ids) & set(frames.holdout_ids)
    ids = sorted(frames.calibration_ids + frames.holdout_ids)
    assert ids[0] < 120 * 0.05 and ids[-1] > 120 * 0.95  # whole clip covered
    assert min(frames.holdout_ids) < 30 and max(frames.holdout_ids) > 90
    ranged = load_frames(sample_clip, 6, 0, frame_range=(100, None))
    assert all(100 <= i < 120 for i in ranged.calibration_ids)
    assert frames.calibration[0].shape == (576, 768, 3)
    assert np.array_equal(frames.calibration[0], _frame_at(sample_clip, frames.calibration_ids[0]))


def _frame_at(video: Path, index: int) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(video))
    for _ in range(index):
        cap.grab()
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_folder_frames_and_preprocessing_match_the_runtime(calib_dir):
    """Calibration input is what the runtime's float preprocessing makes of the frame."""
    import cv2

    from edgedet.modelcard import InputSpec

    frames = load_frames(calib_dir, 4, 2)
    files = sorted(calib_dir.iterdir())
    first = cv2.imread(str(files[frames.calibration_ids[0]]))
    assert np.array_equal(frames.calibration[0], first)
    spec = InputSpec(height=300, width=300, color="rgb", resize="stretch")
    x = preprocess(first, spec)
    assert x.shape == (1, 300, 300, 3) and x.dtype == np.float32
    small = cv2.resize(first, (300, 300), interpolation=cv2.INTER_LINEAR_EXACT)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(x[0], (rgb.astype(np.float32) - 127.5) / 127.5, atol=1e-6)
