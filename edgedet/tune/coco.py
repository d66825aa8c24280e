"""AP@0.5 and AP@[.5:.95] per label, computed by pycocotools (the `tune` extra).

edgedet does not re-implement COCO's average precision: the detections and true objects
are handed to ``pycocotools.cocoeval.COCOeval`` (boxes in pixels, one area range, at
most ``max_detections`` per image), and its precision table is read per category. The
import is lazy: the device runtime never loads pycocotools.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgedet.detections import Detections
from edgedet.errors import InputError
from edgedet.tune.annotations import FrameTruth


@dataclass(frozen=True)
class ApResult:
    """Per model class: AP@0.5 and AP@[.5:.95]; NaN for a class with no true objects."""

    ap50: np.ndarray
    ap: np.ndarray

    def mean(self) -> tuple[float, float]:
        """Means over the classes that have true objects (COCO's mAP)."""
        valid = ~np.isnan(self.ap50)
        if not valid.any():
            return float("nan"), float("nan")
        return float(self.ap50[valid].mean()), float(self.ap[valid].mean())


def _xywh(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalized [ymin, xmin, ymax, xmax] → pixel [x, y, w, h] (float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4) * np.array([height, width, height, width])
    return np.stack([b[:, 1], b[:, 0], b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], axis=1)


def coco_ap(
    truths: Sequence[FrameTruth],
    detections: Sequence[Detections],
    sizes: Sequence[tuple[int, int]],
    num_classes: int,
    max_detections: int = 100,
    recall_points: int = 101,
) -> ApResult:
    """COCO AP per class of ``detections`` against ``truths`` (same frames, same order).

    ``recall_points``: where COCO samples the precision envelope (101, its default; many
    more approach VOC's all-point area under the envelope).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise InputError(
            "AP needs pycocotools: pip install 'edgedet[tune]' (or pip install pycocotools)"
        ) from None
    images, gt_anns, dt_anns = [], [], []
    for img_id, (truth, dets, (h, w)) in enumerate(zip(truths, detections, sizes, strict=True)):
        images.append({"id": img_id, "height": h, "width": w})
        for box, cid in zip(_xywh(truth.boxes, h, w), truth.class_ids, strict=True):
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": img_id,
                    "category_id": int(cid),
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
        for box, score, cid in zip(
            _xywh(dets.boxes, h, w), dets.scores, dets.class_ids, strict=True
        ):
            dt_anns.append(
                {
                    "image_id": img_id,
                    "category_id": int(cid),
                    "bbox": box.tolist(),
                    "score": float(score),
                }
            )
    ap50 = np.full(num_classes, np.nan)
    ap = np.full(num_classes, np.nan)
    with_truth = sorted({a["category_id"] for a in gt_anns})
    if not with_truth:
        return ApResult(ap50, ap)
    if not dt_anns:
        ap50[with_truth] = 0.0
        ap[with_truth] = 0.0
        return ApResult(ap50, ap)
    quiet = io.StringIO()  # pycocotools prints progress to stdout
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": gt_anns,
            "categories": [{"id": c} for c in range(num_classes)],
        }
        gt.createIndex()
        dt = gt.loadRes(dt_anns)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.catIds = list(range(num_classes))
        ev.params.maxDets = [int(max_detections)]
        ev.params.recThrs = np.linspace(0.0, 1.0, int(recall_points))
        ev.params.areaRng = [[0.0, 1e12]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"]  # [iou T, recall 101, class K, area 1, maxdet 1]
    for c in with_truth:
        table = precision[:, :, c, 0, 0]
        at50 = table[0]
        ap50[c] = float(at50[at50 > -1].mean()) if (at50 > -1).any() else 0.0
        ap[c] = float(table[table > -1].mean()) if (table > -1).any() else 0.0
    return ApResult(ap50, ap)
