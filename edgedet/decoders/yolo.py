"""YOLO heads as Ultralytics exports them to TFLite: YOLOv5 and YOLOv8/v11.

Layouts (one output tensor, batch 1):

- **YOLOv5** ``[1, N, 5 + C]``: per anchor ``cx, cy, w, h, objectness`` then ``C`` class
  scores. A candidate's score is ``objectness * class_score`` (as Ultralytics scores it),
  computed in float32.
- **YOLOv8 / YOLOv11** ``[1, 4 + C, N]`` (Ultralytics' layout, "channels first"): rows
  ``cx, cy, w, h`` then ``C`` class scores, no objectness. The transposed
  ``[1, N, 4 + C]`` is accepted when unambiguous: with a card (``type: yolov8``) and
  ``N > 4 + C``, or with ``layout: channels_last`` in the card, or when the label count
  fits only that axis. Without a card, `cardless_spec` tells the layouts apart by the
  anchor count (one or three anchors per grid cell of the input size); when that does not
  decide, a ``[1, big, small]`` tensor is identified as YOLOv5 (the shapes alone cannot
  tell), so a transposed YOLOv8 head with an unusual grid needs a card.
- **NMS included** ``[1, N, 6]`` (Ultralytics ``nms=True``, end-to-end YOLOv10/YOLO26
  exports; decoder type ``yolo_nms``): rows ``x1, y1, x2, y2, score, class`` after the
  model's own NMS, see `YoloNmsDecoder`.

Boxes are centre/size ``(cx, cy, w, h)`` either in model-input pixels or normalized to the
input. Card key ``box_units: pixels | normalized`` decides. Otherwise (``auto``, and for
every card-less Ultralytics export, whose routes differ: ``litert`` and ``edgetpu`` write
normalized boxes, ``saved_model`` pixels), from the geometry when the anchor count is that of
Ultralytics' grid for the input size (strides 8, 16, 32; one anchor per cell for YOLOv8,
three for YOLOv5, centres at ``(col + 0.5) * stride``): a head's box centres lie within a
few strides of their anchor's centre, so the frame's ``cx, cy`` over all anchors are
compared with the anchor centres in pixels and in normalized units, and the closer reading
wins (the median distance differs by about the input size between the two). The decision
is made on the first frame and kept. Heads whose anchor count fits no such grid fall back
to the value range:

- quantized head: ``pixels`` when the largest value the tensor can represent,
  ``(qmax - zero_point) * scale``, exceeds 2.0 (one tensor holds boxes and scores, so its
  range is about 1 for normalized boxes and about the input size for pixel boxes);
- float head: ``pixels`` when the largest ``cx`` over *all* anchors of the frame exceeds
  2.0 (anchor centres cover the whole input, so a pixel head always has ``cx`` near the
  input width; a normalized one never exceeds about 1).

Scores are probabilities (``score_activation: none``, Ultralytics applies the sigmoid
before export) or logits (``sigmoid``). For YOLOv5 the class scores must be probabilities
in [0, 1] for float heads; for quantized heads any representable range is handled.

Per frame, exactly (DESIGN.md): a candidate is kept when its score ``>= min_score``
(the score rounded as float32, compared with ``min_score`` as
`edgedet.postprocess.score_filter` does), candidates are enumerated anchor-major then
class, NMS ties go to the lower anchor then the lower class, per-class NMS unless
``agnostic``, ``max_detections`` after NMS. By default each anchor proposes only its best
class (``argmax``, the first on ties; Ultralytics' default, ``multi_label: false``); with
``multi_label: true`` every (anchor, class) pair at or above ``min_score`` is a candidate.

Quantized heads are filtered on raw codes: YOLOv8 through
`edgedet.postprocess.filter_max_class_scores` / `filter_class_scores`. YOLOv5 first keeps
anchors whose objectness code reaches the threshold code of
``min_score / max_class_score * (1 - 1e-6)`` (``max_class_score`` = the largest class
score the tensor can represent, at least 1): since ``objectness * class <= objectness *
max_class_score``, no anchor whose product can pass is dropped, and the 1e-6 margin covers
float32 rounding of the product. The exact product test then runs on the survivors only.
Only survivors' boxes are dequantized and decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgedet.decoders.base import DecodeParams, Decoder, FrameGeometry, TensorInfo, finish
from edgedet.detections import Detections
from edgedet.errors import LabelCountError, ModelError
from edgedet.postprocess import (
    code_scores,
    dequantize,
    filter_class_scores,
    filter_max_class_scores,
    logit_prefilter_threshold,
    sigmoid,
    threshold_code,
)

BOX_UNITS = ("auto", "pixels", "normalized")
SCORE_ACTIVATIONS = ("none", "sigmoid")
LAYOUTS = ("auto", "channels_first", "channels_last")

# Box values above this are input pixels, not normalized coordinates (see module docstring).
_PIXEL_UNITS_BOUND = 2.0
# Ultralytics' detection strides (P3, P4, P5); its heads order anchors level by level.
ULTRALYTICS_STRIDES = (8, 16, 32)
# Relative margin of the YOLOv5 objectness pre-filter; covers float32 rounding of the
# product and of min_score (both ~6e-8 relative) with a wide berth.
_PRODUCT_MARGIN = 1e-6


def _spec_choice(spec: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = spec.get(key, default)
    if value not in choices:
        raise ModelError(
            f"model card decoder.{key} is {value!r}; expected one of: {', '.join(choices)}"
        )
    return str(value)


def _check_keys(spec: Mapping[str, Any], allowed: tuple[str, ...], family: str) -> None:
    unknown = sorted(set(spec) - {"type", *allowed})
    if unknown:
        raise ModelError(
            f"model card decoder has unknown key(s) {', '.join(unknown)} for {family}; "
            f"allowed: type, {', '.join(allowed)}"
        )


def _spec_bool(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise ModelError(f"model card decoder.{key} is {value!r}; expected true or false")
    return value


def _head_tensor(family: str, outputs: Sequence[TensorInfo]) -> tuple[int, TensorInfo]:
    """The single 3-D batch-1 output of a YOLO model, with its position in ``outputs``."""
    heads = [(i, t) for i, t in enumerate(outputs) if len(t.shape) == 3 and t.shape[0] == 1]
    if len(outputs) != 1 or len(heads) != 1:
        shapes = ", ".join(str(list(t.shape)) for t in outputs)
        raise ModelError(
            f"a {family} model has one output of shape [1, A, B]; this model has {shapes}"
        )
    position, info = heads[0]
    if info.dtype.kind == "f":
        return position, info
    if info.scale is None or info.dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise ModelError(
            f"{family} output {info.name!r} is {info.dtype} without per-tensor quantization; "
            "expected float32, or uint8/int8 with one scale and zero point"
        )
    return position, info


def _max_value(info: TensorInfo) -> float:
    """Largest real value a quantized tensor can represent."""
    assert info.scale is not None
    return (float(np.iinfo(info.dtype).max) - info.zero_point) * info.scale


def _static_box_units(box_units: str, info: TensorInfo) -> str:
    """Resolve ``auto`` units once for quantized heads; float heads stay ``auto``."""
    if box_units != "auto" or not info.quantized:
        return box_units
    return "pixels" if _max_value(info) > _PIXEL_UNITS_BOUND else "normalized"


def grid_size(height: int, width: int, strides: Sequence[int] = ULTRALYTICS_STRIDES) -> int:
    """Number of grid cells of an Ultralytics head over a ``height`` x ``width`` input
    (each stride-2 stage rounds up, so a level has ``ceil(H / s) * ceil(W / s)`` cells)."""
    return sum(-(-height // s) * -(-width // s) for s in strides)


def anchor_centres(
    height: int,
    width: int,
    per_cell: int = 1,
    strides: Sequence[int] = ULTRALYTICS_STRIDES,
) -> np.ndarray:
    """(N, 2) anchor centres ``(x, y)`` in input pixels, in Ultralytics' order: level by
    level, then (YOLOv5: anchor,) row, column; centres at ``(index + 0.5) * stride``."""
    levels = []
    for s in strides:
        rows, cols = -(-height // s), -(-width // s)
        y, x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32) + 0.5
        levels.append(np.tile(centres * np.float32(s), (per_cell, 1)))
    return np.concatenate(levels)


def _check_labels(family: str, info: TensorInfo, num_classes: int, num_labels: int | None) -> None:
    if num_labels is not None and num_labels != num_classes:
        raise LabelCountError(
            f"the label list has {num_labels} labels but the {family} head "
            f"(output shape {list(info.shape)}) predicts {num_classes} classes"
        )


class _YoloDecoder(Decoder):
    """Shared decoding: survivors' boxes → NMS → frame coordinates."""

    def __init__(
        self,
        position: int,
        info: TensorInfo,
        num_classes: int,
        *,
        box_units: str,
        score_activation: str,
        multi_label: bool,
    ) -> None:
        self._position = position
        self._info = info
        self._num_classes = num_classes
        self._box_units = _static_box_units(box_units, info)
        # "auto" from the card (or none): the anchor geometry may decide (see the module
        # docstring); decided on the first frame whose input size fits, then kept.
        self._auto_units = box_units == "auto"
        self._geometry_units: dict[tuple[int, int], bool | None] = {}
        self._activation = score_activation
        self._multi_label = multi_label

    # Anchors per grid cell (YOLOv5 has three).
    _per_cell = 1

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def box_units(self) -> str:
        """The card's units, or for ``auto`` the value-range reading (``auto`` for float
        heads); when the anchor count fits Ultralytics' grid, the geometry overrides it."""
        return self._box_units

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        info = self._info
        if info.scale is None:
            return values.astype(np.float32, copy=False)
        return dequantize(values, info.scale, info.zero_point)

    def _pixels(self, centres_raw: np.ndarray, geometry: FrameGeometry) -> bool:
        """Whether this frame's boxes are in input pixels (``centres_raw``: raw ``cx, cy``
        of all anchors, shape (N, 2))."""
        if self._auto_units:
            size = (geometry.input_height, geometry.input_width)
            if size not in self._geometry_units:
                self._geometry_units[size] = self._units_from_geometry(centres_raw, *size)
            decided = self._geometry_units[size]
            if decided is not None:
                return decided
        if self._box_units != "auto":
            return self._box_units == "pixels"
        return bool(np.nanmax(centres_raw[:, 0], initial=0.0) > _PIXEL_UNITS_BOUND)

    def _units_from_geometry(self, centres_raw: np.ndarray, height: int, width: int) -> bool | None:
        """Pixels (True) or normalized (False) by the anchor grid; None when the anchor
        count is not that of Ultralytics' grid for this input size."""
        if len(centres_raw) != self._per_cell * grid_size(height, width):
            return None
        grid = anchor_centres(height, width, self._per_cell)
        centres = self._dequantize(np.ascontiguousarray(centres_raw))
        size = np.array([width, height], np.float32)
        as_pixels = np.nanmedian(np.abs(centres - grid))
        as_normalized = np.nanmedian(np.abs(centres * size - grid))
        if np.isnan(as_pixels) or np.isnan(as_normalized):
            return None
        return bool(as_pixels < as_normalized)

    def _finish(
        self,
        xywh: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        pixels: bool,
        params: DecodeParams,
        geometry: FrameGeometry,
    ) -> Detections:
        """Candidates (raw ``cx, cy, w, h`` rows, scores, classes) → final `Detections`."""
        xywh = self._dequantize(xywh)
        cx, cy, w, h = xywh[:, 0], xywh[:, 1], xywh[:, 2], xywh[:, 3]
        if pixels:
            cx = cx / np.float32(geometry.input_width)
            w = w / np.float32(geometry.input_width)
            cy = cy / np.float32(geometry.input_height)
            h = h / np.float32(geometry.input_height)
        half_w = w * np.float32(0.5)
        half_h = h * np.float32(0.5)
        boxes = np.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], axis=1)
        return finish(boxes, scores, class_ids, params, geometry)


class Yolov8Decoder(_YoloDecoder):
    """YOLOv8/v11 head ``[1, 4 + C, N]`` (or ``[1, N, 4 + C]``); see the module docstring.

    Card keys (``decoder:``): ``box_units`` (auto|pixels|normalized), ``score_activation``
    (none|sigmoid), ``layout`` (auto|channels_first|channels_last), ``multi_label`` (bool);
    any other key is a `ModelError`.
    """

    type = "yolov8"

    def __init__(
        self, position: int, info: TensorInfo, num_classes: int, *, layout: str, **options: Any
    ) -> None:
        super().__init__(position, info, num_classes, **options)
        self._layout = layout

    @property
    def layout(self) -> str:
        """``channels_first`` (``[1, 4 + C, N]``) or ``channels_last`` (``[1, N, 4 + C]``)."""
        return self._layout

    @classmethod
    def matches(cls, outputs: Sequence[TensorInfo]) -> bool:
        """One output ``[1, 4 + C, N]`` with ``C >= 1`` and ``N > 4 + C`` (Ultralytics layout)."""
        if len(outputs) != 1:
            return False
        shape = outputs[0].shape
        return len(shape) == 3 and shape[0] == 1 and 5 <= shape[1] < shape[2]

    @classmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> Yolov8Decoder:
        """Bind the head. Layout: card ``layout``; else the axis equal to ``4 + num_labels``
        (the channels-first axis when both are); else the smaller axis holds ``4 + C``
        (channels first when equal). Raises `ModelError` when the shape cannot be a YOLOv8
        head or ``num_labels`` disagrees with its class count."""
        _check_keys(spec, ("box_units", "score_activation", "layout", "multi_label"), "YOLOv8")
        position, info = _head_tensor("YOLOv8", outputs)
        layout = _spec_choice(spec, "layout", LAYOUTS, "auto")
        _, rows, cols = info.shape
        if layout == "auto":
            if num_labels is not None and 4 + num_labels in (rows, cols):
                layout = "channels_first" if rows == 4 + num_labels else "channels_last"
            else:
                layout = "channels_first" if rows <= cols else "channels_last"
        features = rows if layout == "channels_first" else cols
        if features < 5:
            raise ModelError(
                f"YOLOv8 output {info.name!r} has shape {list(info.shape)}: with layout "
                f"{layout} that is {features} values per anchor, need 4 box values and at "
                "least one class score"
            )
        num_classes = features - 4
        _check_labels("YOLOv8", info, num_classes, num_labels)
        return cls(
            position,
            info,
            num_classes,
            layout=layout,
            box_units=_spec_choice(spec, "box_units", BOX_UNITS, "auto"),
            score_activation=_spec_choice(spec, "score_activation", SCORE_ACTIVATIONS, "none"),
            multi_label=_spec_bool(spec, "multi_label", False),
        )

    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        """Raw head → `Detections` (see the module docstring for the exact contract)."""
        head = outputs[self._position][0]
        # (N, 4 + C) either way; the transpose is a view, nothing is copied.
        anchor_rows = head.T if self._layout == "channels_first" else head
        select = filter_class_scores if self._multi_label else filter_max_class_scores
        info = self._info
        anchors, class_ids, scores = select(
            anchor_rows,
            params.min_score,
            scale=info.scale,
            zero_point=info.zero_point,
            activation=self._activation,
            first_class=4,
        )
        if anchors.size == 0:
            return Detections.empty()
        pixels = self._pixels(anchor_rows[:, :2], geometry)
        return self._finish(anchor_rows[anchors, :4], scores, class_ids, pixels, params, geometry)


class Yolov5Decoder(_YoloDecoder):
    """YOLOv5 head ``[1, N, 5 + C]``, score = objectness × class; see the module docstring.

    Card keys (``decoder:``): ``box_units`` (auto|pixels|normalized), ``score_activation``
    (none|sigmoid, applied to objectness and class scores alike), ``multi_label`` (bool);
    any other key is a `ModelError`.
    """

    type = "yolov5"
    _per_cell = 3

    @classmethod
    def matches(cls, outputs: Sequence[TensorInfo]) -> bool:
        """One output ``[1, N, 5 + C]`` with ``C >= 1`` and ``N > 5 + C``."""
        if len(outputs) != 1:
            return False
        shape = outputs[0].shape
        return len(shape) == 3 and shape[0] == 1 and 6 <= shape[2] < shape[1]

    @classmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> Yolov5Decoder:
        """Bind the head ``[1, N, 5 + C]``. Raises `ModelError` when the last axis is shorter
        than 6 or ``num_labels`` disagrees with ``C``."""
        _check_keys(spec, ("box_units", "score_activation", "multi_label"), "YOLOv5")
        position, info = _head_tensor("YOLOv5", outputs)
        features = info.shape[2]
        if features < 6:
            raise ModelError(
                f"YOLOv5 output {info.name!r} has shape {list(info.shape)}: the last axis "
                "must hold cx, cy, w, h, objectness and at least one class score"
            )
        num_classes = features - 5
        _check_labels("YOLOv5", info, num_classes, num_labels)
        return cls(
            position,
            info,
            num_classes,
            box_units=_spec_choice(spec, "box_units", BOX_UNITS, "auto"),
            score_activation=_spec_choice(spec, "score_activation", SCORE_ACTIVATIONS, "none"),
            multi_label=_spec_bool(spec, "multi_label", False),
        )

    def _objectness_candidates(self, objectness: np.ndarray, min_score: float) -> np.ndarray:
        """Anchors whose objectness can still give a passing product (a superset, exact)."""
        info = self._info
        if info.scale is not None:
            table = code_scores(info.scale, info.zero_point, info.dtype, self._activation)
            max_class = max(1.0, float(np.nanmax(table)))
            bound = float(min_score) / max_class * (1.0 - _PRODUCT_MARGIN)
            code = threshold_code(bound, info.scale, info.zero_point, info.dtype, self._activation)
            if code is None:
                return np.zeros(0, np.int64)
            return np.flatnonzero(objectness >= info.dtype.type(code))
        bound = float(min_score) * (1.0 - _PRODUCT_MARGIN)
        if self._activation == "sigmoid":
            bound = logit_prefilter_threshold(bound)
        return np.flatnonzero(objectness >= np.float32(bound))

    def _activated(self, values: np.ndarray) -> np.ndarray:
        values = self._dequantize(values)
        return sigmoid(values) if self._activation == "sigmoid" else values

    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        """Raw head → `Detections` (see the module docstring for the exact contract)."""
        head = outputs[self._position][0]
        rows = self._objectness_candidates(head[:, 4], params.min_score)
        if rows.size == 0:
            return Detections.empty()
        objectness = self._activated(head[rows, 4])
        products = objectness[:, None] * self._activated(head[rows, 5:])  # float32 (S, C)
        if self._multi_label:
            which, class_ids = np.nonzero(products >= params.min_score)
            scores = products[which, class_ids]
        else:
            # NaN must neither win argmax nor pass; -inf does neither.
            products = np.where(np.isnan(products), np.float32(-np.inf), products)
            best = products.argmax(axis=1)
            best_scores = products[np.arange(len(rows)), best]
            which = np.flatnonzero(best_scores >= params.min_score)
            class_ids, scores = best[which], best_scores[which]
        if which.size == 0:
            return Detections.empty()
        anchors = rows[which]
        pixels = self._pixels(head[:, :2], geometry)
        return self._finish(head[anchors, :4], scores, class_ids, pixels, params, geometry)


class YoloNmsDecoder(Decoder):
    """Exports with NMS inside: one output ``[1, N, 6]``, rows ``x1, y1, x2, y2, score,
    class`` (Ultralytics ``nms=True``; end-to-end YOLOv10/YOLO26 heads).

    The model has already filtered by its export-time ``conf`` and suppressed overlaps at
    its export-time ``iou`` (Ultralytics defaults 0.25 and 0.7, recorded in the embedded
    metadata), and pads the rest with zero rows. Per frame: rows whose score is ``>=
    min_score`` are kept (exact, as everywhere: the float32 score compared with
    ``min_score``; all-zero padding rows are never detections), boxes are mapped to the
    frame and clipped, and `finish` runs NMS at ``iou_threshold`` once more. That second
    pass is the same rule the model applied, so with ``iou_threshold`` at or above the
    export's it removes nothing that the model kept (except where clipping to the frame
    makes two boxes overlap more); with a lower ``iou_threshold`` it suppresses further, so
    the result always meets the NMS contract of DESIGN.md. Scores below the export's
    ``conf`` were dropped inside the model and cannot come back.

    Card keys (``decoder:``): ``box_units`` (pixels|normalized; ``auto`` means normalized).
    For card-less Ultralytics exports `cardless_spec` picks the units from the metadata:
    ``format="saved_model", nms=True`` and LiteRT end-to-end files hold pixels,
    ``format="edgetpu"`` files normalized boxes.
    """

    type = "yolo_nms"

    def __init__(self, position: int, info: TensorInfo, box_units: str) -> None:
        self._position = position
        self._info = info
        self._pixels = box_units == "pixels"

    @classmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> YoloNmsDecoder:
        """Bind the ``[1, N, 6]`` output. Raises `ModelError` for any other shape."""
        _check_keys(spec, ("box_units",), "yolo_nms")
        position, info = _head_tensor("yolo_nms", outputs)
        if info.shape[2] != 6:
            raise ModelError(
                f"an NMS-included (yolo_nms) model has one output [1, N, 6] "
                f"(x1, y1, x2, y2, score, class); output {info.name!r} is {list(info.shape)}"
            )
        return cls(position, info, _spec_choice(spec, "box_units", BOX_UNITS, "auto"))

    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        """Raw rows → `Detections` (see the class docstring for the exact contract)."""
        rows = outputs[self._position][0]
        info = self._info
        if info.scale is not None:
            rows = dequantize(rows, info.scale, info.zero_point)
        rows = rows.astype(np.float32, copy=False)
        scores = rows[:, 4]
        keep = np.flatnonzero((scores >= np.float32(params.min_score)) & np.any(rows != 0, axis=1))
        if keep.size == 0:
            return Detections.empty()
        x1, y1, x2, y2 = (rows[keep, i] for i in range(4))
        if self._pixels:
            x1, x2 = x1 / np.float32(geometry.input_width), x2 / np.float32(geometry.input_width)
            y1, y2 = y1 / np.float32(geometry.input_height), y2 / np.float32(geometry.input_height)
        boxes = np.stack([y1, x1, y2, x2], axis=1)
        class_ids = np.rint(rows[keep, 5]).astype(np.int64)
        return finish(boxes, scores[keep], class_ids, params, geometry)


def _metadata_names(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """Ultralytics' ``names`` ({id: name}, ids as ints or strings; or a list) in id order."""
    names = metadata.get("names")
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    if not isinstance(names, Mapping) or not names:
        return ()
    try:
        by_id = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        return ()
    return tuple(by_id.get(i, str(i)) for i in range(max(by_id) + 1))


def cardless_spec(
    outputs: Sequence[TensorInfo],
    input_size: tuple[int, int],
    input_layout: str,
    metadata: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """Decoder spec and labels for a model without a card when it is a YOLO export; None
    when it is not one (the decoder is then identified by `edgedet.decoders.build_decoder`).

    With Ultralytics' embedded ``metadata`` (`edgedet.modelcard.ultralytics_metadata`):
    only ``task: detect`` runs; ``args.nms`` or ``end2end`` means NMS included
    (``yolo_nms``; boxes in pixels except from the ``edgetpu`` route, the NHWC export
    whose ``args`` have no ``nms`` key, which normalizes them), else a YOLOv8-style head
    ``[1, 4 + C, N]`` whose box units the anchor grid decides (``format="litert"`` and
    ``"edgetpu"`` write normalized boxes, ``format="saved_model"`` pixels); labels are
    ``names``.
    ``imgsz`` must be the input tensor's size and the anchor count that of the grid of
    strides up to ``stride``.

    Without metadata, one ``[1, A, B]`` output is read by its geometry (``input_size`` is
    ``(height, width)``): ``[1, 4 + C, N]`` with ``N`` the grid's cell count is YOLOv8;
    ``[1, N, 5 + C]`` with three anchors per cell is YOLOv5, with one per cell a
    transposed YOLOv8; any other ``[1, N, 6]`` is NMS-included. Labels are then empty.
    Raises `ModelError` for Ultralytics models edgedet cannot run.
    """
    height, width = input_size
    if metadata:
        task = metadata.get("task", "detect")
        if task != "detect":
            raise ModelError(
                f"this is an Ultralytics {task} model; edgedet runs detection models "
                "(task detect): export a detection model"
            )
        shapes = ", ".join(str(list(t.shape)) for t in outputs)
        if len(outputs) != 1 or len(outputs[0].shape) != 3:
            raise ModelError(
                f"this Ultralytics detection export has outputs {shapes}; expected one "
                "[1, 4 + classes, anchors] head or one [1, N, 6] NMS output"
            )
        imgsz = metadata.get("imgsz")
        if (
            isinstance(imgsz, list)
            and len(imgsz) == 2
            and [int(v) for v in imgsz] != [height, width]
        ):
            raise ModelError(
                f"the embedded Ultralytics metadata says imgsz {list(imgsz)} but the input "
                f"tensor is {height}x{width}; re-export the model"
            )
        labels = _metadata_names(metadata)
        args = metadata.get("args") if isinstance(metadata.get("args"), Mapping) else {}
        if metadata.get("end2end") or args.get("nms"):
            # Ultralytics 8.4: only the edgetpu route (NHWC, and the one whose args have
            # no "nms" key) normalizes post-NMS boxes; litert and saved_model write pixels.
            normalized = input_layout == "nhwc" and "nms" not in args
            return {
                "type": "yolo_nms",
                "box_units": "normalized" if normalized else "pixels",
            }, labels
        stride = int(metadata.get("stride", ULTRALYTICS_STRIDES[-1]))
        strides = tuple(s for s in ULTRALYTICS_STRIDES if s <= stride) or ULTRALYTICS_STRIDES
        cols = outputs[0].shape[2]
        if cols != grid_size(height, width, strides):
            raise ModelError(
                f"this Ultralytics detection export has output {shapes}; for a "
                f"{height}x{width} input with strides {list(strides)} expected "
                f"[1, 4 + classes, {grid_size(height, width, strides)}]"
            )
        # Units from the anchor grid (checked above): the LiteRT and edgetpu routes write
        # normalized boxes, format="saved_model" pixels, and the metadata does not say
        # which route wrote the file.
        return {"type": "yolov8", "layout": "channels_first"}, labels
    if len(outputs) != 1 or len(outputs[0].shape) != 3 or outputs[0].shape[0] != 1:
        return None
    _, rows, cols = outputs[0].shape
    cells = grid_size(height, width)
    if cols == cells and rows >= 5:
        return {"type": "yolov8", "layout": "channels_first"}, ()
    if rows == cells and cols >= 5:
        return {"type": "yolov8", "layout": "channels_last"}, ()
    if rows == 3 * cells and cols >= 6:
        return {"type": "yolov5"}, ()
    if cols == 6:
        return {"type": "yolo_nms"}, ()
    return None
