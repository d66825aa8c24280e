"""Fixtures for source tests: small videos written per test, captured source logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from srcmedia import Records, write_video


@pytest.fixture
def video(tmp_path: Path):
    """Factory: ``video(n, fps=25)`` writes a fresh clip in the test's tmp dir."""
    counter = iter(range(1000))

    def make(n: int, fps: float = 25.0, name: str | None = None) -> Path:
        return write_video(tmp_path / (name or f"clip{next(counter)}.avi"), n, fps)

    return make


@pytest.fixture
def source_log():
    handler = Records()
    logger = logging.getLogger("edgedet.sources")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)
