"""The candidate cache: one inference per frame, every threshold setting from memory.

For each frame the detector's pre-NMS candidates with ``score >= floor`` are kept (boxes
in frame coordinates, in NMS visiting order; `Detector.candidates`). `detections_at`
then gives, for any ``min_score >= floor`` and any ``iou``, exactly what
``Detector.detect(frame, min_score=..., iou_threshold=...)`` returns, using the same
`score_filter` and `nms` the decoders use, without running the model again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from edgedet.detections import Detections
from edgedet.postprocess import nms, score_filter


@dataclass(frozen=True)
class CandidateCache:
    """Per frame: name, size and candidates (score-descending, ``score >= floor``)."""

    names: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]  # (height, width) of each frame
    candidates: tuple[Detections, ...]
    floor: float
    max_detections: int
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def detections_at(self, i: int, min_score: float, iou_threshold: float) -> Detections:
        """Frame ``i``'s detections at one setting: score filter, then per-class NMS,
        then ``max_detections``, as the decoders do. ``min_score`` must be >= ``floor``."""
        if min_score < self.floor:
            raise ValueError(f"min_score {min_score} is below the cache floor {self.floor}")
        c = self.candidates[i]
        passed = score_filter(c.scores, min_score)
        keep = nms(
            c.boxes[passed],
            c.scores[passed],
            iou_threshold,
            class_ids=c.class_ids[passed],
            max_detections=self.max_detections,
        )
        return c[passed[keep]]

    def kept_at_floor(self, i: int, iou_threshold: float) -> Detections:
        """Frame ``i``'s detections at ``min_score = floor``.

        Greedy NMS decides each box from the higher-scoring boxes alone and keeps them in
        score order, so the detections at any ``min_score = s >= floor`` are exactly the
        rows of this result with ``score >= s`` (`detections_at` computes them directly;
        the tests check both agree). The grid uses this: one NMS per frame per IoU.
        """
        return self.detections_at(i, self.floor, iou_threshold)


def build_cache(
    detector,
    frames: Iterable[tuple[str, np.ndarray]],
    floor: float,
    on_frame: Callable[[int, str, np.ndarray], None] | None = None,
) -> CandidateCache:
    """Run ``detector`` once per frame and keep its candidates above ``floor``.

    ``on_frame(i, name, image)`` is called for each frame (the reference model runs there,
    on the same decoded image).
    """
    names, sizes, cands = [], [], []
    for i, (name, image) in enumerate(frames):
        cands.append(detector.candidates(image, floor=floor))
        names.append(name)
        sizes.append((int(image.shape[0]), int(image.shape[1])))
        if on_frame is not None:
            on_frame(i, name, image)
    return CandidateCache(
        tuple(names),
        tuple(sizes),
        tuple(cands),
        float(floor),
        int(detector.card.defaults.max_detections),
        tuple(detector.labels),
    )
