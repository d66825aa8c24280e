"""SSD raw outputs: box encodings and per-anchor class scores (or logits).

This is what ``edgedet convert`` makes from TF Object Detection API graphs, cut (as the
API's own TFLite export does) before its post-processing:

- box encodings ``[1, N, 4]`` or ``[1, N, 1, 4]``: ``(ty, tx, th, tw)`` relative to the
  anchors, decoded with the API's Faster R-CNN box coder (``box_scales`` 10, 10, 5, 5);
- class scores ``[1, N, C]``: logits (``score_activation: sigmoid``), probabilities
  (``none``) or softmax inputs; column 0 is the background when ``background_class``.

Per frame: the exact score filter runs on the raw codes of the score tensor; only the
survivors' box encodings are dequantized and only their anchors decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgedet.decoders.anchors import ssd_anchors
from edgedet.decoders.base import DecodeParams, Decoder, FrameGeometry, TensorInfo, finish
from edgedet.detections import Detections
from edgedet.errors import LabelCountError, ModelError
from edgedet.postprocess import dequantize, filter_class_scores

_ACTIVATIONS = ("sigmoid", "softmax", "none")


def scale_encodings(encodings: np.ndarray, box_scales: Sequence[float]) -> np.ndarray:
    """The per-coordinate half of the TF OD API Faster R-CNN box coder (decode direction).

    encodings: float32 (K, 4) ``(ty, tx, th, tw)``. Returns float32 (K, 4)
    ``(ty / sy, tx / sx, exp(th / sh), exp(tw / sw))``. It depends on nothing but the
    encoding, so for quantized encodings it is tabulated once per code (`SsdDecoder`).
    """
    scales = np.asarray(box_scales, np.float32)
    scaled = np.empty((len(encodings), 4), np.float32)
    np.divide(encodings[:, :2], scales[:2], out=scaled[:, :2])
    # exp of a contiguous float32 array: the same code path for a tensor, a few
    # survivors or a table of all codes, so all three agree bit for bit.
    scaled[:, 2:] = np.exp(encodings[:, 2:] / scales[2:])
    return scaled


def boxes_from_scaled(scaled: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The per-anchor half of the box coder: ``scale_encodings`` output and anchors
    ``[ycenter, xcenter, height, width]`` (float32, (K, 4)) → float32 (K, 4)
    ``[ymin, xmin, ymax, xmax]`` in the model input's normalized coordinates (not clipped).

    (y, x) pairs in one call each: per element the same float32 operations, in the same
    order, as the API's coder: ``t / scale * anchor_size + anchor_centre`` and
    ``exp(t / scale) * anchor_size / 2`` for the half extents.
    """
    sizes = anchors[:, 2:]
    centres = scaled[:, :2] * sizes
    centres += anchors[:, :2]
    half = scaled[:, 2:] * sizes
    half *= np.float32(0.5)
    boxes = np.empty((len(scaled), 4), np.float32)
    np.subtract(centres, half, out=boxes[:, :2])
    np.add(centres, half, out=boxes[:, 2:])
    return boxes


def decode_boxes(
    encodings: np.ndarray, anchors: np.ndarray, box_scales: Sequence[float]
) -> np.ndarray:
    """TF OD API Faster R-CNN box coder, decode direction.

    encodings: float32 (K, 4) ``(ty, tx, th, tw)``; anchors: float32 (K, 4)
    ``[ycenter, xcenter, height, width]``. Returns float32 (K, 4) ``[ymin, xmin, ymax, xmax]``
    in the model input's normalized coordinates (not clipped).
    """
    return boxes_from_scaled(scale_encodings(encodings, box_scales), anchors)


_COLUMNS = np.arange(4)


class SsdDecoder(Decoder):
    type = "ssd"

    def __init__(
        self,
        anchors: np.ndarray,
        box_output: int,
        score_output: int,
        box_info: TensorInfo,
        score_info: TensorInfo,
        *,
        score_activation: str = "sigmoid",
        background_class: bool = True,
        box_scales: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        logit_scale: float = 1.0,
    ) -> None:
        if score_activation not in _ACTIVATIONS:
            raise ModelError(
                f"model card decoder.score_activation {score_activation!r} is not one of "
                f"{', '.join(_ACTIVATIONS)}"
            )
        self.anchors = anchors
        self.box_output = box_output
        self.score_output = score_output
        self.box_info = box_info
        self.score_info = score_info
        self.score_activation = score_activation
        self.first_class = 1 if background_class else 0
        self.box_scales = tuple(float(s) for s in box_scales)
        self.logit_scale = float(logit_scale)
        self._num_classes = score_info.shape[-1] - self.first_class
        # Quantized box encodings: ``scale_encodings`` of every code, per coordinate, in
        # byte order (look up ``table[codes.view(np.uint8), [0, 1, 2, 3]]``), so a frame
        # neither dequantizes nor divides nor exponentiates.
        self._scaled_codes = None
        if box_info.quantized:
            codes = np.repeat(np.arange(256, dtype=np.uint8).view(box_info.dtype)[:, None], 4, 1)
            deq = dequantize(codes, box_info.scale, box_info.zero_point)
            with np.errstate(over="ignore"):  # codes no real head emits may overflow exp
                self._scaled_codes = scale_encodings(deq, self.box_scales)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @classmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> SsdDecoder:
        if "anchors" not in spec:
            raise ModelError("model card decoder (type ssd) needs an anchors spec")
        anchors = ssd_anchors(spec["anchors"])
        n = len(anchors)
        box_pos = score_pos = None
        for pos, info in enumerate(outputs):
            shape = tuple(info.shape)
            if len(shape) >= 2 and shape[1] == n and shape[-1] == 4 and box_pos is None:
                if len(shape) == 3 or (len(shape) == 4 and shape[2] == 1):
                    box_pos = pos
                    continue
            if len(shape) == 3 and shape[1] == n and score_pos is None:
                score_pos = pos
        # A 4-class head has two [1, N, 4] outputs: fall back to names for that case.
        named = {i: t.name.lower() for i, t in enumerate(outputs)}
        if box_pos is not None and score_pos is None:
            for pos in named:
                if pos != box_pos and tuple(outputs[pos].shape)[1:2] == (n,):
                    score_pos = pos
        if box_pos is None or score_pos is None:
            shapes = ", ".join(f"{t.name}{list(t.shape)}" for t in outputs)
            raise ModelError(
                f"SSD decoder expects box encodings [1,{n},4] and class scores [1,{n},C] "
                f"for {n} anchors; the model has {shapes}. Check decoder.anchors in the card"
            )
        if "box" in named[score_pos] or "class" in named[box_pos]:
            box_pos, score_pos = score_pos, box_pos
        decoder = cls(
            anchors,
            box_pos,
            score_pos,
            outputs[box_pos],
            outputs[score_pos],
            score_activation=str(spec.get("score_activation", "sigmoid")),
            background_class=bool(spec.get("background_class", True)),
            box_scales=spec.get("box_scales", (10.0, 10.0, 5.0, 5.0)),
            logit_scale=float(spec.get("logit_scale", 1.0)),
        )
        if num_labels is not None and num_labels != decoder.num_classes:
            raise LabelCountError(
                f"the model predicts {decoder.num_classes} classes but has {num_labels} labels"
            )
        return decoder

    def _class_scores(self, raw: np.ndarray, min_score: float):
        info = self.score_info
        if self.score_activation == "softmax":
            # Softmax couples the classes of an anchor: no per-code threshold exists.
            logits = dequantize(raw, info.scale, info.zero_point) if info.quantized else raw
            logits = logits.astype(np.float32, copy=False) * np.float32(self.logit_scale)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            return filter_class_scores(probs, min_score, first_class=self.first_class)
        if self.logit_scale != 1.0:
            logits = dequantize(raw, info.scale, info.zero_point) if info.quantized else raw
            scaled = logits.astype(np.float32) * np.float32(self.logit_scale)
            return filter_class_scores(
                scaled, min_score, activation=self.score_activation, first_class=self.first_class
            )
        return filter_class_scores(
            raw,
            min_score,
            scale=info.scale,
            zero_point=info.zero_point,
            activation=self.score_activation,
            first_class=self.first_class,
        )

    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        raw_scores = outputs[self.score_output].reshape(-1, self.score_info.shape[-1])
        anchor_idx, class_idx, scores = self._class_scores(raw_scores, params.min_score)
        if len(scores) == 0:
            return Detections.empty()
        raw_boxes = outputs[self.box_output].reshape(-1, 4)[anchor_idx]
        if self._scaled_codes is not None:
            scaled = self._scaled_codes[raw_boxes.view(np.uint8), _COLUMNS]
        else:
            scaled = scale_encodings(raw_boxes.astype(np.float32, copy=False), self.box_scales)
        boxes = boxes_from_scaled(scaled, self.anchors[anchor_idx])
        return finish(boxes, scores, class_idx, params, geometry)
