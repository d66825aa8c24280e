"""Build the Ultralytics fixtures in tests/fixtures/ultralytics/ with the real exporter.

Run by hand (not in CI) in a separate virtual environment that has torch and Ultralytics;
the tests that use the fixtures need neither::

    python3 -m venv /work/venv-ultra
    /work/venv-ultra/bin/pip install torch==2.13.0            # the CPU wheel, first
    /work/venv-ultra/bin/pip install torchvision==0.28.0 'ultralytics>=8.4,<8.5' \\
        litert-torch ai-edge-quantizer ai-edge-litert onnx onnx2tf onnxslim sng4onnx \\
        onnx-graphsurgeon tensorflow-cpu tf-keras onnxruntime
    apt-get install -y opencv-doc        # optional: vtest.avi, more training frames
    PYTHONPATH=$PWD /work/venv-ultra/bin/python tools/make_ultralytics_fixtures.py

``PYTHONPATH=$PWD``: the pseudo-labels come from edgedet itself. The run has three stages:

1. **Dataset** (seconds): a one-class ("person") YOLO dataset in the work folder, frames of
   ``vtest.avi`` and of the bundled ``models/samples/vtest_clip.mp4`` labelled by edgedet's
   own `Detector` on the bundled SSD person model at score >= ``LABEL_MIN_SCORE``
   (`pseudo_labelled_dataset`).
2. **Training** (the long part: ~25 s an epoch per model on 2 shared cores): YOLOv8 and
   YOLO11 from Ultralytics' own yaml configs (``YOLO("yolov8n.yaml")``, no pretrained
   weights, nothing downloaded) at the depth of the ``n`` scale and a quarter of its width,
   one class, so each file is 0.5-1.6 MB; ``imgsz`` 320, CPU, ``workers=0``,
   ``seed`` 0, ``deterministic=True``, ``EPOCHS`` epochs of Ultralytics' default recipe.
   Its validation (mAP50 on the pseudo-labelled val frames) goes into ``expected.json``.
3. **Exports and expected outputs** (a few minutes): every route below from the best
   checkpoint, INT8 calibrated on the dataset's images, then Ultralytics' predictions.

To use both cores: make the dataset (``--dataset-only``), then run stages 2-3 per family
into the same work folder (``--family``: training, validation and that family's exports,
then stop), then make the fixtures from that folder (``--reuse``: predictions and
``expected.json`` only)::

    T="/work/venv-ultra/bin/python tools/make_ultralytics_fixtures.py --keep /tmp/ultra"
    export PYTHONPATH=$PWD
    $T --dataset-only
    $T --family yolov8 & $T --family yolo11; wait
    $T --reuse

``--trained`` skips the training and takes the weights already in ``--keep``.

Exports (all 320x320):

- ``*_litert_fp32.tflite``, ``*_litert_int8.tflite``: ``format="litert"`` (what
  ``format="tflite"`` means since 8.4.83): NCHW input ``[1, 3, H, W]``, float I/O (int8
  inside), boxes normalized to the input.
- ``*_onnx2tf_fp32.tflite``, ``*_onnx2tf_int8.tflite``: ``format="saved_model"`` (the onnx2tf
  route; ``format="edgetpu"`` compiles its full-integer file): NHWC, the int8 one with int8
  input and output (onnx2tf's ``*_full_integer_quant.tflite``, what the Edge TPU compiler
  takes).
- ``yolov8_nms_fp32.tflite``: ``format="saved_model", nms=True`` (the LiteRT route does not
  take ``nms``): output ``[1, 300, 6]``.

Expected outputs (``expected.json``): the versions and the training record (``build``),
and Ultralytics' own predictor (``YOLO(file).predict``)
on each frame in ``frames/`` at two conf/iou settings, boxes in frame pixels. For files
with an int8 input, Ultralytics' LiteRT backend truncates when it quantizes the input
(``astype`` after ``/ scale + zero_point``); those files also get ``rounded`` predictions,
made with the input rounded to the nearest code (what edgedet feeds), which the tests use.
The ``nms=True`` file writes pixel boxes that the backend scales by the input size once
more; it also gets ``units_fixed`` predictions with that undone (see
`_read_nms_pixels_as_pixels`), which the tests use.

torchvision's PyPI wheels need CUDA torch; with the CPU torch its extension does not load,
so `_torchvision_without_its_extension` supplies its ``nms`` operator in plain torch.
Each frame is also recorded letterboxed by Ultralytics itself (``frames/*_lb.png``), so the
tests can feed the exact input image and compare without the resize interpolation that
differs (Ultralytics resizes with ``cv2.INTER_LINEAR``, edgedet with
``cv2.INTER_LINEAR_EXACT``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "models" / "samples" / "vtest_clip.mp4"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SSD = ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite"
LABEL_MIN_SCORE = 0.5
TRAIN_STEP = 3
VAL_STEP = 6
OUT = ROOT / "tests" / "fixtures" / "ultralytics"
IMGSZ = 320
SEED = 0
# The n scale's width is 0.25; a quarter of it keeps each file about 1 MB or less, and is
# enough for one class on this scene.
WIDTH = 0.0625
# ~25 s an epoch on 2 shared cores with both models at once: ~13 min. Pseudo-label mAP50
# passes 0.5 after about 10 epochs; 30 leave room (the last 10 without mosaic).
EPOCHS = 30
# Two settings (conf, iou); the NMS-included export bakes in iou 0.7 at export time.
SETTINGS = ((0.25, 0.7), (0.1, 0.5))
FAMILIES = ("yolov8", "yolo11")
MAX_DET = 300


def clip_frames(indices: list[int]) -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(CLIP))
    frames: dict[int, np.ndarray] = {}
    index = 0
    while len(frames) < len(indices):
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{CLIP} has fewer frames than {max(indices) + 1}")
        if index in indices:
            frames[index] = frame
        index += 1
    capture.release()
    return frames


def test_frames() -> dict[str, np.ndarray]:
    """Named frames: the full 4:3 frame, 16:9, portrait and odd-size crops, a tiny one."""
    f = clip_frames([10, 40, 70, 100])
    return {
        "full_768x576": f[10],
        "wide_640x360": np.ascontiguousarray(f[40][100:460, 64:704]),
        "portrait_270x480": np.ascontiguousarray(f[70][48:528, 250:520]),
        "odd_333x217": np.ascontiguousarray(f[100][201:418, 117:450]),
        "small_97x61": np.ascontiguousarray(f[40][300:361, 400:497]),
    }


def pseudo_labelled_dataset(work: Path) -> Path:
    """A local one-class YOLO dataset: clip frames labelled by the bundled SSD person model.

    Train: every ``TRAIN_STEP``-th frame of ``vtest.avi`` (opencv-doc) when present, and
    every other frame of the bundled clip; val: every ``VAL_STEP``-th clip frame. Labels
    are edgedet's own `Detector` on ``models/ssdlite_mobilenet_v2_person_uint8.tflite`` at
    score >= ``LABEL_MIN_SCORE`` (needs ``edgedet`` importable: run from the repository
    with ``PYTHONPATH=$PWD``). Returns the dataset yaml.
    """
    from edgedet.detector import Detector

    detector = Detector.open(SSD)
    root = work / "dataset"
    sources = [("clip", CLIP, "train", 2), ("clip", CLIP, "val", VAL_STEP)]
    if VTEST.exists():
        sources.insert(0, ("vtest", VTEST, "train", TRAIN_STEP))
    counts: dict[str, int] = {}
    for prefix, video, split, step in sources:
        images, labels = root / split / "images", root / split / "labels"
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        capture = cv2.VideoCapture(str(video))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                stem = f"{prefix}_{index:04d}"
                cv2.imwrite(str(images / f"{stem}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                found = detector.detect(frame, min_score=LABEL_MIN_SCORE)
                rows = []
                for ymin, xmin, ymax, xmax in found.boxes.astype(float):
                    cx, cy, w, h = (xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin
                    rows.append(f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
                (labels / f"{stem}.txt").write_text("".join(r + "\n" for r in rows))
                counts[split] = counts.get(split, 0) + 1
            index += 1
        capture.release()
    data = work / "dataset.yaml"
    data.write_text(f"path: {root}\ntrain: train/images\nval: val/images\nnames:\n  0: person\n")
    print("pseudo-labelled images:", counts)
    return data


def model_config(family: str, work: Path) -> Path:
    """Ultralytics' own yaml for ``family`` at the ``n`` depth, ``WIDTH``, one class."""
    import yaml
    from ultralytics.utils import ROOT as UROOT

    config_file = {
        "yolov8": UROOT / "cfg/models/v8/yolov8.yaml",
        "yolo11": UROOT / "cfg/models/11/yolo11.yaml",
    }[family]
    config = yaml.safe_load(config_file.read_text())
    depth, _, max_channels = config["scales"]["n"]
    config["scales"] = {"n": [depth, WIDTH, max_channels]}
    config["nc"] = 1
    config_path = work / f"{family}n.yaml"  # the "n" in the name selects the scale
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def weights_path(work: Path, family: str) -> Path:
    """Where `train` leaves the best checkpoint of ``family``."""
    return work / family / "runs" / family / "weights" / "best.pt"


def train(family: str, work: Path, data: Path, epochs: int) -> Path:
    """Train ``family`` from its yaml (no pretrained weights, nothing downloaded) on the
    CPU with Ultralytics' default recipe (mosaic with gray padding, AdamW chosen by
    ``optimizer="auto"``), seed ``SEED``, deterministic; returns `weights_path`. Each
    family gets its own folder, so the two can train at the same time."""
    from ultralytics import YOLO

    folder = work / family
    folder.mkdir(parents=True, exist_ok=True)
    model = YOLO(str(model_config(family, folder)), task="detect")
    model.train(
        data=str(data),
        epochs=epochs,
        imgsz=IMGSZ,
        batch=16,
        device="cpu",
        workers=0,
        seed=SEED,
        deterministic=True,
        pretrained=False,
        amp=False,
        plots=False,
        project=str(folder / "runs"),
        name=family,
        exist_ok=True,
    )
    return weights_path(work, family)


def evaluate(weights: Path, data: Path) -> dict[str, float]:
    """Ultralytics' validation of ``weights`` on the dataset's val split (the
    pseudo-labels): mAP50 and mAP50-95."""
    from ultralytics import YOLO

    metrics = YOLO(str(weights), task="detect").val(
        data=str(data), imgsz=IMGSZ, batch=16, device="cpu", workers=0, plots=False
    )
    return {"map50": round(float(metrics.box.map50), 4), "map": round(float(metrics.box.map), 4)}


def export_all(family: str, work: Path, data: Path, weights: Path) -> dict[str, Path]:
    """Every export route of the trained ``weights`` (int8 calibrated on ``data``'s
    images); returns fixture name → exported file."""
    files: dict[str, Path] = {}

    def keep(name: str, exported: str | Path) -> None:
        files[name] = Path(shutil.copy(exported, work / f"{name}.tflite"))

    from ultralytics import YOLO

    # Exported files land beside the weights, named after them.
    weights = Path(shutil.copy(weights, work / family / f"{family}n.pt"))

    def fresh() -> YOLO:
        return YOLO(str(weights), task="detect")

    common = {"imgsz": IMGSZ, "batch": 1, "device": "cpu"}
    keep(f"{family}_litert_fp32", fresh().export(format="litert", **common))
    keep(
        f"{family}_litert_int8",
        fresh().export(format="litert", quantize=8, data=str(data), **common),
    )
    # format="edgetpu" is the onnx2tf route with boxes normalized (tf_wrapper); it ends by
    # running edgetpu_compiler, which is not installed here, after the files are written.
    saved = weights.with_name(f"{family}n_saved_model")
    try:
        fresh().export(format="edgetpu", data=str(data), **common)
    except Exception as exc:  # noqa: BLE001 - the compiler step; the files are checked below
        print(f"edgetpu export ended with {type(exc).__name__}: {exc}")
    keep(f"{family}_onnx2tf_fp32", next(saved.glob("*_float32.tflite")))
    keep(f"{family}_onnx2tf_int8", next(saved.glob("*_full_integer_quant.tflite")))
    for path in saved.glob("*.tflite"):
        shutil.copy(path, work / f"{family}_edgetpu_route_{path.name}")
    shutil.rmtree(saved)
    if family == "yolov8":
        # The export bakes its NMS in: conf (0.25 by default) as low as the lowest
        # setting, iou at Ultralytics' default 0.7.
        conf = min(c for c, _ in SETTINGS)
        saved = Path(fresh().export(format="saved_model", nms=True, conf=conf, iou=0.7, **common))
        keep(f"{family}_nms_fp32", next(saved.glob("*_float32.tflite")))
        shutil.rmtree(saved)
    return files


def _torchvision_without_its_extension() -> None:
    """Let torchvision import with a CPU-only torch.

    torchvision's wheels on PyPI are built against CUDA torch; with the CPU torch their
    ``_C`` extension does not load, and ``import torchvision`` then fails (its meta
    registrations need the ``torchvision::*`` operators). This defines those operators
    first, ``nms`` with a plain-torch implementation of torchvision's CPU kernel (stable
    descending score order, suppress IoU > threshold) and the others (unused here)
    raising, and tells torchvision its ops are present.
    """
    import torch

    library = torch.library.Library("torchvision", "DEF")
    schemas = {
        "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "roi_align": "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
        "pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
        "qroi_align": "qroi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
        "pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
        "_roi_align_backward": "_roi_align_backward(Tensor grad, Tensor rois, float "
        "spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt "
        "channels, SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor",
        "ps_roi_align": "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
        "pooled_height, SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)",
        "_ps_roi_align_backward": "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor "
        "channel_mapping, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int "
        "sampling_ratio, SymInt batch_size, SymInt channels, SymInt height, SymInt width) "
        "-> Tensor",
        "roi_pool": "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt "
        "pooled_height, SymInt pooled_width) -> (Tensor, Tensor)",
        "_roi_pool_backward": "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, "
        "float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, "
        "SymInt channels, SymInt height, SymInt width) -> Tensor",
        "ps_roi_pool": "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt "
        "pooled_height, SymInt pooled_width) -> (Tensor, Tensor)",
        "_ps_roi_pool_backward": "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor "
        "channel_mapping, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
        "SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
        "deform_conv2d": "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor "
        "mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, "
        "SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, bool "
        "use_mask) -> Tensor",
        "_deform_conv2d_backward": "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor "
        "weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, "
        "SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
        "SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    }
    for schema in schemas.values():
        library.define(schema)

    def nms(dets, scores, iou_threshold):
        order = torch.sort(scores, stable=True, descending=True).indices
        x1, y1, x2, y2 = dets.unbind(1)
        areas = (x2 - x1) * (y2 - y1)
        suppressed = torch.zeros(len(order), dtype=torch.bool)
        keep = []
        for rank, i in enumerate(order.tolist()):
            if suppressed[rank]:
                continue
            keep.append(i)
            rest = order[rank + 1 :]
            xx1 = torch.maximum(x1[i], x1[rest])
            yy1 = torch.maximum(y1[i], y1[rest])
            xx2 = torch.minimum(x2[i], x2[rest])
            yy2 = torch.minimum(y2[i], y2[rest])
            inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
            iou = inter / (areas[i] + areas[rest] - inter)
            suppressed[rank + 1 :] |= iou > iou_threshold
        return torch.tensor(keep, dtype=torch.int64)

    def unavailable(*args, **kwargs):
        raise NotImplementedError("torchvision's C++ extension is not loaded")

    library.impl("nms", nms, "CPU")
    for name in schemas:
        if name != "nms":
            library.impl(name, unavailable, "CPU")
    _torchvision_without_its_extension.library = library  # keep it registered

    import torchvision.extension

    torchvision.extension._has_ops = lambda: True


def _round_int8_inputs() -> None:
    """Make Ultralytics' LiteRT backend round, not truncate, when it quantizes an input.

    Its ``forward`` computes ``im / scale + zero_point`` then ``astype`` (truncation toward
    zero). Feeding it ``(q + 0.25 * sign(q) - zero_point) * scale`` for the rounded code
    ``q`` makes that truncation land on ``q``.
    """
    from ultralytics.nn.backends import litert

    original = litert.LiteRTBackend.forward

    def forward(self, im):
        import torch

        details = self.input_details[0]
        if details["dtype"] in {np.int8, np.int16}:
            scale, zero_point = details["quantization"]
            limits = np.iinfo(details["dtype"])
            values = im.cpu().numpy().astype(np.float64)
            codes = np.clip(np.round(values / scale + zero_point), limits.min, limits.max)
            nudged = (codes + 0.25 * np.sign(codes) - zero_point) * scale
            im = torch.from_numpy(nudged.astype(np.float32))
        return original(self, im)

    litert.LiteRTBackend.forward = forward
    litert.LiteRTBackend._edgedet_original = original


def _read_nms_pixels_as_pixels() -> None:
    """Make Ultralytics' LiteRT backend read ``format="saved_model", nms=True`` outputs right.

    That route writes post-NMS boxes in input pixels, but the backend treats every NHWC
    end-to-end output as normalized and multiplies it by the input size again (every box
    then covers the frame). Dividing the ``[1, N, 6]`` boxes by the input size as the
    interpreter hands them over undoes exactly that; the rest of its pipeline (conf
    filter, letterbox undo, clipping) runs unchanged.
    """
    from ultralytics.nn.backends import litert

    original = litert.LiteRTBackend.forward

    def forward(self, im):
        interpreter = self.interpreter
        get_tensor = interpreter.get_tensor
        height, width = im.shape[2:4]

        def normalized(index):
            x = get_tensor(index).copy()
            if x.ndim == 3 and x.shape[-1] == 6:
                x[..., [0, 2]] /= width
                x[..., [1, 3]] /= height
            return x

        interpreter.get_tensor = normalized
        try:
            return original(self, im)
        finally:
            del interpreter.get_tensor

    litert.LiteRTBackend.forward = forward
    litert.LiteRTBackend._edgedet_original = original


def _without_padding_copies(per_frame: dict) -> dict:
    """Drop the repeats of a kept detection from NMS-export predictions.

    The ``nms=True`` export fills the rows of its ``[1, 300, 6]`` output past the kept
    detections with copies of kept rows (score > 0, same box), and Ultralytics' predictor
    reports each copy as one more detection (36 for 2 objects on one frame). edgedet's
    NMS pass removes them (IoU 1); the reference keeps the first of each.
    """
    out = {}
    for name, found in per_frame.items():
        seen: set[tuple] = set()
        keep = []
        rows = zip(found["xyxy"], found["score"], found["class"], strict=True)
        for i, (xyxy, score, cls) in enumerate(rows):
            key = (*xyxy, score, cls)
            if key not in seen:
                seen.add(key)
                keep.append(i)
        out[name] = {k: [v[i] for i in keep] for k, v in found.items()}
    return out


def _restore_truncation() -> None:
    from ultralytics.nn.backends import litert

    original = getattr(litert.LiteRTBackend, "_edgedet_original", None)
    if original is not None:
        litert.LiteRTBackend.forward = original
        del litert.LiteRTBackend._edgedet_original


def predictions(model_file: Path, frames: dict[str, Path], conf: float, iou: float) -> dict:
    from ultralytics import YOLO

    model = YOLO(str(model_file), task="detect")
    out = {}
    for name, frame_file in frames.items():
        result = model.predict(
            str(frame_file), imgsz=IMGSZ, conf=conf, iou=iou, max_det=MAX_DET, verbose=False
        )[0]
        boxes = result.boxes
        out[name] = {
            "xyxy": boxes.xyxy.numpy().astype(float).round(2).tolist(),
            "score": boxes.conf.numpy().astype(float).round(7).tolist(),
            "class": boxes.cls.numpy().astype(int).tolist(),
        }
    return out


def letterboxed(frame: np.ndarray) -> np.ndarray:
    """The frame as Ultralytics' predictor letterboxes it (its own LetterBox class)."""
    from ultralytics.data.augment import LetterBox

    return LetterBox((IMGSZ, IMGSZ), auto=False, stride=32)(image=frame)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="fixture folder (default: %(default)s)"
    )
    parser.add_argument(
        "--keep", type=Path, help="work folder to use and keep (dataset, runs, exports)"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="default: %(default)s")
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        help="this family only: dataset (if missing), training, validation and exports into "
        "--keep, then stop (after --dataset-only, two can run at once; then --reuse)",
    )
    parser.add_argument(
        "--dataset-only", action="store_true", help="make the dataset in --keep, then stop"
    )
    parser.add_argument(
        "--trained", action="store_true", help="use the weights already trained in --keep"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip training and exports: predictions and fixtures from the files in --keep",
    )
    args = parser.parse_args()
    if (args.trained or args.reuse or args.family or args.dataset_only) and not args.keep:
        parser.error("--dataset-only, --family, --trained and --reuse need --keep")

    _torchvision_without_its_extension()
    import onnx2tf
    import torch
    import ultralytics
    import yaml

    work = Path(tempfile.mkdtemp(prefix="ultra-fixtures-"))
    if args.keep:
        work = args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
    data = work / "dataset.yaml"
    if not args.reuse and not data.exists():
        pseudo_labelled_dataset(work)
    if args.dataset_only:
        return
    out = args.out.resolve()
    # onnx2tf's route fetches a calibration sample for an unrelated issue unless it exists
    # in the working directory (so work there); it is not used for our calibration
    # (Ultralytics passes the dataset's images).
    os.chdir(work)
    sample = Path("calibration_image_sample_data_20x128x128x3_float32.npy")
    if not sample.exists():
        np.save(sample, np.random.default_rng(0).random((20, 128, 128, 3), np.float32))

    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    frame_files: dict[str, Path] = {}
    for name, frame in test_frames().items():
        path = frames_dir / f"{name}.png"
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        frame_files[name] = path
        lb_path = frames_dir / f"{name}_lb.png"
        cv2.imwrite(str(lb_path), letterboxed(frame), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        frame_files[f"{name}_lb"] = lb_path

    if not args.reuse:
        for family in (args.family,) if args.family else FAMILIES:
            weights = weights_path(work, family)
            if not args.trained:
                train(family, work, data, args.epochs)
            metrics = evaluate(weights, data)
            run_args = yaml.safe_load((weights.parents[1] / "args.yaml").read_text())
            metrics["epochs"] = run_args["epochs"]
            (work / family / "metrics.json").write_text(json.dumps(metrics))
            export_all(family, work, data, weights)
        if args.family:
            return
    exported = {path.stem: path for path in sorted(work.glob("yolo*_*_*.tflite"))}
    exported = {k: v for k, v in exported.items() if "_edgetpu_route_" not in k}
    metrics = {f: json.loads((work / f / "metrics.json").read_text()) for f in FAMILIES}
    splits = {
        split: len(list((work / "dataset" / split / "images").glob("*.jpg")))
        for split in ("train", "val")
    }

    import ai_edge_litert.interpreter as litert_interpreter

    expected: dict = {
        "versions": {
            "ultralytics": ultralytics.__version__,
            "torch": torch.__version__,
            "onnx2tf": onnx2tf.__version__,
        },
        "build": {
            "seed": SEED,
            "width": WIDTH,
            "classes": ["person"],
            "labels": f"{SSD.name} score >= {LABEL_MIN_SCORE}",
            "images": splits,
            "val": metrics,
        },
        "imgsz": IMGSZ,
        "max_det": MAX_DET,
        "settings": [{"conf": c, "iou": i} for c, i in SETTINGS],
        "models": {},
    }
    for name, path in sorted(exported.items()):
        target = out / f"{name}.tflite"
        shutil.copy(path, target)
        interpreter = litert_interpreter.Interpreter(model_path=str(target))
        detail = interpreter.get_input_details()[0]
        entry = {
            "file": target.name,
            "input": {
                "shape": [int(v) for v in detail["shape"]],
                "dtype": np.dtype(detail["dtype"]).name,
            },
            "output_shapes": [
                [int(v) for v in d["shape"]] for d in interpreter.get_output_details()
            ],
            "predictions": [],
        }
        int8_input = np.dtype(detail["dtype"]) in (np.dtype(np.int8), np.dtype(np.int16))
        for conf, iou in SETTINGS:
            record = {
                "conf": conf,
                "iou": iou,
                "ultralytics": predictions(target, frame_files, conf, iou),
            }
            if int8_input:
                _round_int8_inputs()
                try:
                    record["rounded"] = predictions(target, frame_files, conf, iou)
                finally:
                    _restore_truncation()
            if "_nms" in name:
                _read_nms_pixels_as_pixels()
                try:
                    fixed = predictions(target, frame_files, conf, iou)
                    record["units_fixed"] = _without_padding_copies(fixed)
                finally:
                    _restore_truncation()
            entry["predictions"].append(record)
        expected["models"][name] = entry
        print(name, target.stat().st_size, "bytes")
    text = json.dumps(expected, separators=(",", ":"))
    (out / "expected.json").write_text(text.replace('{"file"', '\n{"file"') + "\n")
    print("work folder:", work)


if __name__ == "__main__":
    main()
