"""Fixtures for `edgedet tune`: real frames of the bundled clip, ground truth made from
real detections, and writers for the three annotation formats.

The ground truth is the bundled model's own detections at min_score 0.6 (integer pixel
boxes), with one invented object per frame labelled ``dog``, so the files exercise
label mapping and ``--label-map dog=-``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tune_support

TRUTH_MIN_SCORE = 0.6


@pytest.fixture(scope="session")
def detector(bundled_model):
    from edgedet.detector import Detector

    return Detector.open(bundled_model)


@pytest.fixture(scope="session")
def image_folder(sample_frames, tmp_path_factory) -> Path:
    """Eight real frames as PNG files (lossless, so every reader sees the same pixels)."""
    folder = tmp_path_factory.mktemp("tune-images")
    for i, frame in enumerate(sample_frames[:8]):
        cv2.imwrite(str(folder / f"frame{i}.png"), frame)
    return folder


@pytest.fixture(scope="session")
def truth_objects(image_folder, detector) -> dict[str, list[tuple[str, list[int]]]]:
    """image name → [(label, [x0, y0, x1, y1] integer pixel edges)]."""
    objects = {}
    for path in sorted(image_folder.glob("*.png")):
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        found = detector.detect(image, min_score=TRUTH_MIN_SCORE)
        boxes = []
        for ymin, xmin, ymax, xmax in found.boxes.astype(np.float64):
            boxes.append(
                ("person", [round(xmin * w), round(ymin * h), round(xmax * w), round(ymax * h)])
            )
        boxes.append(("dog", [5, 5, 60, 40]))
        objects[path.name] = boxes
    assert sum(len(v) for v in objects.values()) > 16
    return objects
