"""Ground truth from a reference model, when there are no annotations.

The reference's confident detections (``score >= reference_min_score``, after its own
NMS) stand in for true objects, as in the converter's fidelity report:

- a float (or any) TFLite model: run by edgedet's `Detector` with its card's IoU;
- a TF Object Detection API frozen graph (``.pb``): run by TensorFlow with the graph's
  own post-processing (`edgedet.convert.reference.GraphReference`, the convert extra).

Reference labels are mapped to the tuned model's labels by name (``--label-map`` first);
a frozen graph's classes are taken to be the tuned model's labels in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgedet.errors import InputError
from edgedet.tune.annotations import FrameTruth, resolve_labels


class ReferenceTruth:
    """Callable per frame: BGR image → `FrameTruth` in the tuned model's class ids."""

    def __init__(
        self,
        path: str | Path,
        model_labels: Sequence[str],
        label_map: Mapping[str, str | None],
        min_score: float = 0.5,
    ) -> None:
        self.path = Path(path).expanduser()
        self.min_score = float(min_score)
        self._graph = None
        self._detector = None
        if self.path.suffix == ".tflite":
            from edgedet.detector import Detector

            self._detector = Detector.open(self.path)
            labels = list(self._detector.labels)
            self.description = f"{self.path.name} (TFLite, edgedet decoder, score >= {min_score:g})"
        elif self.path.suffix == ".pb" and self.path.is_file():
            from edgedet.convert.reference import GraphReference

            try:
                import tensorflow  # noqa: F401
            except ImportError:
                raise InputError(
                    f"--reference {self.path}: a frozen graph needs TensorFlow; "
                    "pip install 'edgedet[convert]' or pass a float .tflite reference"
                ) from None
            self._graph = GraphReference(self.path)
            labels = list(model_labels)
            self.description = (
                f"{self.path.name} (TensorFlow, the graph's own post-processing, "
                f"score >= {min_score:g})"
            )
        else:
            if not self.path.exists():
                raise InputError(f"--reference {self.path}: no such file")
            raise InputError(
                f"--reference {self.path}: expected a .tflite model or a TF1 frozen graph (.pb); "
                "convert a SavedModel first (edgedet convert keeps no float copy: "
                "export one with tf.lite.TFLiteConverter and pass it)"
            )
        mapping = resolve_labels(set(labels), model_labels, label_map, self.path)
        self._class_of = np.array(
            [-1 if mapping[label] is None else mapping[label] for label in labels], np.int64
        )

    def __call__(self, image: np.ndarray) -> FrameTruth:
        if self._detector is not None:
            found = self._detector.detect(image, min_score=self.min_score)
            boxes, ids = found.boxes, found.class_ids
        else:
            r = self._graph.detect(image, min_score=self.min_score)
            boxes, ids = r.boxes, r.class_ids
        ids = np.asarray(ids, np.int64)
        valid = (ids >= 0) & (ids < len(self._class_of))
        mapped = np.full(len(ids), -1, np.int64)
        mapped[valid] = self._class_of[ids[valid]]
        keep = mapped >= 0
        return FrameTruth(np.asarray(boxes, np.float64)[keep].reshape(-1, 4), mapped[keep])

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
