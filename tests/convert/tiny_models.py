"""Tiny real detectors for the converter tests, built with Keras in a second or two.

Their weights are set by hand so they detect something real on real frames: bright
regions. Each grid cell's mean brightness drives its class logits (bright → "bright"
class) and nudges its box, so float and quantized models have real, comparable output.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

# Collection must not import TensorFlow (seconds, and other suites check light imports in
# this process); tests that need it carry this mark.
needs_tensorflow = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="edgedet convert needs TensorFlow: pip install 'edgedet[convert]'",
    ),
]

SIZE = 64
# The SSD head's anchors: 4x4 and 2x2 grids, 4 boxes per cell → 80 anchors.
SSD_ANCHORS = {
    "num_layers": 2,
    "min_scale": 0.3,
    "max_scale": 0.7,
    "aspect_ratios": [1.0, 2.0, 0.5],
    "reduce_boxes_in_lowest_layer": False,
    "interpolated_scale_aspect_ratio": 1.0,
    "feature_map_sizes": [4, 2],
}
SSD_BOXES_PER_CELL = 4
YOLO_CLASSES = 2
YOLO_GRID = 8


def _brightness(keras, x, pool: int):
    """(B, S/pool, S/pool, 1): mean of the three channels over pool x pool cells."""
    x = keras.layers.AveragePooling2D(pool)(x)
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    y = conv(x)
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    return y


def _fixed_conv(keras, x, filters: int, weight: np.ndarray, bias: np.ndarray):
    conv = keras.layers.Conv2D(filters, 1)
    y = conv(x)
    conv.set_weights(
        [weight.reshape(1, 1, -1, filters).astype(np.float32), bias.astype(np.float32)]
    )
    return y


def ssd_keras(dynamic: bool = False):
    """SSD-style raw head: box encodings [1, 80, 4], class logits [1, 80, 2] (background first).

    Input: (pixel - 127.5) / 127.5. A cell of brightness b gets person logit 6*b + 1 and
    background logit -6*b - 1, and box encodings that grow the anchor with b.
    """
    import keras

    shape = (None, None, 3) if dynamic else (SIZE, SIZE, 3)
    image = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(3, 3, padding="same", name="smooth")(image)
    boxes, classes = [], []
    k = SSD_BOXES_PER_CELL
    for pool in (16, 32):
        b = _brightness(keras, x, pool)
        logits = _fixed_conv(
            keras,
            b,
            2 * k,
            np.tile([-6.0, 6.0], k),
            np.tile([-1.0, 1.0], k),
        )
        enc = _fixed_conv(
            keras,
            b,
            4 * k,
            np.tile([0.5, -0.5, 1.5, 1.5], k),
            np.zeros(4 * k),
        )
        boxes.append(keras.layers.Reshape((-1, 4))(enc))
        classes.append(keras.layers.Reshape((-1, 2))(logits))
    box_out = keras.layers.Concatenate(axis=1, name="box_encodings")(boxes)
    cls_out = keras.layers.Concatenate(axis=1, name="class_predictions")(classes)
    model = keras.Model(image, [box_out, cls_out])
    smooth = model.get_layer("smooth")
    w = np.zeros((3, 3, 3, 3), np.float32)
    w[1, 1] = np.eye(3)  # identity: keeps the picture, but is a real conv for the quantizer
    smooth.set_weights([w, np.zeros(3, np.float32)])
    return model


def yolov8_keras(pixels: bool = False):
    """YOLOv8-style head [1, 4 + 2, 64]: cx, cy, w, h, then 2 class scores.

    Input: pixel / 255. Class 0 scores bright cells, class 1 dark ones (sigmoid of
    +-8 * (b - 0.5)); each cell's box is centred on it and widens with brightness. Boxes
    are normalized to the input, as Ultralytics' integer export writes them, or in input
    pixels with ``pixels`` (the float export's layout: one tensor spans 0..64, so per-tensor
    uint8 quantization leaves scores only a few levels — a real fidelity failure).
    """
    return _yolo_keras(pixels, objectness=False)


def yolov5_keras():
    """YOLOv5-style head [1, 64, 5 + 2]: cx, cy, w, h, objectness, 2 class scores.

    Objectness is sigmoid(8 * (b - 0.25)); classes as in `yolov8_keras`; boxes normalized.
    """
    return _yolo_keras(False, objectness=True)


def _yolo_keras(pixels: bool, objectness: bool):
    import keras

    image = keras.Input((SIZE, SIZE, 3), name="images")
    cell = SIZE // YOLO_GRID
    b = _brightness(keras, image, cell)  # (1, 8, 8, 1) in [0, 1]
    ys, xs = np.meshgrid(np.arange(YOLO_GRID), np.arange(YOLO_GRID), indexing="ij")
    unit = 1.0 if pixels else 1.0 / SIZE
    centres = np.stack([(xs + 0.5) * cell, (ys + 0.5) * cell], axis=-1).astype(np.float32) * unit
    # Cell centres as a Dense layer with zero kernel and the centres as bias: a plain,
    # savable layer whose output depends on position only.
    dense = keras.layers.Dense(YOLO_GRID * YOLO_GRID * 2)
    cxcy = dense(keras.layers.Flatten()(b))
    dense.set_weights(
        [
            np.zeros((YOLO_GRID * YOLO_GRID, YOLO_GRID * YOLO_GRID * 2), np.float32),
            centres.reshape(-1),
        ]
    )
    cxcy = keras.layers.Reshape((YOLO_GRID, YOLO_GRID, 2))(cxcy)
    wh = _fixed_conv(
        keras, b, 2, np.array([2 * cell, 2 * cell]) * unit, np.array([cell, cell]) * unit
    )
    parts = [cxcy, wh]
    if objectness:
        parts.append(
            keras.layers.Activation("sigmoid")(
                _fixed_conv(keras, b, 1, np.array([8.0]), np.array([-2.0]))
            )
        )
    parts.append(
        keras.layers.Activation("sigmoid")(
            _fixed_conv(keras, b, YOLO_CLASSES, np.array([8.0, -8.0]), np.array([-4.0, 4.0]))
        )
    )
    head = keras.layers.Concatenate()(parts)  # (1, 8, 8, 6 or 7)
    channels = 4 + int(objectness) + YOLO_CLASSES
    head = keras.layers.Reshape((YOLO_GRID * YOLO_GRID, channels), name="output0")(head)
    if not objectness:
        head = keras.layers.Permute((2, 1), name="output0_t")(head)  # (1, 6, 64): v8 layout
    return keras.Model(image, head)


def save_saved_model(model, path: Path, dynamic: bool = False) -> Path:
    """Export a Keras model as a TF2 SavedModel with a ``serving_default`` signature."""
    import tensorflow as tf

    shape = [None, None, None, 3] if dynamic else [None, *model.inputs[0].shape[1:]]

    class Serving(tf.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
        def serve(self, images):
            out = self.m(images, training=False)
            outs = out if isinstance(out, (list, tuple)) else [out]
            return {f"output_{i}": o for i, o in enumerate(outs)}

    module = Serving(model)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def bright_patch_frame(row: int, col: int, grid: int, size: int = 256) -> np.ndarray:
    """A dark BGR frame with one white cell of a ``grid`` x ``grid`` layout."""
    frame = np.full((size, size, 3), 20, np.uint8)
    cell = size // grid
    frame[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = 255
    return frame


def ssd_postprocess_saved_model(path: Path, max_detections: int = 10) -> Path:
    """The tiny SSD as TF OD API's ``export_tflite_graph_tf2.py`` writes a SavedModel.

    The serving function ends in a placeholder ``tf.function`` annotated with
    ``experimental_implements`` (the op's attributes), which the TFLite converter replaces
    by the ``TFLite_Detection_PostProcess`` custom op; in TensorFlow itself it returns
    dummy scalars, exactly like the API's export. Outputs in the export's order.
    """
    import tensorflow as tf

    from edgedet.decoders.anchors import ssd_anchors

    anchors = ssd_anchors(SSD_ANCHORS)
    attrs = {
        "max_detections": f"i: {max_detections}",
        "max_classes_per_detection": "i: 1",
        "use_regular_nms": "b: false",
        "nms_score_threshold": "f: 0.1",
        "nms_iou_threshold": "f: 0.6",
        "y_scale": "f: 10.0",
        "x_scale": "f: 10.0",
        "h_scale": "f: 5.0",
        "w_scale": "f: 5.0",
        "num_classes": "i: 1",
    }
    body = " ".join(f'attr {{ key: "{k}" value {{ {v} }} }}' for k, v in attrs.items())

    @tf.function(experimental_implements=f'name: "TFLite_Detection_PostProcess" {body}')
    def postprocess(box_encodings, class_predictions, anchor_boxes):
        del box_encodings, class_predictions, anchor_boxes
        return (
            tf.constant(0.0, name="boxes"),
            tf.constant(0.0, name="scores"),
            tf.constant(0.0, name="classes"),
            tf.constant(0.0, name="num_detections"),
        )

    k = SSD_BOXES_PER_CELL

    class Export(tf.Module):
        """The tiny SSD head of `ssd_keras` in plain TF ops with tf.Variable weights, as
        the OD API's own (checkpoint-restored) models are."""

        def __init__(self):
            super().__init__()
            self.mean = tf.Variable(np.full((1, 1, 3, 1), 1 / 3, np.float32))
            self.logit_w = tf.Variable(
                np.tile([-6.0, 6.0], k).reshape(1, 1, 1, -1), dtype=tf.float32
            )
            self.logit_b = tf.Variable(np.tile([-1.0, 1.0], k), dtype=tf.float32)
            self.box_w = tf.Variable(
                np.tile([0.5, -0.5, 1.5, 1.5], k).reshape(1, 1, 1, -1), dtype=tf.float32
            )

        @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)])
        def serve(self, images):
            boxes, logits = [], []
            for pool in (16, 32):
                pooled = tf.nn.avg_pool2d(images, pool, pool, "VALID")
                b = tf.nn.conv2d(pooled, self.mean, 1, "VALID")
                logits.append(
                    tf.reshape(tf.nn.conv2d(b, self.logit_w, 1, "VALID") + self.logit_b, [1, -1, 2])
                )
                boxes.append(tf.reshape(tf.nn.conv2d(b, self.box_w, 1, "VALID"), [1, -1, 4]))
            scores = tf.sigmoid(tf.concat(logits, axis=1))
            return postprocess(tf.concat(boxes, axis=1), scores, tf.constant(anchors))[::-1]

    module = Export()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path
