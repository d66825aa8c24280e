"""TFLite_Detection_PostProcess decoder on real models containing the custom op.

The factory builds the op the way the TF Object Detection API does (a ``tf.function``
with ``experimental_implements`` that the converter fuses into the custom op), float and
full-integer, with float outputs (as exported SSD/EfficientDet-Lite models have) and with
quantized outputs. The reference reads the outputs through the model's signature names,
independently of the decoder's name/shape/value binding.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from decoder_reference import letterbox_geometry, ref_postprocess, run, ssd_head_values
from modelfactory import head_image, run_signature, ssd_anchors

from edgedet.decoders import build_decoder
from edgedet.decoders.base import DecodeParams, FrameGeometry, TensorInfo
from edgedet.decoders.tflite_postprocess import TflitePostprocessDecoder
from edgedet.errors import ModelError

INPUT = (32, 32)
NUM_ANCHORS = 60
NUM_CLASSES = 4
MAX_DETECTIONS = 20
IDENTITY = FrameGeometry(*INPUT)
LETTERBOX = letterbox_geometry((96, 48), INPUT)  # a tall frame: bars left and right

VARIANTS = [("float", False), ("uint8", False), ("int8", False), ("uint8", True), ("int8", True)]


def _model(build_model, quant: str, quantize_outputs: bool):
    return build_model(
        "tflite_postprocess",
        num_anchors=NUM_ANCHORS,
        num_classes=NUM_CLASSES,
        quant=quant,
        input_size=INPUT,
        max_detections=MAX_DETECTIONS,
        quantize_outputs=quantize_outputs,
    )


def _assert_same(got, want) -> None:
    boxes, scores, classes = want
    assert len(got) == len(scores), (len(got), len(scores))
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.class_ids, classes)
    np.testing.assert_allclose(got.boxes, boxes, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("quant", "quantize_outputs"), VARIANTS)
def test_decoder_equals_signature_reference(build_model, quant, quantize_outputs):
    path = _model(build_model, quant, quantize_outputs)
    checked = 0
    for seed in (1, 2):
        image = head_image(ssd_head_values(NUM_ANCHORS, NUM_CLASSES, seed), INPUT)
        infos, raw = run(path, image)
        details, by_signature = run_signature(path, image)
        decoder = build_decoder(None, infos, 7)  # no card: identified; any label count
        assert type(decoder) is TflitePostprocessDecoder
        for min_score, iou, agnostic, max_det, geometry in itertools.product(
            (0.0, 0.2, 0.5), (0.1, 0.5), (False, True), (100, 2), (IDENTITY, LETTERBOX)
        ):
            params = DecodeParams(min_score, iou, max_det, agnostic)
            got = decoder.decode(raw, params, geometry)
            want = ref_postprocess(
                details, by_signature, min_score=min_score, iou_threshold=iou,
                agnostic=agnostic, max_detections=max_det, geometry=geometry,
            )  # fmt: skip
            _assert_same(got, want)
            checked += len(got)
    assert checked > 50


@pytest.mark.parametrize(("quant", "quantize_outputs"), VARIANTS)
def test_anchor_box_and_first_real_class_come_out(build_model, quant, quantize_outputs):
    # One anchor fires: zero box encodings (input 0.5) decode to the anchor itself; class
    # column 2 (column 0 is background) is the op's class index 1.
    path = _model(build_model, quant, quantize_outputs)
    row = 17
    values = np.zeros((NUM_ANCHORS, 4 + 1 + NUM_CLASSES), np.float32)
    values[:, :4] = 0.5
    values[row, 4 + 2] = 0.9
    infos, raw = run(path, head_image(values, INPUT))
    decoder = build_decoder(None, infos, NUM_CLASSES)
    got = decoder.decode(raw, DecodeParams(0.5, 0.5), LETTERBOX)
    yc, xc, h, w = ssd_anchors(NUM_ANCHORS)[row]
    model_box = np.array([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2])
    frame_box = (model_box - [0.0, 0.25, 0.0, 0.25]) / [1.0, 0.5, 1.0, 0.5]
    assert got.class_ids.tolist() == [1]
    tolerance = 1e-5 if quant == "float" else 0.01
    np.testing.assert_allclose(got.scores, [0.9], atol=tolerance)
    np.testing.assert_allclose(got.boxes[0], np.clip(frame_box, 0, 1), atol=tolerance)


def test_rows_past_the_count_are_never_read(build_model):
    # Two detections of twenty rows: the op leaves the other rows uninitialized, and
    # min_score 0 would admit any garbage score found there.
    path = _model(build_model, "float", False)
    values = np.zeros((NUM_ANCHORS, 4 + 1 + NUM_CLASSES), np.float32)
    values[:, :4] = 0.5
    values[3, 5] = 0.8
    values[40, 7] = 0.6
    infos, raw = run(path, head_image(values, INPUT))
    decoder = build_decoder(None, infos, None)
    got = decoder.decode(raw, DecodeParams(0.0, 1.0), IDENTITY)
    np.testing.assert_allclose(got.scores, [0.8, 0.6], atol=1e-6)
    assert got.class_ids.tolist() == [0, 2]


def test_classes_and_scores_are_told_apart_by_value_and_then_kept(build_model):
    path = _model(build_model, "float", False)
    infos, raw = run(path, head_image(ssd_head_values(NUM_ANCHORS, NUM_CLASSES, 3), INPUT))
    names = {info.name for info in infos}
    assert not any("TFLite_Detection_PostProcess" in n or "detection_" in n for n in names)
    decoder = TflitePostprocessDecoder.from_model({}, infos, None)
    assert set(decoder.roles) == {"boxes", "count"}  # the names said nothing
    decoder.decode(raw, DecodeParams(0.3, 0.5), IDENTITY)
    roles = decoder.roles
    # Signature output_1 is the scores: descending and non-integral.
    scores = raw[roles["scores"]][0, : int(raw[roles["count"]][0])]
    assert np.all(np.diff(scores) <= 0) and np.any(scores != np.round(scores))
    classes = raw[roles["classes"]][0, : int(raw[roles["count"]][0])]
    np.testing.assert_array_equal(classes, np.round(classes))


def test_card_outputs_mapping_binds_by_tensor_name(build_model):
    path = _model(build_model, "float", False)
    infos, raw = run(path, head_image(ssd_head_values(NUM_ANCHORS, NUM_CLASSES, 4), INPUT))
    auto = build_decoder(None, infos, None)
    auto.decode(raw, DecodeParams(0.3, 0.5), IDENTITY)
    by_role = {role: infos[i].name for role, i in auto.roles.items()}
    card = TflitePostprocessDecoder.from_model({"outputs": by_role}, infos, None)
    assert card.roles == auto.roles
    with pytest.raises(ModelError, match="names tensor 'nope'"):
        TflitePostprocessDecoder.from_model({"outputs": {"boxes": "nope"}}, infos, None)
    wrong = {**by_role, "boxes": by_role["scores"], "scores": by_role["boxes"]}
    with pytest.raises(ModelError, match="bound as boxes"):
        TflitePostprocessDecoder.from_model({"outputs": wrong}, infos, None)


def _info(index: int, name: str, shape, dtype=np.float32) -> TensorInfo:
    return TensorInfo(index, name, tuple(shape), np.dtype(dtype), None, 0)


def test_tf1_op_output_names_bind_every_role_in_any_order():
    op = "TFLite_Detection_PostProcess"
    outputs = [
        _info(0, f"{op}:3", (1,)),
        _info(1, f"{op}:2", (1, 10)),
        _info(2, op, (1, 10, 4)),
        _info(3, f"{op}:1", (1, 10)),
    ]
    decoder = TflitePostprocessDecoder.from_model({}, outputs, 90)
    assert decoder.roles == {"count": 0, "scores": 1, "boxes": 2, "classes": 3}
    named = [_info(i, n, s) for i, (n, s) in enumerate(
        [("detection_scores", (1, 10)), ("detection_classes", (1, 10)),
         ("num_detections", (1,)), ("detection_boxes", (1, 10, 4))]
    )]  # fmt: skip
    assert TflitePostprocessDecoder.from_model({}, named, None).roles == {
        "scores": 0, "classes": 1, "count": 2, "boxes": 3,
    }  # fmt: skip


def _tf2_outputs() -> list[TensorInfo]:
    return [
        _info(0, "StatefulPartitionedCall:2", (1, 3)),
        _info(1, "StatefulPartitionedCall:3", (1, 3, 4)),
        _info(2, "StatefulPartitionedCall:1", (1, 3)),
        _info(3, "StatefulPartitionedCall:0", (1,)),
    ]


def _arrays(first_pair, second_pair, count):
    boxes = np.tile(np.float32([0.1, 0.1, 0.3, 0.3]), (1, 3, 1))
    boxes[0, 1] += 0.5
    boxes[0, 2] = [0.6, 0.1, 0.9, 0.3]
    return [
        np.float32([first_pair]),
        boxes,
        np.float32([second_pair]),
        np.float32([count]),
    ]


def test_undecidable_values_follow_the_tf2_export_order_until_a_frame_decides():
    decoder = TflitePostprocessDecoder.from_model({}, _tf2_outputs(), None)
    # Every value 0 or 1: cannot tell. ":1" (position 2) is taken as the scores.
    got = decoder.decode(_arrays([0, 1, 1], [1, 1, 1], 3), DecodeParams(0.5, 0.5), IDENTITY)
    assert got.class_ids.tolist() == [0, 1, 1] and got.scores.tolist() == [1, 1, 1]
    assert "scores" not in decoder.roles
    # Class 2 appears: position 0 holds the classes, whatever the names suggested.
    got = decoder.decode(_arrays([2, 0, 1], [1, 1, 1], 3), DecodeParams(0.5, 0.5), IDENTITY)
    assert got.class_ids.tolist() == [2, 0, 1]
    assert decoder.roles["classes"] == 0 and decoder.roles["scores"] == 2
    # Kept from now on, even for a frame that alone would be read the other way round.
    got = decoder.decode(_arrays([0, 1, 1], [1, 1, 1], 2), DecodeParams(0.5, 0.5), IDENTITY)
    assert got.class_ids.tolist() == [0, 1]


def test_non_integral_pair_is_a_model_error():
    decoder = TflitePostprocessDecoder.from_model({}, _tf2_outputs(), None)
    with pytest.raises(ModelError, match="integral class ids"):
        decoder.decode(_arrays([0.5, 0.4, 0.3], [0.9, 0.8, 0.7], 3), DecodeParams(0.1, 0.5),
                       IDENTITY)  # fmt: skip


def test_zero_count_gives_empty_detections():
    decoder = TflitePostprocessDecoder.from_model({}, _tf2_outputs(), None)
    got = decoder.decode(_arrays([0.9, 0.8, 0.7], [1, 2, 3], 0), DecodeParams(0.0, 0.5), IDENTITY)
    assert len(got) == 0


def test_identification_needs_the_four_tensor_shapes(build_model):
    infos, _ = run(_model(build_model, "uint8", False), head_image(np.zeros(8), INPUT))
    assert TflitePostprocessDecoder.matches(infos)
    assert not TflitePostprocessDecoder.matches([_info(0, "out", (1, 84, 8400))])
    assert not TflitePostprocessDecoder.matches(
        [_info(0, "boxes", (1, 1917, 4)), _info(1, "scores", (1, 1917, 91))]
    )
    mismatched = _tf2_outputs()
    mismatched[0] = _info(0, "StatefulPartitionedCall:2", (1, 5))
    assert not TflitePostprocessDecoder.matches(mismatched)
    with pytest.raises(ModelError, match="disagree on the number of detections"):
        TflitePostprocessDecoder.from_model({"type": "tflite_postprocess"}, mismatched, None)
    with pytest.raises(ModelError, match="unknown key"):
        TflitePostprocessDecoder.from_model({"box_scales": [10, 10, 5, 5]}, _tf2_outputs(), None)
    with pytest.raises(ModelError, match="has 3"):
        TflitePostprocessDecoder.from_model({}, _tf2_outputs()[:3], None)


def test_quantized_outputs_round_classes_and_count_to_the_nearest_integer():
    # As a converter asked for uint8 outputs makes them: class 1 is code 127 at scale 2/255
    # (0.996...), count 3 is code 38 at scale 20/255 (2.98...).
    outputs = [
        TensorInfo(0, "StatefulPartitionedCall:2", (1, 3), np.dtype(np.uint8), 2 / 255, 0),
        _info(1, "StatefulPartitionedCall:3", (1, 3, 4)),
        TensorInfo(2, "StatefulPartitionedCall:1", (1, 3), np.dtype(np.uint8), 1 / 255, 0),
        TensorInfo(3, "StatefulPartitionedCall:0", (1,), np.dtype(np.uint8), 20 / 255, 0),
    ]
    decoder = TflitePostprocessDecoder.from_model({}, outputs, None)
    arrays = _arrays([127, 0, 255], [230, 204, 153], 38)
    arrays = [a.astype(np.uint8) if i != 1 else a for i, a in enumerate(arrays)]
    got = decoder.decode(arrays, DecodeParams(0.5, 0.5), IDENTITY)
    assert got.class_ids.tolist() == [1, 0, 2]
    np.testing.assert_allclose(got.scores, [230 / 255, 204 / 255, 153 / 255], rtol=1e-6)


def test_tf1_export_is_bound_by_op_output_names_before_any_frame(build_model):
    # Coral's SSD models come from the TF1 export: the op's outputs keep its tensor names.
    path = build_model(
        "tflite_postprocess_tf1", num_anchors=NUM_ANCHORS, num_classes=NUM_CLASSES,
        input_size=INPUT, max_detections=MAX_DETECTIONS,
    )  # fmt: skip
    op = "TFLite_Detection_PostProcess"
    image = head_image(ssd_head_values(NUM_ANCHORS, NUM_CLASSES, 6), INPUT)
    infos, raw = run(path, image)
    decoder = build_decoder(None, infos, NUM_CLASSES)
    expected = {"boxes": op, "classes": f"{op}:1", "scores": f"{op}:2", "count": f"{op}:3"}
    assert {role: infos[i].name for role, i in decoder.roles.items()} == expected
    by_name = {info.name: (info, array) for info, array in zip(infos, raw, strict=True)}
    signature_order = {"output_0": f"{op}:3", "output_1": f"{op}:2", "output_2": f"{op}:1",
                       "output_3": op}  # fmt: skip
    details = {key: {"quantization": (0.0, 0)} for key in signature_order}
    outputs = {key: by_name[name][1] for key, name in signature_order.items()}
    checked = 0
    for min_score, agnostic in itertools.product((0.0, 0.2, 0.5), (False, True)):
        params = DecodeParams(min_score, 0.3, 100, agnostic)
        got = decoder.decode(raw, params, LETTERBOX)
        want = ref_postprocess(
            details, outputs, min_score=min_score, iou_threshold=0.3, agnostic=agnostic,
            max_detections=100, geometry=LETTERBOX,
        )  # fmt: skip
        _assert_same(got, want)
        checked += len(got)
    assert checked > 10


def test_tf1_export_reports_the_anchor_and_the_first_real_class(build_model):
    path = build_model(
        "tflite_postprocess_tf1", num_anchors=NUM_ANCHORS, num_classes=NUM_CLASSES,
        input_size=INPUT, max_detections=MAX_DETECTIONS,
    )  # fmt: skip
    values = np.zeros((NUM_ANCHORS, 4 + 1 + NUM_CLASSES), np.float32)
    values[:, :4] = 0.5
    values[33, 4 + 1] = 0.7  # column 1 = class 0
    infos, raw = run(path, head_image(values, INPUT))
    got = build_decoder(None, infos, None).decode(raw, DecodeParams(0.5, 0.5), IDENTITY)
    yc, xc, h, w = ssd_anchors(NUM_ANCHORS)[33]
    assert got.class_ids.tolist() == [0]
    np.testing.assert_allclose(got.scores, [0.7], atol=1e-6)
    np.testing.assert_allclose(
        got.boxes[0], np.clip([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], 0, 1), atol=1e-6
    )
