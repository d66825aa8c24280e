"""Frame sources: cameras, streams, video files and image folders behind one interface.

A ``Source`` is opened once (``open`` raises ``SourceError`` with a one-line fix when the
camera, file or URL is not there), then read until it ends or fails:

- ``read(timeout)`` returns the next ``Frame``, ``None`` when nothing arrived within
  ``timeout`` seconds (a stall), and raises ``EndOfSource`` when a finite source (video file,
  image folder) is exhausted. Any other failure raises ``SourceError``; the capture thread
  (``edgedet.sources.capture``) then closes the source and reopens it with backoff.
- ``close()`` releases the device; it is safe to call twice or on a source never opened.

Frames are ``(index, image, ts)``: ``index`` counts frames from this source since it was
opened (a video file's frame position), ``image`` is an HxWx3 uint8 BGR array, ``ts`` the
UNIX time of capture. ``display`` optionally carries a larger image of the same moment
(picamera2's main stream) for snapshots; boxes are normalized so they fit either.

Plugins are chosen in one place, ``make_source``; the rest of the program never imports a
plugin module directly, so OpenCV and picamera2 are only imported when used.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from edgedet.errors import SourceError
from edgedet.schema import setting

if TYPE_CHECKING:
    import numpy as np

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpeg", ".mjpg", ".ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
log = logging.getLogger(__name__)
URL_RE = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)


class Frame(NamedTuple):
    """One captured frame. ``image``: HxWx3 uint8 BGR; ``ts``: UNIX seconds."""

    index: int
    image: np.ndarray
    ts: float
    display: np.ndarray | None = None


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from; `source: X` is short for `source: {uri: X}`.

    auto: the Pi camera (picamera2) if present, else /dev/video0 if it exists, else the
    bundled sample clip. Or: picamera2, a camera index (0), /dev/videoN, rtsp:// or
    http(s):// URL, a video file, a folder of images (sorted by name).
    """

    SHORTHAND = "uri"  # a plain string or integer in place of the mapping sets this key

    uri: str = setting(
        "auto", int_as_str=True, doc="auto, picamera2, camera index, /dev/videoN, URL, path"
    )
    loop: bool = setting(False, doc="video file / image folder: start again when it ends")
    realtime: bool = setting(
        False,
        doc="video file / folder: true paces frames at the file's FPS (like a camera; frames "
        "inference misses are dropped and counted); false hands over frames as fast as they "
        "are used",
    )
    width: int | None = setting(
        None, lo=16, hi=8192, doc="camera capture size request (null: the camera's default)"
    )
    height: int | None = setting(None, lo=16, hi=8192)
    fps: float | None = setting(
        None, lo=0.1, hi=1000, doc="camera frame rate request; frame rate of an image folder"
    )
    lores_width: int | None = setting(
        None,
        lo=64,
        hi=4096,
        doc="picamera2: size of the low-resolution stream inference runs on (null: the "
        "model's input size, scaled by the camera's ISP so the CPU does not resize)",
    )
    lores_height: int | None = setting(None, lo=64, hi=4096)
    read_timeout: float = setting(
        5.0, lo=0.1, hi=600, doc="seconds without a frame before the source is reopened"
    )
    backoff_initial: float = setting(
        0.5, lo=0.01, hi=60, doc="first reconnect delay (s), doubled after each failure"
    )
    backoff_max: float = setting(30.0, lo=0.01, hi=30, doc="reconnect delay cap (s), at most 30")


class EndOfSource(Exception):
    """A finite source (video file without loop, image folder) has no more frames."""


class Source:
    """The narrow interface every source plugin implements (see the module docstring)."""

    name: str = "source"
    # Finite sources can be paced by consumption (nothing dropped); live ones cannot.
    finite: bool = False
    # Frames per second the source naturally produces, when known (for realtime pacing).
    fps: float | None = None

    def open(self) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Source-specific counters, e.g. ``skipped`` unreadable images."""
        return {}

    def fit_model_input(self, width: int, height: int, resize: str) -> None:
        """Hint, before ``open``: the model takes ``width`` x ``height`` frames resized by
        ``resize`` (stretch | letterbox). A source that can scale in hardware (picamera2's
        ISP) delivers frames at that size; others ignore it."""


def picamera2_problem() -> str | None:
    """Why the Pi camera cannot be used through picamera2 here, in one line; None when
    picamera2 imports and libcamera lists a Pi (CSI) camera.

    The import error is kept verbatim: on Raspberry Pi OS the usual one is apt's
    simplejpeg (a picamera2 dependency) meeting a pip NumPy 2 in the venv ("numpy.dtype
    size changed"); README.md's Pi section has the install that avoids it.
    """
    try:
        from picamera2 import Picamera2  # apt's python3-picamera2; not on PyPI for us
    except Exception as exc:  # ImportError, or an extension built for another NumPy
        return f"picamera2 does not import ({_one_line(exc)})"
    try:
        cameras = Picamera2.global_camera_info()
    except Exception as exc:  # libcamera failing to load on a non-Pi
        return f"libcamera cannot list cameras ({_one_line(exc)})"
    # libcamera also lists USB webcams ("/usb" in the id); those are better served by V4L2.
    if not any("/usb" not in str(cam.get("Id", "")) for cam in cameras):
        return "libcamera lists no Pi camera (check the ribbon cable and `rpicam-hello`)"
    return None


def picamera2_available() -> bool:
    """True when picamera2 imports and libcamera reports a Pi (CSI) camera."""
    return picamera2_problem() is None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def under_systemd() -> bool:
    """True when started by systemd (a unit sets INVOCATION_ID; Type=notify NOTIFY_SOCKET)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET"))


def resolve_auto(*, demo: bool = False) -> str:
    """What ``source: auto`` means on this machine: picamera2, else /dev/video0.

    Only the interactive demo (``demo``: `edgedet run` by hand without a config file)
    falls back to the bundled sample clip, and never under systemd: a service must not
    publish the demo clip's detections as if they were the camera's. Otherwise a missing
    camera raises SourceError, one line with the reason picamera2 gave.
    """
    problem = picamera2_problem()
    if problem is None:
        return "picamera2"
    if os.path.exists("/dev/video0"):
        log.info("source auto: no Pi camera: %s; using /dev/video0", problem)
        return "/dev/video0"
    if demo and not under_systemd():
        from edgedet.models import sample_clip_path

        clip = sample_clip_path()
        if clip is not None:
            log.info("source auto: no camera (%s): the demo runs on the sample clip", problem)
            return str(clip)
    raise SourceError(
        f"source auto: no camera: {problem}, and no /dev/video0; connect a camera or set "
        "source.uri (picamera2, /dev/videoN, rtsp:// URL, video file or image folder)"
    )


def classify(uri: str) -> str:
    """The plugin kind for a source string: picamera2, camera, url, file or folder.

    Raises SourceError for a path that does not exist.
    """
    text = uri.strip()
    if text == "picamera2":
        return "picamera2"
    if text.isdigit() or re.fullmatch(r"/dev/video\d+", text):
        return "camera"
    if URL_RE.match(text):
        return "url"
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    if path.suffix.lower() in VIDEO_SUFFIXES or "/" in text or path.suffix:
        raise SourceError(
            f"source {text}: no such file or folder; check the path given to --source"
        )
    raise SourceError(
        f"source {text!r} is not a camera index, /dev/videoN, URL, file or folder; "
        "use e.g. --source 0, --source /dev/video0, --source rtsp://HOST/PATH or a path"
    )


def make_source(cfg: SourceConfig, *, demo: bool = False) -> Source:
    """Build (not open) the source ``cfg.uri`` names; ``auto`` is resolved here (``demo``:
    see ``resolve_auto``)."""
    uri = cfg.uri if cfg.uri != "auto" else resolve_auto(demo=demo)
    kind = classify(uri)
    if kind == "picamera2":
        from edgedet.sources.picam import Picamera2Source

        return Picamera2Source(
            size=(cfg.width, cfg.height) if cfg.width and cfg.height else None,
            # Not configured: fitted to the model input (Source.fit_model_input).
            lores_size=(cfg.lores_width, cfg.lores_height)
            if cfg.lores_width and cfg.lores_height
            else None,
            fps=cfg.fps,
        )
    if kind in ("camera", "url"):
        from edgedet.sources.opencv import CameraSource

        return CameraSource(
            uri, width=cfg.width, height=cfg.height, fps=cfg.fps, timeout=cfg.read_timeout
        )
    if kind == "file":
        from edgedet.sources.opencv import VideoFileSource

        return VideoFileSource(uri, loop=cfg.loop)
    from edgedet.sources.folder import ImageFolderSource

    return ImageFolderSource(uri, loop=cfg.loop, fps=cfg.fps)


def open_source(spec: str | SourceConfig) -> Source:
    """``make_source`` then ``open``: a ready source for a source string or config."""
    if isinstance(spec, str):
        spec = SourceConfig(uri=spec)
    source = make_source(spec)
    source.open()
    return source


__all__ = [
    "EndOfSource",
    "Frame",
    "Source",
    "SourceConfig",
    "SourceError",
    "classify",
    "make_source",
    "open_source",
    "picamera2_available",
    "picamera2_problem",
    "resolve_auto",
    "under_systemd",
]
