"""Bad input to `edgedet convert`: one clear line on stderr, exit code 2, nothing written.

Also the two guards that stop a bad model from shipping: ops the Edge TPU cannot run
(``--edgetpu`` forbids float fallback) and a quantized model whose detections drift from
the float model's (the fidelity report's AP threshold).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_models
import yaml

from edgedet.cli import main as cli_main

pytestmark = tiny_models.needs_tensorflow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli_main(["convert", *map(str, argv), "--quiet"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("edgedet convert: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_nothing_written(folder: Path) -> None:
    """No model, no card, no temporary file left behind."""
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.fixture()
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def sin_saved_model(model_dir) -> Path:
    """A YOLOv8-shaped head computed through SIN, an op TFLite has no integer kernel for."""
    import tensorflow as tf

    class SinHead(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32)])
        def serve(self, images):
            pooled = tf.nn.avg_pool2d(images, 8, 8, "VALID")  # (1, 8, 8, 3)
            waves = tf.sin(pooled * 3.0)
            head = tf.reshape(tf.concat([pooled, waves], axis=-1), [-1, 64, 6])
            return {"output0": tf.transpose(head, [0, 2, 1])}

    module = SinHead()
    path = model_dir / "sin_head"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def ssd_args(ssd_keras_path: Path, anchors_yaml: Path, calib: Path, out: Path) -> list:
    return [
        ssd_keras_path,
        "--out", out,
        "--calib", calib,
        "--calib-count", "8",
        "--holdout", "4",
        "--anchors", anchors_yaml,
        "--labels", "bright",
    ]  # fmt: skip


def test_missing_calibration_source(capsys, out_dir, ssd_keras_path, anchors_yaml):
    args = ssd_args(ssd_keras_path, anchors_yaml, out_dir / "nope.mp4", out_dir / "m.tflite")
    rc, _, err = run(capsys, *args)
    assert_one_line_error(rc, err, "nope.mp4", "does not exist")
    assert_nothing_written(out_dir)


def test_unreadable_calibration_images(capsys, tmp_path, out_dir, ssd_keras_path, anchors_yaml):
    calib = tmp_path / "broken"
    calib.mkdir()
    for i in range(10):
        (calib / f"img{i}.jpg").write_bytes(b"not a jpeg at all")
    args = ssd_args(ssd_keras_path, anchors_yaml, calib, out_dir / "m.tflite")
    rc, _, err = run(capsys, *args)
    assert_one_line_error(rc, err, str(calib), "could be decoded")
    assert_nothing_written(out_dir)


def test_unreadable_calibration_video(capsys, tmp_path, out_dir, ssd_keras_path, anchors_yaml):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 4096)
    args = ssd_args(ssd_keras_path, anchors_yaml, video, out_dir / "m.tflite")
    rc, _, err = run(capsys, *args)
    assert_one_line_error(rc, err, "clip.mp4")
    assert_nothing_written(out_dir)


def test_too_few_calibration_images(
    capsys, tmp_path, out_dir, ssd_keras_path, anchors_yaml, sample_frames
):
    import cv2

    calib = tmp_path / "few"
    calib.mkdir()
    for i, frame in enumerate(sample_frames[:3]):
        cv2.imwrite(str(calib / f"f{i}.png"), frame)
    args = ssd_args(ssd_keras_path, anchors_yaml, calib, out_dir / "m.tflite")
    rc, _, err = run(capsys, *args)
    assert_one_line_error(rc, err, "need at least 8")
    assert_nothing_written(out_dir)


def test_output_folder_missing_fails_before_converting(
    capsys, tmp_path, ssd_keras_path, anchors_yaml, calib_dir
):
    out = tmp_path / "no" / "such" / "folder" / "m.tflite"
    rc, _, err = run(capsys, *ssd_args(ssd_keras_path, anchors_yaml, calib_dir, out))
    assert_one_line_error(rc, err, "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_path_under_a_file(capsys, tmp_path, ssd_keras_path, anchors_yaml, calib_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "m.tflite"
    rc, _, err = run(capsys, *ssd_args(ssd_keras_path, anchors_yaml, calib_dir, out))
    assert_one_line_error(rc, err, "cannot write")
    assert blocker.read_text() == "x"


def test_output_must_be_a_tflite_file(capsys, out_dir, ssd_keras_path, anchors_yaml, calib_dir):
    rc, _, err = run(
        capsys, *ssd_args(ssd_keras_path, anchors_yaml, calib_dir, out_dir / "model.bin")
    )
    assert_one_line_error(rc, err, ".tflite")
    assert_nothing_written(out_dir)


def test_tensors_not_found_in_frozen_graph(capsys, out_dir, odapi_graph, calib_dir):
    rc, _, err = run(
        capsys,
        odapi_graph,
        "--out", out_dir / "m.tflite",
        "--calib", calib_dir,
        "--output-tensors", "concat,no_such_tensor",
    )  # fmt: skip
    assert_one_line_error(rc, err, "no_such_tensor:0", "--output-tensors")
    assert_nothing_written(out_dir)


def test_corrupt_frozen_graph(capsys, tmp_path, out_dir, calib_dir):
    graph = tmp_path / "broken.pb"
    graph.write_bytes(b"\xff\xfe garbage \x00\x01" * 10)
    rc, _, err = run(capsys, graph, "--out", out_dir / "m.tflite", "--calib", calib_dir)
    assert_one_line_error(rc, err, "broken.pb")
    assert_nothing_written(out_dir)


def test_unknown_source_kind(capsys, tmp_path, out_dir, calib_dir):
    src = tmp_path / "model.onnx"
    src.write_bytes(b"onnx")
    rc, _, err = run(capsys, src, "--out", out_dir / "m.tflite", "--calib", calib_dir)
    assert_one_line_error(rc, err, "model.onnx")
    assert_nothing_written(out_dir)


def test_label_count_must_match_the_head(capsys, out_dir, yolo_h5_path, calib_dir):
    rc, _, err = run(
        capsys, yolo_h5_path, "--out", out_dir / "m.tflite", "--calib", calib_dir,
        "--labels", "a,b,c",
    )  # fmt: skip
    assert_one_line_error(rc, err, "2 classes", "3 labels")
    assert_nothing_written(out_dir)


def test_ssd_keras_head_without_anchor_spec(capsys, out_dir, ssd_keras_path, calib_dir):
    rc, _, err = run(capsys, ssd_keras_path, "--out", out_dir / "m.tflite", "--calib", calib_dir)
    assert_one_line_error(rc, err, "--anchors")
    assert_nothing_written(out_dir)


def test_edgetpu_refuses_ops_without_integer_kernels(capsys, out_dir, sin_saved_model, calib_dir):
    rc, _, err = run(
        capsys, sin_saved_model, "--out", out_dir / "m.tflite", "--calib", calib_dir,
        "--calib-count", "8", "--holdout", "4", "--labels", "a,b", "--edgetpu",
    )  # fmt: skip
    assert_one_line_error(rc, err, "--edgetpu")
    assert_nothing_written(out_dir)


def test_float_fallback_is_listed_in_the_report_and_card(
    capsys, out_dir, sin_saved_model, calib_dir
):
    out = out_dir / "m.tflite"
    rc, stdout, err = run(
        capsys, sin_saved_model, "--out", out, "--calib", calib_dir,
        "--calib-count", "8", "--holdout", "4", "--labels", "a,b", "--min-ap", "0",
    )  # fmt: skip
    assert rc == 0, err
    assert "full-integer: NO" in stdout and "SIN" in stdout
    assert "not full-integer" in err
    quant = yaml.safe_load(out.with_suffix(".yaml").read_text())["quantization"]
    assert quant["type"] == "int8_float_fallback"
    assert any(op.startswith("SIN") for op in quant["float_fallback_ops"])


def test_fidelity_below_threshold_fails_and_writes_nothing(capsys, model_dir, out_dir, calib_dir):
    """Boxes in pixels share one uint8 tensor with scores: scores keep ~3 levels."""
    src = model_dir / "yolo_pixels.keras"
    if not src.exists():
        tiny_models.yolov8_keras(pixels=True).save(src)
    rc, _, err = run(
        capsys, src, "--out", out_dir / "m.tflite", "--calib", calib_dir,
        "--calib-count", "12", "--holdout", "12", "--labels", "bright,dark",
    )  # fmt: skip
    assert_one_line_error(rc, err, "AP@0.5", "below --min-ap 0.9", "nothing written")
    assert_nothing_written(out_dir)


def test_failed_write_keeps_the_previous_model(capsys, out_dir, ssd_keras_path, anchors_yaml):
    """A conversion that fails leaves an existing model and card untouched."""
    out = out_dir / "m.tflite"
    out.write_bytes(b"previous model")
    out.with_suffix(".yaml").write_text("previous card")
    args = ssd_args(ssd_keras_path, anchors_yaml, out_dir / "missing.mp4", out)
    rc, _, err = run(capsys, *args)
    assert rc == 2
    assert out.read_bytes() == b"previous model"
    assert out.with_suffix(".yaml").read_text() == "previous card"
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.tflite", "m.yaml"]
