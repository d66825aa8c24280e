"""What every decoder sees and returns.

A decoder turns a model's raw output tensors into `Detections` whose boxes are normalized
``[ymin, xmin, ymax, xmax]`` of the *original frame* (letterbox undone), clipped to
[0, 1], in descending score order, after the exact score filter and NMS of
`edgedet.postprocess`. Tensor roles are bound once, in ``from_model``, from names,
signatures or shapes; ``decode`` runs per frame and must stay cheap: filter on raw codes
first, dequantize and decode only survivors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgedet.detections import Detections
from edgedet.postprocess import nms


@dataclass(frozen=True)
class TensorInfo:
    """One output tensor as the interpreter describes it (``get_output_details()``)."""

    index: int  # interpreter tensor index
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None  # None for float tensors (or per-channel quantization)
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> TensorInfo:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        dtype = np.dtype(detail["dtype"])
        quantized = dtype.kind in "iu" and scale not in (None, 0.0)
        return cls(
            index=int(detail["index"]),
            name=str(detail.get("name", "")),
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=dtype,
            scale=float(scale) if quantized else None,
            zero_point=int(zero_point) if quantized else 0,
        )


@dataclass(frozen=True)
class DecodeParams:
    """Per-call thresholds. ``min_score`` inclusive; NMS suppresses IoU > ``iou_threshold``."""

    min_score: float
    iou_threshold: float
    max_detections: int = 100
    agnostic: bool = False


@dataclass(frozen=True)
class FrameGeometry:
    """Maps normalized coordinates of the model input back to the original frame.

    With a stretch resize the mapping is the identity. With a letterbox, the frame
    occupies ``[y_offset, y_offset + y_extent]`` x ``[x_offset, x_offset + x_extent]`` of
    the (normalized) input, so a model coordinate ``u`` maps to ``(u - offset) / extent``.
    ``input_height``/``input_width`` are the model input size in pixels (YOLO heads may
    report boxes in input pixels).
    """

    input_height: int
    input_width: int
    y_offset: float = 0.0
    x_offset: float = 0.0
    y_extent: float = 1.0
    x_extent: float = 1.0

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Model-normalized ``[ymin, xmin, ymax, xmax]`` → frame-normalized, clipped to [0, 1]."""
        boxes = np.asarray(boxes, dtype=np.float32)
        if (self.y_offset, self.x_offset, self.y_extent, self.x_extent) != (0.0, 0.0, 1.0, 1.0):
            offset = np.array(
                [self.y_offset, self.x_offset, self.y_offset, self.x_offset], np.float32
            )
            extent = np.array(
                [self.y_extent, self.x_extent, self.y_extent, self.x_extent], np.float32
            )
            boxes = (boxes - offset) / extent
        # np.minimum/np.maximum rather than np.clip: the same values (NaN stays NaN) without
        # np.clip's Python-level dispatch, which is measurable right after invoke().
        return np.minimum(np.maximum(boxes, 0.0), 1.0)


def finish(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    params: DecodeParams,
    geometry: FrameGeometry,
) -> Detections:
    """The last step of every decoder: candidates (already ``>= min_score``, boxes in
    model-normalized coordinates) → frame coordinates clipped to [0, 1] → boxes without a
    positive height and width dropped → NMS → at most ``max_detections``.

    As in the TF Object Detection API's post-processing (``clip_to_window`` with
    ``filter_nonoverlapping``), a box that lies outside the frame, and so has no area
    after clipping, is dropped before NMS: it would never be suppressed (IoU 0) and would
    come out as a duplicate of nothing. NMS runs on the boxes the caller receives, so the
    output itself satisfies the contract: no two kept boxes of one class (any class when
    ``agnostic``) overlap with IoU > ``iou_threshold``.
    """
    frame_boxes = geometry.to_frame(boxes)
    class_ids = np.asarray(class_ids)
    # The smaller of height and width; NaN coordinates give NaN, and such boxes go too.
    visible = (frame_boxes[:, 2:] - frame_boxes[:, :2]).min(axis=1) > 0.0
    if not visible.all():
        frame_boxes, scores, class_ids = frame_boxes[visible], scores[visible], class_ids[visible]
    keep = nms(
        frame_boxes,
        scores,
        params.iou_threshold,
        class_ids=None if params.agnostic else class_ids,
        max_detections=params.max_detections,
    )
    return Detections(frame_boxes[keep], scores[keep], class_ids[keep])


class Decoder(ABC):
    """One output family. Subclasses register under ``type`` in `edgedet.decoders`."""

    type: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> Decoder:
        """Bind tensor roles for this model; ``spec`` is the card's ``decoder`` mapping
        (``{}`` for a model without a card). Raises `ModelError` when the outputs do not fit."""

    @classmethod
    def matches(cls, outputs: Sequence[TensorInfo]) -> bool:
        """True when the outputs identify this family without a card."""
        return False

    @property
    def num_classes(self) -> int | None:
        """Number of classes the head predicts (background excluded), when known."""
        return None

    @abstractmethod
    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        """``outputs``: raw arrays in the order of the ``outputs`` given to ``from_model``.
        Returns detections without labels (the detector attaches them)."""
