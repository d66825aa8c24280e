"""Decoders: raw output tensors → `Detections`, one module per output family.

The registry maps the card's ``decoder.type`` to a module and class, imported on first
use. A model without a card is identified by asking each family's ``matches``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from edgedet.decoders.base import DecodeParams, Decoder, FrameGeometry, TensorInfo
from edgedet.errors import ModelError

REGISTRY: dict[str, str] = {
    "ssd": "edgedet.decoders.ssd:SsdDecoder",
    "tflite_postprocess": "edgedet.decoders.tflite_postprocess:TflitePostprocessDecoder",
    "yolov5": "edgedet.decoders.yolo:Yolov5Decoder",
    "yolov8": "edgedet.decoders.yolo:Yolov8Decoder",
    "yolo_nms": "edgedet.decoders.yolo:YoloNmsDecoder",
}

# Order matters for identification: the most specific signature first.
_IDENTIFY_ORDER = ("tflite_postprocess", "yolov8", "yolov5")


def decoder_class(type_name: str) -> type[Decoder]:
    try:
        target = REGISTRY[type_name]
    except KeyError:
        raise ModelError(
            f"unknown decoder type {type_name!r} in the model card; "
            f"expected one of: {', '.join(REGISTRY)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_decoder(
    spec: Mapping[str, Any] | None, outputs: Sequence[TensorInfo], num_labels: int | None
) -> Decoder:
    """The decoder for a model: from the card's ``decoder`` spec, else identified by outputs."""
    if spec and spec.get("type"):
        return decoder_class(str(spec["type"])).from_model(spec, outputs, num_labels)
    for type_name in _IDENTIFY_ORDER:
        try:
            cls = decoder_class(type_name)
        except (ImportError, AttributeError):
            continue
        if cls.matches(outputs):
            return cls.from_model({}, outputs, num_labels)
    shapes = ", ".join(f"{t.name or t.index}{list(t.shape)}" for t in outputs)
    raise ModelError(
        f"model outputs ({shapes}) match no known detector head (TFLite_Detection_PostProcess, "
        "YOLOv5, YOLOv8) and no model card gives a decoder; write <model>.yaml "
        "(see docs/DESIGN.md) or convert the model with `edgedet convert`"
    )


__all__ = ["DecodeParams", "Decoder", "FrameGeometry", "TensorInfo", "build_decoder", "REGISTRY"]
