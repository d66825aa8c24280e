"""The tflite-runtime extra, run for real: a second environment (`make test` builds
.venv-tflite-runtime: NumPy 1.x, opencv-python-headless 4.x, tflite-runtime 2.14) runs
edgedet by subprocess on the bundled model and clip, compared with this environment
(NumPy 2, OpenCV 5, ai-edge-litert).

What is expected identical, and checked so:
- the interpreter input tensors (the golden sha256 of test_preprocess_golden.py): NumPy
  and OpenCV versions do not change preprocessing;
- ai-edge-litert's detections in that environment and in this one (same interpreter,
  same input: same output).
What is not: tflite-runtime 2.14's int8 kernels round differently from ai-edge-litert
2.3's (raw output codes differ by up to 9 on 43 % of the values over the clip), so its
detections are compared for agreement: over the whole clip (measured: 540 vs 535
detections, every detection scoring >= 0.57 matched at IoU >= 0.89, score differences
<= 0.097), with bounds that leave margin but still catch a broken interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.postprocess import box_iou

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("input_tensor_golden.json")


@pytest.fixture(scope="module")
def tflite_python() -> str:
    python = os.environ.get("EDGEDET_TFLITE_RUNTIME_PYTHON") or str(
        ROOT / ".venv-tflite-runtime" / "bin" / "python"
    )
    if not Path(python).is_file():
        if os.environ.get("EDGEDET_TFLITE_RUNTIME_PYTHON"):
            pytest.fail(f"EDGEDET_TFLITE_RUNTIME_PYTHON={python} does not exist")
        pytest.skip("no .venv-tflite-runtime: `make test` builds it")
    return python


def run(python: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, not an installed copy
    done = subprocess.run(
        [python, *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_environment_is_numpy_1_opencv_4_and_tflite_runtime_2_14(tflite_python):
    code = (
        "import numpy, cv2, tflite_runtime; "
        "print(numpy.__version__, cv2.__version__, tflite_runtime.__version__)"
    )
    numpy_v, cv2_v, tflite_v = run(tflite_python, "-c", code).stdout.split()
    assert numpy_v.startswith("1.") and cv2_v.startswith("4.") and tflite_v.startswith("2.14")


def test_input_tensors_match_the_golden_hashes_there(tflite_python):
    run(
        tflite_python,
        str(ROOT / "tools" / "input_tensor_hashes.py"),
        "--backend",
        "tflite_runtime",
        "--check",
        str(GOLDEN),
    )


@pytest.fixture(scope="module")
def frame_files(sample_frames, tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for i, frame in enumerate(sample_frames):
        path = folder / f"frame{i}.png"
        cv2.imwrite(str(path), frame)  # lossless: both environments read the same pixels
        paths.append(str(path))
    return paths


def detect(python: str, frame_files: list[str], backend: str) -> list[dict]:
    out = run(python, "-m", "edgedet", "detect", "--json", "--backend", backend, *frame_files)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_litert_detections_are_identical_with_numpy_1_and_opencv_4(tflite_python, frame_files):
    there = detect(tflite_python, frame_files, "litert")
    here = detect(sys.executable, frame_files, "litert")
    assert sum(len(r["detections"]) for r in here) > 0
    assert there == here


def assert_agree(a: list[list[dict]], b: list[list[dict]]) -> None:
    """Per frame: every detection scoring >= 0.65 on one side has one on the other at
    IoU >= 0.8 whose score is within 0.15; the totals differ by at most 5 %."""
    total_a = sum(map(len, a))
    total_b = sum(map(len, b))
    assert total_a > 0 and abs(total_a - total_b) <= 0.05 * total_a, (total_a, total_b)
    for frame_a, frame_b in zip(a, b, strict=True):
        for one, other in ((frame_a, frame_b), (frame_b, frame_a)):
            if not other:
                assert all(d["score"] < 0.65 for d in one)
                continue
            iou = box_iou(
                np.array([d["box"] for d in one], np.float32).reshape(-1, 4),
                np.array([d["box"] for d in other], np.float32),
            )
            for d, row in zip(one, iou, strict=True):
                if d["score"] < 0.65:
                    continue
                j = int(row.argmax())
                assert row[j] >= 0.8, d
                assert abs(d["score"] - other[j]["score"]) <= 0.15, (d, other[j])


def test_tflite_runtime_detect_agrees_with_litert(tflite_python, frame_files):
    there = detect(tflite_python, frame_files, "tflite_runtime")
    here = detect(sys.executable, frame_files, "litert")
    assert [r["image"] for r in there] == frame_files
    assert_agree([r["detections"] for r in there], [r["detections"] for r in here])


def test_tflite_runtime_run_on_the_clip_agrees_with_litert(tflite_python, sample_clip, tmp_path):
    logs = {}
    for name, python, backend in (
        ("tflite", tflite_python, "tflite_runtime"),
        ("litert", sys.executable, "litert"),
    ):
        logs[name] = tmp_path / f"{name}.jsonl"
        out = run(
            python,
            "-m",
            "edgedet",
            "run",
            "--source",
            str(sample_clip),
            "--backend",
            backend,
            "--max-frames",
            "30",
            "--http",
            "off",
            "--log",
            str(logs[name]),
        )
        assert f"({backend})" in out.stderr  # the started line names the interpreter
    records = {k: [json.loads(x) for x in v.read_text().splitlines()] for k, v in logs.items()}
    assert [r["frame"] for r in records["tflite"]] == list(range(30))
    assert [r["frame"] for r in records["litert"]] == list(range(30))
    assert_agree(
        [r["detections"] for r in records["tflite"]], [r["detections"] for r in records["litert"]]
    )
