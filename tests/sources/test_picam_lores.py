"""Camera-side scaling for picamera2: the lores size from the model input, checked on real
frames pushed through the YUV420 layout picamera2 hands out (padded rows, I420 planes).

No camera here: the ISP's scaling is stood in for by an area resize of a real frame; what
is tested is our arithmetic around it (size choice, YUV crop, preprocessing geometry).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgedet.modelcard import InputSpec
from edgedet.preprocess import Preprocessor
from edgedet.sources.picam import i420_to_bgr, lores_size_for


def picamera2_yuv420(bgr: np.ndarray, row_align: int = 64) -> np.ndarray:
    """``bgr`` as picamera2's ``make_array`` returns a YUV420 stream: (h * 3 / 2, stride),
    Y rows padded to ``stride`` (a multiple of ``row_align`` bytes, as the Pi 4 ISP pads),
    then the U and V planes of (h / 2) rows x (stride / 2) bytes packed into the rows."""
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    plane = (h // 2) * (w // 2)
    chroma = i420[h:].reshape(-1)
    u = chroma[:plane].reshape(h // 2, w // 2)
    v = chroma[plane:].reshape(h // 2, w // 2)
    stride = -(-w // row_align) * row_align
    out = np.zeros((h * 3 // 2, stride), np.uint8)
    out[:h, :w] = i420[:h]
    uu = np.zeros((h // 2, stride // 2), np.uint8)
    vv = np.zeros((h // 2, stride // 2), np.uint8)
    uu[:, : w // 2], vv[:, : w // 2] = u, v
    out[h:] = np.concatenate([uu.reshape(-1), vv.reshape(-1)]).reshape(h // 2, stride)
    return out


def isp_lores(main: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What ``Picamera2Source.read`` makes of a lores stream of ``size`` showing ``main``."""
    scaled = cv2.resize(main, size, interpolation=cv2.INTER_AREA)  # the ISP's scaler
    width, height = size
    return i420_to_bgr(picamera2_yuv420(scaled), width, height)


@pytest.mark.parametrize(
    ("model", "resize", "main", "expected"),
    [
        ((300, 300), "stretch", (1280, 720), (300, 300)),
        ((320, 320), "letterbox", (1280, 720), (320, 180)),
        ((320, 320), "letterbox", (640, 480), (320, 240)),
        ((300, 300), "letterbox", (768, 576), (300, 226)),  # 225 is odd: nearest even
        ((640, 640), "letterbox", (1536, 864), (640, 360)),
        ((301, 225), "stretch", (1280, 720), (300, 224)),  # odd model sizes round down
        ((640, 640), "stretch", (320, 240), (320, 240)),  # never larger than main
        ((640, 640), "letterbox", (320, 240), (320, 240)),
    ],
)
def test_lores_size_fits_the_model_input(model, resize, main, expected):
    w, h = lores_size_for(*model, resize, *main)
    assert (w, h) == expected
    assert w % 2 == 0 and h % 2 == 0  # YUV420 subsamples chroma 2x2
    assert w <= main[0] and h <= main[1]


def test_letterbox_lores_keeps_mains_aspect_within_one_pixel():
    for main in [(1280, 720), (640, 480), (768, 576), (1456, 1088), (2028, 1520)]:
        for model in [(300, 300), (320, 320), (416, 416), (640, 384)]:
            w, h = lores_size_for(*model, "letterbox", *main)
            r = min(model[0] / main[0], model[1] / main[1])
            assert abs(w - main[0] * r) <= 1 and abs(h - main[1] * r) <= 1
            assert w <= model[0] and h <= model[1]


def test_stretch_lores_needs_no_cpu_resize_and_finds_the_same_people(bundled_model, sample_frames):
    from edgedet.detector import Detector

    detector = Detector.open(bundled_model)
    pre = detector.preprocessor
    assert pre.spec.resize == "stretch"
    main = sample_frames[len(sample_frames) // 2]
    size = lores_size_for(pre.width, pre.height, pre.spec.resize, *main.shape[1::-1])
    assert size == (pre.width, pre.height)
    lores = isp_lores(main, size)
    assert lores.shape == (pre.height, pre.width, 3)

    # At the model size, preprocessing is colour + quantization only: no resize.
    out = np.empty((pre.height, pre.width, 3), pre.dtype)
    pre(lores, out)
    rgb = cv2.cvtColor(lores, cv2.COLOR_BGR2RGB)
    expected = cv2.LUT(rgb, pre._lut) if pre._lut is not None else rgb
    assert np.array_equal(out.view(np.uint8), expected)

    # Boxes are normalized to the frame, so the ISP-scaled frame finds the people the
    # CPU-resized full frame finds, at the same place.
    on_main = detector.detect(main)
    on_lores = detector.detect(lores)
    assert len(on_main) >= 1
    matched = 0
    for box in on_main.boxes:
        ious = _iou(box, on_lores.boxes)
        matched += bool(len(ious)) and ious.max() >= 0.75
    assert matched >= len(on_main) - 1  # a borderline score may flip; the rest agree


def test_letterbox_lores_is_only_padded_with_the_geometry_of_the_full_frame(sample_frames):
    spec = InputSpec(
        height=320, width=320, color="rgb", resize="letterbox", mean=(0.0,), std=(1.0,)
    )
    pre = Preprocessor(spec, 320, 320, np.uint8, 1.0, 0)
    main = sample_frames[0]
    size = lores_size_for(320, 320, "letterbox", *main.shape[1::-1])
    lores = isp_lores(main, size)
    out_lores = np.empty((320, 320, 3), np.uint8)
    geometry = pre(lores, out_lores)
    # The content is the lores frame itself (colour-converted), centred, padded with 114.
    h, w = lores.shape[:2]
    top, left = (320 - h) // 2, (320 - w) // 2
    assert np.array_equal(
        out_lores[top : top + h, left : left + w], cv2.cvtColor(lores, cv2.COLOR_BGR2RGB)
    )
    assert (out_lores[:top] == 114).all() and (out_lores[top + h :] == 114).all()
    # Same geometry as letterboxing the full frame on the CPU, to within one pixel.
    out_main = np.empty((320, 320, 3), np.uint8)
    cpu = pre(main, out_main)
    for a, b in [
        (geometry.y_offset, cpu.y_offset),
        (geometry.x_offset, cpu.x_offset),
        (geometry.y_extent, cpu.y_extent),
        (geometry.x_extent, cpu.x_extent),
    ]:
        assert abs(a - b) <= 1 / 320
    # And the pictures agree: ISP-scaled YUV vs CPU resize of the same frame.
    diff = np.abs(out_lores.astype(int) - out_main.astype(int))
    assert diff[top : top + h, left : left + w].mean() < 6


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    y0 = np.maximum(box[0], boxes[:, 0])
    x0 = np.maximum(box[1], boxes[:, 1])
    y1 = np.minimum(box[2], boxes[:, 2])
    x1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)
