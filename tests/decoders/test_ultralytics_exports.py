"""Models exported by the real Ultralytics exporter, run card-less, against Ultralytics'
own predictions on the same files and frames (tests/fixtures/ultralytics/, built by
tools/make_ultralytics_fixtures.py; neither torch nor Ultralytics is needed here).

An Ultralytics detection is matched by an unmatched edgedet detection of the same class
with IoU >= 0.5 and a score within 1e-4. The comparisons:

- **Exact input** (test_exact_input_*): the frames as Ultralytics letterboxed them
  (``frames/*_lb.png``, input-sized, so neither side resizes) go through `Detector.detect`;
  both feed the model the same tensor.
- **Mapped to the frame** (test_mapped_to_frame_*): the same tensor, decoded with the
  geometry of the original frame (4:3, 16:9, portrait, odd sizes) and compared with
  Ultralytics' predictions on the original frame, whose letterbox *is* that tensor.
- **Preprocessing** (test_preprocessing_*): edgedet's input tensor for each original frame
  against Ultralytics' letterbox: identical with ``cv2.INTER_LINEAR`` (Ultralytics'
  interpolation), within one pixel level with ``cv2.INTER_LINEAR_EXACT`` (issue 10).
- **End to end** (test_end_to_end_*): `Detector.detect` on the original frames, with
  edgedet's own letterbox. Issue 10 makes edgedet resize with ``cv2.INTER_LINEAR_EXACT``
  (bit-identical on every CPU); Ultralytics resizes with ``cv2.INTER_LINEAR`` (SIMD paths
  that differ between CPUs). The two differ by one pixel level in part of the input, and
  that moves these small models' scores by up to ~0.05 and lets a detection near the
  threshold or a box near IoU 0.5 cross over. So end to end is held to a measured,
  looser rule: same class, IoU >= 0.5, score within ``E2E_SCORE_TOLERANCE``, for at least
  ``E2E_MIN_RATE`` of Ultralytics' detections (measured with ``INTER_LINEAR_EXACT`` forced
  by tools/ultralytics_match_rates.py: 87.5-100 % at 0.05; 96-100 % while edgedet still
  resizes with ``INTER_LINEAR``). The exact-input and mapped tests above are the strict
  ones, on the same tensor.

The fixtures are trained one-class person detectors (test_the_trained_fixtures_*: they
find the people and nothing in the letterbox padding). edgedet clips boxes to the frame
*before* NMS (DESIGN.md: returned boxes never overlap above the IoU threshold),
Ultralytics after. On exact input that changes nothing here (100 % on every fixture and
setting); mapped to the frames it changes one detection of 25 (yolo11_litert_int8 at
0.25/0.7) and one of 29 (yolo11_onnx2tf_int8 at 0.1/0.5), a box reaching past the frame's
edge, so the mapped floor ``MAPPED_MIN_RATE`` is 0.95 rather than the issue's 0.99 (each
fixture has only 17-35 detections per setting, one is 3-6 %).
test_*_with_ultralytics_nms_order re-runs the same real pipeline with only the order of
clipping and NMS swapped (edgedet's own NMS) and must match >= 99 % (it matches 100 %):
it shows that those misses are the clip order and nothing else.

Files with an int8 input (onnx2tf's full-integer export): Ultralytics' LiteRT backend
truncates when it quantizes the input, edgedet rounds to the nearest code; the expected
outputs used for them are Ultralytics' predictions with its input rounded (``rounded`` in
expected.json, made by the tool), which is the only difference that truncation explains.

The NMS-included export (``format="saved_model", nms=True``) writes boxes in input pixels,
which Ultralytics' LiteRT backend multiplies by the input size once more (its predictions
then cover the whole frame); the expected outputs used for it are its predictions with
that second scaling undone (``units_fixed``, made by the tool). It baked in NMS at IoU
0.7: Ultralytics ignores ``iou`` for it while edgedet runs NMS again at ``iou``
(YoloNmsDecoder), so it is compared at ``max(iou, 0.7)``; at a lower ``iou`` edgedet's
result must be a subset of Ultralytics' (test_nms_export_at_a_lower_iou_is_a_subset).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.decoders import DecodeParams, build_decoder, yolo
from edgedet.detections import Detections
from edgedet.detector import ULTRALYTICS_INPUT, Detector
from edgedet.postprocess import nms
from edgedet.preprocess import Preprocessor

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "ultralytics"
CLIP = ROOT / "models" / "samples" / "vtest_clip.mp4"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
MODELS = sorted(EXPECTED["models"])
SETTINGS = [(s["conf"], s["iou"]) for s in EXPECTED["settings"]]
EXPORT_NMS_IOU = 0.7  # what the tool exported the nms=True model with

SCORE_TOLERANCE = 1e-4
# The target; measured 100 % on every fixture (tools/ultralytics_match_rates.py).
EXACT_INPUT_MIN_RATE = 0.99
# One clip-order difference in 25-29 detections; see the module docstring.
MAPPED_MIN_RATE = 0.95
ULTRALYTICS_ORDER_MIN_RATE = 0.99
# End to end, one-level input differences from the resize interpolation (module docstring):
# measured 87.5-100 % at 0.05 with INTER_LINEAR_EXACT, a few points of margin.
E2E_SCORE_TOLERANCE = 0.05
E2E_MIN_RATE = 0.85
# Share of the bundled SSD's people (score >= 0.5) the fixtures find at 0.25, IoU >= 0.5.
MIN_RECALL_OF_THE_TEACHER = 0.7
MIN_DETECTIONS = 15  # per fixture and setting over the frames, so a rate means something


def _frames(letterboxed: bool) -> dict[str, np.ndarray]:
    frames = {}
    for path in sorted((FIXTURES / "frames").glob("*.png")):
        if path.stem.endswith("_lb") == letterboxed:
            frames[path.stem] = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return frames


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with many. Boxes that lie wholly in the letterbox padding are
    clipped to zero area by both sides (their IoU is undefined): two of them count as
    overlapping fully when their corners agree within 1 pixel."""
    degenerate = (box[2] - box[0]) * (box[3] - box[1]) <= 0
    if degenerate:
        same = np.all(np.abs(boxes - box) <= 1.0, axis=1)
        return same.astype(np.float64)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _edgedet_xyxy(got, frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    boxes = got.boxes.astype(np.float64)
    return np.stack([boxes[:, 1] * w, boxes[:, 0] * h, boxes[:, 3] * w, boxes[:, 2] * h], axis=1)


def _match(want: dict, got, frame: np.ndarray, score_tolerance: float) -> tuple[int, int]:
    """(matched, total) of Ultralytics' detections, greedily in its (score) order."""
    boxes = _edgedet_xyxy(got, frame)
    free = np.ones(len(got), bool)
    matched = 0
    for xyxy, score, cls in zip(want["xyxy"], want["score"], want["class"], strict=True):
        ok = free & (got.class_ids == cls) & (np.abs(got.scores - score) <= score_tolerance)
        if not ok.any():
            continue
        ious = np.where(ok, _iou(np.asarray(xyxy), boxes), -1.0)
        best = int(np.argmax(ious))
        if ious[best] >= 0.5:
            free[best] = False
            matched += 1
    return matched, len(want["score"])


def _expected(model: str, conf: float, iou: float) -> dict:
    entry = EXPECTED["models"][model]
    record = next(p for p in entry["predictions"] if (p["conf"], p["iou"]) == (conf, iou))
    for corrected in ("rounded", "units_fixed"):  # see the module docstring
        if corrected in record:
            return record[corrected]
    return record["ultralytics"]


def _detect(detector: Detector, frame: np.ndarray, conf: float, iou: float, model: str):
    nms_iou = max(iou, EXPORT_NMS_IOU) if "nms" in model else iou
    return detector.detect(frame, min_score=conf, iou_threshold=nms_iou, max_detections=300)


def _mapped(detector: Detector, lb: np.ndarray, frame: np.ndarray, conf, iou, model: str):
    """Detections from the tensor of the letterboxed ``lb``, mapped to ``frame``."""
    outputs, _ = detector.raw_outputs(lb)
    geometry = detector.preprocessor.geometry_for(*frame.shape[:2])
    nms_iou = max(iou, EXPORT_NMS_IOU) if "nms" in model else iou
    params = detector.params(conf, nms_iou, 300)
    return detector.decoder.decode(outputs, params, geometry)


def _rate(
    model: str, conf: float, iou: float, kind: str, score_tolerance: float = SCORE_TOLERANCE
) -> tuple[int, int]:
    """(matched, total) over all frames; kind: exact | mapped | end_to_end."""
    detector = Detector.open(FIXTURES / f"{model}.tflite")
    want = _expected(model, conf, iou)
    lbs = _frames(True)
    matched = total = 0
    for name, frame in _frames(kind == "exact").items():
        if kind == "exact":
            got = _detect(detector, frame, conf, iou, model)
        elif kind == "mapped":
            got = _mapped(detector, lbs[f"{name}_lb"], frame, conf, iou, model)
        else:
            got = _detect(detector, frame, conf, iou, model)
        m, t = _match(want[name], got, frame, score_tolerance)
        matched, total = matched + m, total + t
    return matched, total


def _nms_before_clipping(boxes, scores, class_ids, params, geometry):
    """`edgedet.decoders.base.finish` in Ultralytics' order: NMS on the unclipped frame
    boxes (edgedet's own NMS), then clipping."""
    offset = np.array([geometry.y_offset, geometry.x_offset] * 2, np.float32)
    extent = np.array([geometry.y_extent, geometry.x_extent] * 2, np.float32)
    frame_boxes = (np.asarray(boxes, np.float32) - offset) / extent
    class_ids = np.asarray(class_ids)
    keep = nms(
        frame_boxes,
        scores,
        params.iou_threshold,
        class_ids=None if params.agnostic else class_ids,
        max_detections=params.max_detections,
    )
    return Detections(np.clip(frame_boxes[keep], 0.0, 1.0), scores[keep], class_ids[keep])


def _interpolation_is_ultralytics() -> bool:
    """Whether edgedet resizes exactly as Ultralytics' letterbox (cv2.INTER_LINEAR) does."""
    name = "full_768x576"
    frame, lb = _frames(False)[name], _frames(True)[f"{name}_lb"]
    pre = Preprocessor(ULTRALYTICS_INPUT, 320, 320, np.dtype(np.uint8))
    out = np.empty((320, 320, 3), np.uint8)
    pre(frame, out)
    return np.array_equal(out, lb[:, :, ::-1])


@pytest.mark.parametrize(("conf", "iou"), SETTINGS)
@pytest.mark.parametrize("model", MODELS)
def test_exact_input_matches_ultralytics(model, conf, iou):
    matched, total = _rate(model, conf, iou, "exact")
    assert total >= MIN_DETECTIONS, f"too few expected detections to compare ({total})"
    assert matched / total >= EXACT_INPUT_MIN_RATE, f"{model} {conf}/{iou}: {matched}/{total}"


@pytest.mark.parametrize(("conf", "iou"), SETTINGS)
@pytest.mark.parametrize("model", MODELS)
def test_mapped_to_frame_matches_ultralytics(model, conf, iou):
    matched, total = _rate(model, conf, iou, "mapped")
    assert total >= MIN_DETECTIONS, f"too few expected detections to compare ({total})"
    assert matched / total >= MAPPED_MIN_RATE, f"{model} {conf}/{iou}: {matched}/{total}"


@pytest.mark.parametrize("kind", ["exact", "mapped"])
@pytest.mark.parametrize(("conf", "iou"), SETTINGS)
@pytest.mark.parametrize("model", MODELS)
def test_everything_matches_with_ultralytics_nms_order(model, conf, iou, kind, monkeypatch):
    monkeypatch.setattr(yolo, "finish", _nms_before_clipping)
    matched, total = _rate(model, conf, iou, kind)
    rate = matched / total
    assert rate >= ULTRALYTICS_ORDER_MIN_RATE, f"{model} {conf}/{iou} {kind}: {matched}/{total}"


@pytest.mark.parametrize("name", sorted(_frames(False)))
def test_preprocessing_matches_ultralytics_letterbox(name):
    frame, lb = _frames(False)[name], _frames(True)[f"{name}_lb"]
    pre = Preprocessor(ULTRALYTICS_INPUT, 320, 320, np.dtype(np.float32))
    out = np.empty((320, 320, 3), np.float32)
    pre(frame, out)
    levels = np.abs(out * np.float32(255) - lb[:, :, ::-1].astype(np.float32))
    if _interpolation_is_ultralytics():
        assert levels.max() < 1e-3  # same letterbox, same resize: the same tensor
    else:
        assert levels.max() <= 1.0 + 1e-3  # INTER_LINEAR_EXACT vs INTER_LINEAR
        assert np.mean(levels > 0.5) < 0.2


@pytest.mark.parametrize(("conf", "iou"), SETTINGS)
@pytest.mark.parametrize("model", MODELS)
def test_end_to_end_matches_ultralytics(model, conf, iou):
    """edgedet's own preprocessing on the original frames; see the module docstring for
    why the score tolerance is wider here than on the same tensor."""
    matched, total = _rate(model, conf, iou, "end_to_end", E2E_SCORE_TOLERANCE)
    assert total >= MIN_DETECTIONS, f"too few expected detections to compare ({total})"
    assert matched / total >= E2E_MIN_RATE, f"{model} {conf}/{iou}: {matched}/{total}"


def _centres_in_content(detections: Detections, geometry) -> np.ndarray:
    """Whether each box centre (normalized input coordinates) lies on the frame's part of
    the letterboxed input rather than in its gray padding."""
    cy = (detections.boxes[:, 0] + detections.boxes[:, 2]) / 2
    cx = (detections.boxes[:, 1] + detections.boxes[:, 3]) / 2
    inside_y = (cy >= geometry.y_offset) & (cy <= geometry.y_offset + geometry.y_extent)
    inside_x = (cx >= geometry.x_offset) & (cx <= geometry.x_offset + geometry.x_extent)
    return inside_y & inside_x


@pytest.mark.parametrize("model", MODELS)
def test_the_trained_fixtures_find_the_people_and_not_the_padding(model):
    """The fixtures are trained person detectors (the tool's pseudo-labels): on the
    letterboxed frames they find most people the bundled SSD finds (measured 9-11 of 11 at
    0.25), and nothing in the gray padding even at 0.1 (random-weight models fired there,
    where the clipping order decides a lot)."""
    detector = Detector.open(FIXTURES / f"{model}.tflite")
    teacher = Detector.open(ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite")
    lbs = _frames(True)
    found = people = 0
    for name, frame in _frames(False).items():
        geometry = detector.preprocessor.geometry_for(*frame.shape[:2])
        lb = lbs[f"{name}_lb"]
        got = detector.detect(lb, min_score=0.1, iou_threshold=0.5, max_detections=300)
        assert _centres_in_content(got, geometry).all(), f"{model} {name}: padding detected"
        want = teacher.detect(frame, min_score=0.5)
        mapped = detector.decoder.decode(
            detector.raw_outputs(lb)[0], detector.params(0.25, 0.7, 300), geometry
        )
        for box in _edgedet_xyxy(want, frame):
            people += 1
            found += bool(len(mapped)) and _iou(box, _edgedet_xyxy(mapped, frame)).max() >= 0.5
    assert people >= 10
    assert found / people >= MIN_RECALL_OF_THE_TEACHER, f"{model}: {found}/{people}"


def test_labels_and_input_come_from_the_embedded_metadata():
    for model in MODELS:
        detector = Detector.open(FIXTURES / f"{model}.tflite")
        assert detector.card.path is None  # no card: everything below is inferred
        assert detector.labels == ("person",), model
        spec = detector.preprocessor.spec
        assert (spec.resize, spec.pad_value, spec.color) == ("letterbox", 114, "rgb")
        assert (spec.mean, spec.std) == ((0.0,), (255.0,))
        shape = EXPECTED["models"][model]["input"]["shape"]
        assert detector.preprocessor.layout == ("nchw" if shape[1] == 3 else "nhwc")
        want = "yolo_nms" if "nms" in model else "yolov8"
        assert detector.decoder.type == want


@pytest.mark.parametrize("model", MODELS)
def test_edgedet_run_on_the_bundled_clip(model, tmp_path):
    log = tmp_path / "det.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "edgedet", "run", "--model", str(FIXTURES / f"{model}.tflite"),
         "--source", str(CLIP), "--max-frames", "3", "--min-score", "0.25", "--log", str(log),
         "--http", "off"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]
    detections = [d for r in records for d in r["detections"]]
    assert detections, "the fixtures detect something on clip frames at 0.25"
    labels = Detector.open(FIXTURES / f"{model}.tflite").labels
    for d in detections:
        assert d["score"] >= 0.25
        assert d["label"] == labels[d["class_id"]]


def _without_metadata(model: str, tmp_path: Path) -> Path:
    """A copy of the fixture without the zip archive Ultralytics appends."""
    data = (FIXTURES / f"{model}.tflite").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        start = min(info.header_offset for info in archive.infolist())
    path = tmp_path / f"{model}_bare.tflite"
    path.write_bytes(data[:start])
    return path


@pytest.mark.parametrize("model", [m for m in MODELS if "nms" not in m])
def test_without_metadata_the_geometry_gives_the_same_detections(model, tmp_path):
    bare = Detector.open(_without_metadata(model, tmp_path))
    full = Detector.open(FIXTURES / f"{model}.tflite")
    assert bare.decoder.type == "yolov8" and bare.labels[0] == "0"  # no names without metadata
    compared = 0
    for frame in _frames(False).values():
        want = full.detect(frame, min_score=0.1, iou_threshold=0.5, max_detections=300)
        got = bare.detect(frame, min_score=0.1, iou_threshold=0.5, max_detections=300)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.scores, want.scores)
        compared += len(got)
    assert compared > 0


def test_pixel_boxes_are_recognised_by_the_anchor_grid():
    """The same real head with its boxes in input pixels (as format="saved_model" writes
    them) decodes to the same detections when the units are left to the geometry."""
    model = "yolov8_litert_fp32"
    detector = Detector.open(FIXTURES / f"{model}.tflite")
    frame = _frames(False)["full_768x576"]
    outputs, geometry = detector.raw_outputs(frame)
    pixels = outputs[0].copy()
    pixels[0, [0, 2]] *= np.float32(geometry.input_width)
    pixels[0, [1, 3]] *= np.float32(geometry.input_height)
    auto = build_decoder({"type": "yolov8"}, detector.output_infos, None)
    params = DecodeParams(0.1, 0.5, 300)
    want = detector.decoder.decode(outputs, params, geometry)
    got = auto.decode([pixels], params, geometry)
    assert len(want) > 5
    np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-6)
    np.testing.assert_array_equal(got.scores, want.scores)
    # and the normalized head itself is read as normalized by the same rule
    again = build_decoder({"type": "yolov8"}, detector.output_infos, None)
    np.testing.assert_array_equal(again.decode(outputs, params, geometry).boxes, want.boxes)


def test_nms_export_at_a_lower_iou_is_a_subset():
    """NMS once more at IoU 0.5 only removes detections: each one edgedet keeps is one of
    Ultralytics' (same class, IoU >= 0.5, same score), and none overlap above 0.5."""
    model = next(m for m in MODELS if "nms" in m)
    conf, iou = min(SETTINGS)
    assert iou < EXPORT_NMS_IOU
    detector = Detector.open(FIXTURES / f"{model}.tflite")
    want = _expected(model, conf, iou)
    kept = 0
    for name, frame in _frames(True).items():
        got = detector.detect(frame, min_score=conf, iou_threshold=iou, max_detections=300)
        boxes = _edgedet_xyxy(got, frame)
        ref = want[name]
        for k, (box, score, cls) in enumerate(zip(boxes, got.scores, got.class_ids, strict=True)):
            same = [
                i
                for i, c in enumerate(ref["class"])
                if c == cls and abs(ref["score"][i] - score) <= SCORE_TOLERANCE
            ]
            assert same and _iou(box, np.asarray([ref["xyxy"][i] for i in same])).max() >= 0.5
            others = np.flatnonzero((got.class_ids == cls) & (np.arange(len(got)) != k))
            assert np.all(_iou(box, boxes[others]) <= iou + 1e-6)
        kept += len(got)
    assert kept > 0


def test_an_ultralytics_model_edgedet_cannot_run_exits_2_with_one_line(tmp_path):
    """A segmentation export (here: a detection file whose metadata says segment) is named
    in one line, exit 2, no traceback."""
    bare = _without_metadata("yolov8_litert_fp32", tmp_path)
    model = tmp_path / "yolov8n-seg.tflite"
    model.write_bytes(bare.read_bytes())
    metadata = json.loads(
        zipfile.ZipFile(FIXTURES / "yolov8_litert_fp32.tflite").read("metadata.json")
    )
    with zipfile.ZipFile(model, "a") as archive:
        archive.writestr("metadata.json", json.dumps({**metadata, "task": "segment"}))
    proc = subprocess.run(
        [sys.executable, "-m", "edgedet", "run", "--model", str(model), "--source", str(CLIP),
         "--max-frames", "1", "--http", "off", "--log", str(tmp_path / "d.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Ultralytics segment model" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
