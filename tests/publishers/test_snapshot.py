"""Snapshot publisher on real files: trigger labels, rate limit, retention, atomic writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from edgedet.detections import Detections
from edgedet.metrics import Metrics
from edgedet.publishers.snapshot import SnapshotPublisher

LABELS = ("person", "car", "dog")
FRAME = np.full((90, 120, 3), 30, np.uint8)


def dets(*class_ids: int) -> Detections:
    n = len(class_ids)
    return Detections(
        np.tile([[0.2, 0.2, 0.8, 0.8]], (n, 1)),
        np.linspace(0.9, 0.6, n),
        np.array(class_ids, dtype=np.int32),
        LABELS,
    )


def rec(i: int) -> dict:
    return {"ts": 1764115200.0 + i * 0.5, "frame": i}


def test_writes_annotated_jpegs_only_for_chosen_labels(tmp_path: Path) -> None:
    pub = SnapshotPublisher(
        tmp_path / "snaps", labels=("person", "dog"), min_interval=0, metrics=Metrics()
    )
    pub.publish(rec(0), FRAME, dets(1))  # car only: no snapshot
    pub.publish(rec(1), FRAME, Detections.empty(LABELS))
    pub.publish(rec(2), FRAME, dets(0, 1))
    pub.publish(rec(3), FRAME, dets(2, 0))
    pub.close()
    files = pub.snapshots()
    assert [f.name for f in files] == [
        "20251126T000001.000Z_2_person.jpg",
        "20251126T000001.500Z_3_dog+person.jpg",
    ]
    image = cv2.imread(str(files[0]))
    assert image is not None and image.shape == FRAME.shape
    assert np.abs(image[18, 30:90].astype(int) - 30).max() > 60  # the box edge at y=0.2
    assert sorted(os.listdir(tmp_path / "snaps")) == sorted(f.name for f in files)  # no temps


def test_rate_limit_takes_at_most_one_snapshot_per_interval(tmp_path: Path) -> None:
    pub = SnapshotPublisher(tmp_path, min_interval=3600, metrics=Metrics())
    for i in range(50):
        pub.publish(rec(i), FRAME, dets(0))
    pub.close()
    assert [f.name for f in pub.snapshots()] == ["20251126T000000.000Z_0_person.jpg"]
    assert (
        pub.metrics.get("publish_dropped_total", publisher="snapshot") == 0
    )  # rate-limited, not dropped


def test_retention_keeps_the_newest_files_and_ignores_others(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    pub = SnapshotPublisher(tmp_path, min_interval=0, keep=3, queue_size=100, metrics=Metrics())
    for i in range(10):
        pub.publish(rec(i), FRAME, dets(0))
    pub.close()
    assert [f.name.split("_")[1] for f in pub.snapshots()] == ["7", "8", "9"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_unwritable_directory_is_counted_and_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "snaps"
    blocker.write_text("a file where the directory should be")
    metrics = Metrics()
    pub = SnapshotPublisher(blocker, min_interval=0, queue_size=100, metrics=metrics)
    for i in range(3):
        pub.publish(rec(i), FRAME, dets(0))
    deadline = time.monotonic() + 10
    while metrics.get("publish_errors_total", publisher="snapshot") < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    blocker.unlink()
    pub.publish(rec(3), FRAME, dets(0))
    pub.close()
    assert metrics.get("publish_dropped_total", publisher="snapshot") == 3
    assert metrics.get("publish_errors_total", publisher="snapshot") == 3
    assert [f.name.split("_")[1] for f in pub.snapshots()] == ["3"]
