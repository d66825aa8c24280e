"""Helpers for `edgedet run` end-to-end tests (importable as ``runhelpers``)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def edgedet_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgedet", *args]


def run_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "LOGS_DIRECTORY",
            "JOURNAL_STREAM",
            "INVOCATION_ID",
        )
    }
    env.update(extra)
    return env


def read_records(path: Path) -> list[dict]:
    """Every line of the JSONL log parsed; a partial last line fails the test."""
    if not path.exists():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        raise AssertionError("the log ends with a partial line")
    return [json.loads(line) for line in text.splitlines()]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0
