"""The SSD path end to end on real TFLite models built by TensorFlow's converter:
Detector (preprocess → interpreter → SSD decoder → exact filter → NMS) against an
independent float64 reference computed from the same interpreter's raw outputs."""

from __future__ import annotations

import modelfactory
import numpy as np
import pytest
from support.reference import reference_nms

from edgedet.decoders.anchors import ssd_anchors
from edgedet.detector import Detector


@pytest.fixture(scope="module", params=modelfactory.QUANT_VARIANTS)
def tiny_model(request, tmp_path_factory):
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp(f"ssd_{request.param}")
    return modelfactory.build_tiny_ssd(out, quant=request.param, name=f"tiny_{request.param}")


def reference_detections(raw_boxes, raw_scores, box_q, score_q, min_score, iou, per_class):
    """Straightforward float64 decode: dequantize everything, sigmoid, decode, filter, NMS."""

    def deq(x, q):
        scale, zp = q
        return (x.astype(np.float64) - zp) * scale if scale else x.astype(np.float64)

    enc = deq(raw_boxes.reshape(-1, 4), box_q)
    probs = 1.0 / (1.0 + np.exp(-deq(raw_scores.reshape(enc.shape[0], -1), score_q)))
    anchors = ssd_anchors(modelfactory.TINY_SSD_ANCHORS).astype(np.float64)
    yc = enc[:, 0] / 10 * anchors[:, 2] + anchors[:, 0]
    xc = enc[:, 1] / 10 * anchors[:, 3] + anchors[:, 1]
    h = np.exp(enc[:, 2] / 5) * anchors[:, 2]
    w = np.exp(enc[:, 3] / 5) * anchors[:, 3]
    boxes = np.clip(np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], 1), 0, 1)
    cands = [
        (probs[a, c + 1], a, c)
        for a in range(probs.shape[0])
        for c in range(probs.shape[1] - 1)
        if probs[a, c + 1] >= min_score
        and boxes[a, 2] > boxes[a, 0]  # boxes with no area left after clipping go
        and boxes[a, 3] > boxes[a, 1]
    ]
    kept = reference_nms(
        np.array([boxes[a] for _, a, _ in cands]).reshape(-1, 4),
        np.array([score for score, _, _ in cands]),
        iou,
        [c for _, _, c in cands] if per_class else None,
    )
    return [(cands[k][0], cands[k][2], boxes[cands[k][1]]) for k in kept]


@pytest.mark.parametrize("per_class", [True, False])
def test_detector_matches_float64_reference_on_real_tflite_ssd(tiny_model, per_class):
    detector = Detector.open(tiny_model)
    rng = np.random.default_rng(3)
    box_info = detector.output_infos[detector.decoder.box_output]
    score_info = detector.output_infos[detector.decoder.score_output]
    checked = 0
    for _ in range(6):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        outs, _ = detector.raw_outputs(frame)
        raw_boxes, raw_scores = (
            outs[detector.decoder.box_output],
            outs[detector.decoder.score_output],
        )
        # A threshold inside the score distribution, so some pass and some do not.
        q = (score_info.scale, score_info.zero_point) if score_info.quantized else (None, 0)
        probs = 1 / (1 + np.exp(-((raw_scores.astype(np.float64) - q[1]) * (q[0] or 1))))
        # Midway between two distinct score values: float32 vs float64 rounding cannot
        # put a candidate on the other side (exact boundaries are tested in postprocess).
        values = np.unique(probs[..., 1:])
        i = int(len(values) * 0.9)
        min_score = float((values[i] + values[i + 1]) / 2)
        got = detector.detect(frame, min_score=min_score, iou_threshold=0.4, agnostic=not per_class)
        ref = reference_detections(
            raw_boxes,
            raw_scores,
            (box_info.scale, box_info.zero_point) if box_info.quantized else (None, 0),
            q,
            min_score,
            0.4,
            per_class,
        )
        ref = ref[:50]
        assert len(got) == len(ref)
        np.testing.assert_allclose(got.scores, [r[0] for r in ref], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.class_ids, [r[1] for r in ref])
        np.testing.assert_allclose(
            got.boxes, np.array([r[2] for r in ref]).reshape(-1, 4), atol=1e-5
        )
        assert np.all(got.scores >= min_score)
        assert np.all(np.diff(got.scores) <= 0)
        checked += len(got)
    assert checked > 0


def test_direct_input_write_equals_set_tensor(tiny_model):
    """Preprocessing writes into the interpreter's buffer; the result must equal the
    plain path of building the input array and calling set_tensor."""
    detector = Detector.open(tiny_model)
    frame = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    direct, _ = detector.raw_outputs(frame)
    buf = np.zeros(
        (1, modelfactory.TINY_SSD_SIZE, modelfactory.TINY_SSD_SIZE, 3), detector.input_dtype
    )
    detector.preprocessor(frame, buf[0])
    interp = detector._interpreter
    interp.set_tensor(detector._input_index, buf)
    interp.invoke()
    plain = [interp.get_tensor(t.index) for t in detector.output_infos]
    for a, b in zip(direct, plain, strict=True):
        np.testing.assert_array_equal(a, b)
