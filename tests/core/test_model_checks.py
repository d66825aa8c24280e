"""Model file and card checks run before the interpreter sees a file: a corrupt
flatbuffer can crash the process instead of raising."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from support.service import run_edgedet

from edgedet.detector import Detector
from edgedet.errors import BackendError, ConfigError, InputError, ModelError
from edgedet.modelcard import ModelCard, check_tflite_file, read_labels


@pytest.fixture()
def model_copy(bundled_model, tmp_path):
    """The bundled model and its card copied to a scratch folder."""
    target = tmp_path / bundled_model.name
    shutil.copy(bundled_model, target)
    shutil.copy(bundled_model.with_suffix(".yaml"), target.with_suffix(".yaml"))
    return target


def test_bundled_model_passes_checks_and_card_loads(bundled_model):
    data = check_tflite_file(bundled_model)
    assert data[4:8] == b"TFL3"
    card = ModelCard.load(bundled_model.with_suffix(".yaml"))
    assert card.labels == ("person",)
    assert card.decoder["type"] == "ssd"


@pytest.mark.parametrize("keep", [0.999, 0.9, 0.5, 0.05])
def test_truncated_model_is_rejected_before_the_interpreter(model_copy, keep):
    data = model_copy.read_bytes()
    model_copy.write_bytes(data[: int(len(data) * keep)])
    model_copy.with_suffix(".yaml").unlink()  # no card: the flatbuffer check alone
    with pytest.raises(ModelError, match="corrupt or truncated"):
        Detector.open(model_copy)


def test_non_tflite_file_is_rejected(tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(ModelError, match="not a TFLite model"):
        Detector.open(bogus)


def test_missing_model_names_the_path(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Detector.open(tmp_path / "nope.tflite")


def test_flipped_byte_fails_the_cards_sha256(model_copy):
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        Detector.open(model_copy)


def test_card_with_unknown_key_is_rejected(model_copy):
    card_path = model_copy.with_suffix(".yaml")
    card = yaml.safe_load(card_path.read_text())
    card["lables"] = ["person"]
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match="unknown keys"):
        Detector.open(model_copy)


def test_label_file_with_wrong_length_is_an_input_error(model_copy, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncar\n")
    with pytest.raises(InputError, match="labels"):
        Detector.open(model_copy, labels_path=labels)


def test_label_file_formats(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("person\n\nbicycle\ncar\n")
    assert read_labels(plain) == ("person", "bicycle", "car")
    numbered = tmp_path / "coral.txt"
    numbered.write_text("0  person\n1  bicycle\n3  motorcycle\n")
    assert read_labels(numbered) == ("person", "bicycle", "2", "motorcycle")


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval_is_rejected(bundled_model, bad):
    detector = Detector.open(bundled_model)
    frame = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        detector.detect(frame, min_score=bad)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        detector.detect(frame, iou_threshold=bad)


def test_tflite_runtime_under_numpy2_says_what_to_do():
    from edgedet.backends import get_backend

    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("needs NumPy 2 to show the tflite-runtime incompatibility")
    with pytest.raises(BackendError, match=r"numpy<2"):
        get_backend("tflite_runtime")


def test_missing_edgetpu_runtime_is_a_clear_error_and_fallback_is_opt_in(bundled_model):
    with pytest.raises(BackendError, match="libedgetpu1-std"):
        Detector.open(bundled_model, edgetpu=True)
    detector = Detector.open(bundled_model, edgetpu=True, allow_cpu_fallback=True)
    assert not detector.on_edgetpu


def test_runtime_import_does_not_pull_tensorflow(bundled_model):
    code = (
        "import sys, numpy as np\n"
        "from edgedet.detector import Detector\n"
        f"d = Detector.open({str(bundled_model)!r})\n"
        "d.detect(np.zeros((240, 320, 3), np.uint8))\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print(d.backend_name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("litert", "tflite_runtime")


def test_model_whose_outputs_match_no_decoder_is_one_line_exit_2(tmp_path, sample_frames):
    tf = pytest.importorskip("tensorflow")
    import cv2

    inp = tf.keras.Input((32, 32, 3))
    out = tf.keras.layers.Dense(10)(tf.keras.layers.GlobalAveragePooling2D()(inp))
    classifier = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out)).convert()
    model = tmp_path / "classifier.tflite"
    model.write_bytes(classifier)
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), sample_frames[0])
    result = run_edgedet("detect", str(image), "--model", str(model))
    assert result.returncode == 2
    assert "match no known detector head" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
