"""`edgedet detect` through the real console entry point, on real frames."""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest
from support.service import clean_env, edgedet_cmd, run_edgedet


@pytest.fixture(scope="module")
def frame_files(sample_frames, tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for i, frame in enumerate(sample_frames[:3]):
        path = folder / f"frame{i}.png"
        cv2.imwrite(str(path), frame)
        paths.append(str(path))
    return paths


def test_json_lines_follow_the_record_contract(frame_files):
    result = run_edgedet("detect", *frame_files, "--json", "--min-score", "0.3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(frame_files)
    total = 0
    for line, path in zip(lines, frame_files, strict=True):
        record = json.loads(line)
        assert set(record) == {"image", "width", "height", "detections"}
        assert record["image"] == path
        assert (record["width"], record["height"]) == (768, 576)
        scores = [d["score"] for d in record["detections"]]
        assert scores == sorted(scores, reverse=True)
        for d in record["detections"]:
            assert set(d) == {"label", "class_id", "score", "box"}
            assert d["label"] == "person" and d["class_id"] == 0 and d["score"] >= 0.3
            ymin, xmin, ymax, xmax = d["box"]
            assert 0 <= ymin <= ymax <= 1 and 0 <= xmin <= xmax <= 1
        total += len(record["detections"])
    assert total > 0, "the pedestrian clip should yield people"


def test_raising_min_score_keeps_a_subset(frame_files):
    low = json.loads(run_edgedet("detect", frame_files[0], "--json", "--min-score", "0.3").stdout)
    high = json.loads(run_edgedet("detect", frame_files[0], "--json", "--min-score", "0.6").stdout)
    low_boxes = {tuple(d["box"]) for d in low["detections"]}
    assert {tuple(d["box"]) for d in high["detections"]} <= low_boxes
    assert all(d["score"] >= 0.6 for d in high["detections"])


def test_annotate_writes_images_with_boxes_drawn(frame_files, tmp_path):
    result = run_edgedet("detect", frame_files[0], "--annotate", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "person" in result.stdout  # the readable table
    written = cv2.imread(str(tmp_path / "out" / "frame0.png"))
    original = cv2.imread(frame_files[0])
    assert written.shape == original.shape
    assert np.count_nonzero(np.any(written != original, axis=2)) > 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg"], "cannot read image missing.jpg: no such file"),
        (["{img}", "--min-score", "1.5"], "min_score must be between 0 and 1"),
        (["{img}", "--iou", "-1"], "iou must be between 0 and 1"),
        (["{img}", "--model", "nope.tflite"], "nope.tflite does not exist"),
        (["{img}", "--labels", "{labels}"], "label file"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(frame_files, tmp_path, args, message):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncar\ndog\n")
    args = [a.format(img=frame_files[0], labels=labels) for a in args]
    result = run_edgedet("detect", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_printed_score_passed_back_as_min_score_returns_the_detection(frame_files):
    """Scores are printed rounded down, so ``--min-score <printed score>`` keeps the
    detection (rounded to nearest, a printed 0.8129 for 0.81288 would lose it)."""
    first = json.loads(run_edgedet("detect", frame_files[0], "--json", "--min-score", "0.3").stdout)
    detections = first["detections"]
    assert detections, "the pedestrian clip should yield people"
    # The lowest score of each run is the one a threshold can lose; try three.
    for d in sorted(detections, key=lambda d: d["score"])[:3]:
        again = run_edgedet("detect", frame_files[0], "--json", "--min-score", str(d["score"]))
        assert again.returncode == 0, again.stderr
        found = json.loads(again.stdout)["detections"]
        assert d in found, (d, found)
        text = run_edgedet("detect", frame_files[0], "--min-score", str(d["score"])).stdout
        assert f"{d['score']:.4f}" in text


@pytest.mark.parametrize("json_lines", [True, False])
def test_a_reader_that_stops_early_ends_it_quietly(frame_files, json_lines):
    """``edgedet detect --json ... | head -1``: once the reader has gone, the next write
    fails (EPIPE); edgedet stops with the shell's SIGPIPE status and says nothing."""
    args = [*frame_files, *frame_files] + (["--json"] if json_lines else [])
    proc = subprocess.Popen(
        edgedet_cmd("detect", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does after its line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert first.strip(), "the first line reached the reader"
    assert stderr == ""
