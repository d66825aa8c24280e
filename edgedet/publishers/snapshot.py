"""Annotated JPEG snapshots when chosen labels appear, rate-limited, with retention.

On the inference thread ``publish()`` only checks whether a chosen label is among the
detections and whether ``min_interval`` seconds passed since the last accepted snapshot;
drawing, encoding and writing happen on the publisher's thread. Files are named
``<UTC time>_<frame>_<labels>.jpg`` (so name order is time order), written to a temporary
file in the same directory and renamed into place, so a reader never sees a partial JPEG.
After each write only the newest ``keep`` snapshots are kept.

A write failure (directory not creatable, disk full) counts in
``publish_errors_total{publisher="snapshot"}`` and ``publish_dropped_total``, logs one line
per failure episode, and the next snapshot tries again.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedet.episodes import FailureEpisode
from edgedet.publishers import PublisherContext, QueuedPublisher
from edgedet.schema import setting

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotsConfig:
    """Annotated JPEGs when one of these labels is detected."""

    enabled: bool = setting(False)
    directory: str | None = setting(
        None, doc="null: $STATE_DIRECTORY/snapshots, else ./edgedet-snapshots"
    )
    labels: tuple[str, ...] = setting(("person",))
    min_interval: float = setting(10.0, lo=0.0, hi=86400, doc="seconds between two snapshots")
    keep: int = setting(100, lo=1, hi=1_000_000, doc="newest files kept")


_NAME_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}Z_\d+_[A-Za-z0-9_.+-]*\.jpg$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SnapshotPublisher(QueuedPublisher):
    """Writes annotated JPEGs of frames showing any of ``labels`` into ``directory``."""

    name = "snapshot"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        labels: Iterable[str] = ("person",),
        min_interval: float = 10.0,
        keep: int = 100,
        metrics: Metrics,
        queue_size: int = 4,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        if min_interval < 0:
            raise ValueError("min_interval must be >= 0")
        self.directory = Path(directory)
        self.labels = frozenset(labels)
        self.min_interval = float(min_interval)
        self.keep = keep
        self._last_accepted: float | None = None
        self._gate = threading.Lock()
        self._failures = FailureEpisode(log)
        super().__init__(queue_size=queue_size, metrics=metrics)

    @classmethod
    def from_config(cls, cfg: SnapshotsConfig, context: PublisherContext) -> SnapshotPublisher:
        if cfg.directory is None:
            raise ValueError("snapshots.directory is resolved by load_config")  # programming error
        return cls(
            cfg.directory,
            labels=cfg.labels,
            min_interval=cfg.min_interval,
            keep=cfg.keep,
            metrics=context.metrics,
        )

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        """Queue a snapshot if a chosen label is present and the rate limit allows it."""
        try:
            found = self._chosen_labels(detections)
        except Exception:  # never raise into the loop
            log.exception("snapshot: cannot read detections")
            return
        if not found:
            return
        now = time.monotonic()
        with self._gate:
            if self._last_accepted is not None and now - self._last_accepted < self.min_interval:
                return  # rate-limited by design, not a drop
            self._last_accepted = now
        super().publish(record, frame, detections)

    def _chosen_labels(self, detections: Detections) -> list[str]:
        seen: list[str] = []
        for i in range(len(detections)):
            label = detections.label(i)
            if label in self.labels and label not in seen:
                seen.append(label)
        return seen

    def _prepare(self, record: dict, frame: np.ndarray, detections: Detections) -> Any:
        return (record, frame, detections)

    def _handle(self, item: tuple[dict, np.ndarray, Detections]) -> None:
        from edgedet.annotate import encode_jpeg

        record, frame, detections = item
        jpeg = encode_jpeg(frame, detections)
        path = self.directory / self._file_name(record, detections)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(jpeg)
            os.replace(tmp, path)
            self._prune()
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            self._error()
            self._dropped()
            self._failures.failed("snapshot: cannot write %s (%s); will retry", path, exc.strerror)
            return
        self._failures.recovered("snapshot: writing to %s again", self.directory)

    def _file_name(self, record: dict, detections: Detections) -> str:
        ts = record.get("ts")
        when = datetime.fromtimestamp(
            float(ts) if isinstance(ts, (int, float)) else time.time(), tz=timezone.utc
        )
        stamp = when.strftime("%Y%m%dT%H%M%S.") + f"{when.microsecond // 1000:03d}Z"
        frame_index = record.get("frame", 0)
        frame_index = frame_index if isinstance(frame_index, int) and frame_index >= 0 else 0
        labels = "+".join(_UNSAFE.sub("-", label) for label in self._chosen_labels(detections))
        return f"{stamp}_{frame_index}_{labels}.jpg"

    def snapshots(self) -> list[Path]:
        """Snapshot files in the directory, oldest first (other files are ignored)."""
        try:
            names = [e.name for e in os.scandir(self.directory) if e.is_file()]
        except FileNotFoundError:
            return []
        return [self.directory / n for n in sorted(names) if _NAME_RE.match(n)]

    def _prune(self) -> None:
        files = self.snapshots()
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)
