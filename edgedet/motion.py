"""Motion gating: run inference only when it can change the answer.

Two pure parts, both cheap next to an invoke (``tools/bench_motion.py`` measures the ratio):

``MotionDetector``
    A small grayscale copy of each frame (``width`` pixels wide, aspect kept), blurred,
    compared with a running-average background (``cv2.accumulateWeighted`` with rate
    ``alpha``). A pixel has changed when it differs from the background by more than
    ``threshold`` grey levels; the frame has motion when the changed pixels inside the
    active area are at least ``min_area`` of that area (a fraction, inclusive). A frame the
    object detector found empty replaces the background at once (``rebase``, when
    ``rebase_on_empty``), so objects that left leave no ghost. The active area is
    ``regions`` (normalized ``[x, y]`` polygons; none → the whole frame) minus
    ``mask`` (polygons whose motion is ignored: trees, a clock overlay).

``MotionGate``
    Decides per frame whether the detector runs. Inference runs when (in this order of
    reasons) it is the first frame, there is motion, objects are still present and
    ``stationary_interval`` frames have passed since the last inference (stationary
    objects are re-detected, not lost), or ``keepalive`` seconds have passed since the last
    inference. Otherwise the frame is skipped and counted. "Objects present" comes from a
    ``Presence``: with events on, the run loop passes "the last processed frame had
    detections or an event is still open"; otherwise ``LastDetections`` says "the last
    processed frame had detections".

Neither part touches I/O; the run loop feeds frames and timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgedet.schema import setting

# OpenCV is imported inside the methods that use it: loading the config tree (which holds
# MotionConfig) must not import it (tests/publishers/test_light_imports.py).

Polygon = Sequence[Sequence[float]]  # [[x, y], ...] normalized to [0, 1], x to the right


@dataclass(frozen=True)
class MotionConfig:
    """Motion gating: run inference only when something moves (or objects are present)."""

    enabled: bool = setting(True, doc="false: every frame is detected, as without gating")
    width: int = setting(
        160, lo=16, hi=1920, doc="width of the grey copy motion is measured on (pixels)"
    )
    threshold: int = setting(
        25, lo=1, hi=254, doc="a pixel changed: it differs from the background by more (grey)"
    )
    min_area: float = setting(
        0.002, lo=0.0, hi=1.0, doc="motion: changed pixels are at least this area fraction"
    )
    alpha: float = setting(
        0.05, lo=0.0, hi=1.0, doc="background learning rate per frame (accumulateWeighted)"
    )
    blur: int = setting(5, lo=0, hi=31, doc="Gaussian blur kernel (odd pixels; 0: none)")
    stationary_interval: int = setting(
        10, lo=1, hi=100000, doc="frames between re-detections while objects are present"
    )
    keepalive: float = setting(
        10.0, lo=0.1, hi=86400, doc="seconds: detect at least this often, whatever moves"
    )
    regions: tuple[tuple[tuple[float, float], ...], ...] = setting(
        (), lo=0.0, hi=1.0, doc="polygons [[x, y], ...] (0..1) where motion counts; none: all"
    )
    mask: tuple[tuple[tuple[float, float], ...], ...] = setting(
        (), lo=0.0, hi=1.0, doc="polygons [[x, y], ...] (0..1) whose motion is ignored"
    )
    rebase_on_empty: bool = setting(
        True, doc="a frame the detector found empty becomes the background (no ghosts)"
    )


@dataclass(frozen=True)
class Motion:
    """One frame's motion measurement: ``changed`` fraction of the active area."""

    changed: float
    moving: bool


class MotionDetector:
    """Running-average background subtraction on a small grey copy (module docstring).

    ``detect`` takes uint8 HxW, HxWx3 (BGR) or HxWx4 frames; the frame size may change
    (a reconnect), which restarts the background. The first frame of a size only seeds the
    background and reports motion (nothing is known about it yet).
    """

    def __init__(self, cfg: MotionConfig) -> None:
        import cv2

        self.cfg = cfg
        self._shape: tuple[int, int] | None = None
        self._background: np.ndarray | None = None
        self._active: np.ndarray | None = None  # uint8 0/255 mask of counted pixels
        self._active_pixels = 0
        self._gray: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._last: np.ndarray | None = None  # the last frame's grey copy, for rebase()
        k = cfg.blur
        self._kernel = cv2.getGaussianKernel(k, 0) if k > 1 else None

    def _start(self, height: int, width: int) -> None:
        import cv2

        w = min(self.cfg.width, width)
        h = max(1, round(height * w / width))
        self._shape = (height, width)
        self._size = (w, h)
        self._active = active_mask(h, w, self.cfg.regions, self.cfg.mask)
        self._active_pixels = int(cv2.countNonZero(self._active))
        self._full = self._active_pixels == h * w  # skip the AND when nothing is masked
        self._background = None
        self._gray = np.empty((h, w), np.uint8)
        self._diff = np.empty((h, w), np.uint8)

    def _small_gray(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        # Resize first: the colour conversion and blur then run on ~1/20 of the pixels.
        # INTER_NEAREST: the cost is reading the big frame from memory, and nearest reads
        # the fewest rows (INTER_AREA at 768 -> 160 costs 1.5 ms, 30x more); the blur
        # below averages the sampling and sensor noise instead.
        small = cv2.resize(frame, self._size, interpolation=cv2.INTER_NEAREST)
        if small.ndim == 3:
            code = cv2.COLOR_BGR2GRAY if small.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            small = cv2.cvtColor(small, code, dst=self._gray)
        if self._kernel is not None:
            # sepFilter2D with GaussianBlur's own kernel, not GaussianBlur: on a small image
            # GaussianBlur still wakes OpenCV's worker threads, which then spin; measured
            # ~0.55 ms of CPU per frame when frames arrive 100 ms apart (a camera), 5x the
            # whole detector's cost. Same result up to rounding (edges reflected alike).
            small = cv2.sepFilter2D(small, -1, self._kernel, self._kernel)
        return small

    def detect(self, frame: np.ndarray) -> Motion:
        """Measure motion in ``frame`` against the background, then update the background."""
        import cv2

        height, width = frame.shape[:2]
        if self._shape != (height, width):
            self._start(height, width)
        gray = self._small_gray(frame)
        self._last = gray
        if self._background is None:
            self._background = gray.astype(np.float32)
            return Motion(1.0, True)
        if self._active_pixels == 0:  # everything masked: motion can never count
            cv2.accumulateWeighted(gray, self._background, self.cfg.alpha)
            return Motion(0.0, False)
        reference = cv2.convertScaleAbs(self._background)
        cv2.absdiff(gray, reference, dst=self._diff)
        # THRESH_BINARY keeps diff > threshold: "differs by more than threshold".
        cv2.threshold(self._diff, self.cfg.threshold, 255, cv2.THRESH_BINARY, dst=self._diff)
        if not self._full:
            cv2.bitwise_and(self._diff, self._active, dst=self._diff)
        changed = cv2.countNonZero(self._diff) / self._active_pixels
        cv2.accumulateWeighted(gray, self._background, self.cfg.alpha)
        return Motion(changed, changed >= self.cfg.min_area)

    def rebase(self) -> None:
        """Make the last frame ``detect`` saw the background (the object detector found it
        empty). A running average keeps a fading ghost of objects that left, which reads as
        motion for seconds (~14 frames at alpha 0.05); a frame known to hold no objects is a
        better reference at once."""
        if self._background is not None and self._last is not None:
            self._background[...] = self._last


def active_mask(
    height: int, width: int, regions: Sequence[Polygon], mask: Sequence[Polygon]
) -> np.ndarray:
    """uint8 (height, width) image: 255 where motion counts, 0 elsewhere.

    ``regions`` (union; empty → everything) minus ``mask``; polygon points are normalized
    ``[x, y]`` (0 and 1 are the image's outer edges), so pixel ``i`` of ``n`` has its centre
    at ``(i + 0.5) / n``: the left half ``x <= 0.5`` of 100 columns is columns 0..49.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = (xs + 0.5) / width, (ys + 0.5) / height

    def inside(poly: Polygon) -> np.ndarray:
        # Even-odd crossing test of every pixel centre (exact where fillPoly's edge
        # rasterization would add a column); runs once per frame size.
        pts = np.asarray(poly, np.float64)
        result = np.zeros((height, width), bool)
        for (x1, y1), (x2, y2) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
            if y1 == y2:
                continue
            crosses = (y1 > cy) != (y2 > cy)
            x_at = x1 + (cy - y1) * (x2 - x1) / (y2 - y1)
            result ^= crosses & (cx < x_at)
        return result

    active = np.zeros((height, width), bool) if regions else np.ones((height, width), bool)
    for poly in regions:
        active |= inside(poly)
    for poly in mask:
        active &= ~inside(poly)
    out = active.astype(np.uint8) * 255
    return out


class Presence(Protocol):
    """Whether objects are (believed to be) still in view; a tracker can provide this."""

    def objects_present(self) -> bool: ...


class LastDetections:
    """``Presence`` until tracking exists: the last processed frame had detections."""

    def __init__(self) -> None:
        self._present = False

    def update(self, count: int) -> None:
        """Call with the number of detections of each processed frame."""
        self._present = count > 0

    def objects_present(self) -> bool:
        return self._present


# Reasons a frame is processed, in the order they are checked.
FIRST, MOTION, PRESENT, KEEPALIVE = "first", "motion", "present", "keepalive"


class MotionGate:
    """Per-frame decision: detect or skip (see the module docstring for the rules).

    ``step(moving, now)`` returns the reason to detect (``first``, ``motion``, ``present``,
    ``keepalive``) or None to skip, and assumes the caller follows it. ``now`` is in
    seconds on any clock that does not jump (the frame's capture time). ``skipped`` counts
    every skipped frame since the gate was made.
    """

    def __init__(self, *, stationary_interval: int, keepalive: float, presence: Presence) -> None:
        if stationary_interval < 1:
            raise ValueError("stationary_interval must be >= 1")
        self.stationary_interval = stationary_interval
        self.keepalive = keepalive
        self.presence = presence
        self.skipped = 0
        self._last_run: float | None = None
        self._since_run = 0  # frames seen since the last processed one

    def step(self, moving: bool, now: float) -> str | None:
        self._since_run += 1
        if self._last_run is None:
            reason: str | None = FIRST
        elif moving:
            reason = MOTION
        elif self.presence.objects_present() and self._since_run >= self.stationary_interval:
            reason = PRESENT
        elif now - self._last_run >= self.keepalive:
            reason = KEEPALIVE
        else:
            self.skipped += 1
            return None
        self._last_run = now
        self._since_run = 0
        return reason


class MotionGating:
    """What the run loop holds: detector, gate and presence behind two calls.

    ``admit(image, ts)`` measures motion and returns the gate's reason to detect, or None
    to skip the frame; ``processed(count)`` reports how many detections (after the label
    filters) a processed frame had. ``presence`` defaults to ``LastDetections``; a tracker
    can pass itself instead (it then keeps its own state and ``processed`` is ignored).
    """

    def __init__(self, cfg: MotionConfig, presence: Presence | None = None) -> None:
        self.cfg = cfg
        self.detector = MotionDetector(cfg)
        self._last = LastDetections() if presence is None else None
        self.gate = MotionGate(
            stationary_interval=cfg.stationary_interval,
            keepalive=cfg.keepalive,
            presence=presence if presence is not None else self._last,
        )
        self.last_motion: Motion | None = None

    @property
    def skipped(self) -> int:
        return self.gate.skipped

    def admit(self, image: np.ndarray, ts: float) -> str | None:
        self.last_motion = self.detector.detect(image)
        return self.gate.step(self.last_motion.moving, ts)

    def processed(self, count: int) -> None:
        if self._last is not None:
            self._last.update(count)
        if count == 0 and self.cfg.rebase_on_empty:
            self.detector.rebase()
