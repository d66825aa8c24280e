"""OpenCV ``VideoCapture`` sources: USB/V4L2 cameras, RTSP/HTTP streams and video files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from edgedet.errors import SourceError
from edgedet.sources import EndOfSource, Frame, Source


def opencv_errors_only() -> None:
    """Let OpenCV's own console log print errors only (no warnings), on OpenCV 4 and 5.

    OpenCV 5 has only ``cv2.utils.logging.setLogLevel``; the 4.x wheels that pip picks
    next to NumPy 1 (the tflite-runtime extra) have only ``cv2.setLogLevel``.
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    else:
        cv2.setLogLevel(2)  # cv::utils::logging::LOG_LEVEL_ERROR


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own console warnings (a line per failed open or read
    timeout); the SourceError or reconnect line says it once. Setting OPENCV_LOG_LEVEL or
    OPENCV_FFMPEG_LOGLEVEL in the environment keeps them (for debugging a camera)."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        opencv_errors_only()
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def _bgr(image: np.ndarray) -> np.ndarray:
    # VideoCapture converts to BGR by default; a few V4L2 drivers still hand out grey.
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class _CaptureSource(Source):
    """What the OpenCV sources share: one ``VideoCapture``, frames numbered from 0."""

    # Set by each subclass's __init__ and open().
    _cap: cv2.VideoCapture | None
    _index: int

    def _frame(self, image: np.ndarray) -> Frame:
        frame = Frame(self._index, _bgr(image), time.time())
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_CaptureSource):
    """A live camera or stream: camera index, ``/dev/videoN``, or an rtsp/http(s) URL.

    ``timeout`` (seconds) bounds opening a stream and each read where the backend
    supports it (FFmpeg for URLs: ``CAP_PROP_OPEN_TIMEOUT_MSEC``/``READ_TIMEOUT_MSEC``;
    V4L2 gives up after its own select timeout). A failed read raises ``SourceError``;
    the capture thread then reopens the camera with backoff.
    """

    finite = False

    def __init__(
        self,
        uri: str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.uri = uri
        self.name = uri
        self.width, self.height, self.fps = width, height, fps
        self.timeout = timeout
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def _params(self) -> list[int]:
        ms = int(self.timeout * 1000)
        return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]

    def open(self) -> None:
        self.close()
        quiet_opencv()
        uri = self.uri
        if uri.isdigit():
            device = f"/dev/video{uri}"
            if not os.path.exists(device):
                raise SourceError(
                    f"source {uri}: no camera at {device}; plug one in or pick another --source"
                )
            cap = cv2.VideoCapture(int(uri), cv2.CAP_V4L2, self._params())
        elif uri.startswith("/dev/"):
            if not os.path.exists(uri):
                raise SourceError(
                    f"source {uri}: no such camera device; plug one in or pick another --source"
                )
            cap = cv2.VideoCapture(uri, cv2.CAP_V4L2, self._params())
        else:
            cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, self._params())
        if not cap.isOpened():
            cap.release()
            if uri.isdigit() or uri.startswith("/dev/"):
                why = "the camera is busy or not readable; check that the user is in group video"
            else:
                why = "the stream is unreachable or not a video; check the URL"
            raise SourceError(f"source {uri}: cannot be opened: {why}")
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        # A one-frame driver queue keeps what we read close to "now".
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        reported = cap.get(cv2.CAP_PROP_FPS)
        self.fps = self.fps or (reported if 0 < reported < 1000 else None)
        self._cap = cap
        self._index = 0

    def read(self, timeout: float) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"source {self.uri}: read before open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(f"source {self.uri}: no frame (camera unplugged or stream stalled)")
        return self._frame(image)


class VideoFileSource(_CaptureSource):
    """A video file, read once (``EndOfSource`` at the end) or looped.

    Looping reopens the file by path, so a file replaced on disk is picked up, and a file
    that disappeared raises ``SourceError`` (the capture thread retries with backoff).
    ``index`` is the frame position in the file; it restarts at 0 on each loop.
    """

    finite = True

    def __init__(self, path: str, *, loop: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.name = self.path.name
        self.loop = loop
        self.fps: float | None = None
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def open(self) -> None:
        self.close()
        if not self.path.is_file():
            raise SourceError(f"source {self.path}: no such video file; check --source")
        quiet_opencv()
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"source {self.path}: not a readable video (unknown container or codec); "
                "convert it to MP4/H.264 or MJPEG AVI"
            )
        reported = cap.get(cv2.CAP_PROP_FPS)
        self.fps = reported if 0 < reported < 1000 else None
        self._cap = cap
        self._index = 0

    def read(self, timeout: float) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"source {self.path}: read before open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if not self.loop:
                raise EndOfSource(str(self.path))
            was_empty = self._index == 0
            self.open()  # from the start; SourceError if the file is gone
            ok, image = self._cap.read()
            if not ok or image is None:
                what = "has no frames" if was_empty else "cannot be read after reopening"
                raise SourceError(f"source {self.path}: {what}")
        return self._frame(image)
