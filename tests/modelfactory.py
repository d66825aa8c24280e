"""Tiny, real TFLite detection models for tests, built with TensorFlow's converter.

Every model here takes an image-shaped float input ``[1, H, W, 3]`` with values in
[0, 1] and computes its detection head from the *pixels themselves*: the first ``K``
values of the input (row-major order, channels fastest) are the head's ``K`` numbers. A
test therefore controls the output exactly: :func:`head_image` writes the values it
wants into an image, the model's ops (reshape, slice, multiply, concatenate, transpose,
and for SSD the real ``TFLite_Detection_PostProcess`` custom op) turn them into the head
layout, and the test compares the decoder's result with a reference computed from the
interpreter's raw outputs.

Variants (``quant``):

- ``"float"``: float32 in and out.
- ``"int8"`` / ``"uint8"``: full-integer post-training quantization with a
  representative data set spanning [0, 1]; input and output tensors have that dtype.
  (``TFLite_Detection_PostProcess`` always outputs float32; its inputs are quantized.)

Builders cache their ``.tflite`` files: :func:`cached_model` builds a model once per
cache directory (use a session-scoped ``tmp_path_factory.mktemp`` directory) and returns
the path on later calls. TensorFlow is imported lazily, only when a model is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

QUANT_VARIANTS = ("float", "int8", "uint8")

# TFLite_Detection_PostProcess attributes as the TF Object Detection API sets them
# (research/object_detection/export_tflite_graph_lib_tf2.py): box coder scales 10, 10, 5, 5.
SSD_BOX_SCALES = (10.0, 10.0, 5.0, 5.0)


def head_image(values: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """A float32 image ``[1, H, W, 3]`` whose first ``values.size`` entries are ``values``.

    ``values`` (any shape, row-major) must lie in [0, 1]; the rest of the image is 0.
    This is the input that makes a factory model output exactly that head (up to
    quantization in the integer variants).
    """
    height, width = input_size
    flat = np.asarray(values, np.float32).reshape(-1)
    capacity = height * width * 3
    if flat.size > capacity:
        raise ValueError(f"{flat.size} head values do not fit a {height}x{width}x3 image")
    if flat.size and (flat.min() < 0.0 or flat.max() > 1.0):
        raise ValueError("head values must lie in [0, 1]")
    image = np.zeros(capacity, np.float32)
    image[: flat.size] = flat
    return image.reshape(1, height, width, 3)


def quantize_input(image: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``image`` (float, [0, 1]) as the interpreter's input tensor wants it (float or codes)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return image.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    codes = np.round(image / scale + zero_point)
    return np.clip(codes, info.min, info.max).astype(dtype)


def run_model(path: Path | str, image: np.ndarray) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Run a model once with ai-edge-litert; returns (output details, raw output arrays).

    Outputs are in ``get_output_details()`` order, copied out of the interpreter.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize_input(image, detail))
    interpreter.invoke()
    details = interpreter.get_output_details()
    return details, [interpreter.get_tensor(d["index"]).copy() for d in details]


def run_signature(
    path: Path | str, image: np.ndarray
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Run a model through its ``serving_default`` signature.

    An independent way to the outputs: returns (output details, raw outputs), both keyed by
    the exported signature names (``output_0``, ...), not by tensor names or by the order
    of ``get_output_details()``.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    ((name, detail),) = runner.get_input_details().items()
    outputs = runner(**{name: quantize_input(image, detail)})
    return runner.get_output_details(), {key: np.array(v) for key, v in outputs.items()}


def _representative(input_size: tuple[int, int], count: int = 16) -> Callable[[], Iterator]:
    """Calibration images in [0, 1] whose range is exactly [0, 1] (so input scale = 1/255)."""

    def generate() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(0)
        height, width = input_size
        for _ in range(count):
            image = rng.uniform(0.0, 1.0, (1, height, width, 3)).astype(np.float32)
            image.reshape(-1)[:2] = (0.0, 1.0)
            yield [image]

    return generate


def _convert(
    concrete_fn: Any,
    module: Any,
    quant: str,
    input_size: tuple[int, int],
    quantize_outputs: bool = True,
) -> bytes:
    """Convert one concrete function; full-integer quantization unless ``quant == "float"``.

    ``quantize_outputs=False`` keeps float32 outputs on a quantized model."""
    import tensorflow as tf

    if quant not in QUANT_VARIANTS:
        raise ValueError(f"quant must be one of {QUANT_VARIANTS}, got {quant!r}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_fn], module)
    converter.allow_custom_ops = True
    if quant != "float":
        io_type = tf.int8 if quant == "int8" else tf.uint8
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(input_size)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = io_type
        if quantize_outputs:
            converter.inference_output_type = io_type
    return converter.convert()


def _pixels(tf: Any, image: Any, count: int, rows: int) -> Any:
    """The first ``count`` input values as a ``[1, rows, count // rows]`` tensor."""
    flat = tf.reshape(image, [1, -1])[:, :count]
    return tf.reshape(flat, [1, rows, count // rows])


def build_yolo(
    *,
    version: int,
    num_anchors: int,
    num_classes: int,
    quant: str,
    input_size: tuple[int, int] = (32, 32),
    box_units: str = "normalized",
    layout: str = "channels_first",
) -> bytes:
    """A YOLO head model; returns the ``.tflite`` bytes.

    The head values ``v`` (``[N, F]`` taken from the pixels, see :func:`head_image`) become:

    - ``version=8``: ``F = 4 + C``; output ``[1, 4 + C, N]`` (Ultralytics' layout) or,
      with ``layout="channels_last"``, ``[1, N, 4 + C]``. Rows: ``cx, cy, w, h`` then class
      scores.
    - ``version=5``: ``F = 5 + C``; output ``[1, N, 5 + C]``: ``cx, cy, w, h, objectness,``
      class scores.

    Box values are ``v`` for ``box_units="normalized"`` and ``v * (W, H, W, H)`` (input
    pixels) for ``"pixels"``; scores are ``v`` unchanged (probabilities).
    """
    import tensorflow as tf

    if version not in (5, 8):
        raise ValueError(f"version must be 5 or 8, got {version}")
    height, width = input_size
    features = (5 if version == 5 else 4) + num_classes
    box_scale = np.float32([1.0, 1.0, 1.0, 1.0])
    if box_units == "pixels":
        box_scale = np.float32([width, height, width, height])

    class Head(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32)])
        def detect(self, image: Any) -> Any:
            values = _pixels(tf, image, num_anchors * features, num_anchors)
            boxes = values[:, :, :4] * tf.constant(box_scale)
            head = tf.concat([boxes, values[:, :, 4:]], axis=2)
            if version == 8 and layout == "channels_first":
                head = tf.transpose(head, [0, 2, 1])
            return head

    module = Head()
    return _convert(module.detect.get_concrete_function(), module, quant, input_size)


def ssd_anchors(num_anchors: int, seed: int = 0) -> np.ndarray:
    """Deterministic anchors ``[N, 4]`` as ``(ycenter, xcenter, height, width)``, normalized."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, (num_anchors, 2))
    sizes = rng.uniform(0.1, 0.4, (num_anchors, 2))
    return np.concatenate([centres, sizes], axis=1).astype(np.float32)


def _postprocess_signature(
    num_classes: int, max_detections: int, nms_score_threshold: float, nms_iou_threshold: float
) -> str:
    """The ``experimental_implements`` text the converter fuses into the custom op."""
    y_scale, x_scale, h_scale, w_scale = SSD_BOX_SCALES
    attrs = {
        "max_detections": f"i: {max_detections}",
        "max_classes_per_detection": "i: 1",
        "use_regular_nms": "b: false",
        "nms_score_threshold": f"f: {nms_score_threshold}",
        "nms_iou_threshold": f"f: {nms_iou_threshold}",
        "y_scale": f"f: {y_scale}",
        "x_scale": f"f: {x_scale}",
        "h_scale": f"f: {h_scale}",
        "w_scale": f"f: {w_scale}",
        "num_classes": f"i: {num_classes}",
    }
    body = " ".join(f'attr {{ key: "{k}" value {{ {v} }} }}' for k, v in attrs.items())
    return f'name: "TFLite_Detection_PostProcess" {body}'


def build_tflite_postprocess(
    *,
    num_anchors: int,
    num_classes: int,
    quant: str,
    input_size: tuple[int, int] = (32, 32),
    max_detections: int = 20,
    nms_score_threshold: float = 0.05,
    nms_iou_threshold: float = 0.6,
    anchor_seed: int = 0,
    quantize_outputs: bool = False,
) -> bytes:
    """An SSD model ending in the real ``TFLite_Detection_PostProcess`` custom op.

    Built the way the TF Object Detection API exports SSD models for TFLite: an empty
    ``tf.function`` with ``experimental_implements`` that the converter replaces by the
    custom op. The head values ``v`` (``[N, 4 + C + 1]`` from the pixels) become box
    encodings ``(v[:, :4] - 0.5) * 4`` (``v = 0.5`` gives the anchor itself) and class
    predictions ``v[:, 4:]`` (column 0 is background). Anchors: :func:`ssd_anchors`.
    Outputs, in the order the OD API's export gives them (``output_0..3``):
    num_detections ``[1]``, scores ``[1, M]``, classes ``[1, M]``, boxes ``[1, M, 4]``.
    They are float32, as the op makes them, unless ``quantize_outputs`` (integer variants
    only) asks the converter to append quantize ops.
    """
    import tensorflow as tf

    height, width = input_size
    features = 4 + num_classes + 1
    anchors = ssd_anchors(num_anchors, anchor_seed)
    signature = _postprocess_signature(
        num_classes, max_detections, nms_score_threshold, nms_iou_threshold
    )

    @tf.function(experimental_implements=signature)
    def postprocess(box_encodings: Any, class_predictions: Any, anchors: Any) -> Any:
        # Placeholder body: the converter substitutes the custom op for this function.
        del box_encodings, class_predictions, anchors
        boxes = tf.constant(0.0, name="boxes")
        scores = tf.constant(0.0, name="scores")
        classes = tf.constant(0.0, name="classes")
        num_detections = tf.constant(0.0, name="num_detections")
        return boxes, scores, classes, num_detections

    class Ssd(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32)])
        def detect(self, image: Any) -> Any:
            values = _pixels(tf, image, num_anchors * features, num_anchors)
            box_encodings = (values[:, :, :4] - 0.5) * 4.0
            class_predictions = values[:, :, 4:] * 1.0
            outputs = postprocess(box_encodings, class_predictions, tf.constant(anchors))
            return outputs[::-1]  # as the OD API export does: count, scores, classes, boxes

    module = Ssd()
    concrete_fn = module.detect.get_concrete_function()
    return _convert(concrete_fn, module, quant, input_size, quantize_outputs)


def build_tflite_postprocess_tf1(
    *,
    num_anchors: int,
    num_classes: int,
    quant: str = "float",
    input_size: tuple[int, int] = (32, 32),
    max_detections: int = 20,
    nms_score_threshold: float = 0.05,
    nms_iou_threshold: float = 0.6,
    anchor_seed: int = 0,
) -> bytes:
    """The same SSD head as :func:`build_tflite_postprocess`, exported the TF1 way.

    As ``export_tflite_ssd_graph.py`` did for Coral's models: a frozen graph with a node
    of op type ``TFLite_Detection_PostProcess`` (unknown to TensorFlow, kept as a custom op
    by the converter). Its outputs carry the op's tensor names, in the op's order:
    ``TFLite_Detection_PostProcess`` (boxes), ``…:1`` (classes), ``…:2`` (scores),
    ``…:3`` (count). Float only.
    """
    import tempfile

    import tensorflow as tf

    if quant != "float":
        raise ValueError("the TF1 frozen-graph export is built as float only")
    height, width = input_size
    features = 4 + num_classes + 1
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(
            tf.float32, [1, height, width, 3], name="normalized_input_image_tensor"
        )
        values = _pixels(tf, image, num_anchors * features, num_anchors)
        tf.identity((values[:, :, :4] - 0.5) * 4.0, name="raw_outputs/box_encodings")
        tf.identity(values[:, :, 4:] * 1.0, name="raw_outputs/class_predictions")
        tf.constant(ssd_anchors(num_anchors, anchor_seed), name="anchors")
    graph_def = graph.as_graph_def()
    node = graph_def.node.add()
    node.name = node.op = "TFLite_Detection_PostProcess"
    node.input.extend(["raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors"])
    node.attr["max_detections"].i = max_detections
    node.attr["max_classes_per_detection"].i = 1
    node.attr["use_regular_nms"].b = False
    node.attr["nms_score_threshold"].f = nms_score_threshold
    node.attr["nms_iou_threshold"].f = nms_iou_threshold
    node.attr["num_classes"].i = num_classes
    for key, value in zip(
        ("y_scale", "x_scale", "h_scale", "w_scale"), SSD_BOX_SCALES, strict=True
    ):
        node.attr[key].f = value
    node.attr["_output_types"].list.type.extend([tf.float32.as_datatype_enum] * 4)
    outputs = [node.name] + [f"{node.name}:{i}" for i in (1, 2, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        graph_path = Path(tmp) / "tflite_graph.pb"
        graph_path.write_bytes(graph_def.SerializeToString())
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(graph_path),
            ["normalized_input_image_tensor"],
            outputs,
            input_shapes={"normalized_input_image_tensor": [1, height, width, 3]},
        )
        converter.allow_custom_ops = True
        return converter.convert()


# --- a tiny SSD with a card: raw box encodings + class logits, random weights ----------

TINY_SSD_ANCHORS = dict(
    num_layers=2, min_scale=0.3, max_scale=0.8, aspect_ratios=[1.0, 2.0, 0.5],
    reduce_boxes_in_lowest_layer=False, interpolated_scale_aspect_ratio=1.0,
    feature_map_sizes=[4, 2],
)  # fmt: skip
TINY_SSD_NUM_ANCHORS = (16 + 4) * 4
TINY_SSD_CLASSES = ("a", "b", "c")  # plus background
TINY_SSD_SIZE = 32


def build_tiny_ssd(out_dir: Path, *, quant: str, name: str = "tiny_ssd") -> Path:
    """A small convolutional SSD head (``[1, N, 4]`` box encodings, ``[1, N, 1 + C]``
    logits) with random weights, converted float or full-integer (``quant`` of
    :data:`QUANT_VARIANTS`), written as ``out_dir/name.tflite`` with its model card.

    Unlike the pixel-reading models above, its outputs are what a network computes, so
    the Detector runs on it as on a real model (the card: stretch, mean/std 127.5).
    """
    import tensorflow as tf
    import yaml

    if quant not in QUANT_VARIANTS:
        raise ValueError(f"quant must be one of {QUANT_VARIANTS}, got {quant!r}")
    tf.random.set_seed(7)
    size, anchors, classes = TINY_SSD_SIZE, TINY_SSD_NUM_ANCHORS, len(TINY_SSD_CLASSES)
    inp = tf.keras.Input((size, size, 3))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    boxes = tf.keras.layers.Reshape((anchors, 4))(tf.keras.layers.Dense(anchors * 4)(x))
    logits = tf.keras.layers.Dense(anchors * (classes + 1))(x)
    logits = tf.keras.layers.Reshape((anchors, classes + 1))(logits)
    converter = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, [boxes, logits]))
    if quant != "float":
        rng = np.random.default_rng(0)

        def representative() -> Iterator[list[np.ndarray]]:  # the card's input range
            for _ in range(16):
                yield [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

        io_type = tf.uint8 if quant == "uint8" else tf.int8
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    data = converter.convert()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.tflite"
    path.write_bytes(data)
    card = {
        "format": "edgedet-model/1",
        "name": name,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "labels": list(TINY_SSD_CLASSES),
        "input": {"height": size, "width": size, "color": "rgb", "resize": "stretch",
                  "mean": 127.5, "std": 127.5},
        "decoder": {
            "type": "ssd",
            "score_activation": "sigmoid",
            "background_class": True,
            "box_scales": list(SSD_BOX_SCALES),
            "anchors": TINY_SSD_ANCHORS,
        },
        "defaults": {"min_score": 0.5, "iou": 0.5, "max_detections": 50},
    }  # fmt: skip
    path.with_suffix(".yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return path


BUILDERS: dict[str, Callable[..., bytes]] = {
    "yolo": build_yolo,
    "tflite_postprocess": build_tflite_postprocess,
    "tflite_postprocess_tf1": build_tflite_postprocess_tf1,
}


def cached_model(cache_dir: Path, kind: str, **options: Any) -> Path:
    """Path of the ``kind`` model (a key of :data:`BUILDERS`) with ``options``, built once.

    The file name is derived from the kind and options, so equal requests share a file.
    """
    key = json.dumps({"kind": kind, **options}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{kind}_{options.get('quant', 'float')}_{digest}.tflite"
    if not path.exists():
        data = BUILDERS[kind](**options)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
