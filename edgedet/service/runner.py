"""The run loop behind `edgedet run`: source → detector → filters → publishers.

Threads: the capture thread (``edgedet.sources.capture``) reads the source into a
latest-frame slot; the run loop (the caller's thread, normally the main thread) takes the
newest frame, detects, filters, builds the record and hands it to every publisher, whose
``publish`` never blocks. Publishers run their own threads behind bounded queues.

The record (DESIGN.md), one per processed frame::

    {"ts": capture UNIX time, "frame": seq, "source": name, "width": W, "height": H,
     "dropped": frames skipped since the previous record,
     "timing_ms": {"preprocess", "invoke", "postprocess"}, "detections": [...]}

``frame`` numbers every frame the source delivered since start, across reconnects, loops
and source reloads (for a video file read once it is the frame's position in the file), so
``frame - previous frame - 1 == dropped`` and every delivered frame is either a record or
counted in ``dropped``.

Motion gating (``motion.enabled``, ``edgedet.motion``): each taken frame first goes
through ``MotionGating.admit``; a frame it skips makes no record and is never resized or
detected, but is counted: in the next record's ``dropped`` (which therefore counts frames
not processed for either reason), in ``frames_dropped_total`` and ``frames_skipped_total``,
and it keeps the service healthy (frames flow). Off, the loop is exactly as without it.

systemd (``Notifier``): ``READY=1`` after the first processed frame; ``STATUS=`` with the
FPS every ``service.status_interval`` seconds; ``WATCHDOG=1`` only while healthy (a frame
processed within ``service.stall_timeout`` seconds), so a stalled camera makes systemd
restart the service; ``STOPPING=1`` on shutdown.

Signals (installed when running on the main thread): SIGTERM and SIGINT stop cleanly: the
capture thread stops, publishers flush what is queued (within ``STOP_BUDGET`` seconds in
all) and the run ends with exit code 0. SIGHUP reloads the config file (the same flags
still override it): ``filters.*``, ``model.min_score``, ``model.iou``,
``model.max_detections``, ``model.agnostic``, ``service.*`` and ``source.*`` (the source is
reopened) take effect at once; changes to other keys (model file, backend, threads,
publishers, device id) are logged as needing a restart. A reload with an invalid config is
logged and ignored: the service keeps its current config.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from edgedet.errors import EdgedetError, ModelError
from edgedet.metrics import Metrics
from edgedet.motion import MotionGating
from edgedet.publishers import PublisherContext, build_publishers
from edgedet.service.config import Config, Override, load_config
from edgedet.service.filters import DetectionFilter
from edgedet.service.sdnotify import Notifier
from edgedet.sources import EndOfSource, make_source
from edgedet.sources.capture import CaptureThread, LatestFrameSlot

if TYPE_CHECKING:
    from edgedet.detector import Detector
    from edgedet.events.pipeline import EventBatch, EventsStage
    from edgedet.publishers import Publisher
    from edgedet.sources import Source

log = logging.getLogger("edgedet.run")

STAGES = ("capture", "motion", "preprocess", "invoke", "postprocess", "events", "publish")
STOP_BUDGET = 4.0  # seconds for the whole shutdown; systemd's stop check is 5 s
TAKE_TIMEOUT = 0.2  # how often the loop wakes without frames (signals, watchdog)
# Keys whose change on SIGHUP takes effect without a restart (see the module docstring).
RELOADABLE = (
    "filters",
    "motion",
    "service",
    "source",
    "model.min_score",
    "model.iou",
    "model.max_detections",
    "model.agnostic",
)


@dataclass
class RunSummary:
    """What a run did; ``render()`` is the text `edgedet run` prints at the end."""

    frames: int = 0
    dropped: int = 0
    skipped: int = 0  # unreadable images a folder source skipped (never delivered)
    motion_skipped: int = 0  # of ``dropped``: frames motion gating let pass undetected
    seconds: float = 0.0
    detections: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    first_detection_s: float | None = None
    first_frame_s: float | None = None
    reason: str = ""
    events: dict[str, int] = field(default_factory=dict)  # events started, per label
    tracks: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        lines = [
            f"edgedet run: {self.reason}",
            f"  frames     {self.frames} processed, {self.dropped} dropped"
            + (f" ({self.motion_skipped} by motion gating)" if self.motion_skipped else "")
            + f", {self.seconds:.1f} s, {self.fps:.1f} FPS"
            + (f", {self.skipped} unreadable images skipped" if self.skipped else ""),
        ]
        if self.detections:
            per = ", ".join(f"{k} {v}" for k, v in sorted(self.detections.items()))
            lines.append(f"  detections {sum(self.detections.values())} ({per})")
        else:
            lines.append("  detections 0")
        if self.events or self.tracks:
            per = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items()))
            lines.append(
                f"  events     {sum(self.events.values())}"
                + (f" ({per})" if per else "")
                + f", {self.tracks} tracks"
            )
        lines.append("  latency ms p50 / p95")
        for stage in STAGES:
            if stage in self.latency_ms:
                p50, p95 = self.latency_ms[stage]
                lines.append(f"    {stage:<12}{ms(p50):>8} / {ms(p95)}")
        return "\n".join(lines) + "\n"


def open_detector(cfg: Config) -> Detector:
    """The detector ``cfg.model`` describes; ModelError/BackendError on a bad model."""
    from edgedet.detector import Detector

    m = cfg.model
    if m.path is None:
        raise ModelError(
            "no model: the bundled model is not installed here; pass --model PATH.tflite"
        )
    return Detector.open(
        m.path,
        labels_path=m.labels,
        backend=m.backend,
        num_threads=m.threads,
        edgetpu=m.edgetpu,
        edgetpu_device=m.edgetpu_device,
        allow_cpu_fallback=m.allow_cpu_fallback,
    )


def _changed_keys(old: Config, new: Config) -> list[str]:
    a, b = old.to_dict(), new.to_dict()
    out = []
    for section in b:
        if isinstance(b[section], dict):
            keys = sorted(set(a[section]) | set(b[section]))  # zones can also disappear
            out += [f"{section}.{k}" for k in keys if a[section].get(k) != b[section].get(k)]
        elif a[section] != b[section]:
            out.append(section)
    return out


def _reloadable(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RELOADABLE)


class _TrackedObjects:
    """``edgedet.motion.Presence`` with events on: the last processed frame had detections,
    or an event is still open (its object was seen within ``events.expire`` seconds), so
    stationary objects are re-detected until their event ends, and no longer."""

    def __init__(self, events: EventsStage) -> None:
        self._events = events
        self._present = False

    def refresh(self, detections: int) -> None:
        """After each processed frame (and its events step)."""
        self._present = detections > 0 or self._events.has_open_events()

    def objects_present(self) -> bool:
        return self._present


class Runner:
    """One `edgedet run`: build with a validated ``Config``, then ``run()``.

    ``config_path``/``overrides`` are what the config came from, for SIGHUP reloads.
    ``detector`` may be passed in (the bench reuses one); otherwise ``run`` opens it.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: str | None = None,
        overrides: list[Override] | None = None,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        detector: Detector | None = None,
        install_signals: bool = True,
        summary_stream: TextIO | None = None,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.overrides = list(overrides or [])
        self.notifier = notifier or Notifier()
        self.metrics = metrics or Metrics()
        self.detector = detector
        self.install_signals = install_signals
        self.summary_stream = summary_stream
        self.publishers: list[Publisher] = []
        self.source: Source | None = None
        self.slot: LatestFrameSlot | None = None
        self.capture: CaptureThread | None = None
        self.summary = RunSummary()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._stop_reason = ""
        self._last_frame = 0.0  # monotonic time of the last processed frame; 0: none yet
        self._filter: DetectionFilter | None = None
        self._params: dict[str, Any] = {}
        self._first_take = 0.0
        self._last_seq = -1  # seq of the last processed frame
        self._gating: MotionGating | None = None  # None: motion.enabled is false
        self._presence: _TrackedObjects | None = None
        # Frames motion gating skipped since the last record, and the frames dropped
        # before them: the next record's ``dropped`` counts both (nothing lost silently).
        self._pending_skipped = 0
        self._pending_dropped = 0
        self._events: EventsStage | None = None
        self._last_display: Any = None  # the last frame, for the snapshots of final events

    # -- control from other threads / signal handlers -------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end (thread- and signal-safe)."""
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()

    def reload(self) -> None:
        """Ask the loop to reload the config file before the next frame."""
        self._reload.set()

    def healthy(self) -> bool:
        """A frame was processed within the last ``service.stall_timeout`` seconds."""
        last = self._last_frame
        return last > 0 and time.monotonic() - last < self.cfg.service.stall_timeout

    # -- set-up ----------------------------------------------------------------------

    def _apply_model_params(self, cfg: Config) -> None:
        m = cfg.model
        # Validates the thresholds against the card defaults once, not per frame.
        p = self.detector.params(m.min_score, m.iou, m.max_detections, m.agnostic)
        self._params = {
            "min_score": p.min_score,
            "iou_threshold": p.iou_threshold,
            "max_detections": p.max_detections,
            "agnostic": p.agnostic,
        }
        self._filter = DetectionFilter(cfg.filters, self.detector.labels)

    def _apply_motion(self, cfg: Config) -> None:
        # A fresh background and gate: a reload starts gating over, as a restart would.
        # "Objects still present": open events or detections when events are on, else
        # whether the last processed frame had detections (MotionGating's default).
        self._presence = _TrackedObjects(self._events) if self._events is not None else None
        self._gating = MotionGating(cfg.motion, self._presence) if cfg.motion.enabled else None

    def _fit_source(self, source: Source) -> None:
        # Sources that scale in hardware (picamera2's ISP) deliver the model's input size.
        pre = getattr(self.detector, "preprocessor", None)
        if pre is not None:
            source.fit_model_input(pre.width, pre.height, pre.spec.resize)

    def _start_capture(
        self, source: Source, *, opened: bool, first_seq: int = 0, dropped: int = 0
    ) -> None:
        s = self.cfg.source
        self.source = source
        self.slot = LatestFrameSlot(first_seq=first_seq, dropped=dropped)
        self.capture = CaptureThread(
            source,
            self.slot,
            metrics=self.metrics,
            read_timeout=s.read_timeout,
            backoff_initial=s.backoff_initial,
            backoff_max=s.backoff_max,
            realtime=s.realtime,
            opened=opened,
        ).start()

    def _setup(self) -> None:
        cfg = self.cfg
        # A mistyped path fails before the model loads. Only `edgedet run` without a
        # config may fall back to the demo clip (never under systemd: resolve_auto).
        source = make_source(cfg.source, demo=self.config_path is None)
        if self.detector is None:
            self.detector = open_detector(cfg)
        self._apply_model_params(cfg)
        self._fit_source(source)
        source.open()  # a missing camera/file is a start-up error: exit 2
        try:
            self._events = self._events_stage(cfg)
            self._apply_motion(cfg)
            context = PublisherContext(
                metrics=self.metrics,
                healthy=self.healthy,
                frames=cfg.log.frames,
                device_id=cfg.device_id or "",
                model_name=self._model_name(),
                homeassistant=cfg.homeassistant,
            )
            self.publishers = build_publishers(cfg, context)
        except BaseException:
            source.close()
            raise
        if self._events is not None:
            # Every configured count, zero, before the first frame (and the HA entities).
            self._publish_events(self._events.start(), None)
        self._start_capture(source, opened=True)
        self.metrics.set("up", 1.0)
        names = ", ".join(p.name for p in self.publishers) or "none"
        p = self._params
        log.info(
            "started: source %s, model %s (%s), min_score %.2f, iou %.2f, publishers: %s",
            source.name,
            getattr(self.detector, "model_path", cfg.model.path),
            getattr(self.detector, "backend_name", "?"),
            p["min_score"],
            p["iou_threshold"],
            names,
        )

    def _model_name(self) -> str:
        card = getattr(self.detector, "card", None)
        return str(getattr(card, "name", "") or getattr(self.detector, "model_path", ""))

    def _events_stage(self, cfg: Config) -> EventsStage | None:
        if cfg.homeassistant.enabled and not (cfg.events.enabled and cfg.mqtt.enabled):
            log.warning(
                "homeassistant.enabled has no effect without events.enabled and mqtt.enabled"
            )
        if not cfg.events.enabled:
            return None
        from edgedet.events.pipeline import EventsStage

        return EventsStage(
            cfg.events, cfg.tracking, cfg.zones, tuple(self.detector.labels), cfg.device_id or ""
        )

    def _publish_events(self, batch: EventBatch, frame: Any) -> None:
        for record in batch.events:
            self.metrics.inc("events_total", type=record["type"])
            if record["type"] == "new":
                self.summary.events[record["label"]] = (
                    self.summary.events.get(record["label"], 0) + 1
                )
        for publisher in self.publishers:
            publisher.publish_events(batch, frame)

    def _install_signals(self) -> list[tuple[int, Any]]:
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return []
        previous = []

        def on_stop(signum: int, _frame: Any) -> None:
            self.stop(f"stopped by {signal.Signals(signum).name}")

        def on_hup(_signum: int, _frame: Any) -> None:
            self.reload()

        for sig, handler in (
            (signal.SIGTERM, on_stop),
            (signal.SIGINT, on_stop),
            (signal.SIGHUP, on_hup),
        ):
            previous.append((sig, signal.signal(sig, handler)))
        return previous

    # -- reload ----------------------------------------------------------------------

    def _do_reload(self) -> None:
        self._reload.clear()
        if not self.config_path:
            log.info("SIGHUP: no config file to reload (started without --config)")
            return
        try:
            new = load_config(self.config_path, self.overrides)
            changed = _changed_keys(self.cfg, new)
            if not changed:
                log.info("SIGHUP: config %s reloaded, nothing changed", self.config_path)
                return
            old = self.cfg
            self.cfg = new
            try:
                self._apply_model_params(new)
            except EdgedetError:
                self.cfg = old
                self._apply_model_params(old)
                raise
        except EdgedetError as exc:
            log.error("SIGHUP: config not reloaded, keeping the current one: %s", exc)
            return
        now = [k for k in changed if _reloadable(k)]
        later = [k for k in changed if not _reloadable(k)]
        if any(k.startswith("source.") for k in now):
            self._switch_source(new)
        if any(k.startswith("motion.") for k in now):
            self._apply_motion(new)
        if now:
            log.info(
                "SIGHUP: config reloaded; in effect now (frames after %d): %s",
                self._last_seq,
                ", ".join(now),
            )
        if later:
            log.warning("SIGHUP: changed keys need a restart to take effect: %s", ", ".join(later))

    def _switch_source(self, cfg: Config) -> None:
        try:
            source = make_source(cfg.source)
        except EdgedetError as exc:
            log.error("SIGHUP: keeping the current source: %s", exc)
            return
        self._fit_source(source)
        old_slot, old_capture = self.slot, self.capture
        old_capture.stop()
        # The frame left in the old slot is counted as dropped in the next record.
        self._start_capture(
            source,
            opened=False,
            first_seq=old_slot.delivered,
            dropped=old_slot.pending(),
        )
        log.info("source switched to %s", source.name)

    # -- the loop --------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run until the source ends, ``service.max_frames``, or a stop; return the summary.

        EdgedetError from set-up (model, source, publishers) propagates before anything
        runs; the CLI turns it into one line and exit code 2.
        """
        start = time.monotonic()
        previous = self._install_signals()
        try:
            self._setup()
            self._loop(start)
        finally:
            self._shutdown()
            for sig, handler in previous:
                signal.signal(sig, handler)
        self._finish_summary(start)
        if self.cfg.service.summary and self.summary_stream is not None:
            self.summary_stream.write(self.summary.render())
            self.summary_stream.flush()
        return self.summary

    def _loop(self, start: float) -> None:
        counts: Counter[str] = Counter()
        self.summary.detections = counts  # type: ignore[assignment]
        metrics = self.metrics
        last_status = time.monotonic()
        frames_at_status = 0
        last_ping = 0.0
        was_healthy = False
        frames = 0
        max_frames = self.cfg.service.max_frames
        while not self._stop.is_set():
            if self._reload.is_set():
                self._do_reload()
                max_frames = self.cfg.service.max_frames
            try:
                got = self.slot.take(TAKE_TIMEOUT)
            except EndOfSource:
                self.stop("source ended")
                break
            now = time.monotonic()
            if got is not None and self._gating is not None and self._skip(got):
                self._last_frame = now  # frames flow; the gate saw nothing to detect
                got = None
            if got is not None:
                if frames == 0:
                    self._first_take = now
                self._process(got, counts)
                frames += 1
                self._last_frame = now = time.monotonic()
                if frames == 1:
                    self.summary.first_frame_s = now - start
                    self.notifier.ready()
                    log.info("first frame processed after %.2f s: ready", now - start)
                if counts and self.summary.first_detection_s is None:
                    self.summary.first_detection_s = now - start
            # Periodic work, at most every TAKE_TIMEOUT without frames.
            healthy = self.healthy()
            if healthy != was_healthy and frames:
                if healthy and frames > 1:
                    log.info("frames flowing again: healthy")
                elif not healthy:
                    log.warning(
                        "no frame processed for %g s: unhealthy, watchdog pings stopped",
                        self.cfg.service.stall_timeout,
                    )
                was_healthy = healthy
            interval = self.notifier.watchdog_interval
            if healthy and interval and now - last_ping >= interval:
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= self.cfg.service.status_interval:
                fps = (frames - frames_at_status) / (now - last_status)
                metrics.set("fps", fps)
                state = "running" if healthy else "waiting for frames"
                gated = f", {self._gating.skipped} skipped (motion)" if self._gating else ""
                self.notifier.status(f"{state}: {fps:.1f} FPS, {frames} frames{gated}")
                frames_at_status = frames
                last_status = now
            if max_frames and frames >= max_frames:
                self.stop(f"stopped after {frames} frames (max_frames)")
        self.summary.frames = frames
        self.summary.reason = self._stop_reason or "stopped"
        # FPS over the processing period: from taking the first frame to the loop's end.
        if frames:
            self.summary.seconds = time.monotonic() - self._first_take

    def _skip(self, got: Any) -> bool:
        """Run motion gating on a taken frame; True when it is skipped (and counted)."""
        t0 = time.perf_counter()
        reason = self._gating.admit(got.frame.image, got.frame.ts)
        self.metrics.observe("stage_latency_seconds", time.perf_counter() - t0, stage="motion")
        if reason is not None:
            self.metrics.inc("motion_admitted_total", reason=reason)
            return False
        self._pending_skipped += 1
        self._pending_dropped += got.dropped
        self.metrics.inc("frames_skipped_total")
        # frames_dropped_total matches the records' ``dropped``: it counts skips too.
        self.metrics.inc("frames_dropped_total", got.dropped + 1)
        self.summary.dropped += got.dropped + 1
        return True

    def _process(self, got: Any, counts: Counter[str]) -> None:
        metrics = self.metrics
        frame = got.frame
        image = frame.image
        self._last_seq = got.seq
        detections = self.detector.detect(image, **self._params)
        detections = self._filter.apply(detections)
        timing = self.detector.last_timing_ms
        height, width = image.shape[:2]
        record = {
            "ts": round(frame.ts, 3),
            "frame": got.seq,
            "source": self.source.name,
            "width": int(width),
            "height": int(height),
            # Frames not processed since the previous record: overwritten in the slot or
            # skipped by motion gating (frames_skipped_total tells the two apart).
            "dropped": got.dropped + self._pending_dropped + self._pending_skipped,
            "timing_ms": {
                k: round(float(timing.get(k, 0.0)), 3)
                for k in ("preprocess", "invoke", "postprocess")
            },
            "detections": detections.to_records(),
        }
        if self._gating is not None:
            self._gating.processed(len(detections))
        self._pending_skipped = self._pending_dropped = 0
        display = frame.display if frame.display is not None else image
        t0 = time.perf_counter()
        for publisher in self.publishers:
            publisher.publish(record, display, detections)
        publish_s = time.perf_counter() - t0
        if self._events is not None:
            t0 = time.perf_counter()
            batch = self._events.process(detections, frame.ts)
            if batch:
                self._publish_events(batch, display)
            self._last_display = display
            if self._presence is not None and self._gating is not None:
                self._presence.refresh(len(detections))
            metrics.observe("stage_latency_seconds", time.perf_counter() - t0, stage="events")
        for stage in ("preprocess", "invoke", "postprocess"):
            metrics.observe("stage_latency_seconds", timing.get(stage, 0.0) / 1000.0, stage=stage)
        metrics.observe("stage_latency_seconds", publish_s, stage="publish")
        metrics.inc("frames_total")
        metrics.inc("records_total")
        if got.dropped:
            metrics.inc("frames_dropped_total", got.dropped)
            self.summary.dropped += got.dropped
        for det in record["detections"]:
            counts[det["label"]] += 1
            metrics.inc("detections_total", label=det["label"])
        metrics.set("last_frame_timestamp_seconds", frame.ts)

    def _shutdown(self) -> None:
        deadline = time.monotonic() + STOP_BUDGET
        self.notifier.stopping()
        if self.capture is not None:
            self.capture.stop(timeout=1.0)
        if self._events is not None and self.publishers:
            # A finite run (or a stop) ends every open event before the publishers close.
            self._publish_events(self._events.finish(), self._last_display)
            self.summary.tracks = self._events.tracks_started
        for publisher in self.publishers:  # the JSONL log first: records matter most
            remaining = max(0.2, deadline - time.monotonic())
            try:
                publisher.close(timeout=remaining)
            except Exception:  # one publisher failing to close must not keep others open
                log.exception("publisher %s: error while closing", publisher.name)
        self.metrics.set("up", 0.0)
        if self._stop_reason.startswith("stopped by"):
            log.info("%s: stopped cleanly", self._stop_reason)

    def _finish_summary(self, start: float) -> None:
        s = self.summary
        s.skipped = int(self.metrics.get("source_skipped_total"))
        s.motion_skipped = int(self.metrics.get("frames_skipped_total"))
        s.detections = dict(s.detections)
        for stage in STAGES:
            p50 = self.metrics.quantile("stage_latency_seconds", 0.5, stage=stage)
            p95 = self.metrics.quantile("stage_latency_seconds", 0.95, stage=stage)
            if p50 is not None:
                s.latency_ms[stage] = (p50 * 1000.0, (p95 or 0.0) * 1000.0)


def run_service(
    cfg: Config,
    *,
    config_path: str | None = None,
    overrides: list[Override] | None = None,
    summary_stream: TextIO | None = sys.stdout,
) -> RunSummary:
    """Run `edgedet run` with ``cfg`` in this (main) thread; see ``Runner``."""
    runner = Runner(
        cfg, config_path=config_path, overrides=overrides, summary_stream=summary_stream
    )
    return runner.run()
