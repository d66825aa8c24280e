"""Fixtures for the operations tests: a real mosquitto broker (see mqtt_broker.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_broker_helper():
    # Loaded by path under a fixed name so tests/publishers and tests/ops share one module
    # whatever the package layout of tests/ is; test modules `import edgedet_test_broker`.
    name = "edgedet_test_broker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("mqtt_broker.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_helper = _load_broker_helper()
broker = _helper.broker
stopped_broker = _helper.stopped_broker
