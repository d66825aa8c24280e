"""Ground truth from a reference model, when there are no annotations.

The reference's confident detections (``score >= reference_min_score``, after its own
NMS) stand in for true objects, as in the converter's fidelity report:

- a float (or any) TFLite model: run by edgedet's `Detector` with its card's IoU;
- a TF Object Detection API frozen graph (``.pb``): run by TensorFlow with the graph's
  own post-processing (`edgedet.convert.reference.GraphReference`, the convert extra);
- a SavedModel folder exported by the TF2 Object Detection API (a serving signature with
  ``detection_boxes``, ``detection_scores``, ``detection_classes``): run by TensorFlow
  with its own post-processing. A static input size is fed ``cv2.resize``d frames, as the
  graph reference is; a dynamic one gets the whole frame.

Reference labels are mapped to the tuned model's labels by name (``--label-map`` first);
a graph's or SavedModel's classes (1-based label-map ids) are taken to be the tuned
model's labels in order.
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
        if not self.path.exists():
            raise InputError(f"--reference {self.path}: no such file or folder")
        if self.path.suffix == ".tflite":
            from edgedet.detector import Detector

            self._detector = Detector.open(self.path)
            labels = list(self._detector.labels)
            self.description = f"{self.path.name} (TFLite, edgedet decoder, score >= {min_score:g})"
        elif self.path.suffix == ".pb" and self.path.is_file():
            from edgedet.convert.reference import GraphReference

            _need_tensorflow(self.path)
            self._graph = GraphReference(self.path)
            labels = list(model_labels)
            self.description = (
                f"{self.path.name} (TensorFlow, the graph's own post-processing, "
                f"score >= {min_score:g})"
            )
        elif (self.path / "saved_model.pb").is_file():
            _need_tensorflow(self.path)
            self._graph = SavedModelReference(self.path)
            labels = list(model_labels)
            self.description = (
                f"{self.path.name} (TensorFlow SavedModel, its own post-processing, "
                f"score >= {min_score:g})"
            )
        else:
            raise InputError(
                f"--reference {self.path}: expected a .tflite model, a TF1 frozen graph (.pb) "
                "or a TF2 Object Detection API SavedModel folder"
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


def _need_tensorflow(path: Path) -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise InputError(
            f"--reference {path}: running it needs TensorFlow; "
            "pip install 'edgedet[convert]' or pass a float .tflite reference"
        ) from None


class SavedModelReference:
    """A TF2 Object Detection API SavedModel; `detect` like `GraphReference.detect`."""

    _OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes")

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        from edgedet.convert import tf2

        model = tf2.load(path, "saved_model")
        self._fn = tf2.serving_function(model.obj, path)
        ((self._input, spec),) = self._fn.structured_input_signature[1].items()
        missing = [k for k in self._OUTPUTS if k not in self._fn.structured_outputs]
        if missing:
            raise InputError(
                f"--reference {path}: its serving signature has no {', '.join(missing)}; "
                "expected a TF2 Object Detection API export (exporter_main_v2.py)"
            )
        shape = spec.shape.as_list()
        self._size = (shape[2], shape[1]) if len(shape) == 4 and None not in shape[1:3] else None
        self._dtype = spec.dtype
        self._tf = tf
        self._loaded = model.obj  # keeps the signature's variables alive

    def detect(self, frame_bgr: np.ndarray, min_score: float = 0.5):
        """Detections with ``score >= min_score``; class ids 0-based (no background)."""
        import cv2

        from edgedet.convert.fidelity import FrameResult
        from edgedet.preprocess import RESIZE_INTERPOLATION  # the runtime's own resize

        if self._size is None:
            image = frame_bgr
        else:
            image = cv2.resize(frame_bgr, self._size, interpolation=RESIZE_INTERPOLATION)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[np.newaxis]
        out = self._fn(**{self._input: self._tf.constant(rgb, dtype=self._dtype)})
        boxes = np.asarray(out["detection_boxes"])[0]
        scores = np.asarray(out["detection_scores"])[0]
        classes = np.asarray(out["detection_classes"])[0]
        if "num_detections" in out:
            n = int(np.asarray(out["num_detections"]).reshape(-1)[0])
            boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        keep = scores >= min_score
        return FrameResult(
            boxes[keep].astype(np.float32),
            scores[keep].astype(np.float32),
            np.rint(classes[keep]).astype(np.int64) - 1,
        )

    def close(self) -> None:
        pass
