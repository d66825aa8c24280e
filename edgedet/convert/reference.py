"""The original: a TF OD API frozen graph run by TensorFlow with its own post-processing.

This is the ground truth the whole edge pipeline is measured against (issue 3, section 6):
the graph's ``detection_boxes``/``detection_scores``/``detection_classes`` after its own
anchor decoding, sigmoid and NMS. Frames are fed the way the graph's publisher feeds them
(``cv2.resize`` to the input size with the runtime's interpolation, BGR → RGB, uint8
``image_tensor``), so the graph's internal resize is the identity and both sides start
from the same pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.convert.fidelity import FrameResult


class GraphReference:
    """A TF1 OD API detection graph in a TensorFlow session; one `detect` per frame."""

    def __init__(self, graph_path: str | Path, input_size: tuple[int, int] = (300, 300)) -> None:
        import tensorflow as tf

        from edgedet.convert.odapi import load_graph_def

        self.height, self.width = input_size
        graph = tf.Graph()
        with graph.as_default():
            tf.import_graph_def(load_graph_def(graph_path), name="")
        self._session = tf.compat.v1.Session(graph=graph)
        get = graph.get_tensor_by_name
        self._image = get("image_tensor:0")
        self._fetch = [
            get("detection_boxes:0"),
            get("detection_scores:0"),
            get("detection_classes:0"),
            get("num_detections:0"),
        ]

    def detect(self, frame_bgr: np.ndarray, min_score: float = 0.5) -> FrameResult:
        """The graph's detections with ``score >= min_score``; class ids 0-based (no background).

        Boxes are normalized ``[ymin, xmin, ymax, xmax]``; with a stretch resize these are
        also normalized coordinates of the original frame.
        """
        import cv2

        from edgedet.preprocess import RESIZE_INTERPOLATION

        small = cv2.resize(frame_bgr, (self.width, self.height), interpolation=RESIZE_INTERPOLATION)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)[np.newaxis]
        boxes, scores, classes, num = self._session.run(self._fetch, {self._image: rgb})
        n = int(num[0])
        boxes, scores, classes = boxes[0, :n], scores[0, :n], classes[0, :n]
        keep = scores >= min_score
        # detection_classes are 1-based label-map ids (0 is the background).
        return FrameResult(
            boxes[keep].astype(np.float32),
            scores[keep].astype(np.float32),
            (classes[keep].astype(np.int64) - 1),
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GraphReference:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_video_frames(path: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """All frames of a video (or the first ``limit``), BGR uint8."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    return frames


def detector_results(
    detector: Any, frames: Iterable[np.ndarray], min_score: float, iou_threshold: float
) -> list[FrameResult]:
    """Run an edgedet `Detector` over frames at the given thresholds."""
    return [
        FrameResult.of(detector.detect(f, min_score=min_score, iou_threshold=iou_threshold))
        for f in frames
    ]
