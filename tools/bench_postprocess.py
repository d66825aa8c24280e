#!/usr/bin/env python3
"""Benchmark edgedet's post-processing (score filter + decode + NMS).

Usage (from the repo root):  .venv/bin/python tools/bench_postprocess.py [--rounds N]
                                 [--save FILE.json] [--compare FILE.json]

1. The bundled model on clip frames: the runtime's SSD decode (``Detector.decoder.decode``:
   filter, decode, mapping to the frame, NMS, ``Detections``) timed right after
   ``invoke()`` (caches cold, as in the run loop) and again at once (warm), against the
   invoke time.
2. Synthetic heads (SSD 1917x91 uint8 logits; YOLOv8 [1, 84, 8400] int8 and float32):
   (a) the plain way, the test suite's reference (tests/support/reference.py): dequantize
   and activate every score, compare, decode, a Python-loop NMS; (c) edgedet's filter on
   raw codes, survivors-only decode, ``edgedet.postprocess.nms``. Both must keep the same
   detections before any time is reported.
3. NMS alone, 10 to 20,000 candidates (clustered and disjoint, per-class and agnostic):
   time and peak memory (tracemalloc) against OpenCV's ``NMSBoxes``/``NMSBoxesBatched``.
   ``--save`` writes these times; ``--compare`` prints today's against a saved run
   (the guard: at most 2x a baseline measured before a change).

Times are medians over interleaved rounds in one process; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.reference import (  # noqa: E402
    reference_dequantize,
    reference_nms,
    reference_sigmoid,
    reference_ssd_boxes,
)

from edgedet.decoders.anchors import ssd_anchors  # noqa: E402
from edgedet.decoders.ssd import decode_boxes  # noqa: E402
from edgedet.postprocess import (  # noqa: E402
    dequantize,
    filter_class_scores,
    filter_max_class_scores,
    nms,
)

MODEL = ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite"
IOU = 0.5
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)
SSD_ANCHORS = {
    "num_layers": 6,
    "min_scale": 0.2,
    "max_scale": 0.95,
    "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
    "reduce_boxes_in_lowest_layer": True,
    "interpolated_scale_aspect_ratio": 1.0,
    "feature_map_sizes": [19, 10, 5, 3, 2, 1],
}


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


# --- 1. the bundled model -------------------------------------------------------------------


def bundled_model(frames: int, rounds: int) -> None:
    from edgedet.detector import Detector

    clips = sorted((ROOT / "models" / "samples").glob("vtest_clip.*"))
    if not (MODEL.exists() and clips):
        print("note: bundled model or clip missing; model case skipped")
        return
    capture = cv2.VideoCapture(str(clips[0]))
    images = [capture.read()[1] for _ in range(frames)]
    capture.release()
    detector = Detector.open(MODEL)
    print("| min_score | detections | invoke ms | decode after invoke ms | % of invoke "
          "| decode warm ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for min_score in (0.25, 0.5):
        params = detector.params(min_score=min_score, iou_threshold=IOU)
        invoke, cold, warm, found = [], [], [], []
        for r in range(rounds):
            outputs, geometry = detector.raw_outputs(images[r % len(images)])
            invoke.append(detector.invoke_only(images[r % len(images)]))
            outputs = [detector._interpreter.get_tensor(t.index) for t in detector.output_infos]
            t0 = time.perf_counter_ns()
            found.append(len(detector.decoder.decode(outputs, params, geometry)))
            t1 = time.perf_counter_ns()
            detector.decoder.decode(outputs, params, geometry)
            t2 = time.perf_counter_ns()
            cold.append((t1 - t0) / 1e6)
            warm.append((t2 - t1) / 1e6)
        inv, c = statistics.median(invoke), statistics.median(cold)
        print(f"| {min_score} | {statistics.mean(found):.1f} | {inv:.2f} | {c:.3f} "
              f"| {100 * c / inv:.1f}% | {statistics.median(warm):.3f} |")  # fmt: skip


# --- 2. synthetic heads: (a) the reference way against (c) edgedet --------------------------


@dataclass
class Head:
    kind: str  # "ssd" (every anchor x class a candidate) or "yolov8" (best class per anchor)
    scores: np.ndarray  # (N, C) codes or floats (a transposed view for yolov8)
    boxes: np.ndarray  # ssd: (N, 4) box encodings; yolov8: (N, 4) cx, cy, w, h
    quant: tuple[float, int] | None  # (scale, zero_point) of scores and boxes; None: float
    box_quant: tuple[float, int] | None
    activation: str  # "sigmoid" (logits) or "none"
    first_class: int
    anchors: np.ndarray | None = None


def _quantize(x: np.ndarray, q: tuple[float, int], dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / q[0]) + q[1], info.min, info.max).astype(dtype)


def _objects(rng: np.random.Generator, count: int, num_classes: int):
    centre = rng.uniform(0.15, 0.85, (count, 2))
    size = rng.uniform(0.08, 0.45, (count, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).clip(0, 1)
    return boxes, rng.integers(0, num_classes, count)


def synthetic_ssd(rng: np.random.Generator, objects: int = 6) -> Head:
    """Each object lights the anchors overlapping it (scores rising with the overlap) and
    a weaker confusable class, over a floor of low scores."""
    anchors = ssd_anchors(SSD_ANCHORS)  # [ycenter, xcenter, h, w]
    n, num_classes = len(anchors), 90
    corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2,
                              anchors[:, :2] + anchors[:, 2:] / 2], axis=1)  # fmt: skip
    obj_boxes, obj_cls = _objects(rng, objects, num_classes)
    ih = np.minimum(corners[:, None, 2], obj_boxes[:, 2]) - np.maximum(corners[:, None, 0],
                                                                       obj_boxes[:, 0])  # fmt: skip
    iw = np.minimum(corners[:, None, 3], obj_boxes[:, 3]) - np.maximum(corners[:, None, 1],
                                                                       obj_boxes[:, 1])  # fmt: skip
    inter = ih.clip(0) * iw.clip(0)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    overlap = inter / (area(corners)[:, None] + area(obj_boxes) - inter)
    best = overlap.argmax(axis=1)
    best_iou = overlap[np.arange(n), best]
    logits = rng.normal(-6.5, 1.0, (n, num_classes + 1))
    logits[:, 0] = 3.0 - 8 * best_iou + rng.normal(0, 0.5, n)
    rows = np.flatnonzero(best_iou > 0.05)
    cls = obj_cls[best[rows]] + 1
    logits[rows, cls] = -5.0 + 11 * best_iou[rows] + rng.normal(0, 0.7, len(rows))
    other = cls % num_classes + 1
    logits[rows, other] = np.maximum(logits[rows, other], logits[rows, cls] - 3.5)
    target = obj_boxes[best]
    size = target[:, 2:] - target[:, :2]
    centre = (target[:, :2] + target[:, 2:]) / 2
    enc = np.concatenate([(centre - anchors[:, :2]) / anchors[:, 2:] * 10,
                          np.log(size / anchors[:, 2:]) * 5], axis=1)  # fmt: skip
    enc += rng.normal(0, 0.3, enc.shape)
    q = (16.0 / 255, 191)
    return Head("ssd", _quantize(logits, q, np.uint8), _quantize(enc, (0.05, 128), np.uint8),
                q, (0.05, 128), "sigmoid", 1, anchors)  # fmt: skip


def synthetic_yolov8(rng: np.random.Generator, quantized: bool, objects: int = 8) -> Head:
    """A [1, 84, 8400] head (640x640, strides 8/16/32), boxes normalized: anchors inside an
    object fire for its class (and weakly a confusable one) with jittered boxes."""
    centre = np.concatenate([
        np.stack(np.meshgrid(np.arange(640 // s), np.arange(640 // s), indexing="ij"), -1)
        .reshape(-1, 2) * s + s / 2 for s in (8, 16, 32)]) / 640  # fmt: skip
    n, num_classes = len(centre), 80
    scores = rng.uniform(0, 0.02, (n, num_classes))
    pred = np.concatenate([centre[:, ::-1], rng.uniform(0.01, 0.1, (n, 2))], axis=1)
    obj_boxes, obj_cls = _objects(rng, objects, num_classes)
    for box, cls in zip(obj_boxes, obj_cls, strict=True):
        inside = np.flatnonzero(np.all((centre > box[:2]) & (centre < box[2:]), axis=1))
        quality = rng.uniform(0.1, 0.95, len(inside)) * rng.uniform(0, 1, len(inside)) ** 2
        scores[inside, cls] = np.maximum(scores[inside, cls], quality)
        scores[inside, (cls + 1) % num_classes] = quality * 0.3
        size = box[2:] - box[:2]
        pred[inside] = np.concatenate([((box[:2] + box[2:]) / 2)[::-1], size[::-1]])
        pred[inside] += rng.normal(0, 0.02, (len(inside), 4)) * np.tile(size[::-1], 2)
    tensor = np.ascontiguousarray(np.concatenate([pred.T, scores.T]), np.float32)[None]
    q = (1.0 / 255, -128) if quantized else None
    if q:
        tensor = _quantize(tensor, q, np.int8)
    return Head("yolov8", tensor[0, 4:].T, tensor[0, :4].T, q, q, "none", 0)


def _corners(head: Head, raw_boxes: np.ndarray, anchors: np.ndarray | None) -> np.ndarray:
    if head.kind == "ssd":
        return reference_ssd_boxes(raw_boxes, anchors, BOX_SCALES)
    cx, cy, w, h = raw_boxes.T
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)


def method_reference(head: Head, min_score: float, agnostic: bool) -> list[tuple[int, int]]:
    """Everything dequantized and activated, compared, decoded; a Python-loop NMS."""
    values = reference_dequantize(head.scores, *(head.quant or (None, 0)))
    if head.activation == "sigmoid":
        values = reference_sigmoid(values)
    values = values[:, head.first_class :]
    if head.kind == "ssd":
        anchor, cls = np.nonzero(values >= np.float32(min_score))
    else:
        best = values.argmax(axis=1)
        anchor = np.flatnonzero(values[np.arange(len(values)), best] >= np.float32(min_score))
        cls = best[anchor]
    scores = values[anchor, cls]
    boxes = reference_dequantize(head.boxes, *(head.box_quant or (None, 0)))[anchor]
    boxes = _corners(head, boxes, None if head.anchors is None else head.anchors[anchor])
    keep = reference_nms(boxes, scores, IOU, None if agnostic else cls)
    return [(int(anchor[k]), int(cls[k])) for k in keep]


def method_edgedet(head: Head, min_score: float, agnostic: bool) -> list[tuple[int, int]]:
    scale, zero_point = head.quant or (None, 0)
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
    if head.box_quant is not None:
        raw = dequantize(raw, *head.box_quant)
    if head.kind == "ssd":
        boxes = decode_boxes(raw, head.anchors[anchor], BOX_SCALES)
    else:
        boxes = _corners(head, raw, None)
    keep = nms(boxes, scores, IOU, None if agnostic else cls)
    return list(zip(anchor[keep].tolist(), cls[keep].tolist(), strict=True))


def synthetic_heads(rounds: int) -> None:
    rng = np.random.default_rng(2024)
    cases = [
        ("SSD, uint8 logits 1917x91", [synthetic_ssd(rng) for _ in range(6)]),
        ("YOLOv8, int8 84x8400", [synthetic_yolov8(rng, True) for _ in range(3)]),
        ("YOLOv8, float32 84x8400", [synthetic_yolov8(rng, False) for _ in range(3)]),
    ]
    print("| head | min_score | mode | kept | (a) reference ms | (c) edgedet ms | a / c |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, heads in cases:
        for min_score in (0.25, 0.5):
            for agnostic in (False, True):
                kept = []
                for head in heads:
                    ours = method_edgedet(head, min_score, agnostic)
                    if ours != method_reference(head, min_score, agnostic):
                        raise SystemExit(f"{name} @ {min_score}: edgedet and reference disagree")
                    kept.append(len(ours))
                ref_ms, our_ms = [], []
                for r in range(rounds):
                    head = heads[r % len(heads)]
                    args = (head, min_score, agnostic)
                    if r < max(3, rounds // 20):  # the reference is slow: fewer rounds
                        ref_ms.append(median_ms(functools.partial(method_reference, *args), 1))
                    our_ms.append(median_ms(functools.partial(method_edgedet, *args), 1))
                a, c = statistics.median(ref_ms), statistics.median(our_ms)
                mode = "agnostic" if agnostic else "per-class"
                print(f"| {name} | {min_score} | {mode} | {statistics.mean(kept):.1f} "
                      f"| {a:.3f} | {c:.3f} | {a / c:.0f}x |", flush=True)  # fmt: skip


# --- 3. NMS alone, 10 to 20,000 candidates --------------------------------------------------


def scaling_boxes(rng: np.random.Generator, n: int, clustered: bool):
    """n candidates of 80 classes: clusters of 40 jittered boxes of one class per object,
    or a grid of disjoint boxes (every box kept: greedy NMS's worst case)."""
    if clustered:
        per = min(n, 40)
        objects = -(-n // per)
        centre = rng.uniform(0.05, 0.95, (objects, 1, 2))
        size = rng.uniform(0.02, 0.2, (objects, 1, 2))
        lo = centre - size / 2 + rng.normal(0, 0.01, (objects, per, 2))
        hi = centre + size / 2 + rng.normal(0, 0.01, (objects, per, 2))
        boxes = np.concatenate([np.minimum(lo, hi), np.maximum(lo, hi)], -1).reshape(-1, 4)[:n]
        classes = np.repeat(rng.integers(0, 80, objects), per)[:n]
    else:
        side = int(np.ceil(np.sqrt(n)))
        y, x = np.divmod(np.arange(n), side)
        boxes = np.stack([y, x, y + 0.9, x + 0.9], 1) / side
        classes = rng.integers(0, 80, n)
    return boxes.astype(np.float32), rng.random(n).astype(np.float32), classes.astype(np.int32)


def nms_scaling(rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(2024)
    times = {}
    print("| boxes | candidates | mode | kept | edgedet ms | OpenCV ms | OpenCV / edgedet "
          "| same kept | edgedet peak MiB |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---|---:|")
    for clustered in (True, False):
        for n in (10, 100, 1000, 5000, 20000):
            boxes, scores, classes = scaling_boxes(rng, n, clustered)
            rects = np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1],
                              boxes[:, 2] - boxes[:, 0]], axis=1).astype(np.float64)  # fmt: skip
            reps = max(3, min(rounds, 20_000 // n))
            for per_class in (True, False):
                ours = functools.partial(nms, boxes, scores, IOU, classes if per_class else None)
                # Score threshold 0: every candidate takes part, as in ours.
                if per_class:
                    theirs = functools.partial(
                        cv2.dnn.NMSBoxesBatched, rects, scores, classes, 0.0, IOU
                    )
                else:
                    theirs = functools.partial(cv2.dnn.NMSBoxes, rects, scores, 0.0, IOU)
                tracemalloc.start()
                kept = ours()
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                same = set(kept.tolist()) == set(np.asarray(theirs()).reshape(-1).tolist())
                t_ours, t_theirs = [], []
                for _ in range(reps):  # interleaved
                    t_ours.append(median_ms(ours, 1))
                    t_theirs.append(median_ms(theirs, 1))
                mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
                mode = "per-class" if per_class else "agnostic"
                label = "clustered" if clustered else "disjoint"
                times[f"{label} {n} {mode}"] = mo
                print(f"| {label} | {n} | {mode} | {len(kept)} | {mo:.3f} | {mt:.3f} "
                      f"| {mt / mo:.2f}x | {'yes' if same else 'no'} | {peak / 2**20:.2f} |",
                      flush=True)  # fmt: skip
    return times


def versions() -> str:
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs (shared; load {os.getloadavg()[0]:.1f}); "
            f"Python {platform.python_version()}, numpy {np.__version__}, opencv "
            f"{cv2.__version__}, ai-edge-litert {metadata.version('ai-edge-litert')}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per case")
    parser.add_argument("--frames", type=int, default=30, help="clip frames, bundled model")
    parser.add_argument("--only", choices=("model", "heads", "nms"), help="run one part")
    parser.add_argument("--save", metavar="FILE", help="write the NMS-alone times as JSON")
    parser.add_argument("--compare", metavar="FILE", help="NMS-alone times against a --save")
    args = parser.parse_args()
    print(versions(), "\n")
    if args.only in (None, "model"):
        bundled_model(args.frames, args.rounds)
        print()
    if args.only in (None, "heads"):
        synthetic_heads(args.rounds)
        print()
    if args.only in (None, "nms"):
        times = nms_scaling(args.rounds)
        if args.save:
            Path(args.save).write_text(json.dumps(times, indent=1))
        if args.compare:
            before = json.loads(Path(args.compare).read_text())
            print("\n| case | before ms | now ms | now / before |\n|---|---:|---:|---:|")
            for key, now in times.items():
                if key in before:
                    print(f"| {key} | {before[key]:.3f} | {now:.3f} | {now / before[key]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
