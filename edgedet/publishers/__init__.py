"""Publishers: where records leave the run loop (JSONL log, MQTT, HTTP, snapshots).

Every publisher sits behind the same narrow interface, ``Publisher``. The run loop calls
``publish()`` once per processed frame; it must return at once and never raise, because a
slow disk or a dead broker must not stall inference. Concrete publishers therefore hand
the work to their own thread through a bounded queue (``QueuedPublisher``): a full queue
drops the record and counts it (``publish_dropped_total{publisher=}``) instead of waiting.
Counters live in the shared ``Metrics`` only (``publish_dropped_total``,
``publish_errors_total``, ``publish_reconnects_total``, each labelled ``publisher=``).

Each concrete publisher lives in its own module with its config section (``LogConfig``
beside ``JsonlLogPublisher`` ...) and a ``from_config(section, context)`` constructor.
``REGISTRY`` maps the config section's name to the class; ``build_publishers`` builds the
enabled ones in registry order. Optional dependencies (paho-mqtt, OpenCV) are imported
only when a publisher needs them.
"""

from __future__ import annotations

import importlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.events.pipeline import EventBatch
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)

# config section name -> "module:Class", in the order publishers are built and closed
# (the JSONL log first: records matter most).
REGISTRY: dict[str, str] = {
    "log": "edgedet.publishers.jsonl:JsonlLogPublisher",
    "events": "edgedet.publishers.jsonl:EventsLogPublisher",
    "mqtt": "edgedet.publishers.mqtt:MqttPublisher",
    "http": "edgedet.publishers.http:HttpPublisher",
    "snapshots": "edgedet.publishers.snapshot:SnapshotPublisher",
}


FRAMES = ("off", "detections", "all")


@dataclass(frozen=True)
class PublisherContext:
    """What the service shares with every publisher besides its own config section."""

    metrics: Metrics
    healthy: Callable[[], bool]  # a frame was processed recently (HTTP /healthz)
    # Which per-frame records the log and MQTT publish (``log.frames``): off | detections
    # (frames with at least one detection) | all.
    frames: str = "all"
    device_id: str = ""
    model_name: str = ""  # for the Home Assistant device block
    homeassistant: Any = None  # HomeAssistantConfig, for the MQTT publisher


def wants_frame(frames: str, record: dict) -> bool:
    """Whether a per-frame ``record`` is published under the ``frames`` choice."""
    return frames == "all" or (frames == "detections" and bool(record["detections"]))


class Publisher:
    """One output of the service.

    ``publish`` receives the DESIGN.md record, the BGR frame it was computed from and
    its ``Detections``. The publisher may keep references to all three, so the caller
    must not modify them afterwards (the run loop builds new ones per frame).
    """

    name: str = "publisher"

    @classmethod
    def from_config(cls, cfg: Any, context: PublisherContext) -> Publisher:
        """The publisher configured by its section ``cfg`` (already validated)."""
        raise NotImplementedError

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        """Hand over one processed frame. Never blocks, never raises."""
        raise NotImplementedError

    def publish_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        """Hand over what a frame changed in events and counts (``EventBatch``) and the
        frame (for snapshots). Never blocks, never raises. Default: ignored."""

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
    handles_events = False  # subclasses that implement _handle_events set this

    def __init__(self, *, queue_size: int, metrics: Metrics) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.metrics = metrics
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edgedet-{self.name}", daemon=True)
        self._thread.start()

    # -- the run loop's side ---------------------------------------------------------

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        if self._closing.is_set():
            self._dropped()
            return
        self._offer(self._prepare(record, frame, detections))

    def publish_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        if not self.handles_events:
            return
        if self._closing.is_set():
            self._dropped()
            return
        self._offer(_Events(batch, frame))

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

    def _handle_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _on_close(self) -> None:
        pass

    def _offer(self, item: Any) -> None:
        """Queue ``item`` for the worker, or count it dropped if the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped()

    def _dropped(self) -> None:
        """A record that will never be published (queue full, closing, write failed)."""
        self.metrics.inc("publish_dropped_total", publisher=self.name)

    def _error(self) -> None:
        """A failed write or send."""
        self.metrics.inc("publish_errors_total", publisher=self.name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                break
            try:
                if isinstance(item, _Events):
                    self._handle_events(item.batch, item.frame)
                else:
                    self._handle(item)
            except Exception:
                self._error()
                log.exception("%s publisher: unexpected error", self.name)
        try:
            self._on_close()
        except Exception:
            log.exception("%s publisher: error while closing", self.name)


@dataclass
class _Events:
    """A queued ``publish_events`` call."""

    batch: Any
    frame: Any


def publisher_class(name: str) -> type[Publisher]:
    """The publisher class registered for config section ``name`` (imported now)."""
    module_name, _, class_name = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_publishers(cfg: Any, context: PublisherContext) -> list[Publisher]:
    """The publishers whose section of ``cfg`` (the config tree) is ``enabled``, built in
    ``REGISTRY`` order. On an error (e.g. the HTTP port is taken) the ones already built
    are closed before the error propagates."""
    built: list[Publisher] = []
    try:
        for name in REGISTRY:
            section = getattr(cfg, name)
            if section.enabled:
                built.append(publisher_class(name).from_config(section, context))
    except BaseException:
        for publisher in built:
            publisher.close(timeout=1.0)
        raise
    return built


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
