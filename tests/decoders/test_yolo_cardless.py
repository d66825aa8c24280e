"""Card-less YOLO identification and the one-line errors for what edgedet cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.decoders.base import TensorInfo
from edgedet.decoders.yolo import anchor_centres, cardless_spec, grid_size
from edgedet.detector import input_layout
from edgedet.errors import ModelError


def _info(shape, dtype=np.float32):
    return TensorInfo(0, "out", tuple(shape), np.dtype(dtype), None, 0)


def test_grid_follows_the_input_size_and_strides():
    assert grid_size(320, 320) == 1600 + 400 + 100
    assert grid_size(640, 640) == 8400
    assert grid_size(100, 60) == 13 * 8 + 7 * 4 + 4 * 2  # each stage rounds up
    centres = anchor_centres(64, 32)
    assert centres.shape == (grid_size(64, 32), 2)
    assert centres[:3].tolist() == [[4, 4], [12, 4], [20, 4]]  # level 8: row-major (x, y)
    assert centres[32].tolist() == [8, 8]  # first cell of stride 16
    assert anchor_centres(64, 32, per_cell=3).shape == (3 * grid_size(64, 32), 2)


@pytest.mark.parametrize(
    ("shape", "want"),
    [
        ((1, 84, 2100), {"type": "yolov8", "layout": "channels_first"}),
        ((1, 2100, 84), {"type": "yolov8", "layout": "channels_last"}),
        ((1, 6300, 85), {"type": "yolov5"}),
        ((1, 6300, 6), {"type": "yolov5"}),  # one class, three anchors per cell
        ((1, 300, 6), {"type": "yolo_nms"}),  # not a grid: NMS included
        ((1, 100, 7), None),  # left to the shape rules of build_decoder
    ],
)
def test_geometry_identifies_heads_without_metadata(shape, want):
    found = cardless_spec([_info(shape)], (320, 320), "nhwc", None)
    assert (found[0] if found else None) == want


def test_metadata_decides_family_units_and_labels():
    meta = {"task": "detect", "imgsz": [320, 320], "stride": 32, "names": {"0": "a", "1": "b"}}
    spec, labels = cardless_spec([_info((1, 6, 2100))], (320, 320), "nchw", meta)
    assert spec == {"type": "yolov8", "layout": "channels_first"}  # units: anchor grid
    assert labels == ("a", "b")
    nms = {**meta, "args": {"nms": True, "opset": None}}  # format="saved_model": pixels
    assert cardless_spec([_info((1, 300, 6))], (320, 320), "nhwc", nms)[0] == {
        "type": "yolo_nms",
        "box_units": "pixels",
    }
    e2e = {**meta, "end2end": True, "args": {"batch": 1}}  # LiteRT route: pixels
    assert cardless_spec([_info((1, 300, 6))], (320, 320), "nchw", e2e)[0]["box_units"] == "pixels"
    tpu = {**meta, "end2end": True, "args": {"opset": None}}  # edgetpu route: normalized
    assert (
        cardless_spec([_info((1, 300, 6))], (320, 320), "nhwc", tpu)[0]["box_units"] == "normalized"
    )


@pytest.mark.parametrize(
    ("meta", "outputs", "message"),
    [
        ({"task": "segment"}, [(1, 116, 2100), (1, 32, 80, 80)], "Ultralytics segment model"),
        ({"task": "detect"}, [(1, 84, 2100), (1, 84, 2100)], "expected one [1, 4 + classes"),
        ({"task": "detect", "imgsz": [640, 640]}, [(1, 84, 2100)], "imgsz [640, 640]"),
        ({"task": "detect", "stride": 32}, [(1, 84, 999)], "expected [1, 4 + classes, 2100]"),
    ],
)
def test_ultralytics_models_edgedet_cannot_run_get_one_line(meta, outputs, message):
    with pytest.raises(ModelError) as err:
        cardless_spec([_info(s) for s in outputs], (320, 320), "nhwc", meta)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("shapes", "want"),
    [
        ([[1, 320, 320, 3]], (320, 320, "nhwc")),
        ([[1, 3, 256, 320]], (256, 320, "nchw")),
        ([[1, 96, 96, 1]], (96, 96, "nhwc")),
    ],
)
def test_input_layouts(shapes, want, tmp_path):
    details = [{"shape": np.array(s, np.int32)} for s in shapes]
    assert input_layout(tmp_path / "m.tflite", details) == want


@pytest.mark.parametrize(
    "shapes", [[[1, 4, 320, 320]], [[1, 320, 320]], [[2, 320, 320, 3]], [[1, 8, 8, 3]] * 2, []]
)
def test_unsupported_inputs_are_named_without_numpy_reprs(shapes, tmp_path):
    details = [{"shape": np.array(s, np.int32)} for s in shapes]
    with pytest.raises(ModelError) as err:
        input_layout(tmp_path / "m.tflite", details)
    text = str(err.value)
    assert "expected one image input [1, H, W, 3] (NHWC) or [1, 3, H, W] (NCHW)" in text
    assert "np." not in text and "int32" not in text and "\n" not in text
    if shapes:
        assert str(shapes[0]) in text
