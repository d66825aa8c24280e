"""Fixtures shared across the test tree: the bundled model and clip, tiny real models."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
BUNDLED_MODEL = MODELS / "ssdlite_mobilenet_v2_person_uint8.tflite"


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    if not BUNDLED_MODEL.is_file():
        pytest.fail(f"bundled model missing: {BUNDLED_MODEL}")
    return BUNDLED_MODEL


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    found = sorted((MODELS / "samples").glob("vtest_clip.*"))
    if not found:
        pytest.fail("bundled sample clip models/samples/vtest_clip.* is missing")
    return found[0]


@pytest.fixture(scope="session")
def sample_frames(sample_clip: Path):
    """A few real BGR frames of the bundled clip, spread over it."""
    import cv2

    cap = cv2.VideoCapture(str(sample_clip))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 100
    frames = []
    for index in range(0, total, max(1, total // 8)):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if ok:
            frames.append(frame)
    cap.release()
    assert len(frames) >= 4
    return frames
