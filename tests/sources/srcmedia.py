"""Real media helpers for the source and service tests (importable as ``srcmedia``)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

STEP = 8  # grey level per frame index: frame i is a flat image of value STEP * i


def frame_image(i: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Frame ``i``: flat grey ``STEP * i`` (survives MJPEG compression), BGR uint8."""
    width, height = size
    return np.full((height, width, 3), STEP * i, np.uint8)


def index_of(image: np.ndarray) -> int:
    """Inverse of ``frame_image``."""
    return int(round(float(image.mean()) / STEP))


def write_video(path: Path, n: int, fps: float = 25.0, size: tuple[int, int] = (64, 48)) -> Path:
    """An MJPEG AVI with ``n`` frames ``frame_image(0..n-1)``."""
    assert n * STEP < 256
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame_image(i, size))
    writer.release()
    return path


class Records(logging.Handler):
    """Collects log messages of one logger for assertions."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
