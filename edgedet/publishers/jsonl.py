"""The JSON-lines logs, rotated by size: the detections log (one DESIGN.md record per
processed frame, as ``log.frames`` chooses) and the events log (one event record per
line, ``EventsLogPublisher``, which also stores the events' snapshots).

Guarantees:
- A record is one compact JSON line written with one ``write(2)`` on an ``O_APPEND``
  descriptor. If the write is short or fails (disk full), the file is truncated back to
  its previous size, so a reader never sees half a record.
- Rotation happens between records (``path`` → ``path.1`` → … → ``path.<backups>``, the
  oldest deleted), never inside one, and only when the next record would push the file
  past ``max_bytes``. A single record larger than ``max_bytes`` gets a file of its own.
- A log moved or deleted by someone else (logrotate, an operator) is noticed within
  ``reopen_check_interval`` seconds and a new file is started at ``path``, instead of
  writing on into an unlinked file.
- Failures (directory missing or not a directory, disk full, I/O error) never reach the
  run loop: each failed write counts in ``publish_errors_total{publisher="log"}``, the
  record counts in ``publish_dropped_total{publisher="log"}``, one warning is logged per
  failure episode (not per record), and every later record tries again.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedet.episodes import FailureEpisode
from edgedet.publishers import (
    FRAMES,
    PublisherContext,
    QueuedPublisher,
    dumps_record,
    wants_frame,
)
from edgedet.schema import setting

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.events.config import EventsConfig
    from edgedet.events.pipeline import EventBatch
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogConfig:
    """JSON-lines detections log, one record per processed frame."""

    enabled: bool = setting(True)
    path: str | None = setting(
        None,
        doc="null: $LOGS_DIRECTORY/detections.jsonl under systemd, else ./edgedet-detections.jsonl",
    )
    max_bytes: int = setting(10_000_000, lo=1024, doc="rotate when the file would grow past this")
    backups: int = setting(5, lo=0, hi=1000, doc="rotated files kept")
    queue_size: int = setting(1000, lo=1, hi=1_000_000)
    frames: str = setting(
        "off",
        choices=FRAMES,
        doc="per-frame records in this log and on MQTT <prefix>/detections: off | detections "
        "(frames with detections) | all; events and counts are published either way. "
        "--log PATH sets all",
    )


class JsonlLogPublisher(QueuedPublisher):
    """Appends records to ``path`` on a writer thread, rotating at ``max_bytes``.

    ``backups`` rotated files are kept (0: the log is simply restarted when full).
    The parent directory is created when missing.
    """

    name = "log"
    what = "detections log"  # in log messages
    # Seconds between checks that ``path`` is still the file we write to (one stat()).
    reopen_check_interval = 1.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 10_000_000,
        backups: int = 5,
        queue_size: int = 1000,
        metrics: Metrics,
        frames: str = "all",
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if backups < 0:
            raise ValueError("backups must be >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.frames = frames
        self._fd: int | None = None
        self._size = 0
        self._checked_at = 0.0
        self._failures = FailureEpisode(log)
        super().__init__(queue_size=queue_size, metrics=metrics)

    @classmethod
    def from_config(cls, cfg: LogConfig, context: PublisherContext) -> JsonlLogPublisher:
        if cfg.path is None:
            raise ValueError("log.path is resolved by load_config")  # programming error
        return cls(
            cfg.path,
            max_bytes=cfg.max_bytes,
            backups=cfg.backups,
            queue_size=cfg.queue_size,
            metrics=context.metrics,
            frames=context.frames,
        )

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        if wants_frame(self.frames, record):
            super().publish(record, frame, detections)

    def _handle(self, record: dict) -> None:
        data = (dumps_record(record) + "\n").encode("utf-8")
        try:
            self._write(data)
        except OSError as exc:
            self._close_fd()
            self._error()
            self._dropped()
            self._failures.failed(
                "%s %s: cannot write (%s); records are counted as dropped and writing is retried",
                self.what,
                self.path,
                _describe(exc),
            )
            return
        self._failures.recovered(
            "%s %s: writing again after {failures} lost record(s)", self.what, self.path
        )

    def _on_close(self) -> None:
        self._close_fd()

    def _write(self, data: bytes) -> None:
        if self._fd is not None and self._replaced():
            log.warning("%s %s was moved or deleted; starting a new file", self.what, self.path)
            self._close_fd()
        if self._fd is None:
            self._open()
        if self._size > 0 and self._size + len(data) > self.max_bytes:
            self._rotate()
        assert self._fd is not None
        start = self._size
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                # Regular files only write short when the disk fills up; make it an error.
                raise OSError(errno.ENOSPC, "short write")
        except OSError:
            self._truncate_to(start)
            raise
        self._size = start + written

    def _replaced(self) -> bool:
        """True when ``path`` no longer names the open file (checked at most every
        ``reopen_check_interval`` seconds)."""
        now = time.monotonic()
        if now - self._checked_at < self.reopen_check_interval:
            return False
        self._checked_at = now
        assert self._fd is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        mine = os.fstat(self._fd)
        return (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._checked_at = time.monotonic()

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups == 0:
            os.unlink(self.path)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = self._backup(i)
                if older.exists():
                    os.replace(older, self._backup(i + 1))
            os.replace(self.path, self._backup(1))
        self._open()

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _truncate_to(self, size: int) -> None:
        # Remove a partial line; if even that fails the next open starts after it and the
        # reader sees one bad line, which is all we can do on a failing disk.
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            pass

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{name}: {text}" if name else text


class EventsLogPublisher(JsonlLogPublisher):
    """The events log (``events.log_path``): one event record per line, rotated like the
    detections log, and each event's best snapshot (``edgedet.events.snapshots``), written
    before the record that names it. Per-frame records are not its business."""

    name = "events"
    what = "events log"
    handles_events = True

    def __init__(self, path: str | os.PathLike[str], *, snapshots: Any = None, **kw: Any) -> None:
        self.snapshots = snapshots  # SnapshotStore or None
        self._snapshot_failures = FailureEpisode(log)
        super().__init__(path, **kw)

    @classmethod
    def from_config(cls, cfg: EventsConfig, context: PublisherContext) -> EventsLogPublisher:
        if cfg.log_path is None:
            raise ValueError("events.log_path is resolved by load_config")  # programming error
        store = None
        if cfg.snapshots and cfg.snapshot_dir:
            from edgedet.events.snapshots import SnapshotStore

            store = SnapshotStore(
                cfg.snapshot_dir,
                max_count=cfg.snapshot_max_count,
                max_bytes=cfg.snapshot_max_bytes,
            )
        return cls(
            cfg.log_path,
            snapshots=store,
            max_bytes=cfg.log_max_bytes,
            backups=cfg.log_backups,
            metrics=context.metrics,
        )

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        pass  # events only

    def _handle_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        if self.snapshots is not None:
            for snap in batch.snapshots:
                try:
                    self.snapshots.save(snap.event_id, frame, snap.box, snap.label, snap.score)
                except OSError as exc:
                    self._error()
                    self._snapshot_failures.failed(
                        "event snapshots in %s: cannot write (%s); retried with the next one",
                        self.snapshots.directory,
                        _describe(exc),
                    )
                    continue
                self._snapshot_failures.recovered(
                    "event snapshots in %s: writing again after {failures} failure(s)",
                    self.snapshots.directory,
                )
        for record in batch.events:
            self._handle(record)
