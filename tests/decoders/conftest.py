"""Fixtures for decoder tests: real tiny models, built once per session and cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import modelfactory
import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("decoder_models")


@pytest.fixture(scope="session")
def build_model(model_dir: Path) -> Callable[..., Path]:
    """``build_model(kind, **options)`` → cached ``.tflite`` path (see tests/modelfactory.py)."""
    pytest.importorskip("tensorflow")

    def build(kind: str, **options: Any) -> Path:
        return modelfactory.cached_model(model_dir, kind, **options)

    return build
