"""Generated detection sequences with known identities, for tracking tests and the
tracking benchmark (tools/bench_tracking.py).

Each scene moves a few boxes along straight lines at constant speed (normalized frame
coordinates, one step per frame) and turns them into what a detector would report:
boxes jittered by a fraction of their size, some detections missed at random, some
objects occluded (not detected at all) for a run of frames, scores drawn around a mean.
Ground truth keeps the true box and identity of every object in every frame.

Everything is drawn from ``numpy.random.default_rng(seed)``: a scene is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgedet.detections import Detections


@dataclass
class Frame:
    gt_ids: list[int]
    gt_boxes: np.ndarray  # (G, 4) [ymin, xmin, ymax, xmax]
    detections: Detections


@dataclass
class Scene:
    name: str
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Walker:
    """One object: start centre (x, y), velocity per frame, size (w, h), frames alive."""

    x: float
    y: float
    vx: float
    vy: float
    w: float
    h: float
    first: int = 0
    last: int = 10**9
    class_id: int = 0

    def box(self, t: int) -> np.ndarray:
        cx = self.x + self.vx * (t - self.first)
        cy = self.y + self.vy * (t - self.first)
        return np.array(
            [cy - self.h / 2, cx - self.w / 2, cy + self.h / 2, cx + self.w / 2], np.float64
        )


def make_scene(
    name: str,
    walkers: list[Walker],
    frames: int,
    *,
    seed: int,
    jitter: float = 0.0,
    miss_rate: float = 0.0,
    occlusions: int = 0,
    occlusion_len: tuple[int, int] = (2, 5),
    score_mean: float = 0.75,
    clutter: float = 0.0,
    labels: tuple[str, ...] = ("person",),
) -> Scene:
    """A scene of ``walkers`` over ``frames`` frames.

    ``jitter``: standard deviation of each box edge's noise as a fraction of the box size.
    ``miss_rate``: probability a visible object is not detected in a frame.
    ``occlusions``: per object, that many runs of ``occlusion_len`` frames undetected.
    ``clutter``: expected false detections per frame (random small boxes, low score).
    """
    rng = np.random.default_rng(seed)
    hidden: list[set[int]] = []
    for wk in walkers:
        gone: set[int] = set()
        life = (max(wk.first, 0), min(wk.last, frames - 1))
        for _ in range(occlusions):
            length = int(rng.integers(occlusion_len[0], occlusion_len[1] + 1))
            start = int(rng.integers(life[0] + 5, max(life[0] + 6, life[1] - length - 5)))
            gone.update(range(start, start + length))
        hidden.append(gone)
    scene = Scene(name)
    for t in range(frames):
        ids, truth, det_boxes, det_scores, det_cls = [], [], [], [], []
        for i, wk in enumerate(walkers):
            if not wk.first <= t <= wk.last:
                continue
            box = wk.box(t)
            if box[2] <= 0 or box[3] <= 0 or box[0] >= 1 or box[1] >= 1:
                continue  # left the frame
            ids.append(i + 1)
            truth.append(np.clip(box, 0, 1))
            if t in hidden[i] or rng.random() < miss_rate:
                continue
            size = np.array([wk.h, wk.w, wk.h, wk.w])
            noisy = box + rng.normal(0.0, jitter, 4) * size
            det_boxes.append(np.clip(noisy, 0, 1))
            det_scores.append(float(np.clip(rng.normal(score_mean, 0.08), 0.3, 0.99)))
            det_cls.append(wk.class_id)
        for _ in range(int(rng.poisson(clutter))):
            cx, cy = rng.random(2)
            s = rng.uniform(0.03, 0.08)
            det_boxes.append(np.clip([cy - s, cx - s / 2, cy + s, cx + s / 2], 0, 1))
            det_scores.append(float(rng.uniform(0.3, 0.55)))
            det_cls.append(0)
        order = np.argsort(-np.asarray(det_scores, np.float64), kind="stable")
        dets = Detections(
            np.asarray(det_boxes, np.float32).reshape(-1, 4)[order],
            np.asarray(det_scores, np.float32)[order],
            np.asarray(det_cls, np.int32)[order],
            labels,
        )
        scene.frames.append(Frame(ids, np.asarray(truth).reshape(-1, 4), dets))
    return scene


def crossing(seed: int = 1, **noise) -> Scene:
    """Two people crossing head-on on one line and two more crossing diagonally."""
    walkers = [
        Walker(0.1, 0.5, 0.006, 0.0, 0.08, 0.25),
        Walker(0.9, 0.52, -0.006, 0.0, 0.08, 0.25),
        Walker(0.15, 0.2, 0.005, 0.004, 0.07, 0.2),
        Walker(0.85, 0.2, -0.005, 0.004, 0.07, 0.2),
    ]
    return make_scene("crossing", walkers, 140, seed=seed, **noise)


def street(seed: int = 2, **noise) -> Scene:
    """A street: eight people entering and leaving at different times, some passing."""
    rng = np.random.default_rng(seed + 1000)
    walkers = []
    for i in range(8):
        left = i % 2 == 0
        speed = rng.uniform(0.003, 0.008)
        walkers.append(
            Walker(
                0.05 if left else 0.95,
                rng.uniform(0.3, 0.7),
                speed if left else -speed,
                rng.uniform(-0.001, 0.001),
                rng.uniform(0.05, 0.09),
                rng.uniform(0.15, 0.3),
                first=i * 25,
                last=i * 25 + 150,
            )
        )
    return make_scene("street", walkers, 360, seed=seed, **noise)


def standard_scenes(seed: int = 0) -> list[Scene]:
    """The scenes the tests require: crossing paths, 10 % missed detections, 2-5 frame
    occlusions and jittered boxes, each alone and all together."""
    hard = {"jitter": 0.04, "miss_rate": 0.10, "occlusions": 2}
    scenes = [
        ("crossing-jitter", crossing(seed + 1, jitter=0.04)),
        ("crossing-miss10", crossing(seed + 2, miss_rate=0.10)),
        ("crossing-occl", crossing(seed + 3, occlusions=2)),
        ("crossing-all", crossing(seed + 4, **hard)),
        ("street-all", street(seed + 5, **hard)),
        ("street-clutter", street(seed + 6, **hard, clutter=0.3)),
    ]
    for name, scene in scenes:
        scene.name = name
    return [scene for _, scene in scenes]


def _iou_distance(truth: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """motmetrics' IoU distance (1 - IoU, NaN = no match when IoU < 0.5), computed here
    because motmetrics 1.4's own helper uses ``np.asfarray`` (gone in NumPy 2)."""
    a = np.asarray(truth, np.float64).reshape(-1, 4)
    b = np.asarray(hyp, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.where(iou >= 0.5, 1.0 - iou, np.nan)


@dataclass
class Score:
    """CLEAR-MOT / identity metrics of one tracker on one scene (py-motmetrics)."""

    idf1: float
    mota: float
    switches: int
    transfers: int  # a tracker id moving on to another true object: id reuse
    fragmentations: int


def evaluate(scene: Scene, track_frame) -> Score:
    """Run ``track_frame(detections) -> (ids, boxes)`` over ``scene`` and score it.

    A hypothesis matches a true box when their IoU is >= 0.5 (motmetrics' distance
    ``1 - IoU`` <= 0.5).
    """
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for frame in scene.frames:
        ids, boxes = track_frame(frame.detections)
        ids = [int(i) for i in ids]
        dist = _iou_distance(frame.gt_boxes, boxes)
        acc.update(frame.gt_ids, ids, dist)
    summary = mm.metrics.create().compute(
        acc,
        metrics=["idf1", "mota", "num_switches", "num_transfer", "num_fragmentations"],
        name=scene.name,
    )
    row = summary.iloc[0]
    return Score(
        idf1=float(row["idf1"]),
        mota=float(row["mota"]),
        switches=int(row["num_switches"]),
        transfers=int(row["num_transfer"]),
        fragmentations=int(row["num_fragmentations"]),
    )
