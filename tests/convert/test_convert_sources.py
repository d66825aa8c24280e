"""`edgedet convert` on each kind of source, with real models converted by TensorFlow.

Each test converts a real model (tiny Keras/SavedModel detectors built by the fixtures, or
the TF OD API frozen graph of the bundled model), then checks the result the way the
runtime will use it: the card loads, its sha256 matches, the interpreter's dequantized
outputs match the original model's, and edgedet's Detector finds the right object.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import tiny_models
import yaml

from edgedet.cli import main as cli_main

pytestmark = tiny_models.needs_tensorflow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli_main(["convert", *map(str, argv), "--quiet"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def load_card(model: Path) -> dict:
    return yaml.safe_load(model.with_suffix(".yaml").read_text())


def assert_card_matches_file(model: Path, card: dict) -> None:
    assert card["format"] == "edgedet-model/1"
    assert card["file"] == model.name
    assert card["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def dequantized_outputs(detector, frame: np.ndarray) -> list[np.ndarray]:
    outputs, _ = detector.raw_outputs(frame)
    result = []
    for info, out in zip(detector.output_infos, outputs, strict=True):
        if info.quantized:
            out = (out.astype(np.float32) - info.zero_point) * np.float32(info.scale)
        result.append(out)
    return result


def keras_outputs(model, card: dict, frame: np.ndarray) -> list[np.ndarray]:
    from edgedet.convert.calibration import preprocess
    from edgedet.modelcard import ModelCard

    spec = ModelCard.from_mapping(card).input
    out = model(preprocess(frame, spec), training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def assert_close_to_float(detector, quantized: list, reference: list, steps: float = 3) -> None:
    """Each dequantized output within a few quantization steps of the float model's.

    TFLite may list outputs in another order than the source model (decoders bind them
    by shape), so outputs are paired by shape.
    """
    assert len(quantized) == len(reference)
    unused = list(reference)
    for info, q in zip(detector.output_infos, quantized, strict=True):
        ref = next(r for r in unused if r.shape == q.shape)
        unused = [r for r in unused if r is not ref]
        np.testing.assert_allclose(q, ref, atol=steps * info.scale, err_msg=info.name)


def test_keras_ssd_head_converts_to_full_integer_with_anchor_card(
    capsys, tmp_path, ssd_keras_path, anchors_yaml, sample_clip, sample_frames
):
    from edgedet.detector import Detector

    out = tmp_path / "ssd.tflite"
    rc, stdout, err = run(
        capsys,
        ssd_keras_path,
        "--out", out,
        "--calib", sample_clip,
        "--calib-count", "16",
        "--holdout", "16",
        "--anchors", anchors_yaml,
        "--labels", "bright",
    )  # fmt: skip
    assert rc == 0, err
    assert "full-integer: yes" in stdout
    card = load_card(out)
    assert_card_matches_file(out, card)
    assert card["labels"] == ["bright"]
    assert card["decoder"]["type"] == "ssd"
    assert card["decoder"]["anchors"] == tiny_models.SSD_ANCHORS
    assert card["input"] == {
        "height": 64,
        "width": 64,
        "color": "rgb",
        "resize": "stretch",
        "mean": 127.5,
        "std": 127.5,
    }
    quant = card["quantization"]
    assert quant["type"] == "full_int8" and quant["io"] == "uint8"
    assert quant["float_fallback_ops"] == []
    assert [t["dtype"] for t in quant["inputs"] + quant["outputs"]] == ["uint8"] * 3
    assert quant["calibration"]["frames"] == 16
    assert quant["fidelity"]["frames"] == 16
    assert quant["fidelity"]["ap50"] >= 0.9

    detector = Detector.open(out)
    frame = tiny_models.bright_patch_frame(1, 2, grid=4)
    found = detector.detect(frame)
    assert len(found.scores) > 0
    ymin, xmin, ymax, xmax = found.boxes[0]
    # The best box sits on the bright cell (row 1, column 2 of the 4x4 grid).
    assert 0.25 <= (ymin + ymax) / 2 <= 0.5 and 0.5 <= (xmin + xmax) / 2 <= 0.75
    # On a real frame (inside the calibrated range) the integer model follows the float one.
    model = __import__("keras").models.load_model(ssd_keras_path, compile=False)
    real = sample_frames[-1]
    assert_close_to_float(
        detector, dequantized_outputs(detector, real), keras_outputs(model, card, real)
    )


def test_keras_h5_yolov8_head_is_identified_and_decodes(
    capsys, tmp_path, yolo_h5_path, yolo_keras_model, calib_dir, sample_frames
):
    from edgedet.detector import Detector

    out = tmp_path / "yolo.tflite"
    rc, _, err = run(
        capsys,
        yolo_h5_path,
        "--out", out,
        "--calib", calib_dir,
        "--calib-count", "12",
        "--holdout", "12",
        "--labels", "bright,dark",
    )  # fmt: skip
    assert rc == 0, err
    card = load_card(out)
    assert_card_matches_file(out, card)
    assert card["decoder"] == {
        "type": "yolov8",
        "score_activation": "none",
        "box_units": "normalized",
    }
    assert card["input"]["resize"] == "letterbox" and card["input"]["std"] == 255.0
    assert card["quantization"]["outputs"][0]["shape"] == [1, 6, 64]

    detector = Detector.open(out)
    frame = tiny_models.bright_patch_frame(5, 2, grid=8)
    found = detector.detect(frame, min_score=0.5)
    bright = found.boxes[found.class_ids == 0]
    assert len(bright) == 1  # the one white cell; the 63 dark cells are class "dark"
    assert np.sum(found.class_ids == 1) > 0
    ymin, xmin, ymax, xmax = bright[0]
    assert 5 / 8 <= (ymin + ymax) / 2 <= 6 / 8 and 2 / 8 <= (xmin + xmax) / 2 <= 3 / 8
    real = sample_frames[0]
    assert_close_to_float(
        detector, dequantized_outputs(detector, real), keras_outputs(yolo_keras_model, card, real)
    )


def test_saved_model_converts_with_int8_io(
    capsys, tmp_path, yolo_saved_model, yolo_keras_model, calib_dir, sample_frames
):
    from edgedet.detector import Detector

    out = tmp_path / "yolo_sm.tflite"
    rc, _, err = run(
        capsys,
        yolo_saved_model,
        "--out", out,
        "--calib", calib_dir,
        "--calib-count", "12",
        "--holdout", "8",
        "--labels", "bright,dark",
        "--io", "int8",
    )  # fmt: skip
    assert rc == 0, err
    card = load_card(out)
    assert card["source"]["kind"] == "saved_model"
    assert card["quantization"]["io"] == "int8"
    assert [t["dtype"] for t in card["quantization"]["inputs"]] == ["int8"]
    detector = Detector.open(out)
    assert detector.input_dtype == np.int8
    real = sample_frames[2]
    assert_close_to_float(
        detector, dequantized_outputs(detector, real), keras_outputs(yolo_keras_model, card, real)
    )


def test_dynamic_input_needs_input_size(capsys, tmp_path, model_dir, anchors_yaml, calib_dir):
    from edgedet.detector import Detector

    saved = tiny_models.save_saved_model(
        tiny_models.ssd_keras(dynamic=True), model_dir / "dynamic_ssd", dynamic=True
    )
    out = tmp_path / "dyn.tflite"
    common = ["--calib", calib_dir, "--calib-count", "8", "--holdout", "4"]
    common += ["--anchors", anchors_yaml, "--labels", "bright"]
    rc, _, err = run(capsys, saved, "--out", out, *common)
    assert rc == 2
    assert err.count("\n") == 1 and "--input-size" in err
    assert not out.exists() and not out.with_suffix(".yaml").exists()

    rc, _, err = run(capsys, saved, "--out", out, "--input-size", "64x64", *common)
    assert rc == 0, err
    detector = Detector.open(out)
    assert detector.preprocessor.height == 64 and detector.preprocessor.width == 64


def test_odapi_frozen_graph_is_cut_like_the_api_export(capsys, tmp_path, odapi_graph, calib_dir):
    """The real TF OD API graph: cut tensors found, anchor spec read, full-integer result."""
    from edgedet.detector import Detector

    out = tmp_path / "person.tflite"
    rc, stdout, err = run(
        capsys,
        odapi_graph,
        "--out", out,
        "--calib", calib_dir,
        "--calib-count", "8",
        "--holdout", "6",
        "--labels", "person",
        # The overrides name the tensors automatic detection picks: same result.
        "--input-tensor", "Preprocessor/sub",
        "--output-tensors", "concat,concat_1",
    )  # fmt: skip
    assert rc == 0, err
    card = load_card(out)
    assert_card_matches_file(out, card)
    bundled = yaml.safe_load(
        (Path(__file__).parents[2] / "models/ssdlite_mobilenet_v2_person_uint8.yaml").read_text()
    )
    assert card["decoder"] == bundled["decoder"]
    assert card["input"] == bundled["input"]
    assert card["source"]["cut"] == {
        "input": "Preprocessor/sub:0",
        "outputs": ["concat:0", "concat_1:0"],
    }
    quant = card["quantization"]
    assert quant["type"] == "full_int8"
    assert [t["name"] for t in quant["outputs"]] == [
        "raw_outputs/box_encodings",
        "raw_outputs/class_predictions",
    ]
    assert [t["shape"] for t in quant["outputs"]] == [[1, 1917, 4], [1, 1917, 2]]
    assert quant["op_counts"]["CONV_2D"] == 55
    detector = Detector.open(out)
    assert detector.labels == ("person",)


def test_frozen_graph_analysis_finds_the_same_tensors_without_overrides(odapi_graph):
    from edgedet.convert import odapi

    graph_def = odapi.load_graph_def(odapi_graph)
    auto = odapi.analyze_ssd_graph(graph_def)
    assert auto.input_tensor == "Preprocessor/sub:0"
    assert auto.output_tensors == ("concat:0", "concat_1:0")
    assert (auto.input_height, auto.input_width) == (300, 300)
    assert (auto.mean, auto.std) == (127.5, 127.5)
    assert auto.num_classes == 1
    assert auto.decoder["score_activation"] == "sigmoid"
    assert auto.decoder["box_scales"] == [10.0, 10.0, 5.0, 5.0]
    assert "logit_scale" not in auto.decoder  # Postprocessor/scale_logits divides by 1.0
    assert auto.reference_nms == {"iou_threshold": 0.6, "score_threshold": 1e-08}


def test_edgetpu_without_compiler_prints_the_command(
    capsys, tmp_path, ssd_keras_path, anchors_yaml, calib_dir, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler here
    out = tmp_path / "tpu.tflite"
    rc, stdout, err = run(
        capsys,
        ssd_keras_path,
        "--out", out,
        "--calib", calib_dir,
        "--calib-count", "8",
        "--holdout", "4",
        "--anchors", anchors_yaml,
        "--labels", "bright",
        "--edgetpu",
    )  # fmt: skip
    assert rc == 0, err
    assert f"edgetpu_compiler -s -o {tmp_path} {out}" in stdout
    assert load_card(out)["quantization"]["edgetpu"] is True


def test_odapi_tf2_export_with_postprocess_op(capsys, tmp_path, model_dir, calib_dir):
    """What export_tflite_graph_tf2.py writes: the custom op is fused, runs in float."""
    from edgedet.detector import Detector

    saved = model_dir / "tiny_ssd_postprocess"
    if not saved.exists():
        tiny_models.ssd_postprocess_saved_model(saved)
    out = tmp_path / "pp.tflite"
    rc, stdout, err = run(
        capsys, saved, "--out", out, "--calib", calib_dir,
        "--calib-count", "12", "--holdout", "12", "--labels", "bright",
    )  # fmt: skip
    assert rc == 0, err
    assert "up to TFLite_Detection_PostProcess" in stdout
    card = load_card(out)
    assert_card_matches_file(out, card)
    assert card["decoder"] == {"type": "tflite_postprocess"}
    assert card["source"]["postprocess"]["num_classes"] == "1"
    quant = card["quantization"]
    assert quant["type"] == "full_int8"
    assert quant["op_counts"]["TFLite_Detection_PostProcess"] == 1
    assert quant["inputs"][0]["dtype"] == "uint8"
    assert quant["fidelity"]["ap50"] >= 0.9

    detector = Detector.open(out)
    found = detector.detect(tiny_models.bright_patch_frame(2, 1, grid=4))
    assert len(found.scores) > 0
    ymin, xmin, ymax, xmax = found.boxes[0]
    assert 0.5 <= (ymin + ymax) / 2 <= 0.75 and 0.25 <= (xmin + xmax) / 2 <= 0.5


def test_calibration_progress_bar_on_stderr(
    capsys, tmp_path, ssd_keras_path, anchors_yaml, calib_dir
):
    out = tmp_path / "bar.tflite"
    rc = cli_main(
        [
            "convert", str(ssd_keras_path), "--out", str(out), "--calib", str(calib_dir),
            "--calib-count", "8", "--holdout", "4", "--anchors", str(anchors_yaml),
            "--labels", "bright",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "calibrating: 100%" in err and "8/8" in err


def test_keras_yolov5_head_with_objectness(capsys, tmp_path, model_dir, calib_dir):
    from edgedet.detector import Detector

    src = model_dir / "tiny_yolov5.keras"
    if not src.exists():
        tiny_models.yolov5_keras().save(src)
    out = tmp_path / "v5.tflite"
    rc, _, err = run(
        capsys, src, "--out", out, "--calib", calib_dir,
        "--calib-count", "12", "--holdout", "12", "--labels", "bright,dark",
    )  # fmt: skip
    assert rc == 0, err
    card = load_card(out)
    # [1, 64, 7] with two labels: 5 + C fits, 4 + C does not.
    assert card["decoder"] == {
        "type": "yolov5",
        "score_activation": "none",
        "box_units": "normalized",
    }
    found = Detector.open(out).detect(tiny_models.bright_patch_frame(3, 6, grid=8), min_score=0.5)
    bright = found.boxes[found.class_ids == 0]
    assert len(bright) == 1
    ymin, xmin, ymax, xmax = bright[0]
    assert 3 / 8 <= (ymin + ymax) / 2 <= 4 / 8 and 6 / 8 <= (xmin + xmax) / 2 <= 7 / 8
