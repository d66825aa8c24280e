"""YOLOv5 and YOLOv8 decoders on real TFLite models (float, int8, uint8).

Each model computes its head from the input pixels (tests/modelfactory.py), so the tests
choose the head; the decoder's result is compared with a plain reference run on the
interpreter's raw outputs (tests/decoders/decoder_reference.py).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from decoder_reference import letterbox_geometry, ref_yolo, run, yolo_head_values
from modelfactory import head_image

from edgedet.decoders import build_decoder
from edgedet.decoders.base import DecodeParams, FrameGeometry, TensorInfo
from edgedet.decoders.yolo import Yolov5Decoder, Yolov8Decoder
from edgedet.errors import ModelError

INPUT = (32, 32)
NUM_ANCHORS = 120
NUM_CLASSES = 4
IDENTITY = FrameGeometry(*INPUT)
LETTERBOX = letterbox_geometry((48, 96), INPUT)  # a wide frame: bars above and below

VARIANTS = [
    (version, quant, units)
    for version in (8, 5)
    for quant in ("float", "int8", "uint8")
    for units in ("normalized", "pixels")
]


def _yolo(build_model, version: int, quant: str, units: str = "normalized", **extra):
    return build_model(
        "yolo",
        version=version,
        num_anchors=NUM_ANCHORS,
        num_classes=NUM_CLASSES,
        quant=quant,
        input_size=INPUT,
        box_units=units,
        **extra,
    )


def _assert_same(got, want) -> None:
    boxes, scores, classes = want
    assert len(got) == len(scores), (len(got), len(scores))
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.class_ids, classes)
    np.testing.assert_allclose(got.boxes, boxes, rtol=0, atol=2e-6)


@pytest.mark.parametrize(("version", "quant", "units"), VARIANTS)
def test_decoder_equals_dequantize_everything_reference(build_model, version, quant, units):
    path = _yolo(build_model, version, quant, units)
    values = yolo_head_values(version, NUM_ANCHORS, NUM_CLASSES, seed=version)
    infos, raw = run(path, head_image(values, INPUT))
    decoder = build_decoder(None, infos, NUM_CLASSES)  # no card: identified by shape
    assert type(decoder) is (Yolov8Decoder if version == 8 else Yolov5Decoder)
    if quant != "float":
        assert decoder.box_units == units  # inferred from the quantization range
    checked = 0
    for min_score, iou, agnostic, max_det, geometry in itertools.product(
        (0.0, 0.05, 0.3, 0.6), (0.3, 0.6), (False, True), (100, 3), (IDENTITY, LETTERBOX)
    ):
        params = DecodeParams(min_score, iou, max_det, agnostic)
        got = decoder.decode(raw, params, geometry)
        want = ref_yolo(
            raw[0], infos[0], version=version, channels_first=True, pixels=units == "pixels",
            min_score=min_score, iou_threshold=iou, agnostic=agnostic,
            max_detections=max_det, geometry=geometry,
        )  # fmt: skip
        _assert_same(got, want)
        checked += len(got)
    assert checked > 100  # the sweep really produced detections to compare


@pytest.mark.parametrize("quant", ["float", "int8", "uint8"])
def test_yolov5_objectness_prefilter_is_exact_at_every_product_value(build_model, quant):
    # Thresholds placed exactly on the products present (and one ULP either side): the
    # objectness pre-filter must neither drop a product equal to min_score nor admit one
    # below it.
    path = _yolo(build_model, 5, quant)
    values = yolo_head_values(5, NUM_ANCHORS, NUM_CLASSES, seed=11)
    values[::3, 5] = 1.0  # product == objectness: the pre-filter's tightest case
    infos, raw = run(path, head_image(values, INPUT))
    decoders = {
        multi_label: Yolov5Decoder.from_model({"multi_label": multi_label}, infos, NUM_CLASSES)
        for multi_label in (False, True)
    }
    head = raw[0][0].astype(np.float32)
    if infos[0].quantized:
        head = (head - np.float32(infos[0].zero_point)) * np.float32(infos[0].scale)
    products = np.unique(head[:, 4:5] * head[:, 5:])
    products = products[products > 0.05]
    thresholds = set()
    for p in products[:: max(1, len(products) // 40)]:
        thresholds |= {float(p), float(np.nextafter(p, np.float32(0))), float(np.nextafter(p, 2))}
    for min_score in sorted(thresholds):
        for multi_label, decoder in decoders.items():
            params = DecodeParams(min_score, 1.0, 10_000, agnostic=False)
            got = decoder.decode(raw, params, IDENTITY)
            want = ref_yolo(
                raw[0], infos[0], version=5, channels_first=False, pixels=False,
                min_score=min_score, iou_threshold=1.0, agnostic=False,
                max_detections=10_000, geometry=IDENTITY, multi_label=multi_label,
            )  # fmt: skip
            _assert_same(got, want)


@pytest.mark.parametrize(("dtype", "zero_point"), [(np.uint8, 3), (np.int8, -128)])
def test_yolov5_prefilter_is_exact_when_class_codes_can_exceed_one(dtype, zero_point):
    # A head whose quantization range reaches ~5: a class code can mean more than 1, so
    # objectness * class can exceed objectness. The pre-filter must still lose nothing.
    rng = np.random.default_rng(7)
    info = TensorInfo(0, "head", (1, 300, 8), np.dtype(dtype), 0.02, zero_point)
    codes = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (1, 300, 8), endpoint=True)
    raw = [codes.astype(dtype)]
    decoder = Yolov5Decoder.from_model({"box_units": "normalized"}, [info], 3)
    head = (codes[0].astype(np.float32) - np.float32(zero_point)) * np.float32(0.02)
    products = np.unique(head[:, 4:5] * head[:, 5:])
    for p in products[(products > 0.5) & (products < 3.0)][::25]:
        for min_score in (float(p), float(np.nextafter(p, np.float32(0)))):
            got = decoder.decode(raw, DecodeParams(min_score, 1.0, 10_000), IDENTITY)
            want = ref_yolo(
                raw[0], info, version=5, channels_first=False, pixels=False,
                min_score=min_score, iou_threshold=1.0, agnostic=False,
                max_detections=10_000, geometry=IDENTITY,
            )  # fmt: skip
            assert len(want[1]) > 0
            _assert_same(got, want)


@pytest.mark.parametrize("version", [8, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_logit_heads_are_filtered_exactly_after_the_sigmoid(version, dtype):
    # score_activation: sigmoid (heads exported without their final sigmoid).
    rng = np.random.default_rng(version)
    features = (5 if version == 5 else 4) + NUM_CLASSES
    logits = rng.normal(-3.0, 2.5, (400, features)).astype(np.float32)
    logits[:, :4] = rng.uniform(0.0, 1.0, (400, 4))
    if dtype == np.int8:
        raw = np.clip(np.round(logits / 0.05), -128, 127).astype(np.int8)
        info = TensorInfo(0, "head", (1, features, 400), np.dtype(np.int8), 0.05, 0)
    else:
        raw, info = logits, TensorInfo(0, "head", (1, features, 400), np.dtype(dtype), None, 0)
    if version == 8:
        raw = np.ascontiguousarray(raw.T)
    else:
        info = TensorInfo(0, "head", (1, 400, features), info.dtype, info.scale, 0)
    spec = {"type": f"yolov{version}", "score_activation": "sigmoid", "box_units": "normalized"}
    decoder = build_decoder(spec, [info], NUM_CLASSES)
    for min_score, agnostic in itertools.product((0.05, 0.3, 0.5, 0.8), (False, True)):
        got = decoder.decode([raw[None]], DecodeParams(min_score, 0.5, 50, agnostic), IDENTITY)
        want = ref_yolo(
            raw[None], info, version=version, channels_first=True, pixels=False,
            min_score=min_score, iou_threshold=0.5, agnostic=agnostic, max_detections=50,
            geometry=IDENTITY, logits=True,
        )  # fmt: skip
        assert len(want[1]) > 0
        _assert_same(got, want)


@pytest.mark.parametrize("version", [8, 5])
def test_multi_label_proposes_every_passing_class(build_model, version):
    path = _yolo(build_model, version, "float")
    values = yolo_head_values(version, NUM_ANCHORS, NUM_CLASSES, seed=3)
    infos, raw = run(path, head_image(values, INPUT))
    single = build_decoder({"type": f"yolov{version}"}, infos, None)
    multi = build_decoder({"type": f"yolov{version}", "multi_label": True}, infos, None)
    params = DecodeParams(0.2, 1.0, 10_000)  # IoU 1.0: NMS suppresses nothing
    want = ref_yolo(
        raw[0], infos[0], version=version, channels_first=True, pixels=False, min_score=0.2,
        iou_threshold=1.0, agnostic=False, max_detections=10_000, geometry=IDENTITY,
        multi_label=True,
    )  # fmt: skip
    got = multi.decode(raw, params, IDENTITY)
    _assert_same(got, want)
    assert len(got) > len(single.decode(raw, params, IDENTITY))


def _one_object_head(version: int, boxes_scores: list[tuple]) -> np.ndarray:
    """Head with the given (cx, cy, w, h, class, score) rows and silent other anchors."""
    features = (5 if version == 5 else 4) + NUM_CLASSES
    values = np.zeros((NUM_ANCHORS, features), np.float32)
    values[:, :4] = 0.1
    first = 5 if version == 5 else 4
    for row, (cx, cy, w, h, cls, score) in enumerate(boxes_scores):
        values[row, :4] = cx, cy, w, h
        values[row, first + cls] = score
        if version == 5:
            values[row, 4] = 1.0
    return values


@pytest.mark.parametrize(("version", "quant", "units"), VARIANTS)
def test_known_box_maps_through_the_letterbox(build_model, version, quant, units):
    # Model input 32x32, frame 96 wide x 48 high: the frame fills the input's middle half
    # vertically (y in [0.25, 0.75]). A box centred in the input, 0.5 wide and 0.25 high,
    # covers the frame's full middle: x in [0.25, 0.75], y in [0.25, 0.75].
    path = _yolo(build_model, version, quant, units)
    values = _one_object_head(version, [(0.5, 0.5, 0.5, 0.25, 2, 0.875)])
    infos, raw = run(path, head_image(values, INPUT))
    decoder = build_decoder(None, infos, NUM_CLASSES)
    got = decoder.decode(raw, DecodeParams(0.5, 0.5), LETTERBOX)
    assert len(got) == 1
    assert got.class_ids.tolist() == [2]
    step = 0.01 if quant == "float" else (0.13 if units == "pixels" else 0.01)
    np.testing.assert_allclose(got.scores, [0.875], atol=step)
    tolerance = 1e-6 if quant == "float" else (0.25 / 32 * 2 if units == "pixels" else 0.01)
    np.testing.assert_allclose(got.boxes, [[0.25, 0.25, 0.75, 0.75]], atol=tolerance)


@pytest.mark.parametrize("version", [8, 5])
def test_per_class_nms_keeps_overlapping_boxes_of_other_classes(build_model, version):
    path = _yolo(build_model, version, "float")
    rows = [
        (0.5, 0.5, 0.4, 0.4, 0, 0.9),
        (0.51, 0.5, 0.4, 0.4, 1, 0.8),  # same place, other class
        (0.5, 0.51, 0.4, 0.4, 0, 0.7),  # same place, same class as the first
    ]
    infos, raw = run(path, head_image(_one_object_head(version, rows), INPUT))
    decoder = build_decoder(None, infos, NUM_CLASSES)
    per_class = decoder.decode(raw, DecodeParams(0.5, 0.5), IDENTITY)
    agnostic = decoder.decode(raw, DecodeParams(0.5, 0.5, agnostic=True), IDENTITY)
    assert per_class.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(per_class.scores, [0.9, 0.8], atol=1e-6)
    assert agnostic.class_ids.tolist() == [0]


@pytest.mark.parametrize("version", [8, 5])
def test_max_detections_truncates_after_nms(build_model, version):
    path = _yolo(build_model, version, "float")
    rows = [
        (0.2, 0.2, 0.1, 0.1, 0, 0.6),
        (0.2, 0.2, 0.1, 0.1, 0, 0.95),  # suppresses the row above
        (0.5, 0.5, 0.1, 0.1, 1, 0.7),
        (0.8, 0.8, 0.1, 0.1, 3, 0.9),
    ]
    infos, raw = run(path, head_image(_one_object_head(version, rows), INPUT))
    decoder = build_decoder(None, infos, NUM_CLASSES)
    got = decoder.decode(raw, DecodeParams(0.5, 0.5, max_detections=2), IDENTITY)
    np.testing.assert_allclose(got.scores, [0.95, 0.9], atol=1e-6)
    assert got.class_ids.tolist() == [0, 3]
    everything = decoder.decode(raw, DecodeParams(0.5, 0.5, max_detections=100), IDENTITY)
    np.testing.assert_allclose(everything.scores, [0.95, 0.9, 0.7], atol=1e-6)


@pytest.mark.parametrize("quant", ["float", "int8"])
def test_transposed_yolov8_with_a_card_decodes_like_the_ultralytics_layout(build_model, quant):
    values = yolo_head_values(8, NUM_ANCHORS, NUM_CLASSES, seed=5)
    image = head_image(values, INPUT)
    first_infos, first_raw = run(_yolo(build_model, 8, quant), image)
    last_infos, last_raw = run(_yolo(build_model, 8, quant, layout="channels_last"), image)
    assert last_infos[0].shape == (1, NUM_ANCHORS, 4 + NUM_CLASSES)
    # Without a card a [1, big, small] head is YOLOv5's shape: documented, needs a card.
    assert type(build_decoder(None, last_infos, None)) is Yolov5Decoder
    transposed = build_decoder({"type": "yolov8"}, last_infos, NUM_CLASSES)
    assert transposed.layout == "channels_last"
    reference = build_decoder(None, first_infos, NUM_CLASSES)
    for min_score in (0.1, 0.4):
        params = DecodeParams(min_score, 0.5)
        a = transposed.decode(last_raw, params, LETTERBOX)
        b = reference.decode(first_raw, params, LETTERBOX)
        assert len(a) > 0
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_array_equal(a.boxes, b.boxes)


def _info(shape, dtype=np.float32, scale=None, zero_point=0, name="out"):
    return TensorInfo(0, name, tuple(shape), np.dtype(dtype), scale, zero_point)


def test_identification_by_shape_without_a_card():
    assert Yolov8Decoder.matches([_info((1, 84, 8400))])
    assert not Yolov8Decoder.matches([_info((1, 8400, 84))])
    assert Yolov5Decoder.matches([_info((1, 25200, 85))])
    assert not Yolov5Decoder.matches([_info((1, 85, 25200))])
    assert not Yolov5Decoder.matches([_info((1, 100, 4)), _info((1, 100, 91))])
    assert type(build_decoder({}, [_info((1, 84, 8400))], 80)) is Yolov8Decoder
    assert build_decoder({}, [_info((1, 25200, 85))], 80).num_classes == 80


@pytest.mark.parametrize(
    ("spec", "shape", "num_labels", "message"),
    [
        ({"type": "yolov8"}, (1, 84, 8400), 81, "81 labels but the YOLOv8 head"),
        ({"type": "yolov5"}, (1, 25200, 85), 79, "79 labels but the YOLOv5 head"),
        ({}, (1, 84, 8400), 3, "3 labels"),
        ({"type": "yolov5"}, (1, 100, 5), None, "at least one class score"),
        ({"type": "yolov8"}, (1, 4, 100), None, "at least one class score"),
        ({"type": "yolov8"}, (1, 100), None, "one output of shape [1, A, B]"),
        ({"type": "yolov8", "box_units": "inches"}, (1, 84, 8400), None, "box_units"),
        ({"type": "yolov8", "multi_label": "yes"}, (1, 84, 8400), None, "multi_label"),
        ({"type": "yolov5", "layout": "channels_first"}, (1, 900, 9), None, "unknown key"),
        ({"type": "yolov8", "box_unit": "pixels"}, (1, 84, 8400), None, "unknown key"),
    ],
)
def test_from_model_rejects_what_does_not_fit(spec, shape, num_labels, message):
    with pytest.raises(ModelError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        build_decoder(spec, [_info(shape)], num_labels)
    assert "\n" not in str(err.value)


def test_label_count_picks_the_layout_of_a_square_ambiguity():
    # [1, 10, 14]: with 10 labels the 14-long axis is 4 + C (channels last); with 6 labels
    # the 10-long one is (channels first).
    assert build_decoder({"type": "yolov8"}, [_info((1, 10, 14))], 10).layout == "channels_last"
    assert build_decoder({"type": "yolov8"}, [_info((1, 10, 14))], 6).layout == "channels_first"


def test_quantized_units_follow_the_representable_range():
    normalized = _info((1, 84, 8400), np.int8, scale=1 / 255, zero_point=-128)
    pixels = _info((1, 84, 8400), np.int8, scale=640 / 255, zero_point=-128)
    assert build_decoder({}, [normalized], None).box_units == "normalized"
    assert build_decoder({}, [pixels], None).box_units == "pixels"
    card = {"type": "yolov8", "box_units": "normalized"}
    assert build_decoder(card, [pixels], None).box_units == "normalized"


def test_empty_and_nothing_passing_give_empty_detections(build_model):
    path = _yolo(build_model, 8, "int8")
    infos, raw = run(path, head_image(np.zeros((NUM_ANCHORS, 4 + NUM_CLASSES)), INPUT))
    decoder = build_decoder(None, infos, None)
    got = decoder.decode(raw, DecodeParams(0.01, 0.5), IDENTITY)
    assert len(got) == 0 and got.boxes.shape == (0, 4)
    assert len(decoder.decode(raw, DecodeParams(1.5, 0.5), IDENTITY)) == 0
