"""Plain references for post-processing, written straight from DESIGN.md.

They share no code with ``edgedet.postprocess`` or the decoders: Python loops over
Python floats, everything dequantized, nothing skipped. The fast paths are tested (and
benchmarked, tools/bench_postprocess.py) against these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def reference_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """DESIGN.md's IoU in Python floats: areas ``(max0-min0)*(max1-min1)``, no +1; 0 when
    the union is <= 0."""
    a = [float(v) for v in a]
    b = [float(v) for v in b]
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: Sequence[int] | np.ndarray | None = None,
    max_detections: int | None = None,
) -> list[int]:
    """DESIGN.md's greedy NMS as the plainest loop: kept indices in kept order.

    Visit by descending score, equal scores lower index first (``sorted`` is stable), NaN
    scores never; keep a box unless a kept box (of its class, unless ``class_ids`` is
    None) has IoU with it strictly greater than ``iou_threshold``.
    """
    rows = [[float(v) for v in box] for box in np.asarray(boxes).reshape(-1, 4)]
    values = [float(s) for s in np.asarray(scores).reshape(-1)]
    labels = None if class_ids is None else [int(c) for c in np.asarray(class_ids).reshape(-1)]
    order = sorted((i for i in range(len(values)) if not math.isnan(values[i])),
                   key=lambda i: -values[i])  # fmt: skip
    kept: list[int] = []
    for i in order:
        suppressed = any(
            (labels is None or labels[k] == labels[i])
            and reference_iou(rows[k], rows[i]) > iou_threshold
            for k in kept
        )
        if not suppressed:
            kept.append(i)
    return kept if max_detections is None else kept[: max(max_detections, 0)]


def reference_dequantize(raw: np.ndarray, scale: float | None, zero_point: int) -> np.ndarray:
    """Every value as the runtime dequantizes it: ``(code - zero_point) * scale`` in
    float32; float tensors (``scale`` None) as float32."""
    if scale is None:
        return np.asarray(raw).astype(np.float32)
    return (np.asarray(raw).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def reference_sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in float32, element by element as NumPy computes it."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore"):
        return np.float32(1) / (np.float32(1) + np.exp(-x))


def reference_ssd_boxes(
    encodings: np.ndarray, anchors: np.ndarray, box_scales: Sequence[float]
) -> np.ndarray:
    """TF OD API Faster R-CNN box coder, decode direction, in float32: encodings
    ``(ty, tx, th, tw)``, anchors ``[ycenter, xcenter, h, w]`` → ``[ymin, xmin, ymax, xmax]``."""
    sy, sx, sh, sw = (np.float32(s) for s in box_scales)
    yc = encodings[:, 0] / sy * anchors[:, 2] + anchors[:, 0]
    xc = encodings[:, 1] / sx * anchors[:, 3] + anchors[:, 1]
    half_h = np.exp(encodings[:, 2] / sh) * anchors[:, 2] * np.float32(0.5)
    half_w = np.exp(encodings[:, 3] / sw) * anchors[:, 3] * np.float32(0.5)
    return np.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], axis=1)


def reference_to_frame(
    boxes: np.ndarray,
    offset: tuple[float, float] = (0.0, 0.0),
    extent: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Model-normalized boxes → frame-normalized, clipped to [0, 1], float32; and the
    mask of boxes that keep a positive height and width after clipping (the others are
    dropped before NMS, as the TF Object Detection API does)."""
    o = np.float32([offset[0], offset[1]] * 2)
    e = np.float32([extent[0], extent[1]] * 2)
    clipped = np.clip((np.asarray(boxes, np.float32) - o) / e, 0.0, 1.0)
    mask = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, mask
