"""Multi-object tracking: stable ids for the detections of consecutive frames.

A SORT-style tracker kept small enough to run by default on a Raspberry Pi:

- Each track carries a constant-velocity Kalman filter over the box centre and size
  (state ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in normalized frame coordinates, one step
  per processed frame). The noise scales with the box size (as in DeepSORT), so near and
  far objects are followed alike. All tracks are predicted and corrected together with
  batched numpy matrix products: no Python loop per track in the filter.
- Each frame, the predicted boxes are matched to the detections of the same class by IoU.
  ``assignment="greedy"`` takes pairs by descending IoU (numpy only; the default, see
  BENCHMARKS.md "Tracking" for why it is enough); ``"hungarian"`` solves the optimal
  assignment with ``scipy.optimize.linear_sum_assignment`` (scipy imported on first use).
  A pair is allowed only when its IoU is ``>= iou_threshold``.
- What IoU leaves unmatched gets a second, greedy pass by centre distance relative to
  the predicted box height (``max_distance``; sizes within a factor of 2): thin boxes of
  people moving sideways, and tracks that coasted, often overlap their next detection
  too little for IoU although they are close for the object's size.
- An unmatched detection starts a new track with a fresh id; ids only grow (never reused).
  A track not matched for more than ``max_age`` consecutive frames is deleted; until then
  it coasts on its prediction at its last velocity. (Damping the velocity of coasting
  tracks was measured and rejected: it swapped ids of people passing each other.)
- Per track the tracker keeps what confirmation needs (``edgedet.events.machine``): a bit
  history of the last ``window`` frames (matched or not) and the last ``score_history``
  matched scores, from which ``median_score`` is computed.

Boxes in and out are ``[ymin, xmin, ymax, xmax]`` normalized, as in ``Detections``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgedet.detections import Detections
from edgedet.postprocess import box_iou

ASSIGNMENTS = ("greedy", "hungarian")

# Kalman noise as fractions of the box size (DeepSORT's weights).
_STD_POSITION = 1.0 / 20.0
_STD_VELOCITY = 1.0 / 160.0
_MIN_SIZE = 1e-3  # floor for noise scales of degenerate boxes

# Transition for one frame: position += velocity.
_F = np.eye(8, dtype=np.float64)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8, dtype=np.float64)


@dataclass(frozen=True)
class Tracks:
    """The live tracks after one ``Tracker.update``: a struct of arrays, one row a track.

    ids:          int64 (T,), unique for the tracker's lifetime, never reused.
    class_ids:    int32 (T,).
    boxes:        float32 (T, 4) ``[ymin, xmin, ymax, xmax]``: the matched detection's box
                  when ``matched``, else the Kalman prediction (clipped to [0, 1]).
    scores:       float32 (T,), this frame's detection score; NaN when not matched.
    matched:      bool (T,), a detection was assigned to the track in this frame.
    hits:         int32 (T,), frames matched among the last ``window`` (this one included).
    median_score: float32 (T,), median of the last ``score_history`` matched scores.
    top_score:    float32 (T,), highest matched score over the track's life.
    detection:    int64 (T,), index of the matched row in the ``Detections``; -1 if none.
    """

    ids: np.ndarray
    class_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    matched: np.ndarray
    hits: np.ndarray
    median_score: np.ndarray
    top_score: np.ndarray
    detection: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def assign_greedy(iou: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (rows, cols) taken by descending IoU, each row and column at most once.

    Only pairs with IoU ``>= iou_threshold`` (and > 0) are taken. Equal IoUs: lower row,
    then lower column first (a stable sort), so the result is deterministic.
    """
    rows, cols = np.nonzero((iou >= iou_threshold) & (iou > 0))
    if len(rows) == 0:
        return rows.astype(np.int64), cols.astype(np.int64)
    order = np.argsort(-iou[rows, cols], kind="stable")
    rows, cols = rows[order], cols[order]
    used_r = np.zeros(iou.shape[0], bool)
    used_c = np.zeros(iou.shape[1], bool)
    keep_r, keep_c = [], []
    # A Python loop over candidate pairs: a handful per frame for a camera scene.
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if not used_r[r] and not used_c[c]:
            used_r[r] = used_c[c] = True
            keep_r.append(r)
            keep_c.append(c)
    return np.asarray(keep_r, np.int64), np.asarray(keep_c, np.int64)


def assign_hungarian(iou: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The assignment maximising total IoU (scipy), then pairs below the threshold dropped."""
    from scipy.optimize import linear_sum_assignment  # optional: edgedet[tracking]

    allowed = (iou >= iou_threshold) & (iou > 0)
    # Forbidden pairs cost more than any allowed set of pairs can gain.
    cost = np.where(allowed, -iou, 1.0)
    rows, cols = linear_sum_assignment(cost)
    ok = allowed[rows, cols]
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)


def _to_state(boxes: np.ndarray) -> np.ndarray:
    """[ymin, xmin, ymax, xmax] → [cx, cy, w, h]."""
    b = boxes.astype(np.float64)
    return np.stack(
        [(b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2, b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]],
        axis=1,
    )


def _to_boxes(z: np.ndarray) -> np.ndarray:
    """[cx, cy, w, h] → [ymin, xmin, ymax, xmax], clipped to [0, 1]."""
    w = np.maximum(z[:, 2], 0.0) / 2
    h = np.maximum(z[:, 3], 0.0) / 2
    out = np.stack([z[:, 1] - h, z[:, 0] - w, z[:, 1] + h, z[:, 0] + w], axis=1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _size_std(z: np.ndarray, weight: float) -> np.ndarray:
    """(T, 4) standard deviations for [cx, cy, w, h]: x terms from w, y terms from h."""
    w = np.maximum(z[:, 2], _MIN_SIZE)
    h = np.maximum(z[:, 3], _MIN_SIZE)
    return weight * np.stack([w, h, w, h], axis=1)


class Tracker:
    """Gives each detection a track id; see the module docstring for the method.

    ``iou_threshold``: minimum IoU between a track's predicted box and a detection for them
    to match (lower follows faster motion, higher swaps ids less in crowds).
    ``max_age``: frames a track survives unmatched (bridges occlusions and missed
    detections; longer keeps ids through longer gaps but lets a track capture a newcomer).
    ``window``: frames of hit history kept for K-of-N confirmation (N <= 63).
    ``score_history``: matched scores kept for ``median_score``.
    ``max_distance``: second pass for tracks and detections IoU left unmatched: centre
    distance up to this many predicted box heights (0 turns the pass off).
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.2,
        max_age: int = 15,
        window: int = 5,
        score_history: int = 30,
        assignment: str = "greedy",
        max_distance: float = 0.3,
    ) -> None:
        if assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
        if not 1 <= window <= 63:
            raise ValueError("window must be in [1, 63]")
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.window = int(window)
        self.score_history = int(score_history)
        self.max_distance = float(max_distance)
        self._assign = assign_greedy if assignment == "greedy" else assign_hungarian
        self._next_id = 1
        self._ids = np.zeros(0, np.int64)
        self._cls = np.zeros(0, np.int32)
        self._x = np.zeros((0, 8))
        self._p = np.zeros((0, 8, 8))
        self._misses = np.zeros(0, np.int64)  # consecutive unmatched frames
        self._bits = np.zeros(0, np.uint64)  # bit 0 = this frame matched
        self._scores = np.zeros((0, self.score_history), np.float32)  # ring, NaN = empty
        self._score_pos = np.zeros(0, np.int64)
        self._top = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def started(self) -> int:
        """Tracks started so far: their ids are 1..started (never reused)."""
        return self._next_id - 1

    def update(self, detections: Detections) -> Tracks:
        """Advance one frame with ``detections``; return every live track."""
        self._predict()
        boxes = detections.boxes
        n = len(detections)
        rows = cols = np.zeros(0, np.int64)
        if len(self._ids) and n:
            same_class = self._cls[:, None] == detections.class_ids[None, :]
            iou = box_iou(_to_boxes(self._x[:, :4]), boxes)
            iou[~same_class] = 0.0  # only tracks and detections of one class may pair
            rows, cols = self._assign(iou, self.iou_threshold)
            if self.max_distance > 0 and len(rows) < min(len(self._ids), n):
                rows, cols = self._match_by_distance(rows, cols, boxes, same_class)
        matched = np.zeros(len(self._ids), bool)
        matched[rows] = True
        self._correct(rows, boxes[cols])
        det_of_track = np.full(len(self._ids), -1, np.int64)
        det_of_track[rows] = cols
        # History and scores of the tracks that existed before this frame.
        mask = np.uint64((1 << self.window) - 1)
        self._bits = ((self._bits << np.uint64(1)) | matched.astype(np.uint64)) & mask
        self._misses = np.where(matched, 0, self._misses + 1)
        self._push_scores(rows, detections.scores[cols])
        # Unmatched detections start tracks.
        new = np.ones(n, bool)
        new[cols] = False
        new_idx = np.flatnonzero(new)
        if len(new_idx):
            self._start(boxes[new_idx], detections.class_ids[new_idx], detections.scores[new_idx])
            matched = np.concatenate([matched, np.ones(len(new_idx), bool)])
            det_of_track = np.concatenate([det_of_track, new_idx.astype(np.int64)])
        # Drop tracks lost for too long.
        alive = self._misses <= self.max_age
        if not alive.all():
            self._keep(alive)
            matched, det_of_track = matched[alive], det_of_track[alive]
        return self._tracks(matched, det_of_track, detections)

    # -- internals ------------------------------------------------------------------

    def _match_by_distance(
        self, rows: np.ndarray, cols: np.ndarray, boxes: np.ndarray, same_class: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Second pass for what IoU left unmatched: centre distance over the predicted box
        height. Thin boxes (people seen from afar) moving sideways, or a track that coasted
        a few frames, overlap their next detection too little for IoU, though the centre is
        close for the object's size."""
        free_t = np.setdiff1d(np.arange(len(self._ids)), rows)
        free_d = np.setdiff1d(np.arange(len(boxes)), cols)
        pred = self._x[free_t, :4]
        det = _to_state(boxes[free_d])
        scale = np.maximum(pred[:, 3], _MIN_SIZE)[:, None]
        dist = (
            np.hypot(pred[:, None, 0] - det[None, :, 0], pred[:, None, 1] - det[None, :, 1]) / scale
        )
        # Sizes must agree within a factor of 2, or this is another object nearby.
        ratio = det[None, :, 3] / np.maximum(pred[:, None, 3], _MIN_SIZE)
        ok = same_class[np.ix_(free_t, free_d)] & (ratio > 0.5) & (ratio < 2.0)
        closeness = np.where(ok, 1.0 / (1.0 + dist), 0.0)
        r, c = assign_greedy(closeness, 1.0 / (1.0 + self.max_distance))
        return np.concatenate([rows, free_t[r]]), np.concatenate([cols, free_d[c]])

    def _predict(self) -> None:
        if not len(self._ids):
            return
        pos = _size_std(self._x[:, :4], _STD_POSITION)
        vel = _size_std(self._x[:, :4], _STD_VELOCITY)
        q = np.zeros_like(self._p)
        idx = np.arange(8)
        q[:, idx, idx] = np.concatenate([pos, vel], axis=1) ** 2
        self._x = self._x @ _F.T
        self._p = _F @ self._p @ _F.T + q

    def _correct(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        if not len(rows):
            return
        z = _to_state(boxes)
        x, p = self._x[rows], self._p[rows]
        r = np.zeros((len(rows), 4, 4))
        idx = np.arange(4)
        r[:, idx, idx] = _size_std(x[:, :4], _STD_POSITION) ** 2
        s = _H @ p @ _H.T + r  # (K, 4, 4)
        # K = P H^T S^-1, solved rather than inverted (S symmetric): K^T = S^-1 H P^T.
        k = np.linalg.solve(s, _H @ p).transpose(0, 2, 1)  # (K, 8, 4)
        innovation = z - x[:, :4]
        self._x[rows] = x + np.einsum("kij,kj->ki", k, innovation)
        self._p[rows] = (np.eye(8) - k @ _H) @ p

    def _push_scores(self, rows: np.ndarray, scores: np.ndarray) -> None:
        if not len(rows):
            return
        self._scores[rows, self._score_pos[rows]] = scores
        self._score_pos[rows] = (self._score_pos[rows] + 1) % self.score_history
        self._top[rows] = np.maximum(self._top[rows], scores)

    def _start(self, boxes: np.ndarray, class_ids: np.ndarray, scores: np.ndarray) -> None:
        k = len(boxes)
        x = np.zeros((k, 8))
        x[:, :4] = _to_state(boxes)
        p = np.zeros((k, 8, 8))
        idx = np.arange(8)
        # Position known to the measurement noise; velocity unknown (10x wider).
        p[:, idx, idx] = (
            np.concatenate(
                [_size_std(x[:, :4], 2 * _STD_POSITION), _size_std(x[:, :4], 10 * _STD_VELOCITY)],
                axis=1,
            )
            ** 2
        )
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        hist = np.full((k, self.score_history), np.nan, np.float32)
        hist[:, 0] = scores
        self._ids = np.concatenate([self._ids, ids])
        self._cls = np.concatenate([self._cls, class_ids.astype(np.int32)])
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, p])
        self._misses = np.concatenate([self._misses, np.zeros(k, np.int64)])
        self._bits = np.concatenate([self._bits, np.ones(k, np.uint64)])
        self._scores = np.concatenate([self._scores, hist])
        self._score_pos = np.concatenate([self._score_pos, np.ones(k, np.int64)])
        self._top = np.concatenate([self._top, scores.astype(np.float32)])

    def _keep(self, alive: np.ndarray) -> None:
        for name in ("_ids", "_cls", "_x", "_p", "_misses", "_bits", "_scores"):
            setattr(self, name, getattr(self, name)[alive])
        self._score_pos = self._score_pos[alive]
        self._top = self._top[alive]

    def _tracks(
        self, matched: np.ndarray, det_of_track: np.ndarray, detections: Detections
    ) -> Tracks:
        t = len(self._ids)
        boxes = _to_boxes(self._x[:, :4])
        scores = np.full(t, np.nan, np.float32)
        if matched.any():
            d = det_of_track[matched]
            boxes[matched] = detections.boxes[d]
            scores[matched] = detections.scores[d]
        hits = _popcount(self._bits)
        median = _median_ignoring_nan(self._scores)
        return Tracks(
            ids=self._ids.copy(),
            class_ids=self._cls.copy(),
            boxes=boxes,
            scores=scores,
            matched=matched,
            hits=hits,
            median_score=median,
            top_score=self._top.copy(),
            detection=det_of_track,
        )


def _median_ignoring_nan(rows: np.ndarray) -> np.ndarray:
    """Median of each row's non-NaN values (every row has at least one); a sort is much
    cheaper than ``np.nanmedian`` for these short rows."""
    if not len(rows):
        return np.zeros(0, np.float32)
    ordered = np.sort(rows, axis=1)  # NaN sorts last
    count = np.count_nonzero(~np.isnan(rows), axis=1)
    r = np.arange(len(rows))
    return ((ordered[r, (count - 1) // 2] + ordered[r, count // 2]) / 2).astype(np.float32)


def _popcount(bits: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(bits).astype(np.int32)
    return np.array([bin(int(b)).count("1") for b in bits], np.int32)
