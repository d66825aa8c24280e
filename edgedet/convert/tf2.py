"""TF2 sources: a SavedModel folder or a Keras file, loaded once and probed for shapes.

A loaded source is a `Tf2Model`: one callable from a float ``[1, H, W, 3]`` batch to the
list of output arrays, plus the declared input shape. The detection head is identified
from the output shapes by `edgedet.convert.pipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.convert.verify import POSTPROCESS_OP
from edgedet.errors import ModelError
from edgedet.modelcard import InputSpec


@dataclass
class Tf2Model:
    kind: str  # saved_model | keras
    path: Path
    obj: Any  # the Keras model, or the loaded SavedModel
    input_shape: tuple[int | None, ...]  # as declared, e.g. (None, 320, 320, 3)
    input_dtype: Any  # tf.DType

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the float model; outputs in the order the TFLite model will list them."""
        if self.kind == "keras":
            out = self.obj(batch, training=False)
            outs = out if isinstance(out, (list, tuple)) else [out]
            return [np.asarray(o) for o in outs]
        fn = serving_function(self.obj, self.path)
        ((name, _),) = fn.structured_input_signature[1].items()
        result = fn(**{name: batch})
        return [np.asarray(result[k]) for k in sorted(result)]


def load(path: Path, kind: str) -> Tf2Model:
    """Load a SavedModel folder or a Keras file; `ModelError` when TensorFlow cannot."""
    import tensorflow as tf

    if kind == "keras":
        try:
            model = tf.keras.models.load_model(str(path), compile=False)
        except Exception as exc:  # Keras raises ValueError, OSError, TypeError, ...
            raise ModelError(f"cannot load Keras model {path}: {_first_line(exc)}") from None
        if len(model.inputs) != 1:
            raise ModelError(
                f"Keras model {path} has {len(model.inputs)} inputs; edgedet converts "
                "single-image detectors"
            )
        shape = tuple(model.inputs[0].shape)
        return Tf2Model("keras", path, model, shape, tf.as_dtype(model.inputs[0].dtype))
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ModelError(f"cannot load SavedModel {path}: {_first_line(exc)}") from None
    fn = serving_function(loaded, path)
    specs = fn.structured_input_signature[1]
    if len(specs) != 1:
        raise ModelError(
            f"SavedModel {path} serving signature takes {len(specs)} inputs; "
            "edgedet converts single-image detectors"
        )
    (spec,) = specs.values()
    return Tf2Model("saved_model", path, loaded, tuple(spec.shape.as_list()), spec.dtype)


def serving_function(loaded: Any, path: Path | str) -> Any:
    signatures = getattr(loaded, "signatures", {})
    if "serving_default" in signatures:
        return signatures["serving_default"]
    if signatures:
        return next(iter(signatures.values()))
    raise ModelError(f"SavedModel {path} has no signatures; export it with a serving signature")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def input_hw(model: Tf2Model, input_size: tuple[int, int] | None, path: Path) -> tuple[int, int]:
    """The fixed input size: ``input_size`` if given, else the model's static H and W."""
    shape = model.input_shape
    if len(shape) != 4 or shape[3] not in (3, None):
        raise ModelError(f"{path}: expected an image input [N, H, W, 3], got {list(shape)}")
    if input_size:
        return input_size
    if shape[1] is None or shape[2] is None:
        raise ModelError(
            f"{path} has a dynamic input shape {list(shape)}; pass --input-size HxW "
            "(the size the model was trained for, e.g. 640x640)"
        )
    return int(shape[1]), int(shape[2])


def output_shapes(model: Tf2Model, shape: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
    """Output shapes for one zero image of ``shape``."""
    return [tuple(o.shape) for o in model(np.zeros(shape, np.float32))]


def box_units(model: Tf2Model, spec: InputSpec, frames: Sequence[np.ndarray], head: str) -> str:
    """``pixels`` or ``normalized``: are the head's box centres in input pixels?

    Anchor centres cover the whole input, so a pixel head has ``cx`` near the input width
    somewhere; a normalized one never exceeds about 1.
    """
    from edgedet.convert.calibration import preprocess

    largest = 0.0
    for frame in frames[:4] or [np.zeros((spec.height, spec.width, 3), np.uint8)]:
        (out,) = model(preprocess(frame, spec))
        out = out[0]
        if head == "yolov8" and out.shape[0] > out.shape[1]:
            out = out.T
        cx = out[0] if head == "yolov8" else out[:, 0]
        largest = max(largest, float(np.max(cx)))
    return "pixels" if largest > 2.0 else "normalized"


def postprocess_attrs(model: Tf2Model) -> dict[str, str] | None:
    """Attributes of a ``TFLite_Detection_PostProcess`` placeholder in a SavedModel, or None.

    The TF OD API's ``export_tflite_graph_tf2.py`` ends its serving function in a
    ``tf.function`` annotated ``experimental_implements`` with the op's attributes; the
    TFLite converter fuses it into the custom op. Values are kept as written
    (e.g. ``{"num_classes": "90", "max_detections": "10"}``).
    """
    import re

    if model.kind != "saved_model":
        return None
    fn = serving_function(model.obj, model.path)
    for function in fn.graph.as_graph_def().library.function:
        if "_implements" not in function.attr:
            continue
        implements = function.attr["_implements"]
        if implements.HasField("func"):  # TensorFlow parses the text into a NameAttrList
            if implements.func.name != POSTPROCESS_OP:
                continue
            return {key: _attr_text(value) for key, value in implements.func.attr.items()}
        text = implements.s.decode("utf-8", "replace")
        if POSTPROCESS_OP in text:
            return dict(re.findall(r'key: "(\w+)" value \{ \w: ([^ }]+) \}', text))
    return None


def _attr_text(value: Any) -> str:
    kind = value.WhichOneof("value")
    if kind == "b":
        return "true" if value.b else "false"
    if kind == "s":
        return value.s.decode("utf-8", "replace")
    return str(getattr(value, kind)) if kind else ""
