"""The Raspberry Pi camera through picamera2/libcamera (main + lores streams).

picamera2 and libcamera come from apt (``python3-picamera2``), not PyPI: the virtual
environment must be created with ``--system-site-packages``. They are imported in
``open`` only.

Two streams are configured: ``main`` (``RGB888``, the camera's full video size or
``source.width`` x ``source.height``) for snapshots, and ``lores``
(``source.lores_width`` x ``lores_height``) for inference. ``lores`` is ``YUV420``
because the Pi 4's ISP can only produce YUV for it (the Pi 5 could do RGB; one format
keeps one code path); it is converted to BGR here. Note that picamera2's ``RGB888`` is
BGR-ordered in memory, which is exactly what OpenCV and the detector expect.

Each read submits a capture request and waits at most ``timeout`` seconds for it. A
timeout returns ``None`` (a stall); the capture thread then calls ``close`` and ``open``
again: ``close`` cancels pending requests and flushes (``cancel_all_and_flush``), stops and
closes the camera, which is how picamera2 recovers from a dislodged cable or a wedged
pipeline.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2
import numpy as np

from edgedet.errors import SourceError
from edgedet.sources import Frame, Source

log = logging.getLogger(__name__)


def i420_to_bgr(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """BGR image from picamera2's YUV420 array: shape (height * 3 / 2, stride).

    The Y plane is ``height`` rows of ``stride`` bytes; U then V follow, each
    ``height / 2`` rows of ``stride / 2`` bytes, packed in the remaining array rows. The
    stride may exceed ``width`` (row padding), so the planes are cropped before OpenCV's
    I420 conversion, which expects unpadded planes.
    """
    stride = planes.shape[1]
    if stride == width:
        return cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
    y = planes[:height, :width]
    chroma = planes[height:].reshape(-1)
    half_rows, half_stride = height // 2, stride // 2
    plane = half_rows * half_stride
    u = chroma[:plane].reshape(half_rows, half_stride)[:, : width // 2]
    v = chroma[plane : 2 * plane].reshape(half_rows, half_stride)[:, : width // 2]
    packed = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
    return cv2.cvtColor(packed.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)


class Picamera2Source(Source):
    """Camera ``camera_num`` of libcamera; inference frames from the lores stream."""

    name = "picamera2"
    finite = False

    def __init__(
        self,
        *,
        camera_num: int = 0,
        size: tuple[int, int] | None = None,
        lores_size: tuple[int, int] = (640, 480),
        fps: float | None = None,
    ) -> None:
        self.camera_num = camera_num
        self.size = size
        self.lores_size = lores_size
        self.fps = fps
        self._cam: Any = None
        self._lores = lores_size
        self._index = 0

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2
        except Exception as exc:  # ImportError, or libcamera's own load errors
            raise SourceError(
                f"source picamera2: picamera2 cannot be imported ({exc}); install "
                "python3-picamera2 with apt and create the venv with --system-site-packages"
            ) from None
        try:
            cameras = Picamera2.global_camera_info()
        except Exception as exc:
            raise SourceError(f"source picamera2: libcamera cannot list cameras ({exc})") from None
        if len(cameras) <= self.camera_num:
            raise SourceError(
                "source picamera2: no Pi camera detected; check the ribbon cable and "
                "`rpicam-hello --list-cameras`"
            )
        try:
            cam = Picamera2(self.camera_num)
            main: dict[str, Any] = {"format": "RGB888"}
            if self.size:
                main["size"] = self.size
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            config = cam.create_video_configuration(
                main=main,
                lores={"size": self.lores_size, "format": "YUV420"},
                controls=controls,
            )
            cam.align_configuration(config)  # sizes the ISP can produce without padding
            cam.configure(config)
            cam.start()
        except Exception as exc:
            raise SourceError(f"source picamera2: camera cannot be started ({exc})") from None
        self._cam = cam
        self._lores = tuple(config["lores"]["size"])  # after alignment
        self._index = 0

    def read(self, timeout: float) -> Frame | None:
        if self._cam is None:
            raise SourceError("source picamera2: read before open")
        job = self._cam.capture_request(wait=False)
        try:
            request = self._cam.wait(job, timeout=timeout)
        except TimeoutError:
            return None
        try:
            ts = time.time()
            lores = request.make_array("lores")
            main = request.make_array("main")
        finally:
            request.release()  # give the buffer back to libcamera at once
        width, height = self._lores
        image = i420_to_bgr(lores, width, height)
        frame = Frame(self._index, image, ts, display=main[:, :, :3])
        self._index += 1
        return frame

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        for step in ("cancel_all_and_flush", "stop", "close"):
            try:
                getattr(cam, step)()
            except Exception as exc:  # a wedged camera must not stop us closing it
                log.debug("picamera2 %s failed: %s", step, exc)
