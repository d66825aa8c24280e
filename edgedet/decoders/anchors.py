"""SSD anchors, generated the way the TF Object Detection API's ``ssd_anchor_generator``
(``MultipleGridAnchorGenerator`` built by ``create_ssd_anchors``) does.

The anchor spec lives in the model card under ``decoder.anchors``; the anchors are a pure
function of it, so a converted model carries a few numbers instead of a 1917x4 table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from edgedet.errors import ModelError

_KNOWN_KEYS = {
    "num_layers",
    "min_scale",
    "max_scale",
    "scales",
    "aspect_ratios",
    "interpolated_scale_aspect_ratio",
    "reduce_boxes_in_lowest_layer",
    "base_anchor_size",
    "anchor_strides",
    "anchor_offsets",
    "feature_map_sizes",
    "image_height",
    "image_width",
}


def layer_box_specs(spec: Mapping[str, Any]) -> list[list[tuple[float, float]]]:
    """Per layer, the ``(scale, aspect_ratio)`` pairs of ``create_ssd_anchors``."""
    num_layers = int(spec.get("num_layers", 6))
    min_scale = float(spec.get("min_scale", 0.2))
    max_scale = float(spec.get("max_scale", 0.95))
    aspect_ratios = [float(a) for a in spec.get("aspect_ratios", (1.0, 2.0, 3.0, 0.5, 1.0 / 3))]
    interpolated = float(spec.get("interpolated_scale_aspect_ratio", 1.0))
    reduce_lowest = bool(spec.get("reduce_boxes_in_lowest_layer", True))
    scales = spec.get("scales") or []
    if scales:
        scales = [float(s) for s in scales] + [1.0]
    elif num_layers == 1:
        scales = [min_scale, 1.0]
    else:
        scales = [
            min_scale + (max_scale - min_scale) * i / (num_layers - 1) for i in range(num_layers)
        ] + [1.0]
    specs = []
    for layer, (scale, scale_next) in enumerate(zip(scales[:-1], scales[1:], strict=True)):
        if layer == 0 and reduce_lowest:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        boxes = [(scale, ratio) for ratio in aspect_ratios]
        if interpolated > 0.0:
            boxes.append((float(np.sqrt(scale * scale_next)), interpolated))
        specs.append(boxes)
    return specs


def _pair(value: Any) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    a, b = value
    return float(a), float(b)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def ssd_anchors(spec: Mapping[str, Any]) -> np.ndarray:
    """Anchors as float32 (N, 4) ``[ycenter, xcenter, height, width]``, normalized.

    Order is the TF OD API's: layer by layer, then grid row, grid column, box spec.
    Centre/size are recomputed from the float32 corners, as the API's box coder does,
    so decoded boxes match the original graph to float32 rounding.
    """
    unknown = set(spec) - _KNOWN_KEYS
    if unknown:
        raise ModelError(
            f"model card decoder.anchors has unknown keys {sorted(unknown)}; "
            f"known: {sorted(_KNOWN_KEYS)}"
        )
    return _ssd_anchors_cached(_freeze(dict(spec))).copy()


@lru_cache(maxsize=8)
def _ssd_anchors_cached(frozen: tuple) -> np.ndarray:
    spec = {k: v for k, v in frozen}
    sizes = spec.get("feature_map_sizes")
    if not sizes:
        raise ModelError("model card decoder.anchors needs feature_map_sizes (one per layer)")
    grids = [_pair(s) for s in sizes]
    box_specs = layer_box_specs(spec)
    if len(grids) != len(box_specs):
        raise ModelError(
            f"model card decoder.anchors: {len(grids)} feature_map_sizes but "
            f"num_layers/scales give {len(box_specs)} layers"
        )
    im_h = float(spec.get("image_height", 1.0))
    im_w = float(spec.get("image_width", 1.0))
    min_side = min(im_h, im_w)
    base_h, base_w = _pair(spec.get("base_anchor_size", (1.0, 1.0)))
    base_h *= min_side / im_h
    base_w *= min_side / im_w
    strides = spec.get("anchor_strides")
    offsets = spec.get("anchor_offsets")
    parts = []
    for layer, ((grid_h, grid_w), boxes) in enumerate(zip(grids, box_specs, strict=True)):
        if strides:
            stride_y, stride_x = _pair(strides[layer])
        else:
            stride_y, stride_x = 1.0 / grid_h, 1.0 / grid_w
        if offsets:
            offset_y, offset_x = _pair(offsets[layer])
        else:
            offset_y, offset_x = 0.5 * stride_y, 0.5 * stride_x
        f32 = np.float32
        scales = np.array([s for s, _ in boxes], f32)
        ratio_sqrts = np.sqrt(np.array([r for _, r in boxes], f32))
        heights = scales / ratio_sqrts * f32(base_h)
        widths = scales * ratio_sqrts * f32(base_w)
        y_centers = np.arange(int(grid_h), dtype=f32) * f32(stride_y) + f32(offset_y)
        x_centers = np.arange(int(grid_w), dtype=f32) * f32(stride_x) + f32(offset_x)
        yc = np.broadcast_to(y_centers[:, None, None], (int(grid_h), int(grid_w), len(boxes)))
        xc = np.broadcast_to(x_centers[None, :, None], yc.shape)
        hh = np.broadcast_to(heights[None, None, :], yc.shape)
        ww = np.broadcast_to(widths[None, None, :], yc.shape)
        ymin, ymax = yc - f32(0.5) * hh, yc + f32(0.5) * hh
        xmin, xmax = xc - f32(0.5) * ww, xc + f32(0.5) * ww
        parts.append(
            np.stack(
                [(ymin + ymax) / f32(2), (xmin + xmax) / f32(2), ymax - ymin, xmax - xmin], axis=-1
            ).reshape(-1, 4)
        )
    return np.concatenate(parts).astype(np.float32)


def anchors_per_location(spec: Mapping[str, Any]) -> Sequence[int]:
    """Number of anchors per grid cell, per layer."""
    return [len(b) for b in layer_box_specs(spec)]
