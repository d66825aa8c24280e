"""The Raspberry Pi camera through picamera2/libcamera (main + lores streams).

picamera2 and libcamera come from apt (``python3-picamera2``), not PyPI: the virtual
environment must be created with ``--system-site-packages``. They are imported in
``open`` only.

Two streams are configured: ``main`` (``RGB888``, the camera's full video size or
``source.width`` x ``source.height``) for snapshots, and ``lores`` for inference. ``lores``
is ``YUV420`` because the Pi 4's ISP can only produce YUV for it (the Pi 5 could do RGB;
one format keeps one code path); it is converted to BGR here. Note that picamera2's
``RGB888`` is BGR-ordered in memory, which is exactly what OpenCV and the detector expect.

Camera-side scaling: the ISP scales ``lores`` for free, so unless ``source.lores_width`` x
``lores_height`` is configured, the lores size is chosen from the model's input
(``fit_model_input``, called by the run loop before ``open``) by ``lores_size_for``, and
the preprocessor's resize becomes a no-op (stretch) or a pure padding (letterbox).
``lores`` shows the same field of view as ``main`` (picamera2 gives it main's scaler crop),
so boxes normalized to the lores frame are exact in the main frame whatever lores size is
chosen. Alignment, from picamera2 and libcamera's Raspberry Pi pipeline: YUV420 widths and
heights must be even (chroma is subsampled 2x2; picamera2's non-"optimal" alignment is
2); lores may not exceed main in either dimension; rows are padded to the ISP's stride
(64 bytes on the Pi 4's bcm2835-isp, libpisp's own on the Pi 5), which ``i420_to_bgr``
crops. ``align_configuration`` is applied to ``main`` only: on ``lores`` it would round a
300-pixel width down to 256 (a multiple of 64 or 128), the very resize we want to avoid.

Each read submits a capture request and waits at most ``timeout`` seconds for it. A
timeout returns ``None`` (a stall); the capture thread then calls ``close`` and ``open``
again: ``close`` cancels pending requests and flushes (``cancel_all_and_flush``), stops and
closes the camera, which is how picamera2 recovers from a dislodged cable or a wedged
pipeline.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import cv2
import numpy as np

from edgedet.errors import SourceError
from edgedet.sources import Frame, Source

log = logging.getLogger(__name__)

DEFAULT_LORES = (640, 480)  # when neither configured nor fitted to a model


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


def _even(x: float) -> int:
    """Nearest even integer >= 2 (ties go up)."""
    return max(2, 2 * math.floor(x / 2.0 + 0.5))


def _even_down(n: int) -> int:
    return max(2, n - n % 2)


def lores_size_for(
    model_width: int,
    model_height: int,
    resize: str,
    main_width: int,
    main_height: int,
) -> tuple[int, int]:
    """The lores (width, height) that lets preprocessing skip its resize.

    ``stretch``: the model's input size itself (the ISP stretches main's field of view
    into it, as the preprocessor would). ``letterbox``: main's aspect scaled to fit the
    model input (what the preprocessor's letterbox resizes to), so only padding is left.
    Then made even (YUV420: nearest even for the letterbox content, never above the model
    input; odd model sizes round down) and bounded by main (lores may not be larger).
    Rounding changes the content's aspect by at most one pixel per dimension, and the
    preprocessor computes the exact geometry from the frame it is given, so boxes stay
    exact; only an odd model size leaves a one-pixel resize to the CPU.
    """
    w, h = _even_down(model_width), _even_down(model_height)
    if resize == "letterbox":
        r = min(model_width / main_width, model_height / main_height)
        w, h = min(_even(main_width * r), w), min(_even(main_height * r), h)
    return min(w, _even_down(main_width)), min(h, _even_down(main_height))


class Picamera2Source(Source):
    """Camera ``camera_num`` of libcamera; inference frames from the lores stream."""

    name = "picamera2"
    finite = False

    def __init__(
        self,
        *,
        camera_num: int = 0,
        size: tuple[int, int] | None = None,
        lores_size: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> None:
        """``lores_size`` None: chosen from the model input (``fit_model_input``), else
        640x480."""
        self.camera_num = camera_num
        self.size = size
        self.lores_size = lores_size
        self.fps = fps
        self._model_input: tuple[int, int, str] | None = None
        self._cam: Any = None
        self._lores = lores_size or DEFAULT_LORES
        self._index = 0

    def fit_model_input(self, width: int, height: int, resize: str) -> None:
        """Deliver inference frames scaled by the ISP for a ``width`` x ``height`` model
        input resized by ``resize`` (stretch | letterbox), unless a lores size was set."""
        self._model_input = (width, height, resize)

    def _lores_for(self, main_size: tuple[int, int]) -> tuple[int, int]:
        if self.lores_size is not None:
            return self.lores_size
        if self._model_input is None:
            return DEFAULT_LORES
        width, height, resize = self._model_input
        return lores_size_for(width, height, resize, *main_size)

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
            # Main's size is settled first (the camera's default video size unless
            # configured, aligned for the ISP), then lores is chosen to fit it.
            probe = cam.create_video_configuration(main=main, controls=controls)
            cam.align_stream(probe["main"])
            main["size"] = tuple(probe["main"]["size"])
            lores = {"size": self._lores_for(main["size"]), "format": "YUV420"}
            config = cam.create_video_configuration(main=main, lores=lores, controls=controls)
            cam.configure(config)
            cam.start()
        except Exception as exc:
            raise SourceError(f"source picamera2: camera cannot be started ({exc})") from None
        self._cam = cam
        # The size libcamera settled on (it may adjust a request), for the YUV crop.
        settled = cam.camera_configuration() or config
        self._lores = tuple(settled["lores"]["size"])
        log.info("picamera2: main %s, lores %s", settled["main"]["size"], self._lores)
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
