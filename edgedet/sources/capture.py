"""The capture thread and the latest-frame slot between it and inference.

Capture runs in its own thread so inference never waits on I/O. It hands frames over
through a ``LatestFrameSlot`` that holds one frame:

- live sources (cameras, streams), and files/folders with ``source.realtime: true``, put
  without waiting: a frame still in the slot is overwritten and counted as dropped, and
  the next ``take`` reports how many were dropped since the previous one;
- files and folders by default wait for the slot to be empty: a file is not a live
  camera, so a slow consumer slows reading down instead of losing frames.

``seq`` numbers every delivered frame across reconnects and loops, from 0, so for each
taken frame ``seq - previous_seq - 1 == dropped``: nothing is lost silently.

A source that fails, stalls (no frame within ``read_timeout``) or ends while looping is
closed and reopened with exponential backoff: ``backoff_initial``, doubled after each
failed attempt, capped at ``backoff_max`` (at most 30 s), reset once a frame arrives. A
finite source that ends without looping ends the slot (``take`` raises ``EndOfSource``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from edgedet.sources import EndOfSource, Frame, Source

if TYPE_CHECKING:
    from edgedet.metrics import Metrics

log = logging.getLogger("edgedet.sources")

MAX_BACKOFF = 30.0


class Delivered(NamedTuple):
    """A frame taken from the slot: ``seq`` across the run, ``dropped`` since last take."""

    seq: int
    frame: Frame
    dropped: int


class LatestFrameSlot:
    """One-frame hand-over between the capture thread and the run loop (thread-safe)."""

    def __init__(self, *, first_seq: int = 0, dropped: int = 0) -> None:
        """``first_seq``/``dropped`` continue the numbering of a slot this one replaces
        (a source switched on reload): ``dropped`` frames are reported with the next take.
        """
        self._cond = threading.Condition()
        self._item: tuple[int, Frame] | None = None
        self._dropped = dropped
        self._ended = False
        self._closed = False
        self.delivered = first_seq  # seq of the next frame put
        self.dropped_total = dropped  # frames overwritten before anyone took them

    def put(self, frame: Frame, *, wait: bool = False) -> int | None:
        """Store ``frame``; returns its ``seq``, or None when the slot is closed.

        ``wait=False`` overwrites (and counts) a frame nobody took; ``wait=True`` blocks
        until the previous frame has been taken.
        """
        with self._cond:
            if wait:
                while self._item is not None and not self._closed:
                    self._cond.wait()
            if self._closed:
                return None
            if self._item is not None:
                self._dropped += 1
                self.dropped_total += 1
            seq = self.delivered
            self.delivered += 1
            self._item = (seq, frame)
            self._cond.notify_all()
            return seq

    def take(self, timeout: float) -> Delivered | None:
        """The newest frame, or None after ``timeout`` s; EndOfSource once ended and empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._item is None:
                if self._ended:
                    raise EndOfSource("source ended")
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._cond.wait(remaining)
            seq, frame = self._item
            dropped, self._item, self._dropped = self._dropped, None, 0
            self._cond.notify_all()
            return Delivered(seq, frame, dropped)

    def end(self) -> None:
        """The source is exhausted: ``take`` raises EndOfSource once the slot is empty."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def close(self) -> None:
        """Unblock everyone: ``put`` stores nothing more, ``take`` returns what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def pending(self) -> int:
        """Frames in the slot not taken yet (0 or 1)."""
        with self._cond:
            return 0 if self._item is None else 1


class CaptureThread:
    """Reads ``source`` into ``slot`` on a daemon thread, reconnecting with backoff.

    ``opened``: the caller already opened the source (start-up errors then surface as a
    SourceError in the caller, exit code 2); otherwise the thread opens it, with backoff.
    ``realtime``: pace a finite source at its FPS (``source.fps``, default 25) and never
    wait for the consumer; live sources always run at their own pace.
    """

    def __init__(
        self,
        source: Source,
        slot: LatestFrameSlot,
        *,
        metrics: Metrics | None = None,
        read_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = MAX_BACKOFF,
        realtime: bool = False,
        opened: bool = False,
    ) -> None:
        self.source = source
        self.slot = slot
        self.metrics = metrics
        self.read_timeout = read_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = min(backoff_max, MAX_BACKOFF)
        self.realtime = realtime
        self._opened = opened
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgedet-capture", daemon=True)
        self.reconnects = 0
        self.errors = 0
        self.last_error: str | None = None
        self.ended = False
        self._skipped_seen = 0
        self._pump_frames = 0  # frames delivered since the source was last (re)opened
        self.cpu_seconds = 0.0  # CPU time of the thread (decoding, pacing), set when it ends

    # -- control ---------------------------------------------------------------------

    def start(self) -> CaptureThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and close the source (waits at most ``timeout`` for the thread)."""
        self._stop.set()
        self.slot.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Stuck in a driver call; the thread is a daemon and dies with the process.
            log.warning(
                "source %s: capture thread did not stop within %.1f s", self.source.name, timeout
            )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------

    def _inc(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            try:
                self.source.close()
            except Exception as exc:  # closing a broken device must not mask the cause
                log.debug("source %s: close failed: %s", self.source.name, exc)
            # For benchmarks: what capture cost apart from inference (a Pi camera's ISP
            # does this work in hardware; a video file is decoded here).
            self.cpu_seconds = time.thread_time()

    def _loop(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            if not self._opened:
                try:
                    self.source.open()
                    self._opened = True
                except Exception as exc:  # I/O edge: any open failure → retry with backoff
                    delay = self._failed(str(exc) or type(exc).__name__, delay)
                    continue
            try:
                stalled = self._pump()
            except EndOfSource:
                self.ended = True
                self.slot.end()
                return
            except Exception as exc:  # I/O edge: any driver/decoder failure → reconnect
                reason = str(exc) or type(exc).__name__
            else:
                if not stalled:
                    return  # stopped
                reason = f"no frame for {self.read_timeout:g} s (stalled)"
            self._close()
            if self._pump_frames:
                delay = self.backoff_initial  # it worked for a while: start over
            delay = self._failed(reason, delay)

    def _count_skipped(self) -> None:
        # Unreadable images a folder source skipped: not delivered, so not "dropped".
        skipped = self.source.stats().get("skipped", 0)
        if skipped > self._skipped_seen:
            if self.metrics is not None:
                self.metrics.inc("source_skipped_total", skipped - self._skipped_seen)
            if self._skipped_seen == 0:
                log.warning("source %s: skipping unreadable images", self.source.name)
            self._skipped_seen = skipped

    def _close(self) -> None:
        self._opened = False
        try:
            self.source.close()
        except Exception as exc:
            log.debug("source %s: close failed: %s", self.source.name, exc)

    def _failed(self, reason: str, delay: float) -> float:
        """Count and log a failure, wait ``delay`` (interruptible), return the next delay."""
        self.errors += 1
        self.last_error = reason
        self._inc("source_errors_total")
        # SourceError texts already start with "source NAME: ".
        what = reason if reason.startswith("source ") else f"source {self.source.name}: {reason}"
        log.warning("%s; reconnecting in %g s", what, delay)
        if self._stop.wait(delay):
            return delay
        self.reconnects += 1
        self._inc("source_reconnects_total")
        return min(delay * 2, self.backoff_max)

    def _pump(self) -> bool:
        """Read frames until a stall (returns True) or a stop (False); errors propagate."""
        self._pump_frames = 0
        wait_for_consumer = self.source.finite and not self.realtime
        period = 0.0
        if self.source.finite and self.realtime:
            period = 1.0 / (self.source.fps or 25.0)
        next_due = time.monotonic()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            frame = self.source.read(self.read_timeout)
            if frame is None:
                return True
            if self.metrics is not None:
                self.metrics.observe(
                    "stage_latency_seconds", time.perf_counter() - t0, stage="capture"
                )
            if period:
                next_due += period
                pause = next_due - time.monotonic()
                if pause > 0 and self._stop.wait(pause):
                    return False
                if pause < -1.0:
                    next_due = time.monotonic()  # fell far behind (slow decode): resync
            if self.slot.put(frame, wait=wait_for_consumer) is None:
                return False
            if self._pump_frames == 0 and self.reconnects:
                log.info("source %s: frames flowing again", self.source.name)
            self._pump_frames += 1
            self._count_skipped()
        return False
