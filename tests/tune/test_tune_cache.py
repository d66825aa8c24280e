"""The grid from the candidate cache equals what `detect` returns at each setting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.service import run_edgedet

from edgedet.tune.annotations import FrameTruth
from edgedet.tune.cache import build_cache
from edgedet.tune.grid import evaluate_grid, match_frame

SETTINGS = [(0.05, 0.3), (0.2, 0.45), (0.37, 0.6), (0.5, 0.8), (0.73, 0.55), (0.95, 0.6)]


@pytest.fixture(scope="module")
def cache(detector, sample_frames):
    return build_cache(detector, ((f"f{i}", f) for i, f in enumerate(sample_frames)), 0.05)


def same(a, b) -> bool:
    return (
        np.array_equal(a.boxes, b.boxes)
        and np.array_equal(a.scores, b.scores)
        and np.array_equal(a.class_ids, b.class_ids)
    )


@pytest.mark.parametrize("min_score, iou", SETTINGS)
def test_cache_gives_exactly_what_detect_gives(detector, sample_frames, cache, min_score, iou):
    total = 0
    for i, frame in enumerate(sample_frames):
        expected = detector.detect(frame, min_score=min_score, iou_threshold=iou)
        assert same(cache.detections_at(i, min_score, iou), expected)
        # The grid's shortcut: one NMS at the floor, then the rows scoring >= min_score.
        at_floor = cache.kept_at_floor(i, iou)
        assert same(at_floor[at_floor.scores >= np.float32(min_score)], expected)
        total += len(expected)
    if min_score < 0.9:
        assert total > 0, "the clip shows people; an empty comparison proves nothing"


def test_cache_candidates_are_in_nms_order_above_the_floor(cache):
    for c in cache.candidates:
        assert len(c) > 0
        assert np.all(c.scores >= np.float32(0.05))
        assert np.all(np.diff(c.scores) <= 0)


def test_grid_counts_equal_matching_detect_output(detector, sample_frames, cache):
    # Truth: detections at a stricter setting, shifted a little, so matches are not trivial.
    truths = []
    for frame in sample_frames:
        d = detector.detect(frame, min_score=0.55, iou_threshold=0.5)
        truths.append(
            FrameTruth(
                np.clip(d.boxes.astype(np.float64) + 0.004, 0, 1), d.class_ids.astype(np.int64)
            )
        )
    grid = evaluate_grid(cache, truths, [s for s, _ in SETTINGS], sorted({t for _, t in SETTINGS}))
    for min_score, iou in SETTINGS:
        det = tp = dup = 0
        for frame, truth in zip(sample_frames, truths, strict=True):
            d = detector.detect(frame, min_score=min_score, iou_threshold=iou)
            flags, dups = match_frame(d.boxes, d.class_ids, truth)
            det, tp, dup = det + len(d), tp + int(flags.sum()), dup + int(dups.sum())
        si = [s for s, _ in SETTINGS].index(min_score)
        ti = list(grid.ious).index(iou)
        assert (grid.detections[0, si, ti], grid.tp[0, si, ti], grid.duplicates[0, si, ti]) == (
            det,
            tp,
            dup,
        )
    assert grid.tp.sum() > 0 and (grid.detections - grid.tp).sum() > 0


def test_cache_matches_the_detect_command(image_folder, detector):
    """The same equivalence through `edgedet detect --json` (boxes rounded to 4 digits)."""
    import cv2

    files = sorted(image_folder.glob("*.png"))[:3]
    frames = [(p.name, cv2.imread(str(p))) for p in files]
    cache = build_cache(detector, frames, 0.05)
    for min_score, iou in [(0.3, 0.4), (0.5, 0.6)]:
        out = run_edgedet(
            "detect", *map(str, files), "--json", "--min-score", str(min_score), "--iou", str(iou),
            timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        for i, line in enumerate(out.stdout.splitlines()):
            assert (
                json.loads(line)["detections"]
                == cache.detections_at(i, min_score, iou).to_records()
            )


@pytest.mark.tensorflow
@pytest.mark.parametrize(("version", "quant"), [(8, "uint8"), (5, "float")])
def test_cache_equals_detect_on_a_multiclass_yolo_head(tmp_path_factory, version, quant):
    """Per-class NMS, YOLO decoders, quantized and float heads: a tiny real model whose
    head is the frame's pixels (tests/modelfactory.py), fed crowded random boxes."""
    pytest.importorskip("tensorflow")
    import modelfactory

    from edgedet.detector import Detector

    anchors, classes, size = 60, 4, (32, 32)
    path = modelfactory.cached_model(
        tmp_path_factory.mktemp("tune-yolo"),
        "yolo",
        version=version,
        num_anchors=anchors,
        num_classes=classes,
        quant=quant,
        input_size=size,
    )
    labels = tmp_path_factory.mktemp("labels") / "labels.txt"
    labels.write_text("".join(f"c{i}\n" for i in range(classes)))
    detector = Detector.open(path, labels_path=labels)
    rng = np.random.default_rng(3)
    frames = []
    first = 5 if version == 5 else 4
    for _ in range(4):
        values = np.zeros((anchors, first + classes), np.float32)
        values[:, :2] = rng.uniform(0.3, 0.7, (anchors, 2))  # centres: a crowd
        values[:, 2:4] = rng.uniform(0.1, 0.4, (anchors, 2))
        values[:, first:] = rng.uniform(0, 1, (anchors, classes)) ** 3
        if version == 5:
            values[:, 4] = rng.uniform(0.5, 1.0, anchors)
        rgb = modelfactory.head_image(values, size)[0]
        pixels = np.round(127.5 + 127.5 * rgb).astype(np.uint8)
        frames.append(np.ascontiguousarray(pixels[:, :, ::-1]))
    cache = build_cache(detector, ((f"f{i}", f) for i, f in enumerate(frames)), 0.05)
    kept = 0
    for min_score, iou in SETTINGS:
        for i, frame in enumerate(frames):
            expected = detector.detect(frame, min_score=min_score, iou_threshold=iou)
            assert same(cache.detections_at(i, min_score, iou), expected)
            kept += len(expected)
    assert kept > 50 and len(set(np.concatenate([c.class_ids for c in cache.candidates]))) == 4
