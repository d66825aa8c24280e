"""Card-less models through `Detector`: identified by their outputs, labels from a file.

Without a card a YOLO model is fed as Ultralytics feeds it: letterbox, RGB, ``pixel /
255``; so a BGR frame of the input size with pixel ``255 * v`` (rounded) gives the factory
YOLO models the head value ``v`` (in [0, 1]). Any other model gets ``(pixel - 127.5) /
127.5``, so there a pixel ``127.5 + 127.5 * v`` gives ``v``.
"""

from __future__ import annotations

import numpy as np
import pytest
from modelfactory import head_image

from edgedet.decoders.tflite_postprocess import TflitePostprocessDecoder
from edgedet.decoders.yolo import Yolov5Decoder, Yolov8Decoder
from edgedet.detector import Detector
from edgedet.errors import EdgedetError

INPUT = (32, 32)
NUM_ANCHORS = 60
NUM_CLASSES = 4


def _frame(values: np.ndarray, *, yolo: bool) -> np.ndarray:
    """A BGR uint8 frame of the input size that the card-less preprocessor turns into
    ``head_image(values)`` (up to pixel rounding): ``pixel / 255`` for YOLO models,
    ``(pixel - 127.5) / 127.5`` for the others."""
    rgb = head_image(values, INPUT)[0]
    pixels = np.round(255 * rgb if yolo else 127.5 + 127.5 * rgb).astype(np.uint8)
    return np.ascontiguousarray(pixels[:, :, ::-1])


def _labels(tmp_path, count: int):
    path = tmp_path / f"labels{count}.txt"
    path.write_text("".join(f"c{i}\n" for i in range(count)))
    return path


@pytest.mark.parametrize(("version", "quant"), [(8, "float"), (8, "uint8"), (5, "int8")])
def test_cardless_yolo_is_identified_and_detects(build_model, tmp_path, version, quant):
    path = build_model(
        "yolo", version=version, num_anchors=NUM_ANCHORS, num_classes=NUM_CLASSES,
        quant=quant, input_size=INPUT,
    )  # fmt: skip
    features = (5 if version == 5 else 4) + NUM_CLASSES
    values = np.zeros((NUM_ANCHORS, features), np.float32)
    values[:, :4] = 0.1
    first = 5 if version == 5 else 4
    values[9, :4] = 0.25, 0.75, 0.25, 0.125  # cx, cy, w, h
    values[9, first + 3] = 0.9
    if version == 5:
        values[9, 4] = 1.0
    detector = Detector.open(path, labels_path=_labels(tmp_path, NUM_CLASSES))
    assert type(detector.decoder) is (Yolov8Decoder if version == 8 else Yolov5Decoder)
    assert detector.preprocessor.spec.resize == "letterbox"
    assert (detector.preprocessor.spec.mean, detector.preprocessor.spec.std) == ((0.0,), (255.0,))
    got = detector.detect(_frame(values, yolo=True), min_score=0.5, iou_threshold=0.5)
    assert [got.label(i) for i in range(len(got))] == ["c3"]
    np.testing.assert_allclose(got.scores, [0.9], atol=0.02)
    np.testing.assert_allclose(got.boxes, [[0.6875, 0.125, 0.8125, 0.375]], atol=0.02)


def test_cardless_yolo_with_a_wrong_label_file_is_refused(build_model, tmp_path):
    path = build_model(
        "yolo", version=8, num_anchors=NUM_ANCHORS, num_classes=NUM_CLASSES, quant="float",
        input_size=INPUT,
    )  # fmt: skip
    with pytest.raises(EdgedetError, match="3 labels but the YOLOv8 head"):
        Detector.open(path, labels_path=_labels(tmp_path, 3))


def test_cardless_postprocess_model_is_identified_and_detects(build_model, tmp_path):
    path = build_model(
        "tflite_postprocess", num_anchors=NUM_ANCHORS, num_classes=NUM_CLASSES, quant="uint8",
        input_size=INPUT,
    )  # fmt: skip
    values = np.zeros((NUM_ANCHORS, 4 + 1 + NUM_CLASSES), np.float32)
    values[:, :4] = 0.5
    values[5, 4 + 1] = 0.8  # column 1: the first real class
    detector = Detector.open(path, labels_path=_labels(tmp_path, NUM_CLASSES))
    assert type(detector.decoder) is TflitePostprocessDecoder
    got = detector.detect(_frame(values, yolo=False), min_score=0.5)
    assert [got.label(i) for i in range(len(got))] == ["c0"]
    np.testing.assert_allclose(got.scores, [0.8], atol=0.02)
