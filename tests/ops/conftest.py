"""Fixtures for the operations tests: a real mosquitto broker (mqtt_broker.py) and
`edgedet run` as a subprocess (service_proc.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load(name: str, filename: str):
    # Loaded by path under a fixed name so tests/publishers and tests/ops share one module
    # whatever the package layout of tests/ is; test modules `import edgedet_test_broker`
    # and `import edgedet_test_service`.
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_broker = _load("edgedet_test_broker", "mqtt_broker.py")
_load("edgedet_test_service", "service_proc.py")
broker = _broker.broker
stopped_broker = _broker.stopped_broker
