"""Plain references for decoder tests, sharing no code with the decoders.

Dequantize everything, compute every score, filter with a comparison, decode every box,
and run greedy NMS as a Python loop straight from DESIGN.md (tests/support/reference.py).
"""

from __future__ import annotations

from pathlib import Path

import modelfactory
import numpy as np
from support.reference import reference_dequantize, reference_nms, reference_to_frame

from edgedet.decoders.base import FrameGeometry, TensorInfo


def run(path: Path, image: np.ndarray) -> tuple[list[TensorInfo], list[np.ndarray]]:
    """Run a model; returns its output TensorInfos and raw output arrays (same order)."""
    details, arrays = modelfactory.run_model(path, image)
    return [TensorInfo.from_detail(d) for d in details], arrays


def ref_dequantize(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Every value as the runtime dequantizes it: ``(code - zero_point) * scale``, float32."""
    return reference_dequantize(raw, info.scale, info.zero_point)


def ref_to_frame(boxes: np.ndarray, geometry: FrameGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Frame boxes clipped to [0, 1], and the mask of those with area left (see
    `support.reference.reference_to_frame`)."""
    return reference_to_frame(
        boxes, (geometry.y_offset, geometry.x_offset), (geometry.y_extent, geometry.x_extent)
    )


def letterbox_geometry(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> FrameGeometry:
    """Geometry of a centred letterbox of a ``frame_hw`` frame into ``input_hw``."""
    scale = min(input_hw[0] / frame_hw[0], input_hw[1] / frame_hw[1])
    y_extent = frame_hw[0] * scale / input_hw[0]
    x_extent = frame_hw[1] * scale / input_hw[1]
    return FrameGeometry(
        input_height=input_hw[0],
        input_width=input_hw[1],
        y_offset=(1.0 - y_extent) / 2,
        x_offset=(1.0 - x_extent) / 2,
        y_extent=y_extent,
        x_extent=x_extent,
    )


def ref_yolo(
    raw: np.ndarray,
    info: TensorInfo,
    *,
    version: int,
    channels_first: bool,
    pixels: bool,
    min_score: float,
    iou_threshold: float,
    agnostic: bool,
    max_detections: int,
    geometry: FrameGeometry,
    multi_label: bool = False,
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLO head → (boxes, scores, class_ids) the plain way: everything decoded.

    ``logits``: scores (and YOLOv5 objectness) are logits; the sigmoid is applied to all."""
    head = ref_dequantize(raw, info)[0]
    rows = head.T if (version == 8 and channels_first) else head
    probabilities = rows[:, 4:]
    if logits:
        probabilities = np.float32(1) / (np.float32(1) + np.exp(-probabilities))
    if version == 8:
        scores2d = probabilities
    else:
        scores2d = probabilities[:, :1] * probabilities[:, 1:]
    threshold = np.float32(min_score)
    anchors: list[int] = []
    classes: list[int] = []
    for a in range(len(rows)):
        if multi_label:
            for c in range(scores2d.shape[1]):
                if scores2d[a, c] >= threshold:
                    anchors.append(a)
                    classes.append(c)
        else:
            c = int(np.argmax(scores2d[a]))
            if scores2d[a, c] >= threshold:
                anchors.append(a)
                classes.append(c)
    scores = np.array([scores2d[a, c] for a, c in zip(anchors, classes, strict=True)], np.float32)
    cx, cy, w, h = (rows[anchors, k] for k in range(4))
    if pixels:
        width, height = np.float32(geometry.input_width), np.float32(geometry.input_height)
        cx, w, cy, h = cx / width, w / width, cy / height, h / height
    boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1).reshape(-1, 4)
    boxes, visible = ref_to_frame(boxes, geometry)
    rows = np.flatnonzero(visible)
    classes = np.array(classes, np.int64)
    kept = rows[
        reference_nms(
            boxes[rows], scores[rows], iou_threshold, None if agnostic else classes[rows],
            max_detections,
        )
    ]  # fmt: skip
    return boxes[kept], scores[kept], classes[kept]


def yolo_head_values(
    version: int, num_anchors: int, num_classes: int, seed: int, num_objects: int = 5
) -> np.ndarray:
    """Head values in [0, 1], ``[N, 4 + C]`` (v8) or ``[N, 5 + C]`` (v5), as a real head
    fires: each object lights a cluster of anchors with jittered boxes of one class (some
    also a second class), the rest is low-score background."""
    rng = np.random.default_rng(seed)
    features = (5 if version == 5 else 4) + num_classes
    values = np.zeros((num_anchors, features), np.float32)
    values[:, :2] = rng.uniform(0.05, 0.95, (num_anchors, 2))
    values[:, 2:4] = rng.uniform(0.02, 0.3, (num_anchors, 2))
    first_class = 5 if version == 5 else 4
    values[:, first_class:] = rng.uniform(0.0, 0.15, (num_anchors, num_classes))
    if version == 5:
        values[:, 4] = rng.uniform(0.0, 0.3, num_anchors)
    owner = rng.integers(-1, num_objects, num_anchors)  # -1: background
    for obj in range(num_objects):
        members = np.flatnonzero(owner == obj)
        centre = rng.uniform(0.25, 0.75, 2)
        size = rng.uniform(0.1, 0.4, 2)
        cls = rng.integers(0, num_classes)
        values[members, :2] = centre + rng.uniform(-0.03, 0.03, (len(members), 2))
        values[members, 2:4] = size + rng.uniform(-0.03, 0.03, (len(members), 2))
        values[members, first_class + cls] = rng.uniform(0.3, 1.0, len(members))
        second = members[rng.uniform(size=len(members)) < 0.3]
        values[second, first_class + (cls + 1) % num_classes] = rng.uniform(0.2, 0.9, len(second))
        if version == 5:
            values[members, 4] = rng.uniform(0.4, 1.0, len(members))
    return np.clip(values, 0.0, 1.0)


def ref_postprocess(
    details: dict[str, dict],
    outputs: dict[str, np.ndarray],
    *,
    min_score: float,
    iou_threshold: float,
    agnostic: bool,
    max_detections: int,
    geometry: FrameGeometry,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFLite_Detection_PostProcess outputs by signature name (TF2 OD API export order:
    output_0 count, output_1 scores, output_2 classes, output_3 boxes) → detections."""

    def values(key: str) -> np.ndarray:
        raw = outputs[key]
        scale, zero_point = details[key]["quantization"]
        if raw.dtype.kind == "f":
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)

    count = int(round(float(values("output_0").reshape(-1)[0])))
    scores = values("output_1")[0, :count]
    classes = np.round(values("output_2")[0, :count]).astype(np.int64)
    boxes, visible = ref_to_frame(values("output_3")[0, :count], geometry)
    keep = [i for i in range(count) if scores[i] >= np.float32(min_score) and visible[i]]
    kept = reference_nms(
        boxes[keep], scores[keep], iou_threshold, None if agnostic else classes[keep],
        max_detections,
    )  # fmt: skip
    rows = np.array(keep, np.int64)[kept]
    return boxes[rows], scores[rows], classes[rows]


def ssd_head_values(
    num_anchors: int, num_classes: int, seed: int, num_objects: int = 4
) -> np.ndarray:
    """Inputs of the factory's TFLite_Detection_PostProcess model, ``[N, 4 + 1 + C]`` in
    [0, 1]: box encodings around 0.5 (= the anchor), background column, class scores with
    a few objects firing on clusters of anchors."""
    rng = np.random.default_rng(seed)
    values = np.zeros((num_anchors, 4 + 1 + num_classes), np.float32)
    values[:, :4] = rng.uniform(0.4, 0.6, (num_anchors, 4))
    values[:, 4] = rng.uniform(0.5, 1.0, num_anchors)
    values[:, 5:] = rng.uniform(0.0, 0.2, (num_anchors, num_classes))
    owner = rng.integers(-1, num_objects, num_anchors)
    for obj in range(num_objects):
        members = np.flatnonzero(owner == obj)
        values[members, 5 + rng.integers(0, num_classes)] = rng.uniform(0.3, 1.0, len(members))
    return values
