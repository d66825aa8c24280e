"""TensorFlow → TFLite: float or full-integer, from a frozen graph cut, SavedModel or Keras.

Every builder returns the flatbuffer bytes; nothing is written here. Full-integer
conversion uses post-training quantization with a representative dataset; without
``edgetpu`` the converter may keep an op it cannot quantize in float (the verifier then
lists it), with ``edgetpu`` it must not (Edge TPU runs integer ops only) and fails.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from edgedet.errors import ModelError

RepresentativeDataset = Callable[[], Iterable[list[np.ndarray]]]

# Names the TF OD API's own TFLite export gives the cut SSD; edgedet's decoder binds them.
SSD_INPUT_NAME = "normalized_input_image_tensor"
SSD_BOX_ENCODINGS = "raw_outputs/box_encodings"
SSD_CLASS_PREDICTIONS = "raw_outputs/class_predictions"


@contextlib.contextmanager
def _quiet_tensorflow():
    """Silence TensorFlow's C++ and Python chatter; errors still propagate as exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    previous = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")
    try:
        yield tf
    finally:
        tf.get_logger().setLevel(previous)


def _configure(
    converter: Any,
    representative: RepresentativeDataset | None,
    io_type: str,
    edgetpu: bool,
    quantize_outputs: bool = True,
) -> None:
    import tensorflow as tf

    if representative is None:  # float model, for the fidelity report
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if edgetpu:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    else:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    dtype = {"uint8": tf.uint8, "int8": tf.int8}[io_type]
    converter.inference_input_type = dtype
    if quantize_outputs:
        converter.inference_output_type = dtype


def _run(converter: Any, what: str, edgetpu: bool) -> bytes:
    # The converter prints MLIR diagnostics to stderr and raises ConverterError; keep the
    # last meaningful line for the user.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            return bytes(converter.convert())
    except Exception as exc:  # ConverterError, ValueError, RuntimeError from the converter
        text = str(exc).strip().splitlines()
        detail = next((t.strip() for t in text if "error" in t.lower()), text[-1] if text else "")
        hint = (
            "; --edgetpu forbids float fallback: drop --edgetpu or replace the op"
            if edgetpu
            else ""
        )
        raise ModelError(f"TFLite conversion of {what} failed: {detail[:300]}{hint}") from exc


def convert_ssd_graph(
    graph_def: Any,
    input_tensor: str,
    output_tensors: Sequence[str],
    input_shape: tuple[int, int, int, int],
    *,
    representative: RepresentativeDataset | None,
    io_type: str = "uint8",
    edgetpu: bool = False,
) -> bytes:
    """Cut a frozen SSD graph at ``input_tensor`` / ``output_tensors`` and convert it.

    The cut input is a new float placeholder ``normalized_input_image_tensor`` of
    ``input_shape``; the outputs are reshaped to ``[1, N, 4]`` box encodings and
    ``[1, N, C]`` class predictions named as the OD API export names them.
    """
    with _quiet_tensorflow() as tf:
        graph = tf.Graph()
        with graph.as_default():
            image = tf.compat.v1.placeholder(tf.float32, input_shape, name=SSD_INPUT_NAME)
            boxes, classes = tf.import_graph_def(
                graph_def,
                input_map={input_tensor: image},
                return_elements=list(output_tensors),
                name="",
            )
            num_classes = int(classes.shape[-1])
            boxes = tf.reshape(boxes, [1, -1, 4], name=SSD_BOX_ENCODINGS)
            classes = tf.reshape(classes, [1, -1, num_classes], name=SSD_CLASS_PREDICTIONS)
            with tf.compat.v1.Session(graph=graph) as sess:
                converter = tf.compat.v1.lite.TFLiteConverter.from_session(
                    sess, [image], [boxes, classes]
                )
                _configure(converter, representative, io_type, edgetpu)
                return _run(converter, "the frozen graph", edgetpu)


def _frozen(concrete: Any) -> Any:
    """Variables → constants. Keras 3 variables are not tracked by the function's owner,
    so an unfrozen function leaves READ_VARIABLE ops the calibrator cannot run."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete)


def convert_saved_model(
    path: str,
    *,
    representative: RepresentativeDataset | None,
    io_type: str = "uint8",
    edgetpu: bool = False,
    input_shape: tuple[int, int, int, int],
) -> bytes:
    """Convert a TF2 SavedModel's serving signature with its input fixed to ``input_shape``.

    Fixing the shape (batch 1, the card's H and W) gives the interpreter static tensors,
    which the Edge TPU compiler and XNNPACK both need.
    """
    from edgedet.convert.tf2 import serving_function

    with _quiet_tensorflow() as tf:
        loaded = tf.saved_model.load(path)
        fn = serving_function(loaded, path)
        ((name, in_spec),) = fn.structured_input_signature[1].items()
        spec = tf.TensorSpec(input_shape, in_spec.dtype)

        def serve(x):
            result = fn(**{name: x})
            return [result[k] for k in sorted(result)]

        concrete = _frozen(tf.function(serve).get_concrete_function(spec))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
        _configure(converter, representative, io_type, edgetpu)
        return _run(converter, f"SavedModel {path}", edgetpu)


def convert_postprocess_saved_model(
    path: str,
    *,
    representative: RepresentativeDataset | None,
    io_type: str = "uint8",
    edgetpu: bool = False,
) -> bytes:
    """Convert a SavedModel ending in ``TFLite_Detection_PostProcess`` (OD API TF2 export).

    Converted straight from the SavedModel so the converter sees the
    ``experimental_implements`` function and fuses it into the custom op. The op runs on
    the CPU and outputs float32 (as in Coral's SSD models), so only the input takes
    ``io_type``.
    """
    with _quiet_tensorflow() as tf:
        converter = tf.lite.TFLiteConverter.from_saved_model(path)
        converter.allow_custom_ops = True
        _configure(converter, representative, io_type, edgetpu, quantize_outputs=False)
        return _run(converter, f"SavedModel {path}", edgetpu)


def convert_keras(
    model: Any,
    *,
    representative: RepresentativeDataset | None,
    io_type: str = "uint8",
    edgetpu: bool = False,
    input_shape: tuple[int, int, int, int] | None = None,
) -> bytes:
    """Convert a loaded Keras model (a fixed ``input_shape`` overrides a dynamic one)."""
    with _quiet_tensorflow() as tf:
        shape = input_shape or tuple(model.inputs[0].shape)
        spec = tf.TensorSpec([1, *shape[1:]], model.inputs[0].dtype)
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen(concrete)], model)
        _configure(converter, representative, io_type, edgetpu)
        return _run(converter, "the Keras model", edgetpu)
