"""Tracking by default costs no extra dependency: scipy only for Hungarian assignment."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUN = """
import sys
import numpy as np
from edgedet.detections import Detections
from edgedet.events.config import EventsConfig, TrackingConfig
from edgedet.events.pipeline import EventsStage
from edgedet.events.seqstate import SeqCounter
import edgedet.service.config, edgedet.events.homeassistant, edgedet.events.snapshots
stage = EventsStage(EventsConfig(), TrackingConfig(assignment={assignment!r}), {{}},
                    ("person",), "d", seq=SeqCounter(None))
box = np.array([[0.2, 0.2, 0.6, 0.3], [0.2, 0.5, 0.6, 0.6]], np.float32)
for t in range(10):
    stage.process(Detections(box + 0.001 * t, [0.8, 0.7], [0, 0], ("person",)), t / 10)
print(",".join(m for m in ("scipy", "cv2", "paho", "tensorflow") if m in sys.modules))
"""


def _heavy(assignment: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(assignment=assignment)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_greedy_tracking_imports_neither_scipy_nor_opencv() -> None:
    assert _heavy("greedy") == ""


def test_hungarian_tracking_imports_scipy_when_first_used() -> None:
    pytest.importorskip("scipy")
    assert _heavy("hungarian") == "scipy"
