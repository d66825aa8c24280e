"""Publishers: where records leave the run loop (JSONL log, MQTT, HTTP, snapshots).

Every publisher sits behind the same narrow interface, ``Publisher``. The run loop calls
``publish()`` once per processed frame; it must return at once and never raise, because a
slow disk or a dead broker must not stall inference. Concrete publishers therefore hand
the work to their own thread through a bounded queue (``QueuedPublisher``): a full queue
drops the record and counts it (``publish_dropped_total{publisher=}``) instead of waiting.

Concrete publishers live in their own modules and are imported by the runner only when
enabled, so optional dependencies (paho-mqtt) stay optional:
``jsonl.JsonlLogPublisher``, ``mqtt.MqttPublisher``, ``http.HttpPublisher``,
``snapshot.SnapshotPublisher``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)

STAT_KEYS = ("published", "dropped", "errors", "reconnects")


class Publisher:
    """One output of the service.

    ``publish`` receives the DESIGN.md record, the BGR frame it was computed from and
    its ``Detections``. The publisher may keep references to all three, so the caller
    must not modify them afterwards (the run loop builds new ones per frame).
    """

    name: str = "publisher"

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        """Hand over one processed frame. Never blocks, never raises."""
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counters since start: ``published``, ``dropped``, ``errors``, ``reconnects``."""
        raise NotImplementedError

    def close(self, timeout: float = 3.0) -> None:
        """Flush what is queued (within ``timeout`` seconds), then stop threads."""
        raise NotImplementedError


class QueuedPublisher(Publisher):
    """A publisher whose work runs on one worker thread fed by a bounded FIFO queue.

    Subclasses implement ``_handle(item)``, called on the worker thread for each queued
    item in order, and may override ``_prepare`` (runs on the caller's thread, must be
    cheap) and ``_on_close`` (runs on the worker thread after the last item).
    An exception escaping ``_handle`` is a bug in the subclass: it is counted as an
    error and logged, and the worker keeps going.
    """

    _STOP = object()

    def __init__(self, *, queue_size: int, metrics: Metrics) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.metrics = metrics
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._counts = dict.fromkeys(STAT_KEYS, 0)
        self._counts_lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edgedet-{self.name}", daemon=True)
        self._thread.start()

    # -- the run loop's side ---------------------------------------------------------

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        if self._closing.is_set():
            self._count("dropped")
            return
        try:
            self._queue.put_nowait(self._prepare(record, frame, detections))
        except queue.Full:
            self._count("dropped")

    def stats(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def close(self, timeout: float = 3.0) -> None:
        """Let the worker finish what is queued, then stop it; waits at most ``timeout``."""
        deadline = time.monotonic() + timeout
        if not self._closing.is_set():
            self._closing.set()
            try:
                # Waits for room if the queue is full, so the stop marker comes last.
                self._queue.put(self._STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                log.warning("%s publisher: queue not drained within %.1f s", self.name, timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("%s publisher: still busy after %.1f s, abandoning", self.name, timeout)

    # -- for subclasses --------------------------------------------------------------

    def _prepare(self, record: dict, frame: np.ndarray, detections: Detections) -> Any:
        return record

    def _handle(self, item: Any) -> None:
        raise NotImplementedError

    def _on_close(self) -> None:
        pass

    def _count(self, key: str, n: int = 1) -> None:
        """Add to ``stats()[key]`` and mirror drops/errors into the shared metrics."""
        with self._counts_lock:
            self._counts[key] += n
        if key == "dropped":
            self.metrics.inc("publish_dropped_total", n, publisher=self.name)
        elif key == "errors":
            self.metrics.inc("publish_errors_total", n, publisher=self.name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                break
            try:
                self._handle(item)
            except Exception:
                self._count("errors")
                log.exception("%s publisher: unexpected error", self.name)
        try:
            self._on_close()
        except Exception:
            log.exception("%s publisher: error while closing", self.name)


def dumps_record(record: dict) -> str:
    """One compact JSON line (no newline) for ``record``; NumPy scalars become numbers."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays expose .item()/.tolist(); anything else becomes its str().
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
