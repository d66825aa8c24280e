"""`edgedet tune` through the console entry point: report, --write-card, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.service import run_edgedet
from tune_support import write_coco, write_voc

from edgedet.detector import Detector

LABEL_MAP = ("--label-map", "pedestrian=person", "--label-map", "dog=-")


@pytest.fixture(scope="module")
def coco_file(truth_objects, tmp_path_factory) -> Path:
    return write_coco(
        tmp_path_factory.mktemp("coco") / "truth.json", truth_objects, person_name="pedestrian"
    )


def copy_model(bundled_model: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".tflite", ".yaml"):
        shutil.copy(bundled_model.with_suffix(suffix), folder)
    return folder / bundled_model.name


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_and_write_card(bundled_model, image_folder, coco_file, tmp_path):
    model = copy_model(bundled_model, tmp_path / "model")
    card = model.with_suffix(".yaml")
    before_sha = sha(model)
    before = yaml.safe_load(card.read_text())
    out = tmp_path / "report"
    args = [str(image_folder), "--model", str(model), "--annotations", str(coco_file)]
    result = run_edgedet(
        "tune", *args, *LABEL_MAP, "--target-recall", "1.0", "--write-card", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "recommended: min_score" in result.stdout and str(card) in result.stdout
    for name in (
        "report.md",
        "tune.json",
        "pr_curve.png",
        "min_score.png",
        "iou.png",
        "examples.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    report = (out / "report.md").read_text()
    assert "Recommended: min_score" in report and "![" in report

    after = yaml.safe_load(card.read_text())
    tuned = after["defaults"]["tuned"]
    # Truth is the model's own detections at 0.6: full recall needs min_score <= 0.6.
    assert after["defaults"]["min_score"] <= 0.6 and tuned["recall"] == 1.0
    assert tuned["metric"] == "highest precision with recall >= 1"
    assert tuned["frames"] == 8 and len(tuned["data_sha256"]) == 64 and tuned["date"]
    assert after["defaults"]["max_detections"] == before["defaults"]["max_detections"]
    assert {k: v for k, v in after.items() if k != "defaults"} == {
        k: v for k, v in before.items() if k != "defaults"
    }
    assert sha(model) == before_sha == after["sha256"]
    assert sorted(p.name for p in model.parent.iterdir()) == sorted([model.name, card.name])
    reopened = Detector.open(model)  # the card still loads and its sha256 still holds
    assert reopened.card.defaults.min_score == after["defaults"]["min_score"]
    assert reopened.card.defaults.iou == after["defaults"]["iou"]


def run_bad(*args: str, out: Path, **kwargs) -> str:
    result = run_edgedet("tune", *args, "--out", str(out), timeout=300, **kwargs)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not out.exists(), "nothing may be written on bad input"
    return lines[0]


def test_annotated_image_missing(bundled_model, image_folder, truth_objects, tmp_path):
    objects = dict(truth_objects)
    objects["gone.png"] = [("person", [1, 2, 30, 40])]
    coco = write_coco(tmp_path / "t.json", objects, person_name="pedestrian")
    line = run_bad(str(image_folder), "--annotations", str(coco), *LABEL_MAP, out=tmp_path / "o")
    assert "gone.png" in line and "add it or remove its annotations" in line


def test_label_the_model_does_not_know(image_folder, truth_objects, tmp_path):
    voc = write_voc(tmp_path / "voc", truth_objects)
    line = run_bad(str(image_folder), "--annotations", str(voc), out=tmp_path / "o")
    assert "'dog'" in line and "--label-map dog=" in line


def test_empty_data_folder(tmp_path, bundled_model):
    (tmp_path / "empty").mkdir()
    line = run_bad(str(tmp_path / "empty"), "--reference", str(bundled_model), out=tmp_path / "o")
    assert str(tmp_path / "empty") in line and "no images" in line


def test_video_that_cannot_be_opened(tmp_path, bundled_model):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"not a video at all\n" * 100)
    line = run_bad(str(video), "--reference", str(bundled_model), out=tmp_path / "o")
    assert str(video) in line and "cannot be opened as a video" in line


def test_no_ground_truth_in_the_frames(tmp_path, bundled_model, image_folder):
    coco = write_coco(tmp_path / "t.json", {"frame0.png": []})
    line = run_bad(str(image_folder), "--annotations", str(coco), out=tmp_path / "o")
    assert "no true objects" in line


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into, root included: chmod for users, the immutable
    attribute (chattr +i) for root, who ignores permission bits."""
    folder = tmp_path / "model"
    folder.mkdir()
    root = os.geteuid() == 0
    if root and shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only")

    def lock() -> None:
        if root:
            result = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            if result.returncode != 0:
                pytest.skip(f"chattr +i not supported here: {result.stderr.decode().strip()}")
        else:
            os.chmod(folder, 0o555)

    yield folder, lock
    if root:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    else:
        os.chmod(folder, 0o755)


def test_card_that_cannot_be_written(bundled_model, image_folder, tmp_path, read_only_folder):
    """The model's folder is read-only: refused before the run, card and model intact."""
    folder, lock = read_only_folder
    model = copy_model(bundled_model, folder)
    card = model.with_suffix(".yaml")
    card_text = card.read_text()
    lock()
    line = run_bad(
        str(image_folder),
        "--model",
        str(model),
        "--reference",
        str(model),
        "--write-card",
        out=tmp_path / "out",
    )
    assert str(card) in line and "not writable" in line
    assert card.read_text() == card_text
    assert sorted(p.name for p in folder.iterdir()) == sorted([model.name, card.name])
