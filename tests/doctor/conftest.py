"""Fixtures for the `edgedet doctor` tests: a fixture machine root (the real broker
fixture comes from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doctorroot import FakeRoot


@pytest.fixture
def fake_root(tmp_path: Path) -> FakeRoot:
    return FakeRoot(tmp_path / "root")
