#!/usr/bin/env python3
"""Benchmark edgedet's post-processing (score filter + decode + NMS) against two baselines.

Usage (from the repo root):  .venv/bin/python tools/bench_postprocess.py [--rounds N]

Methods, on the same raw outputs, in one run, interleaved, many rounds, medians:

  (a) article  the source article's approach: dequantize (and activate) every score,
               ``np.where(score >= min_score)``, decode those boxes, a Python loop NMS
               (one vectorized IoU step per kept box), class-agnostic.
  (b) opencv   dequantize + activate + decode everything, then
               ``cv2.dnn.NMSBoxesBatched`` (per-class).
  (c) edgedet  ``filter_class_scores`` / ``filter_max_class_scores`` on the raw codes,
               dequantize + decode only the survivors, ``edgedet.postprocess.nms`` in
               the baseline's mode (agnostic vs (a), per-class vs (b)).

Every pair is checked to keep the same detections (same anchors and classes, in the same
order) before its times are reported. Outputs:

  ssd-synth     1917 anchors x 91 classes (column 0 background), uint8 codes of logits
                (sigmoid), uint8 box encodings; TF OD API anchors and box coder.
  yolov8-int8   [1, 84, 8400] int8 (boxes normalized, probabilities), best class/anchor.
  yolov8-f32    the same head in float32.
  ssd-model     the bundled models/ssdlite_mobilenet_v2_person_uint8.tflite on frames of
                models/samples/vtest_clip.* (when both exist), run with ai-edge-litert.

In the synthetic heads each object fires a cluster of overlapping candidates of one
class (anchors overlapping the object, scores rising with the overlap), plus a weaker
confusable class, over a floor of low scores, as real heads do.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgedet.decoders.anchors import ssd_anchors  # noqa: E402
from edgedet.postprocess import (  # noqa: E402
    dequantize,
    filter_class_scores,
    filter_max_class_scores,
    nms,
    sigmoid,
)

try:  # the lead's SSD box coder, when present: (c) then runs the runtime's own decode
    from edgedet.decoders.ssd import decode_boxes as edgedet_decode_boxes  # noqa: E402
except ImportError:  # pragma: no cover - depends on the tree's state
    edgedet_decode_boxes = None

SSD_ANCHOR_SPEC = {
    "num_layers": 6,
    "min_scale": 0.2,
    "max_scale": 0.95,
    "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
    "reduce_boxes_in_lowest_layer": True,
    "interpolated_scale_aspect_ratio": 1.0,
    "feature_map_sizes": [19, 10, 5, 3, 2, 1],
}
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)
IOU_THRESHOLD = 0.5
MODEL = ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite"

# A result: (anchor, class) pairs in kept order. Same detections = equal lists.
Result = list[tuple[int, int]]


@dataclass
class Head:
    """Raw outputs of one frame and how to read them."""

    kind: str  # "ssd" or "yolov8"
    scores: np.ndarray  # (N, C) codes or floats; for yolov8 a transposed view of the tensor
    boxes: np.ndarray  # ssd: (N, 4) box encodings; yolov8: (N, 4) cx, cy, w, h (views)
    score_q: tuple[float, int] | None  # (scale, zero_point) or None for float
    box_q: tuple[float, int] | None
    activation: str  # "sigmoid" (logits) or "none" (probabilities)
    first_class: int
    anchors: np.ndarray | None = None  # ssd: (N, 4) [ycenter, xcenter, h, w]


# --- shared decoding (baselines) -----------------------------------------------------------


def ssd_decode(encodings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """TF OD API box coder (scales 10, 10, 5, 5), float32, [ymin, xmin, ymax, xmax].

    Same float32 operation order as edgedet.decoders.ssd.decode_boxes, so both paths give
    bit-identical boxes and the kept sets can be compared exactly.
    """
    sy, sx, sh, sw = (np.float32(s) for s in BOX_SCALES)
    yc = encodings[:, 0] / sy * anchors[:, 2] + anchors[:, 0]
    xc = encodings[:, 1] / sx * anchors[:, 3] + anchors[:, 1]
    half_h = np.exp(encodings[:, 2] / sh) * anchors[:, 2] * np.float32(0.5)
    half_w = np.exp(encodings[:, 3] / sw) * anchors[:, 3] * np.float32(0.5)
    return np.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], axis=1)


def yolo_decode(cxcywh: np.ndarray) -> np.ndarray:
    """(N, 4) normalized cx, cy, w, h -> float32 [ymin, xmin, ymax, xmax]."""
    cx, cy, w, h = (cxcywh[:, i] for i in range(4))
    half_w, half_h = w * np.float32(0.5), h * np.float32(0.5)
    return np.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], axis=1)


def decode(head: Head, boxes: np.ndarray, anchors: np.ndarray | None) -> np.ndarray:
    if head.box_q is not None:
        boxes = dequantize(boxes, *head.box_q)
    boxes = boxes.astype(np.float32, copy=False)
    return ssd_decode(boxes, anchors) if head.kind == "ssd" else yolo_decode(boxes)


def all_scores(head: Head) -> np.ndarray:
    """Every score of the head, dequantized and activated (what the baselines start with)."""
    values = head.scores
    if head.score_q is not None:
        values = dequantize(values, *head.score_q)
    return sigmoid(values) if head.activation == "sigmoid" else values


def article_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Class-agnostic greedy NMS as the article writes it: a plain Python loop."""
    rows = boxes.tolist()
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable").tolist():
        y0, x0, y1, x1 = rows[i]
        area = (y1 - y0) * (x1 - x0)
        for k in kept:
            ky0, kx0, ky1, kx1 = rows[k]
            inter = max(0.0, min(y1, ky1) - max(y0, ky0)) * max(0.0, min(x1, kx1) - max(x0, kx0))
            union = (ky1 - ky0) * (kx1 - kx0) + area - inter
            if union > 0 and inter / union > iou_threshold:
                break
        else:
            kept.append(i)
    return kept


def numpy_step_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Class-agnostic greedy NMS, one vectorized IoU step per kept box (a stronger (a))."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        ih = np.maximum(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0
        )
        iw = np.maximum(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0
        )
        inter = ih * iw
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return keep


# --- the three methods ------------------------------------------------------------------


def method_article(head: Head, min_score: float, nms_loop=article_nms) -> Result:
    values = all_scores(head)
    if head.kind == "ssd":
        anchor, column = np.where(values[:, head.first_class :] >= min_score)
        cls, scores = column, values[anchor, column + head.first_class]
    else:  # best class per anchor
        cls_all = values.argmax(axis=1)
        best = values[np.arange(len(values)), cls_all]
        anchor = np.where(best >= min_score)[0]
        cls, scores = cls_all[anchor], best[anchor]
    all_boxes = head.boxes if head.box_q is None else dequantize(head.boxes, *head.box_q)
    raw = all_boxes[anchor].astype(np.float32, copy=False)
    if head.kind == "ssd":
        boxes = ssd_decode(raw, head.anchors[anchor])
    else:
        boxes = yolo_decode(raw)
    keep = nms_loop(boxes, scores, IOU_THRESHOLD)
    return [(int(anchor[k]), int(cls[k])) for k in keep]


def method_opencv(head: Head, min_score: float) -> Result:
    values = all_scores(head)
    boxes = decode(head, head.boxes, head.anchors)  # everything
    rects = np.stack(
        [boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], axis=1
    ).astype(np.float64)
    # NMSBoxesBatched keeps score > threshold; the float32 just below min_score makes it >=.
    below = float(np.nextafter(np.float32(min_score), np.float32(-np.inf)))
    if head.kind == "ssd":  # every (anchor, class) pair is a candidate
        anchor, column = np.nonzero(values[:, head.first_class :] >= min_score)
        cls = column
        scores = values[anchor, column + head.first_class]
        rects = rects[anchor]
    else:
        cls = values.argmax(axis=1)
        scores = values[np.arange(len(values)), cls]
        anchor = np.arange(len(values))
    kept = cv2.dnn.NMSBoxesBatched(rects, scores, cls.astype(np.int32), below, IOU_THRESHOLD)
    return [(int(anchor[k]), int(cls[k])) for k in np.asarray(kept).reshape(-1)]


def method_edgedet(head: Head, min_score: float, agnostic: bool) -> Result:
    scale, zero_point = head.score_q if head.score_q is not None else (None, 0)
    filt = filter_class_scores if head.kind == "ssd" else filter_max_class_scores
    anchor, cls, scores = filt(
        head.scores,
        min_score,
        scale=scale,
        zero_point=zero_point,
        activation=head.activation,
        first_class=head.first_class,
    )
    raw = head.boxes[anchor]
    if head.kind == "ssd" and edgedet_decode_boxes is not None:
        if head.box_q is not None:
            raw = dequantize(raw, *head.box_q)
        boxes = edgedet_decode_boxes(raw, head.anchors[anchor], BOX_SCALES)
    else:
        boxes = decode(head, raw, head.anchors[anchor] if head.anchors is not None else None)
    keep = nms(boxes, scores, IOU_THRESHOLD, None if agnostic else cls)
    return list(zip(anchor[keep].tolist(), cls[keep].tolist(), strict=True))


# --- synthetic heads --------------------------------------------------------------------


def _iou_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (len(a), len(b)) of [ymin, xmin, ymax, xmax] boxes, for data generation only."""
    ih = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[:, 0]), 0, None
    )
    iw = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[:, 1]), 0, None
    )
    inter = ih * iw
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _objects(rng: np.random.Generator, count: int, num_classes: int):
    centre = rng.uniform(0.15, 0.85, (count, 2))
    size = rng.uniform(0.08, 0.45, (count, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).clip(0, 1)
    return boxes, rng.integers(0, num_classes, count)


def _quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def synthetic_ssd(rng: np.random.Generator, num_objects: int = 6) -> Head:
    anchors = ssd_anchors(SSD_ANCHOR_SPEC)  # [ycenter, xcenter, h, w]
    n, num_classes = len(anchors), 90
    anchor_boxes = np.concatenate(
        [anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], axis=1
    )
    obj_boxes, obj_cls = _objects(rng, num_objects, num_classes)
    overlap = _iou_rows(anchor_boxes, obj_boxes)  # (N, objects)
    best = overlap.argmax(axis=1)
    best_iou = overlap[np.arange(n), best]

    logits = rng.normal(-6.5, 1.0, (n, num_classes + 1))
    logits[:, 0] = 3.0 - 8 * best_iou + rng.normal(0, 0.5, n)  # background
    firing = best_iou > 0.05
    rows = np.flatnonzero(firing)
    cls = obj_cls[best[rows]] + 1
    logits[rows, cls] = -5.0 + 11 * best_iou[rows] + rng.normal(0, 0.7, len(rows))
    confusable = cls % num_classes + 1  # a weaker, plausible second class
    logits[rows, confusable] = np.maximum(logits[rows, confusable], logits[rows, cls] - 3.5)

    # Box encodings: the object's box relative to each firing anchor, plus noise.
    target = obj_boxes[best]
    t_yc, t_xc = (target[:, 0] + target[:, 2]) / 2, (target[:, 1] + target[:, 3]) / 2
    t_h, t_w = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1]
    enc = np.stack(
        [
            (t_yc - anchors[:, 0]) / anchors[:, 2] * 10,
            (t_xc - anchors[:, 1]) / anchors[:, 3] * 10,
            np.log(t_h / anchors[:, 2]) * 5,
            np.log(t_w / anchors[:, 3]) * 5,
        ],
        axis=1,
    ) + rng.normal(0, 0.3, (n, 4))
    enc[~firing] = rng.normal(0, 1.5, (int((~firing).sum()), 4))
    score_q, box_q = (16.0 / 255, 191), (0.05, 128)
    return Head(
        kind="ssd",
        scores=_quantize(logits, *score_q, np.uint8),
        boxes=_quantize(enc, *box_q, np.uint8),
        score_q=score_q,
        box_q=box_q,
        activation="sigmoid",
        first_class=1,
        anchors=anchors,
    )


def synthetic_yolov8(rng: np.random.Generator, quantized: bool, num_objects: int = 8) -> Head:
    """A [1, 84, 8400] head (640x640 input, strides 8/16/32), boxes normalized."""
    centres, strides = [], []
    for stride in (8, 16, 32):
        g = 640 // stride
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        centres.append(np.stack([(ys.ravel() + 0.5) * stride, (xs.ravel() + 0.5) * stride], 1))
        strides.append(np.full(g * g, stride))
    centre = np.concatenate(centres) / 640  # (8400, 2) y, x
    stride = np.concatenate(strides) / 640
    n, num_classes = len(centre), 80
    obj_boxes, obj_cls = _objects(rng, num_objects, num_classes)

    scores = sigmoid(rng.normal(-7.0, 1.2, (n, num_classes)).astype(np.float32))
    pred = np.empty((n, 4), np.float64)  # cx, cy, w, h
    pred[:, :2] = centre[:, ::-1]
    pred[:, 2:] = stride[:, None] * rng.uniform(1, 3, (n, 2))
    for box, cls in zip(obj_boxes, obj_cls, strict=True):
        size = box[2:] - box[:2]
        inside = np.all((centre > box[:2]) & (centre < box[2:]), axis=1)
        # Anchors of the scale that suits the object fire strongest; others weakly.
        fit = np.exp(-np.abs(np.log(stride * 12 / np.sqrt(size.prod()))))
        off = np.abs(centre - (box[:2] + box[2:]) / 2) / (size / 2)
        quality = fit * (1 - off.max(axis=1)) * rng.uniform(0.8, 1.0, n)
        idx = np.flatnonzero(inside & (quality > scores[:, cls]))
        scores[idx, cls] = quality[idx]
        scores[idx, (cls + 1) % num_classes] = quality[idx] * 0.3  # confusable class
        jitter = rng.normal(0, 0.02, (len(idx), 4)) * np.concatenate([size[::-1], size[::-1]])
        pred[idx] = np.concatenate([((box[:2] + box[2:]) / 2)[::-1], size[::-1]]) + jitter
    # C-contiguous [1, 84, 8400], as the interpreter returns it.
    tensor = np.ascontiguousarray(np.concatenate([pred.T, scores.T]), np.float32)[None]
    q = None
    if quantized:
        q = (1.0 / 255, -128)
        tensor = _quantize(tensor, *q, np.int8)
    return Head(
        kind="yolov8",
        scores=tensor[0, 4:].T,
        boxes=tensor[0, :4].T,
        score_q=q,
        box_q=q,
        activation="none",
        first_class=0,
    )


# --- the bundled model ----------------------------------------------------------------------


def model_heads(max_frames: int) -> tuple[list[Head], list[float], list[np.ndarray]] | None:
    """Real raw outputs of the bundled SSD on clip frames, invoke times (ms), the frames."""
    clips = sorted((ROOT / "models" / "samples").glob("vtest_clip.*"))
    card_path = MODEL.with_suffix(".yaml")
    if not (MODEL.exists() and card_path.exists() and clips):
        return None
    import yaml
    from ai_edge_litert.interpreter import Interpreter

    card = yaml.safe_load(card_path.read_text())
    decoder = card["decoder"]
    anchors = ssd_anchors(decoder["anchors"])
    interpreter = Interpreter(model_path=str(MODEL))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    outs = interpreter.get_output_details()
    box_out = next(o for o in outs if o["shape"][-1] == 4 and o["shape"][1] == len(anchors))
    score_out = next(o for o in outs if o is not box_out)
    _, height, width, _ = inp["shape"]
    in_scale, in_zero = inp["quantization"]
    capture = cv2.VideoCapture(str(clips[0]))
    heads, invoke_ms, frames = [], [], []
    while len(heads) < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
        rgb = cv2.cvtColor(
            cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR_EXACT),
            cv2.COLOR_BGR2RGB,
        )
        if inp["dtype"] == np.float32:
            tensor = (rgb.astype(np.float32) - 127.5) / 127.5
        elif in_scale:  # quantized input: pixel -> normalized -> code
            tensor = _quantize((rgb - 127.5) / 127.5, in_scale, in_zero, inp["dtype"])
        else:
            tensor = rgb.astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], tensor[None])
        for _ in range(3):  # invoke is what post-processing is measured against
            t0 = time.perf_counter()
            interpreter.invoke()
            invoke_ms.append((time.perf_counter() - t0) * 1000)
        score_q = tuple(score_out["quantization"]) if score_out["quantization"][0] else None
        box_q = tuple(box_out["quantization"]) if box_out["quantization"][0] else None
        scores = interpreter.get_tensor(score_out["index"]).reshape(len(anchors), -1)
        heads.append(
            Head(
                kind="ssd",
                scores=scores,
                boxes=interpreter.get_tensor(box_out["index"]).reshape(-1, 4),
                score_q=score_q,
                box_q=box_q,
                activation=decoder.get("score_activation", "sigmoid"),
                first_class=1 if decoder.get("background_class", True) else 0,
                anchors=anchors,
            )
        )
    capture.release()
    return heads, invoke_ms, frames


def runtime_decode_ms(frames: list[np.ndarray], min_score: float, rounds: int) -> float | None:
    """Median ms of the runtime's own SSD decode (edgedet.Detector's decoder) on the frames:
    filter, decode, NMS, mapping to the frame and building Detections."""
    try:
        from edgedet.detector import Detector

        detector = Detector.open(MODEL)
        params = detector.params(min_score=min_score, iou_threshold=IOU_THRESHOLD)
        raw = [detector.raw_outputs(frame) for frame in frames]
    except Exception as exc:  # the runtime is another part of the tree; report, go on
        print(f"note: runtime decode not timed: {exc}")
        return None
    times = []
    for r in range(rounds):
        outputs, geometry = raw[r % len(raw)]
        t0 = time.perf_counter_ns()
        detector.decoder.decode(outputs, params, geometry)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


# --- timing ---------------------------------------------------------------------------------

METHODS = ("a", "a2", "b", "c_agnostic", "c_per_class")


def run_case(name: str, heads: list[Head], min_score: float, rounds: int) -> dict[str, float]:
    """Median ms per method over ``rounds`` rounds, methods interleaved in random order."""
    methods: dict[str, Callable[[Head], Result]] = {
        "a": lambda h: method_article(h, min_score),
        "a2": lambda h: method_article(h, min_score, numpy_step_nms),
        "b": lambda h: method_opencv(h, min_score),
        "c_agnostic": lambda h: method_edgedet(h, min_score, agnostic=True),
        "c_per_class": lambda h: method_edgedet(h, min_score, agnostic=False),
    }
    kept, candidates = [], []
    for head in heads:  # same detections, pair by pair, before any timing
        got = {key: fn(head) for key, fn in methods.items()}
        for base, ours in (("a", "c_agnostic"), ("a2", "c_agnostic"), ("b", "c_per_class")):
            if got[base] != got[ours]:
                raise SystemExit(f"{name} @ {min_score}: ({base}) and ({ours}) disagree")
        kept.append(len(got["c_per_class"]))
        candidates.append(len(candidate_count(head, min_score)))
    times: dict[str, list[float]] = {key: [] for key in methods}
    order = list(methods)
    shuffle = random.Random(0).shuffle
    for r in range(rounds):
        head = heads[r % len(heads)]
        shuffle(order)
        for key in order:
            t0 = time.perf_counter_ns()
            methods[key](head)
            times[key].append((time.perf_counter_ns() - t0) / 1e6)
    medians = {key: statistics.median(v) for key, v in times.items()}
    medians["kept"] = statistics.median(kept)
    medians["candidates"] = statistics.median(candidates)
    return medians


def candidate_count(head: Head, min_score: float) -> np.ndarray:
    scale, zero_point = head.score_q if head.score_q is not None else (None, 0)
    filt = filter_class_scores if head.kind == "ssd" else filter_max_class_scores
    return filt(
        head.scores,
        min_score,
        scale=scale,
        zero_point=zero_point,
        activation=head.activation,
        first_class=head.first_class,
    )[0]


def scaling_boxes(rng: np.random.Generator, n: int, clustered: bool):
    """n candidates, 80 classes: clusters of 40 jittered boxes of one class per object, or
    a grid of disjoint boxes (every box kept: greedy NMS's worst case)."""
    if clustered:
        per = min(n, 40)
        objects = -(-n // per)
        centre = rng.uniform(0.05, 0.95, (objects, 2))
        size = rng.uniform(0.02, 0.2, (objects, 2))
        jitter = rng.normal(0, 0.01, (objects, per, 4))
        lo = centre[:, None] - size[:, None] / 2 + jitter[..., :2]
        hi = centre[:, None] + size[:, None] / 2 + jitter[..., 2:]
        # Valid boxes (lo <= hi), as decoders produce: OpenCV reads inverted ones differently.
        boxes = np.concatenate([np.minimum(lo, hi), np.maximum(lo, hi)], -1).reshape(-1, 4)[:n]
        classes = np.repeat(rng.integers(0, 80, objects), per)[:n]
    else:
        side = int(np.ceil(np.sqrt(n)))
        y, x = np.divmod(np.arange(n), side)
        boxes = np.stack([y, x, y + 0.9, x + 0.9], 1) / side
        classes = rng.integers(0, 80, n)
    scores = rng.random(n).astype(np.float32)
    return boxes.astype(np.float32), scores, classes.astype(np.int32)


def nms_scaling(rng: np.random.Generator, rounds: int) -> None:
    """NMS alone, 10 to 20,000 candidates: edgedet vs OpenCV, time and peak memory."""
    import tracemalloc

    print()
    print(
        "| boxes | candidates | mode | kept | edgedet nms ms | OpenCV ms | OpenCV / edgedet "
        "| same kept | edgedet peak MiB |"
    )
    print("|" + "---|" * 9)
    for clustered in (True, False):
        for n in (10, 100, 1000, 5000, 20000):
            boxes, scores, classes = scaling_boxes(rng, n, clustered)
            rects = np.stack(
                [boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]],
                axis=1,
            ).astype(np.float64)
            reps = max(3, min(rounds, 20_000 // n)) if clustered or n <= 1000 else 1
            for per_class in (True, False):
                ours = functools.partial(
                    nms, boxes, scores, IOU_THRESHOLD, classes if per_class else None
                )
                if per_class:  # scores > 0.0: every candidate takes part, as in ours
                    theirs = functools.partial(
                        cv2.dnn.NMSBoxesBatched, rects, scores, classes, 0.0, IOU_THRESHOLD
                    )
                else:
                    theirs = functools.partial(cv2.dnn.NMSBoxes, rects, scores, 0.0, IOU_THRESHOLD)

                tracemalloc.start()
                kept = ours()
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                same = set(kept.tolist()) == set(np.asarray(theirs()).reshape(-1).tolist())
                t_ours, t_theirs = [], []
                for _ in range(reps):
                    for fn, bucket in ((ours, t_ours), (theirs, t_theirs)):
                        t0 = time.perf_counter_ns()
                        fn()
                        bucket.append((time.perf_counter_ns() - t0) / 1e6)
                mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
                print(
                    f"| {'clustered' if clustered else 'disjoint'} | {n} "
                    f"| {'per-class' if per_class else 'agnostic'} | {len(kept)} | {mo:.3f} "
                    f"| {mt:.3f} | {mt / mo:.2f}x | {'yes' if same else 'no'} "
                    f"| {peak / 2**20:.2f} |",
                    flush=True,
                )


def versions() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln)
    except (OSError, subprocess.CalledProcessError, StopIteration):
        cpu = platform.processor() or "unknown"
    import importlib.metadata as md

    try:
        litert = md.version("ai-edge-litert")
    except md.PackageNotFoundError:
        litert = "not installed"
    return (
        f"CPU: {cpu} ({os.cpu_count()} logical CPUs, shared); Python "
        f"{platform.python_version()}; numpy {np.__version__}; opencv {cv2.__version__}; "
        f"ai-edge-litert {litert}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400, help="timed rounds per case")
    parser.add_argument("--frames", type=int, default=30, help="clip frames for the model case")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the NMS-only table")
    args = parser.parse_args()

    rng = np.random.default_rng(2024)
    cases: list[tuple[str, list[Head]]] = [
        ("SSD synthetic, uint8 logits 1917x91", [synthetic_ssd(rng) for _ in range(8)]),
        ("YOLOv8 synthetic, int8 84x8400", [synthetic_yolov8(rng, True) for _ in range(4)]),
        ("YOLOv8 synthetic, float32 84x8400", [synthetic_yolov8(rng, False) for _ in range(4)]),
    ]
    real = model_heads(args.frames)
    if real is not None:
        heads, invoke_times, frames = real
        cases.insert(0, (f"bundled {MODEL.name}, {len(heads)} clip frames", heads))
    else:
        print(f"note: {MODEL.relative_to(ROOT)} or its card/clip missing; model case skipped")

    print(versions())
    print(
        f"IoU threshold {IOU_THRESHOLD}; median ms of {args.rounds} interleaved rounds; "
        "candidates = entries passing the score filter; kept = after per-class NMS"
    )
    print()
    print(
        "| output | min_score | candidates | kept | (a) article | (a2) article, numpy NMS "
        "| (b) OpenCV | (c) agnostic | (c) per-class | a / c | a2 / c | b / c |"
    )
    print("|" + "---|" * 12)
    model_rows = []
    for name, heads in cases:
        for min_score in (0.25, 0.5):
            m = run_case(name, heads, min_score, args.rounds)
            ca, cp = m["c_agnostic"], m["c_per_class"]
            print(
                f"| {name} | {min_score} | {m['candidates']:g} | {m['kept']:g} "
                f"| {m['a']:.3f} | {m['a2']:.3f} | {m['b']:.3f} | {ca:.3f} | {cp:.3f} "
                f"| {m['a'] / ca:.1f}x | {m['a2'] / ca:.1f}x | {m['b'] / cp:.1f}x |",
                flush=True,
            )
            if real is not None and name.startswith("bundled"):
                model_rows.append((min_score, max(ca, cp)))
    if not args.skip_scaling:
        nms_scaling(rng, args.rounds)
    if real is not None:
        invoke_ms = statistics.median(invoke_times)
        print()
        print(f"Bundled model: median invoke {invoke_ms:.2f} ms ({len(invoke_times)} invokes)")
        for min_score, worst in model_rows:
            decode_ms = runtime_decode_ms(frames, min_score, args.rounds)
            line = (
                f"- min_score {min_score}: edgedet post-processing {worst:.3f} ms = "
                f"{100 * worst / invoke_ms:.1f}% of invoke"
            )
            if decode_ms is not None:
                line += (
                    f"; the runtime's full SSD decode (Detector.decoder.decode) {decode_ms:.3f}"
                    f" ms = {100 * decode_ms / invoke_ms:.1f}%"
                )
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
