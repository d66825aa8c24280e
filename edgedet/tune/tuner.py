"""`edgedet tune` end to end: ground truth, one inference pass, the grid, a recommendation.

`Plan` validates everything that can be validated before the long part (files, labels,
targets, the card and the output folder), so bad input fails in a second with one line
and nothing written; `tune` then runs the model once per frame and returns a
`TuneResult`; `edgedet.tune.report` writes it out.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgedet.detections import Detections
from edgedet.errors import InputError
from edgedet.tune.annotations import (
    Annotations,
    FrameTruth,
    match_images,
    parse_label_map,
    read_annotations,
    resolve_labels,
)
from edgedet.tune.cache import CandidateCache, build_cache
from edgedet.tune.coco import ApResult, coco_ap
from edgedet.tune.frames import FrameSet, list_images, open_frames
from edgedet.tune.grid import (
    IOUS,
    MIN_SCORES,
    Grid,
    NoOperatingPoint,
    OperatingPoint,
    evaluate_grid,
    find_point,
    point,
    recommend,
)

FLOOR = float(MIN_SCORES[0])  # candidates below the lowest min_score of the grid are dropped


@dataclass(frozen=True)
class TuneOptions:
    model: Path
    data: Path
    annotations: Path | None = None
    reference: Path | None = None
    reference_min_score: float = 0.5
    frames: int | None = None
    label_map: Sequence[str] = ()
    target_precision: float | None = None
    target_recall: float | None = None
    write_card: bool = False
    out: Path = Path("edgedet-tune")
    plots: bool = True
    examples: int = 3


@dataclass
class TuneResult:
    """Everything the report shows. Points and AP are over all labels unless per label."""

    options: TuneOptions
    model_name: str
    labels: tuple[str, ...]
    frames: FrameSet
    truths: list[FrameTruth]
    truth_source: str
    cache: CandidateCache
    grid: Grid
    current: OperatingPoint
    chosen: OperatingPoint
    rule: str
    ap_by_iou: list[ApResult]  # parallel to grid.ious, detections at the cache floor
    ap_current: ApResult
    ap_chosen: ApResult
    fingerprint: str
    seconds: dict[str, float] = field(default_factory=dict)
    date: str = field(default_factory=lambda: dt.date.today().isoformat())

    def provenance(self) -> dict:
        """What `--write-card` records under ``defaults.tuned``."""
        return {
            "by": "edgedet tune",
            "date": self.date,
            "metric": self.rule,
            "data": self.options.data.name,
            "data_sha256": self.fingerprint,
            "frames": len(self.frames),
            "ground_truth": self.truth_source,
            "objects": self.chosen.truth,
            "precision": round(self.chosen.precision, 4),
            "recall": round(self.chosen.recall, 4),
            "f1": round(self.chosen.f1, 4),
        }


def _check_fraction(flag: str, value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:  # also rejects NaN
        raise InputError(f"{flag} must be in (0, 1], got {value}")


class Plan:
    """The validated inputs: detector, frames and how to get each frame's truth."""

    def __init__(self, opts: TuneOptions) -> None:
        from edgedet.detector import Detector
        from edgedet.modelcard import check_card_writable

        if opts.annotations is not None and opts.reference is not None:
            raise InputError("pass either --annotations or --reference, not both")
        if opts.annotations is None and opts.reference is None:
            raise InputError(
                "tune needs ground truth: --annotations FILE|DIR (COCO, YOLO, VOC) or "
                "--reference MODEL (a float .tflite, the original frozen graph or SavedModel)"
            )
        if opts.target_precision is not None and opts.target_recall is not None:
            raise InputError("pass either --target-precision or --target-recall, not both")
        _check_fraction("--target-precision", opts.target_precision)
        _check_fraction("--target-recall", opts.target_recall)
        _check_fraction("--reference-min-score", opts.reference_min_score)
        _check_out(opts.out)
        if opts.plots:
            from edgedet.tune.plots import _pyplot

            _pyplot()
        try:
            import pycocotools  # noqa: F401
        except ImportError:
            raise InputError(
                "tune computes AP with pycocotools: pip install 'edgedet[tune]'"
            ) from None
        self.detector = Detector.open(opts.model)
        self.card_path = self.detector.card.path  # None for a model without a card
        if opts.write_card:
            if self.card_path is None:
                raise InputError(
                    f"--write-card: {opts.model} has no model card "
                    f"({opts.model.with_suffix('.yaml')}); "
                    "convert the model with `edgedet convert` or write the card first"
                )
            check_card_writable(self.card_path)
        self.labels = tuple(self.detector.labels)
        label_map = parse_label_map(opts.label_map)
        self.annotations: Annotations | None = None
        self.reference = None
        data = Path(opts.data).expanduser()
        if opts.annotations is not None:
            if not data.exists():
                raise InputError(f"{data}: no such folder; pass the folder of annotated images")
            if not data.is_dir():
                raise InputError(
                    f"{data}: annotations refer to image files, so DATA must be the image "
                    "folder (for a video, use --reference or extract the annotated frames)"
                )
            self.annotations = read_annotations(opts.annotations)
            self._class_of = resolve_labels(
                self.annotations.label_names(), self.labels, label_map, self.annotations.source
            )
            names = [p.relative_to(data).as_posix() for p in list_images(data)]
            chosen, self._key_of = match_images(self.annotations, names)
            if not chosen:
                raise InputError(f"{self.annotations.source}: annotates no images; check the file")
            self.frames = open_frames(data, opts.frames, only=chosen)
            self.truth_source = (
                f"{self.annotations.format.upper()} annotations {self.annotations.source.name}"
            )
        else:
            self.frames = open_frames(data, opts.frames)
            from edgedet.tune.reference import ReferenceTruth

            self.reference = ReferenceTruth(
                opts.reference, self.labels, label_map, opts.reference_min_score
            )
            self.truth_source = f"reference {self.reference.description}"

    def truth(self, name: str, image: np.ndarray) -> FrameTruth:
        if self.reference is not None:
            return self.reference(image)
        h, w = image.shape[:2]
        key = self._key_of.get(name)
        if key is None:
            return FrameTruth.empty()
        return self.annotations.truth(key, h, w, self._class_of)

    def close(self) -> None:
        if self.reference is not None:
            self.reference.close()


def _check_out(out: Path) -> None:
    """Fail before the run when the report folder cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a folder for the report")
    parent = out if out.exists() else out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: folder {parent} is not writable; choose another --out")


def tune(opts: TuneOptions, progress: Callable[[str], None] = lambda _m: None) -> TuneResult:
    """Validate, run the model once per frame, evaluate the grid, recommend a setting."""
    started = time.perf_counter()
    plan = Plan(opts)
    seconds: dict[str, float] = {"setup": time.perf_counter() - started}
    try:
        progress(
            f"{len(plan.frames)} frames of {plan.frames.path}; ground truth: {plan.truth_source}"
        )
        truths: list[FrameTruth] = []
        truth_time = [0.0]

        def on_frame(_i: int, name: str, image: np.ndarray) -> None:
            t0 = time.perf_counter()
            truths.append(plan.truth(name, image))
            truth_time[0] += time.perf_counter() - t0

        t0 = time.perf_counter()
        cache = build_cache(plan.detector, plan.frames, FLOOR, on_frame)
        seconds["inference"] = time.perf_counter() - t0 - truth_time[0]
        seconds["ground_truth"] = truth_time[0]
    finally:
        plan.close()
    if len(cache) == 0:
        raise InputError(f"{opts.data}: no frames to measure")
    if sum(len(t.class_ids) for t in truths) == 0:
        raise InputError(
            f"{plan.truth_source}: no true objects in the {len(cache)} frames, so precision and "
            "recall are undefined; use frames that show the objects (or check --label-map)"
        )
    t0 = time.perf_counter()
    grid = evaluate_grid(cache, truths, MIN_SCORES, IOUS)
    defaults = plan.detector.card.defaults
    current = find_point(grid, defaults.min_score, defaults.iou)
    if current is None:  # the card's defaults are off the grid: evaluate them alone
        if defaults.min_score < FLOOR:
            raise InputError(
                f"the card's min_score {defaults.min_score} is below tune's floor {FLOOR}"
            )
        alone = evaluate_grid(cache, truths, [defaults.min_score], [defaults.iou])
        current = point(alone, 0, 0)
    try:
        chosen, rule = recommend(
            grid,
            (current.min_score, current.iou),
            target_precision=opts.target_precision,
            target_recall=opts.target_recall,
        )
    except NoOperatingPoint as exc:
        flag = "--target-precision" if opts.target_precision is not None else "--target-recall"
        raise InputError(f"{exc}; lower {flag}") from None
    seconds["grid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    k = len(cache.labels)

    def ap_at(min_score: float, iou: float) -> ApResult:
        dets = [cache.detections_at(i, min_score, iou) for i in range(len(cache))]
        return coco_ap(truths, dets, cache.sizes, k, cache.max_detections)

    ap_by_iou = [ap_at(cache.floor, float(t)) for t in grid.ious]
    by_iou = {float(t): r for t, r in zip(grid.ious, ap_by_iou, strict=True)}
    ap_current = by_iou.get(current.iou) or ap_at(cache.floor, current.iou)
    ap_chosen = by_iou[chosen.iou]
    seconds["ap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fingerprint = plan.frames.fingerprint()
    if plan.annotations is not None:
        fingerprint = _combine(fingerprint, plan.annotations.source)
    seconds["fingerprint"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return TuneResult(
        options=opts,
        model_name=plan.detector.card.name,
        labels=tuple(cache.labels),
        frames=plan.frames,
        truths=truths,
        truth_source=plan.truth_source,
        cache=cache,
        grid=grid,
        current=current,
        chosen=chosen,
        rule=rule,
        ap_by_iou=ap_by_iou,
        ap_current=ap_current,
        ap_chosen=ap_chosen,
        fingerprint=fingerprint,
        seconds=seconds,
    )


def _combine(fingerprint: str, annotations: Path) -> str:
    import hashlib

    digest = hashlib.sha256(fingerprint.encode())
    files = (
        [annotations]
        if annotations.is_file()
        else sorted(p for p in annotations.rglob("*") if p.is_file())
    )
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def example_frames(result: TuneResult, count: int) -> list[tuple[str, np.ndarray]]:
    """Frames with the most true objects, drawn at the recommended setting: detections by
    `edgedet.annotate`, true objects as thin white boxes."""
    import cv2

    from edgedet.annotate import draw_detections

    order = sorted(range(len(result.truths)), key=lambda i: (-len(result.truths[i].class_ids), i))[
        :count
    ]
    out = []
    for i in sorted(order):
        name = result.cache.names[i]
        image = result.frames.read(name)
        dets: Detections = result.cache.detections_at(i, result.chosen.min_score, result.chosen.iou)
        canvas = draw_detections(image, dets)
        h, w = canvas.shape[:2]
        for ymin, xmin, ymax, xmax in result.truths[i].boxes:
            p1 = (int(round(xmin * (w - 1))), int(round(ymin * (h - 1))))
            p2 = (int(round(xmax * (w - 1))), int(round(ymax * (h - 1))))
            cv2.rectangle(canvas, p1, p2, (255, 255, 255), 1)
        out.append((name, canvas))
    return out
