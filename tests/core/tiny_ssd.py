"""Build a tiny but real SSD-style TFLite model (raw box encodings + class logits) with
TensorFlow's converter, float and full-integer, with a card beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

ANCHORS = {
    "num_layers": 2,
    "min_scale": 0.3,
    "max_scale": 0.8,
    "aspect_ratios": [1.0, 2.0, 0.5],
    "reduce_boxes_in_lowest_layer": False,
    "interpolated_scale_aspect_ratio": 1.0,
    "feature_map_sizes": [4, 2],
}
NUM_ANCHORS = (16 + 4) * 4
NUM_CLASSES = 3  # plus background
SIZE = 32


def build(out_dir: Path, *, quantized: bool, io: str = "uint8", name: str = "tiny_ssd") -> Path:
    import tensorflow as tf

    tf.random.set_seed(7)
    inp = tf.keras.Input((SIZE, SIZE, 3))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    boxes = tf.keras.layers.Reshape((NUM_ANCHORS, 4))(tf.keras.layers.Dense(NUM_ANCHORS * 4)(x))
    logits = tf.keras.layers.Dense(NUM_ANCHORS * (NUM_CLASSES + 1))(x)
    logits = tf.keras.layers.Reshape((NUM_ANCHORS, NUM_CLASSES + 1))(logits)
    model = tf.keras.Model(inp, [boxes, logits])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantized:
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(16):
                yield [rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        dtype = tf.uint8 if io == "uint8" else tf.int8
        converter.inference_input_type = dtype
        converter.inference_output_type = dtype
    data = converter.convert()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.tflite"
    path.write_bytes(data)
    import hashlib

    card = {
        "format": "edgedet-model/1",
        "name": name,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "labels": ["a", "b", "c"],
        "input": {
            "height": SIZE,
            "width": SIZE,
            "color": "rgb",
            "resize": "stretch",
            "mean": 127.5,
            "std": 127.5,
        },
        "decoder": {
            "type": "ssd",
            "score_activation": "sigmoid",
            "background_class": True,
            "box_scales": [10.0, 10.0, 5.0, 5.0],
            "anchors": ANCHORS,
        },
        "defaults": {"min_score": 0.5, "iou": 0.5, "max_detections": 50},
    }
    path.with_suffix(".yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return path
