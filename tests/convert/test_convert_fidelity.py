"""Fidelity: the metrics themselves, and the whole edge pipeline against the original graph.

The reference is the TF OD API frozen graph run by TensorFlow with its own anchor
decoding, sigmoid and NMS; its detections scoring >= 0.5 on the 120 frames of the bundled
clip (never used for calibration) are the ground truth. edgedet runs with the reference's
NMS IoU (0.6). The float TFLite model through edgedet's decoder must reach AP@0.5 >= 0.99
(proving anchors and decoding), the bundled uint8 model >= 0.97.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgedet.convert.fidelity import FrameResult, agreement, average_precision, iou_matrix

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="the original graph runs in TensorFlow: pip install 'edgedet[convert]'",
)

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite"
REFERENCE_MIN_SCORE = 0.5
REFERENCE_IOU = 0.6
AP_MIN_SCORE = 0.1  # predictions pooled from here for AP (the whole PR curve)


def frame(boxes, scores, classes=None) -> FrameResult:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.zeros(len(boxes), np.int64) if classes is None else np.asarray(classes)
    return FrameResult(boxes, np.asarray(scores, np.float32), classes)


# -- metrics --------------------------------------------------------------------------


def test_iou_matrix_follows_the_nms_convention():
    a = [[0.1, 0.2, 0.3, 0.4]]
    b = [[0.2, 0.25, 0.4, 0.45], [0.5, 0.5, 0.5, 0.6]]  # second: zero area
    ious = iou_matrix(np.array(a), np.array(b))
    assert ious.shape == (1, 2)
    assert ious[0, 0] == pytest.approx(0.015 / 0.065)
    assert ious[0, 1] == 0.0


def test_average_precision_all_point_interpolation():
    # 3 references; ranked predictions: TP, FP, TP -> recall 1/3 @ P 1, 2/3 @ P 2/3.
    ap = average_precision(np.array([1.0, 0.0, 1.0]), 3)
    assert ap == pytest.approx(1 / 3 * 1.0 + 1 / 3 * 2 / 3)
    assert average_precision(np.array([1.0, 1.0]), 2) == 1.0


def test_agreement_counts_matches_misses_and_extras():
    ref = [
        frame([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], [0.9, 0.8]),
        frame([[0, 0, 0.2, 0.2]], [0.7]),
    ]
    pred = [
        # frame 0: one exact match, one shifted box with IoU 0.6**2/(2 - 0.36) < 0.5 (miss)
        frame([[0, 0, 0.5, 0.5], [0.7, 0.7, 1.2, 1.2], [0.1, 0.6, 0.2, 0.7]], [0.95, 0.6, 0.3]),
        # frame 1: a match of the right box but the wrong class is no match
        frame([[0, 0, 0.2, 0.2]], [0.9], classes=[1]),
    ]
    result = agreement(ref, pred, iou_match=0.5, operating_score=0.5)
    assert result.reference_detections == 3
    assert result.predicted_detections == 3  # scores >= 0.5, any class
    assert result.matched == 1
    assert result.recall == pytest.approx(1 / 3)
    assert result.precision == pytest.approx(1 / 3)
    assert result.mean_iou == pytest.approx(1.0)
    assert result.count_agreement == 1.0  # 2 vs 2 and 1 vs 1, right or wrong
    # Class 0 ranking: 0.95 TP, 0.6 FP, 0.3 FP of 3 references -> AP = 1/3.
    assert result.ap == pytest.approx(1 / 3)


def test_identical_detections_agree_perfectly():
    ref = [frame([[0.1, 0.1, 0.4, 0.3]], [0.8]), frame(np.zeros((0, 4)), [])]
    result = agreement(ref, ref, operating_score=0.5)
    assert (result.ap, result.recall, result.precision) == (1.0, 1.0, 1.0)
    assert result.count_agreement == 1.0


# -- the whole pipeline against the original graph --------------------------------------


@pytest.fixture(scope="module")
def clip_frames(sample_clip):
    from edgedet.convert.reference import read_video_frames

    frames = read_video_frames(sample_clip)
    assert len(frames) >= 100
    return frames


@pytest.fixture(scope="module")
def graph_reference(odapi_graph, clip_frames):
    """The original graph's detections (score >= 0.5) on every clip frame."""
    from edgedet.convert.reference import GraphReference

    with GraphReference(odapi_graph) as ref:
        return [ref.detect(f, REFERENCE_MIN_SCORE) for f in clip_frames]


@pytest.fixture(scope="module")
def float_model(odapi_graph, tmp_path_factory) -> Path:
    """The graph cut and converted to float TFLite, with the bundled card (own sha256)."""
    from edgedet.convert import odapi, output, quantize
    from edgedet.convert.pipeline import finish_card

    graph_def = odapi.load_graph_def(odapi_graph)
    ssd = odapi.analyze_ssd_graph(graph_def)
    data = quantize.convert_ssd_graph(
        graph_def, ssd.input_tensor, ssd.output_tensors, (1, 300, 300, 3), representative=None
    )
    card = yaml.safe_load(BUNDLED.with_suffix(".yaml").read_text())
    path = tmp_path_factory.mktemp("float-model") / "ssdlite_float.tflite"
    output.write_model_and_card(path, data, finish_card(card, path.name, data))
    return path


def edgedet_agreement(model: Path, frames, reference):
    from edgedet.convert.reference import detector_results
    from edgedet.detector import Detector

    detector = Detector.open(model)
    predictions = detector_results(detector, frames, AP_MIN_SCORE, REFERENCE_IOU)
    return agreement(reference, predictions, iou_match=0.5, operating_score=REFERENCE_MIN_SCORE)


@needs_tensorflow
def test_float_tflite_through_edgedet_reproduces_the_original(
    float_model, clip_frames, graph_reference
):
    result = edgedet_agreement(float_model, clip_frames, graph_reference)
    assert result.frames >= 100 and result.reference_detections > 200
    assert result.ap >= 0.99
    # Same anchors, same box coder: boxes agree to float rounding, not just at IoU 0.5.
    assert result.mean_iou > 0.999
    assert result.recall == 1.0 and result.precision == 1.0


@needs_tensorflow
def test_bundled_uint8_model_stays_close_to_the_original(clip_frames, graph_reference):
    result = edgedet_agreement(BUNDLED, clip_frames, graph_reference)
    assert result.frames >= 100
    assert result.ap >= 0.97
    assert result.recall >= 0.9 and result.precision >= 0.9


@needs_tensorflow
def test_bundled_card_anchor_spec_reproduces_the_graph_anchors(odapi_graph):
    from edgedet.convert import odapi
    from edgedet.decoders.anchors import ssd_anchors

    card = yaml.safe_load(BUNDLED.with_suffix(".yaml").read_text())
    ssd = odapi.analyze_ssd_graph(odapi.load_graph_def(odapi_graph))
    assert ssd.decoder["anchors"] == card["decoder"]["anchors"]
    generated = ssd_anchors(card["decoder"]["anchors"])
    assert generated.shape == ssd.anchors.shape == (1917, 4)
    assert float(np.abs(generated - ssd.anchors).max()) <= 1e-5


def test_bundled_card_describes_the_bundled_file():
    import hashlib

    card = yaml.safe_load(BUNDLED.with_suffix(".yaml").read_text())
    assert card["sha256"] == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    assert card["labels"] == ["person"]
    assert card["input"] == {
        "height": 300, "width": 300, "color": "rgb", "resize": "stretch",
        "mean": 127.5, "std": 127.5,
    }  # fmt: skip
    quant = card["quantization"]
    assert quant["type"] == "full_int8" and quant["io"] == "uint8"
    # Calibrated on frames 0-474 of vtest.avi; the bundled clip is frames 660-779.
    assert quant["calibration"]["range"] == [0, 475]
    assert quant["fidelity"]["ap50"] >= 0.9
    assert card["defaults"] == {"min_score": 0.5, "iou": 0.6, "max_detections": 100}
