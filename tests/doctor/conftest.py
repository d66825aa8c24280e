"""Fixtures for the `edgedet doctor` tests: a fixture machine root and a real broker."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from doctorroot import REPO, FakeRoot


def _load_broker_helper():
    # Shared with tests/ops and tests/publishers under one module name (see their conftest).
    name = "edgedet_test_broker"
    if name not in sys.modules:
        path = REPO / "tests" / "ops" / "mqtt_broker.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_broker = _load_broker_helper()
broker = _broker.broker


@pytest.fixture
def fake_root(tmp_path: Path) -> FakeRoot:
    return FakeRoot(tmp_path / "root")
