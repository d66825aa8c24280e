"""The one result type every stage passes along: a struct of numpy arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, one row per detection, in descending score order.

    boxes:     float32 (N, 4), normalized ``[ymin, xmin, ymax, xmax]`` of the original
               frame, clipped to [0, 1] (TensorFlow's ``detection_boxes`` convention).
    scores:    float32 (N,), in [0, 1].
    class_ids: int32 (N,), indices into ``labels``.
    labels:    the model's label list (shared, not per row).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        class_ids = np.asarray(self.class_ids, dtype=np.int32).reshape(-1)
        if not (len(boxes) == len(scores) == len(class_ids)):
            raise ValueError(
                f"Detections arrays disagree in length: boxes {len(boxes)}, "
                f"scores {len(scores)}, class_ids {len(class_ids)}"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        object.__setattr__(self, "labels", tuple(self.labels))

    @classmethod
    def empty(cls, labels: tuple[str, ...] | list[str] = ()) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            tuple(labels),
        )

    def with_labels(self, labels: tuple[str, ...]) -> Detections:
        """The same rows with the model's label tuple (no copy, no re-validation)."""
        result = object.__new__(Detections)
        for name, value in (
            ("boxes", self.boxes),
            ("scores", self.scores),
            ("class_ids", self.class_ids),
            ("labels", labels),
        ):
            object.__setattr__(result, name, value)
        return result

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: Any) -> Detections:
        """Select rows by boolean mask or index array; order follows ``index``."""
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index], self.labels)

    def label(self, i: int) -> str:
        """Label of row ``i``; ``str(class_id)`` when the model has no label for it."""
        cid = int(self.class_ids[i])
        return self.labels[cid] if 0 <= cid < len(self.labels) else str(cid)

    def to_records(self, ndigits: int = 4) -> list[dict[str, Any]]:
        """The DESIGN.md detection objects: label, class_id, score, box.

        Scores are rounded *down* to ``ndigits`` decimals (:func:`floor_score`), so a
        reported score ``s`` is never above the true one and ``--min-score s`` returns the
        detection again. Box coordinates are rounded to nearest.
        """
        return [
            {
                "label": self.label(i),
                "class_id": class_id,
                "score": floor_score(score, ndigits),
                "box": [round(v, ndigits) for v in box],
            }
            for i, (class_id, score, box) in enumerate(
                zip(self.class_ids.tolist(), self.scores.tolist(), self.boxes.tolist(), strict=True)
            )
        ]


def floor_score(score: float, ndigits: int = 4) -> float:
    """``score`` rounded down to ``ndigits`` decimals: the largest ``k / 10**ndigits``
    that is ``<= score``.

    For a float32 score and up to 4 digits the product ``score * 10**ndigits`` is exact
    in float64 (24 + 14 bits of mantissa), so the floor is exact; the quotient is the
    float nearest ``k / 10**ndigits`` and stays ``<= score``. Compared the way edgedet
    filters (``min_score`` rounded to float32), the printed value therefore passes:
    ``score >= float32(floor_score(score))``.
    """
    scale = 10**ndigits
    return math.floor(score * scale) / scale
