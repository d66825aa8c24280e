"""Post-NMS user filters: what a deployment keeps of what the model reported.

The detector already applied two model-level steps, in this order (DESIGN.md):

1. the **score filter** drops candidates with ``score < model.min_score`` (inclusive
   keep) before anything else; it is about confidence, one box at a time;
2. **NMS** (non-maximum suppression) removes *duplicates*: of boxes of one class that
   overlap with IoU > ``model.iou``, only the highest-scoring one survives. It is about
   boxes relative to each other, not about whether a box is wanted.

The filters here run *after* NMS and never change which box represents an object; they
only drop whole detections the user does not care about:

- ``labels``: allow-list of label names (empty: every label);
- ``min_score``: per-label floor, e.g. ``{person: 0.7}``; a detection is kept when
  ``score >= floor`` (inclusive, like the score filter). A floor below ``model.min_score``
  has no effect: those detections were never produced. Raising the floor here instead of
  ``model.min_score`` matters because NMS ran with the lower threshold: a low-scoring box
  may already have been suppressed by a higher-scoring one of the same class, which is the
  intended result;
- ``min_area`` / ``max_area``: box area ``(ymax - ymin) * (xmax - xmin)`` in normalized
  coordinates, i.e. the fraction of the frame, kept when ``min_area <= area <= max_area``;
- ``roi``: a polygon ``[[x, y], ...]`` in normalized frame coordinates (x to the right, y
  down, both in [0, 1]); a detection is kept when the centre of its box lies inside
  (even-odd rule; a centre exactly on an edge may fall either way).

Every filter is a vectorized boolean mask over the ``Detections`` arrays; the order of the
surviving rows (descending score) is preserved.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from edgedet.detections import Detections
from edgedet.errors import ConfigError
from edgedet.schema import setting


@dataclass(frozen=True)
class FiltersConfig:
    """Applied after NMS, to what the model already reported."""

    labels: tuple[str, ...] = setting((), doc="allow-list of labels; empty: every label")
    min_score: dict[str, float] = setting(
        {}, lo=0.0, hi=1.0, doc="per-label floor above model.min_score, e.g. {person: 0.6}"
    )
    min_area: float = setting(
        0.0, lo=0.0, hi=1.0, doc="box area as a fraction of the frame, inclusive"
    )
    max_area: float = setting(1.0, lo=0.0, hi=1.0)
    roi: tuple[tuple[float, float], ...] | None = setting(
        None,
        lo=0.0,
        hi=1.0,
        doc="polygon [[x, y], ...] in normalized frame coordinates; a detection is kept "
        "when its box centre is inside",
    )


def _label_ids(names: tuple[str, ...] | list[str], labels: tuple[str, ...], key: str) -> list[int]:
    ids = []
    for name in names:
        if name not in labels:
            near = difflib.get_close_matches(name, labels, n=1, cutoff=0.5)
            hint = (
                f"; did you mean '{near[0]}'?"
                if near
                else f"; the model's labels: {', '.join(labels[:20])}"
            )
            raise ConfigError(f"{key}: '{name}' is not a label of the model{hint}")
        ids.append(labels.index(name))
    return ids


def points_in_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask: which points (x[i], y[i]) lie inside ``polygon`` (K, 2) of (x, y).

    Even-odd ray casting, vectorized over the points (a Python loop over the K edges only).
    """
    inside = np.zeros(x.shape, dtype=bool)
    xs, ys = polygon[:, 0], polygon[:, 1]
    for i in range(len(polygon)):
        x1, y1 = xs[i - 1], ys[i - 1]
        x2, y2 = xs[i], ys[i]
        crosses = (y1 > y) != (y2 > y)
        if not crosses.any():
            continue
        # x where the edge meets the horizontal line through the point (y1 != y2 here).
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


class DetectionFilter:
    """The user's post-NMS filters, compiled once for a model's label list."""

    def __init__(self, cfg: FiltersConfig, labels: tuple[str, ...]) -> None:
        self.labels = tuple(labels)
        allow = _label_ids(cfg.labels, self.labels, "filters.labels") if cfg.labels else None
        self._allow = np.array(allow, dtype=np.int32) if allow is not None else None
        self._floors: np.ndarray | None = None
        if cfg.min_score:
            ids = _label_ids(list(cfg.min_score), self.labels, "filters.min_score")
            floors = np.zeros(max(len(self.labels), 1), dtype=np.float32)
            for cid, floor in zip(ids, cfg.min_score.values(), strict=True):
                floors[cid] = floor
            self._floors = floors
        self.min_area = float(cfg.min_area)
        self.max_area = float(cfg.max_area)
        self._area = self.min_area > 0.0 or self.max_area < 1.0
        self._roi = np.asarray(cfg.roi, dtype=np.float64) if cfg.roi else None

    @property
    def active(self) -> bool:
        """False when every filter is at its keep-everything default."""
        return (
            self._allow is not None
            or self._floors is not None
            or self._area
            or self._roi is not None
        )

    def mask(self, detections: Detections) -> np.ndarray:
        """Boolean keep-mask over ``detections`` rows."""
        n = len(detections)
        keep = np.ones(n, dtype=bool)
        if n == 0:
            return keep
        class_ids = detections.class_ids
        if self._allow is not None:
            keep &= np.isin(class_ids, self._allow)
        if self._floors is not None:
            # class ids outside the label list get no floor (0).
            valid = (class_ids >= 0) & (class_ids < len(self._floors))
            floor = np.where(valid, self._floors[np.clip(class_ids, 0, len(self._floors) - 1)], 0.0)
            keep &= detections.scores >= floor
        boxes = detections.boxes
        if self._area:
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            keep &= (area >= self.min_area) & (area <= self.max_area)
        if self._roi is not None:
            cy = (boxes[:, 0].astype(np.float64) + boxes[:, 2]) / 2.0
            cx = (boxes[:, 1].astype(np.float64) + boxes[:, 3]) / 2.0
            keep &= points_in_polygon(cx, cy, self._roi)
        return keep

    def apply(self, detections: Detections) -> Detections:
        """The rows of ``detections`` every filter keeps, in their original order."""
        if not self.active or len(detections) == 0:
            return detections
        keep = self.mask(detections)
        return detections if keep.all() else detections[keep]
