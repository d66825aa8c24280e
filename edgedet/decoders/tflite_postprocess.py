"""Models that end in TFLite's ``TFLite_Detection_PostProcess`` custom op.

Coral's and TensorFlow's exported SSD and EfficientDet-Lite models decode anchors and run
their own NMS inside the op, which has four outputs (batch 1, ``M`` = the op's
``max_detections``):

- boxes ``[1, M, 4]``: ``[ymin, xmin, ymax, xmax]`` normalized to the model input;
- classes ``[1, M]``: class index as a float. The op drops the background column, so
  index 0 is the first real class (for a TF Object Detection API label map that starts at
  id 1, index 0 is label id 1: the label file lists the classes without background);
- scores ``[1, M]``: in [0, 1], descending;
- count ``[1]``: how many rows are valid. Rows past the count are left uninitialized by
  the op and never read.

All four are float32 in the usual export; a converter asked for integer outputs appends
quantize ops, so quantized outputs are accepted too (dequantized; classes and count are
rounded to the nearest integer).

**Which tensor is which.** Never by position alone, in this order:

1. the card's ``decoder.outputs`` mapping (``boxes``/``classes``/``scores``/``count`` →
   tensor name), when given;
2. tensor names: TF1 exports name the op's outputs ``TFLite_Detection_PostProcess``,
   ``…:1``, ``…:2``, ``…:3`` (boxes, classes, scores, count, the op's own order); other
   exports may carry ``detection_boxes``, ``detection_classes``, ``detection_scores``,
   ``num_detections`` in the name;
3. shapes: boxes are the ``[1, M, 4]`` tensor and count the one-element tensor. Classes
   and scores are both ``[1, M]`` and, in TF2 exports (names like
   ``StatefulPartitionedCall:1``, signature names ``output_1``/``output_2``), nothing
   in the model description tells them apart. They are then told apart by value on
   the first frame that decides it: class ids are integral, scores are not (a column
   with a non-integral value is the scores) or a column with a value above 1 is the
   classes. The decision is kept for later frames. While no frame has decided (every
   valid value so far is 0 or 1), the pair follows the TF2 Object Detection API export
   order: the tensor whose name ends in the lower number (``:1`` / ``output_1``) is the
   scores.

Per frame, edgedet then applies its own exact semantics on top of the op's output:
score filter ``>= min_score``, greedy NMS with the caller's IoU threshold (per-class, or
class-agnostic), ``max_detections`` after NMS, boxes mapped through
`FrameGeometry.to_frame`, boxes with no area left after clipping dropped, then NMS on
the frame boxes (`edgedet.decoders.base.finish`, as every decoder).

The op's own class count is not in the output shapes, so ``num_classes`` is None and a
label list of any length is accepted; a class id past the end of the labels is reported
under its number (see `Detections.label`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgedet.decoders.base import DecodeParams, Decoder, FrameGeometry, TensorInfo, finish
from edgedet.detections import Detections
from edgedet.errors import ModelError
from edgedet.postprocess import dequantize, filter_class_scores

OP_NAME = "TFLite_Detection_PostProcess"
ROLES = ("boxes", "classes", "scores", "count")

# The op's own output order; TF1 exports name its outputs ``OP_NAME``, ``OP_NAME:1``, ...
_OP_SUFFIX_ROLES = {"": "boxes", ":0": "boxes", ":1": "classes", ":2": "scores", ":3": "count"}
# Words that name a role outright, most specific first.
_NAME_WORDS = (
    ("num_detections", "count"),
    ("detection_classes", "classes"),
    ("detection_scores", "scores"),
    ("detection_boxes", "boxes"),
)


def _role_from_name(name: str) -> str | None:
    """The role a tensor name states, or None when the name says nothing."""
    position = name.rfind(OP_NAME)
    if position >= 0:
        suffix = name[position + len(OP_NAME) :]
        if suffix in _OP_SUFFIX_ROLES:
            return _OP_SUFFIX_ROLES[suffix]
    lowered = name.lower()
    for word, role in _NAME_WORDS:
        if word in lowered:
            return role
    return None


def _shape_role(info: TensorInfo) -> str | None:
    """``boxes``, ``count`` or ``pair`` (classes or scores) from the shape alone."""
    shape = info.shape
    if len(shape) == 3 and shape[0] == 1 and shape[2] == 4:
        return "boxes"
    if len(shape) == 2 and shape[0] == 1:
        return "pair"
    if len(shape) <= 1 and int(np.prod(shape, dtype=np.int64)) == 1:
        return "count"
    return None


def _describe(outputs: Sequence[TensorInfo]) -> str:
    return ", ".join(f"{t.name or t.index}{list(t.shape)}" for t in outputs)


def _bind_roles(spec: Mapping[str, Any], outputs: Sequence[TensorInfo]) -> dict[str, int]:
    """Role → position in ``outputs``; classes/scores may be missing (decided by value)."""
    if len(outputs) != 4:
        raise ModelError(
            f"a {OP_NAME} model has 4 outputs (boxes, classes, scores, count); this model "
            f"has {len(outputs)}: {_describe(outputs)}"
        )
    unknown = sorted(set(spec) - {"type", "outputs"})
    if unknown:
        raise ModelError(
            f"model card decoder has unknown key(s) {', '.join(unknown)} for "
            f"{OP_NAME} outputs; allowed: type, outputs"
        )
    roles: dict[str, int] = {}
    by_name = {t.name: i for i, t in enumerate(outputs)}
    named = spec.get("outputs")
    if named is not None:
        if not isinstance(named, Mapping) or set(named) - set(ROLES):
            raise ModelError(
                f"model card decoder.outputs must map {', '.join(ROLES)} to output tensor names"
            )
        for role, name in named.items():
            if name not in by_name:
                raise ModelError(
                    f"model card decoder.outputs.{role} names tensor {name!r}, which is not "
                    f"an output of the model ({_describe(outputs)})"
                )
            roles[role] = by_name[name]
    for position, info in enumerate(outputs):
        if position in roles.values():
            continue
        role = _role_from_name(info.name)
        if role is not None and role not in roles:
            roles[role] = position
    for position, info in enumerate(outputs):
        if position in roles.values():
            continue
        role = _shape_role(info)
        if role in ("boxes", "count") and role not in roles:
            roles[role] = position
    _check_shapes(roles, outputs)
    pair = [i for i in range(len(outputs)) if i not in roles.values()]
    if len(pair) == 1:  # one of classes/scores was named: the other is the remaining tensor
        roles["scores" if "classes" in roles else "classes"] = pair[0]
    return roles


def _check_shapes(roles: dict[str, int], outputs: Sequence[TensorInfo]) -> None:
    """Every bound role has its shape; boxes and count are bound; the rest pair up."""
    expected = {"boxes": "boxes", "count": "count", "classes": "pair", "scores": "pair"}
    for role in ("boxes", "count"):
        if role not in roles:
            raise ModelError(
                f"no {role} tensor among the outputs of this {OP_NAME} model: {_describe(outputs)}"
            )
    for role, position in roles.items():
        if _shape_role(outputs[position]) != expected[role]:
            raise ModelError(
                f"{OP_NAME} output {outputs[position].name!r} bound as {role} has shape "
                f"{list(outputs[position].shape)}; expected "
                + {"boxes": "[1, M, 4]", "count": "[1]", "pair": "[1, M]"}[expected[role]]
            )
    rest = [i for i in range(len(outputs)) if i not in roles.values()]
    if any(_shape_role(outputs[i]) != "pair" for i in rest):
        raise ModelError(f"outputs do not fit a {OP_NAME} model: {_describe(outputs)}")
    rows = {outputs[i].shape[1] for i in range(len(outputs)) if _shape_role(outputs[i]) != "count"}
    if len(rows) != 1:
        raise ModelError(
            f"{OP_NAME} outputs disagree on the number of detections: {_describe(outputs)}"
        )


def _name_number(name: str) -> int:
    """The trailing number of a tensor name (``StatefulPartitionedCall:2`` → 2), else -1."""
    digits = len(name) - len(name.rstrip("0123456789"))
    return int(name[-digits:]) if digits else -1


def _values(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.scale is None:
        return raw.astype(np.float32, copy=False)
    return dequantize(raw, info.scale, info.zero_point)


def _integral(values: np.ndarray, info: TensorInfo) -> bool:
    """Whether every value is an integer (within half a quantization step when quantized)."""
    tolerance = 0.0 if info.scale is None else info.scale / 2 + 1e-6
    return bool(np.all(np.abs(values - np.round(values)) <= tolerance))


class TflitePostprocessDecoder(Decoder):
    """Outputs of ``TFLite_Detection_PostProcess``; see the module docstring.

    Card keys (``decoder:``): ``outputs`` (optional mapping of ``boxes``, ``classes``,
    ``scores``, ``count`` to output tensor names); any other key is a `ModelError`.
    """

    type = "tflite_postprocess"

    def __init__(self, outputs: Sequence[TensorInfo], roles: dict[str, int]) -> None:
        self._outputs = tuple(outputs)
        self._roles = dict(roles)
        # The classes/scores pair when names did not bind it, ordered as the TF2 Object
        # Detection API exports it (scores first): used only until the values decide.
        self._pair = sorted(
            (i for i in range(len(outputs)) if i not in self._roles.values()),
            key=lambda i: (_name_number(outputs[i].name), i),
        )

    @property
    def roles(self) -> dict[str, int]:
        """Role → position in the outputs, for the roles bound so far."""
        return dict(self._roles)

    @classmethod
    def matches(cls, outputs: Sequence[TensorInfo]) -> bool:
        """Four outputs shaped boxes ``[1, M, 4]``, two ``[1, M]`` and a count ``[1]``."""
        if len(outputs) != 4:
            return False
        try:
            _bind_roles({}, outputs)
        except ModelError:
            return False
        return True

    @classmethod
    def from_model(
        cls, spec: Mapping[str, Any], outputs: Sequence[TensorInfo], num_labels: int | None
    ) -> TflitePostprocessDecoder:
        """Bind boxes/classes/scores/count by card, names, then shapes (module docstring).

        Raises `ModelError` when the outputs are not four tensors of those shapes. The head's
        class count is unknown here, so ``num_labels`` is not checked."""
        del num_labels
        return cls(outputs, _bind_roles(spec, outputs))

    def _classes_and_scores(
        self, outputs: Sequence[np.ndarray], count: int
    ) -> tuple[np.ndarray, int, int]:
        """(class values of the valid rows, scores position, classes position)."""
        if "classes" in self._roles:
            classes_at, scores_at = self._roles["classes"], self._roles["scores"]
            return self._row_values(outputs, classes_at, count), scores_at, classes_at
        first, second = self._pair
        a = self._row_values(outputs, first, count)
        b = self._row_values(outputs, second, count)
        decided = self._decide(a, b, self._outputs[first], self._outputs[second])
        if decided is None:  # undecided: TF2 export order, scores first
            return b, first, second
        classes_at = first if decided == 0 else second
        scores_at = second if decided == 0 else first
        self._roles["classes"], self._roles["scores"] = classes_at, scores_at
        return (a if decided == 0 else b), scores_at, classes_at

    @staticmethod
    def _decide(a: np.ndarray, b: np.ndarray, info_a: TensorInfo, info_b: TensorInfo) -> int | None:
        """0 when ``a`` holds the classes, 1 when ``b`` does, None when the values cannot tell."""
        a_integral, b_integral = _integral(a, info_a), _integral(b, info_b)
        if a_integral != b_integral:
            return 0 if a_integral else 1
        if not a_integral:
            raise ModelError(
                f"neither [1, M] output of this {OP_NAME} model holds integral class ids "
                f"({info_a.name!r}, {info_b.name!r}); give decoder.outputs in the model card"
            )
        a_above, b_above = bool(np.any(a > 1.5)), bool(np.any(b > 1.5))
        if a_above != b_above:
            return 0 if a_above else 1
        return None

    def _row_values(self, outputs: Sequence[np.ndarray], position: int, count: int) -> np.ndarray:
        return _values(outputs[position][0, :count], self._outputs[position])

    def decode(
        self, outputs: Sequence[np.ndarray], params: DecodeParams, geometry: FrameGeometry
    ) -> Detections:
        """The op's valid rows → exact score filter → NMS → frame coordinates."""
        count_at, boxes_at = self._roles["count"], self._roles["boxes"]
        count_value = _values(outputs[count_at].reshape(-1)[:1], self._outputs[count_at])[0]
        max_rows = self._outputs[boxes_at].shape[1]
        count = int(min(max(np.rint(count_value), 0), max_rows)) if np.isfinite(count_value) else 0
        if count == 0:
            return Detections.empty()
        classes, scores_at, _ = self._classes_and_scores(outputs, count)
        info = self._outputs[scores_at]
        rows, _, scores = filter_class_scores(
            outputs[scores_at][0, :count, None],
            params.min_score,
            scale=info.scale,
            zero_point=info.zero_point,
        )
        if rows.size == 0:
            return Detections.empty()
        boxes = _values(outputs[boxes_at][0, rows], self._outputs[boxes_at])
        class_ids = np.rint(classes[rows]).astype(np.int32)
        return finish(boxes, scores, class_ids, params, geometry)
