"""TF1 frozen graphs of TF Object Detection API SSDs: where to cut, and what the card needs.

The API's own TFLite export (``export_tflite_ssd_graph``) cuts an SSD between the
preprocessor and the postprocessor: the input becomes the normalized image
(``Preprocessor/sub``), the outputs the raw box encodings (``concat``, one ``[ty, tx, th,
tw]`` per anchor) and class logits (``concat_1``, background first). Everything after
that (anchor decoding, sigmoid, NMS) is edgedet's decoder, so the card must carry what
the graph computed there: the anchor spec, the box coder scales, the score activation and
the logit scale. All of it is read from the graph itself, never assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.errors import ModelError

# Names the TF OD API gives these tensors (1.x exporter, all SSD meta-architectures).
PREPROCESSED_INPUT = "Preprocessor/sub"
BOX_ENCODINGS = "concat"
CLASS_PREDICTIONS = "concat_1"
ANCHORS = "Concatenate/concat"
SCORE_CONVERSION = "Postprocessor/convert_scores"
LOGIT_SCALE = "Postprocessor/scale_logits/y"
BOX_CODER_SCALES = tuple(f"Postprocessor/Decode/truediv{s}/y" for s in ("", "_1", "_2", "_3"))
IMAGE_INPUT = "image_tensor"


@dataclass
class SsdGraph:
    """What edgedet needs from an OD API SSD graph: cut points and decoder parameters."""

    graph_def: Any  # tf.compat.v1.GraphDef
    input_tensor: str  # e.g. "Preprocessor/sub:0"
    output_tensors: tuple[str, str]  # (box encodings, class predictions)
    input_height: int
    input_width: int
    mean: float = 127.5
    std: float = 127.5
    decoder: dict[str, Any] = field(default_factory=dict)  # the card's decoder block
    num_classes: int = 0  # without background
    reference_nms: dict[str, float] = field(default_factory=dict)  # the graph's own NMS
    anchors: np.ndarray | None = None  # the graph's own, float32 (N, 4) [yc, xc, h, w]


def load_graph_def(path: str | Path) -> Any:
    """Parse a frozen ``GraphDef``; `ModelError` when the file is not one."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except (DecodeError, RuntimeWarning) as exc:
        raise ModelError(
            f"{path} is not a TensorFlow frozen graph (GraphDef protobuf): {exc}; "
            "pass a .pb frozen graph, a SavedModel directory or a .keras/.h5 file"
        ) from None
    if not graph_def.node:
        raise ModelError(f"{path} holds an empty graph; pass a frozen inference graph")
    return graph_def


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _const(nodes: dict[str, Any], name: str) -> np.ndarray | None:
    from tensorflow.python.framework import tensor_util

    node = nodes.get(name)
    if node is None or node.op != "Const":
        return None
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def analyze_ssd_graph(
    graph_def: Any,
    *,
    input_tensor: str | None = None,
    output_tensors: Sequence[str] | None = None,
    input_size: tuple[int, int] | None = None,
) -> SsdGraph:
    """Find the cut tensors and the decoder parameters of an OD API SSD graph.

    ``input_tensor``/``output_tensors`` override the automatic choice (names with or
    without ``:0``; outputs in the order box encodings, class predictions). Raises
    `ModelError` naming the missing tensor and the override flag to use.
    """
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    in_name = _tensor_name(input_tensor or PREPROCESSED_INPUT)
    if output_tensors:
        if len(output_tensors) != 2:
            raise ModelError(
                "--output-tensors for an SSD frozen graph takes two names: "
                "box encodings then class predictions (e.g. concat,concat_1)"
            )
        out_names = (_tensor_name(output_tensors[0]), _tensor_name(output_tensors[1]))
    else:
        out_names = (_tensor_name(BOX_ENCODINGS), _tensor_name(CLASS_PREDICTIONS))
    for name, flag in ((in_name, "--input-tensor"), *((n, "--output-tensors") for n in out_names)):
        if name.split(":")[0] not in nodes:
            raise ModelError(
                f"tensor {name} not found in the frozen graph; name the right one with {flag} "
                '(list candidates with: python -c "import tensorflow as tf; '
                "g=tf.compat.v1.GraphDef(); g.ParseFromString(open('MODEL.pb','rb').read()); "
                'print([n.name for n in g.node])")'
            )

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    input_shape = graph.get_tensor_by_name(in_name).shape

    with tf.compat.v1.Session(graph=graph) as sess:
        height, width = _static_hw(input_shape, input_size) or _resized_hw(sess, graph, in_name)
        # A zero image is enough to evaluate the anchors and the output shapes.
        feed = {in_name: np.zeros((1, height, width, 3), np.float32)}
        fetch = {"boxes": out_names[0], "classes": out_names[1]}
        anchor_layers = _anchor_layer_names(nodes)
        for k, name in enumerate(anchor_layers):
            fetch[f"anchors{k}"] = name
        try:
            values = sess.run(fetch, feed)
        except tf.errors.OpError as exc:
            first = str(exc.message).strip().splitlines()[0][:200]
            raise ModelError(
                f"cannot run the graph from {in_name} to {', '.join(out_names)} ({first}); "
                "check --input-tensor/--output-tensors: the outputs must depend on the input "
                "only"
            ) from None

    boxes, classes = values["boxes"], values["classes"]
    num_anchors = int(np.prod(boxes.shape) // 4)
    if boxes.shape[-1] != 4:
        raise ModelError(
            f"box encodings tensor {out_names[0]} has shape {list(boxes.shape)}, expected "
            "[..., 4]; pass box encodings first in --output-tensors"
        )
    num_outputs = int(classes.shape[-1])
    if int(np.prod(classes.shape)) != num_anchors * num_outputs:
        raise ModelError(
            f"class predictions {out_names[1]} ({list(classes.shape)}) do not cover the "
            f"{num_anchors} anchors of {out_names[0]}; check --output-tensors"
        )

    decoder: dict[str, Any] = {
        "type": "ssd",
        "score_activation": _score_activation(nodes),
        "background_class": True,  # OD API SSD class predictions always lead with background
        "box_scales": _box_scales(nodes),
    }
    logit_scale = _const(nodes, LOGIT_SCALE)
    if logit_scale is not None and float(logit_scale) != 1.0:
        decoder["logit_scale"] = float(logit_scale)
    if not anchor_layers:
        raise ModelError(
            "no anchor generator output (Concatenate/concat) in the frozen graph, so the "
            "anchor spec cannot be read; convert an OD API SSD graph or a SavedModel instead"
        )
    layers = [values[f"anchors{k}"] for k in range(len(anchor_layers))]
    total = sum(len(a) for a in layers)
    if total != num_anchors:
        raise ModelError(
            f"graph has {total} anchors but {out_names[0]} encodes {num_anchors} boxes; "
            "check --output-tensors"
        )
    decoder["anchors"] = derive_anchor_spec(layers, height, width)

    mean, std = _normalization(nodes, in_name)
    return SsdGraph(
        graph_def=graph_def,
        input_tensor=in_name,
        output_tensors=out_names,
        input_height=height,
        input_width=width,
        mean=mean,
        std=std,
        decoder=decoder,
        num_classes=num_outputs - 1,
        reference_nms=_reference_nms(nodes),
        anchors=anchors_to_centers(layers),
    )


def _static_hw(shape: Any, input_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if input_size:
        return input_size
    dims = shape.as_list() if shape.rank is not None else None
    if dims and len(dims) == 4 and dims[1] and dims[2]:
        return int(dims[1]), int(dims[2])
    return None


def _resized_hw(sess: Any, graph: Any, in_name: str) -> tuple[int, int]:
    """The size the graph's own preprocessor resizes to, found by running it on two images.

    OD API graphs resize inside a ``tf.map_fn``, so the cut tensor has no static shape;
    a fixed-shape resizer gives the same size for both probes, anything else needs
    ``--input-size``.
    """
    try:
        image = graph.get_tensor_by_name(f"{IMAGE_INPUT}:0")
    except KeyError:
        image = None
    import tensorflow as tf

    sizes = set()
    if image is not None:
        for probe in ((1, 240, 320, 3), (1, 330, 250, 3)):
            try:
                out = sess.run(in_name, {image: np.zeros(probe, image.dtype.as_numpy_dtype)})
            except tf.errors.OpError:
                sizes.clear()  # the cut does not follow from image_tensor alone: ask
                break
            sizes.add(tuple(int(d) for d in out.shape[1:3]))
    if len(sizes) != 1:
        raise ModelError(f"input {in_name} has no fixed height and width; pass --input-size HxW")
    return sizes.pop()


def _anchor_layer_names(nodes: dict[str, Any]) -> list[str]:
    node = nodes.get(ANCHORS)
    if node is None or node.op != "ConcatV2":
        return []
    return [_tensor_name(i) for i in node.input[:-1]]  # last input is the axis


def _score_activation(nodes: dict[str, Any]) -> str:
    node = nodes.get(SCORE_CONVERSION)
    if node is None:
        raise ModelError(
            f"no {SCORE_CONVERSION} node: cannot tell how the graph turns logits into "
            "scores; this does not look like a TF OD API SSD graph"
        )
    activations = {"Sigmoid": "sigmoid", "Softmax": "softmax", "Identity": "none"}
    if node.op not in activations:
        raise ModelError(f"unsupported score conversion op {node.op} in {SCORE_CONVERSION}")
    return activations[node.op]


def _box_scales(nodes: dict[str, Any]) -> list[float]:
    scales = [_const(nodes, name) for name in BOX_CODER_SCALES]
    if any(s is None for s in scales):
        return [10.0, 10.0, 5.0, 5.0]  # FasterRcnnBoxCoder defaults, used by every OD API SSD
    return [float(s) for s in scales]


def _normalization(nodes: dict[str, Any], in_name: str) -> tuple[float, float]:
    """mean/std such that the cut input equals ``(pixel - mean) / std``."""
    mul, sub = _const(nodes, "Preprocessor/mul/x"), _const(nodes, "Preprocessor/sub/y")
    if in_name != _tensor_name(PREPROCESSED_INPUT) or mul is None or sub is None:
        return 127.5, 127.5  # MobileNet preprocessing, the OD API default for SSDs
    # input = pixel * mul - sub  =  (pixel - sub / mul) / (1 / mul)
    return _tidy(float(np.float32(sub) / np.float32(mul))), _tidy(float(1.0 / np.float32(mul)))


def _reference_nms(nodes: dict[str, Any]) -> dict[str, float]:
    """IoU and score thresholds of the graph's own NMS (``MultiClassNonMaxSuppression``)."""
    found: dict[str, float] = {}
    for name, node in nodes.items():
        for key in ("iou_threshold", "score_threshold"):
            if name.endswith(f"non_max_suppression/{key}") and node.op == "Const":
                found.setdefault(key, float(f"{float(_const(nodes, name)):.6g}"))
    return found


def derive_anchor_spec(layers: Sequence[np.ndarray], height: int, width: int) -> dict[str, Any]:
    """The ``ssd_anchor_generator`` spec that generated these per-layer corner anchors.

    ``layers``: one ``(n, 4)`` array of ``[ymin, xmin, ymax, xmax]`` per feature map, as
    the graph's ``MultipleGridAnchorGenerator`` emits them (per cell, per box spec). The
    spec's keys follow the TF OD API proto (``num_layers``, ``min_scale``, ``max_scale``,
    ``aspect_ratios``, ``reduce_boxes_in_lowest_layer``,
    ``interpolated_scale_aspect_ratio``) plus ``feature_map_sizes``; explicit ``scales``
    appear only when the layer scales are not linear in ``min_scale..max_scale``.
    """
    if height != width:
        # The generator shrinks base sizes by min(h, w)/h and /w; not derived here.
        raise ModelError(
            f"anchor spec derivation supports square inputs only (got {height}x{width}); "
            "write decoder.anchors into the card by hand"
        )
    fm_sizes: list[Any] = []
    specs: list[list[tuple[float, float]]] = []
    for corners in layers:
        corners = np.asarray(corners, np.float64).reshape(-1, 4)
        cy = (corners[:, 0] + corners[:, 2]) / 2
        cx = (corners[:, 1] + corners[:, 3]) / 2
        h = corners[:, 2] - corners[:, 0]
        w = corners[:, 3] - corners[:, 1]
        fm_h = len(np.unique(np.round(cy, 5)))
        fm_w = len(np.unique(np.round(cx, 5)))
        per_cell = len(corners) // (fm_h * fm_w)
        fm_sizes.append(fm_h if fm_h == fm_w else [fm_h, fm_w])
        specs.append([(math.sqrt(h[i] * w[i]), w[i] / h[i]) for i in range(per_cell)])

    reduce_lowest = (
        len(specs[0]) == 3
        and abs(specs[0][0][0] - 0.1) < 1e-5
        and abs(specs[0][0][1] - 1.0) < 1e-5
        and len(specs) > 1
        and len(specs[1]) != 3
    )
    reference = specs[1] if reduce_lowest else specs[0]
    base_scale = reference[0][0]
    same = [ar for s, ar in reference if abs(s - base_scale) < 1e-5]
    interpolated = [ar for s, ar in reference if abs(s - base_scale) >= 1e-5]
    aspect_ratios = [_tidy(ar) for ar in same]
    interp_ar = _tidy(interpolated[0]) if interpolated else -1.0

    layer_scales = [s[0][0] for s in specs]
    if reduce_lowest:
        layer_scales[0] = specs[0][1][0]
    num_layers = len(layers)
    min_scale, max_scale = layer_scales[0], layer_scales[-1]
    spec: dict[str, Any] = {
        "num_layers": num_layers,
        "min_scale": _tidy(min_scale),
        "max_scale": _tidy(max_scale),
        "aspect_ratios": aspect_ratios,
        "reduce_boxes_in_lowest_layer": bool(reduce_lowest),
        "interpolated_scale_aspect_ratio": interp_ar,
        "feature_map_sizes": fm_sizes,
    }
    linear = [
        min_scale + (max_scale - min_scale) * i / (num_layers - 1) if num_layers > 1 else min_scale
        for i in range(num_layers)
    ]
    if not np.allclose(linear, layer_scales, atol=1e-5):
        spec["scales"] = [_tidy(s) for s in layer_scales]
    return spec


def _tidy(x: float) -> float:
    """Round float32 noise off a spec value (0.33329999 → 0.3333, 127.49999 → 127.5)."""
    return float(f"{x:.5g}")


def anchors_to_centers(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenated corner anchors → float32 ``(N, 4)`` ``[ycenter, xcenter, height, width]``."""
    corners = np.concatenate([np.asarray(a, np.float64).reshape(-1, 4) for a in layers])
    centers = np.stack(
        [
            (corners[:, 0] + corners[:, 2]) / 2,
            (corners[:, 1] + corners[:, 3]) / 2,
            corners[:, 2] - corners[:, 0],
            corners[:, 3] - corners[:, 1],
        ],
        axis=1,
    )
    return centers.astype(np.float32)
