"""Score filter and non-maximum suppression: exact, vectorized, numpy only.

The semantics are fixed in DESIGN.md ("Score filter and NMS semantics"):
``score >= min_score`` (inclusive, NaN never passes); greedy NMS with stable ties,
suppression when IoU > threshold (strictly), IoU 0 when the union is <= 0, per-class
when class ids are given. Quantized heads are filtered on raw codes with an exact
threshold code; float logit heads are pre-filtered in logit space.
"""

from edgedet.postprocess.scores import (
    code_scores,
    dequantize,
    filter_class_scores,
    filter_max_class_scores,
    logit_prefilter_threshold,
    score_filter,
    sigmoid,
    threshold_code,
)
from edgedet.postprocess.suppression import box_iou, nms

__all__ = [
    "box_iou",
    "code_scores",
    "dequantize",
    "filter_class_scores",
    "filter_max_class_scores",
    "logit_prefilter_threshold",
    "nms",
    "score_filter",
    "sigmoid",
    "threshold_code",
]
