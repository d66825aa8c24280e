"""JSONL detections log on real files: lines, rotation, retention, failures."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from support.waiting import wait_for

from edgedet.detections import Detections
from edgedet.metrics import Metrics
from edgedet.publishers.jsonl import JsonlLogPublisher

FRAME = np.zeros((4, 4, 3), np.uint8)
NO_DETECTIONS = Detections.empty(("person",))


def record(i: int, pad: int = 0) -> dict:
    return {
        "ts": 1700000000.0 + i,
        "frame": i,
        "source": "test",
        "width": 640,
        "height": 480,
        "dropped": 0,
        "timing_ms": {"preprocess": 1.5, "invoke": 3.25, "postprocess": 0.5},
        "detections": [
            {"label": "person", "class_id": 0, "score": 0.91, "box": [0.1, 0.2, 0.3, 0.4]}
        ],
        "note": "x" * pad,
    }


def read_lines(path: Path) -> list[dict]:
    """Every line of ``path`` parsed; fails the test on any partial or corrupt line."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends inside a record"
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_each_record_is_one_compact_json_line(tmp_path: Path) -> None:
    metrics = Metrics()
    pub = JsonlLogPublisher(tmp_path / "logs" / "det.jsonl", metrics=metrics)
    records = [record(i) for i in range(50)]
    for r in records:
        pub.publish(r, FRAME, NO_DETECTIONS)
    pub.close()
    text = (tmp_path / "logs" / "det.jsonl").read_text()
    assert text.count("\n") == 50
    assert ": " not in text and ", " not in text  # compact separators
    assert read_lines(tmp_path / "logs" / "det.jsonl") == records
    assert metrics.get("publish_dropped_total", publisher="log") == 0
    assert metrics.get("publish_errors_total", publisher="log") == 0


def test_numpy_values_in_a_record_are_written_as_numbers(tmp_path: Path) -> None:
    pub = JsonlLogPublisher(tmp_path / "det.jsonl", metrics=Metrics())
    pub.publish(
        {"frame": np.int64(7), "score": np.float32(0.5), "box": np.zeros(2)}, FRAME, NO_DETECTIONS
    )
    pub.close()
    assert read_lines(tmp_path / "det.jsonl") == [{"frame": 7, "score": 0.5, "box": [0.0, 0.0]}]


def test_rotation_under_load_keeps_every_line_whole_and_the_newest_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "det.jsonl"
    max_bytes, backups, n = 4000, 3, 3000
    pub = JsonlLogPublisher(
        path, max_bytes=max_bytes, backups=backups, queue_size=n, metrics=Metrics()
    )
    rng = np.random.default_rng(0)
    for i in range(n):
        # Varying sizes so rotation points fall everywhere relative to record boundaries.
        pub.publish(record(i, pad=int(rng.integers(0, 300))), FRAME, NO_DETECTIONS)
    pub.close(timeout=30)
    assert pub.metrics.get("publish_dropped_total", publisher="log") == 0

    files = [path] + [path.with_name(f"det.jsonl.{k}") for k in range(1, backups + 1)]
    assert all(f.exists() for f in files)
    assert not path.with_name(f"det.jsonl.{backups + 1}").exists()  # retention
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)
    frames: list[int] = []
    for f in reversed(files):  # oldest backup first
        assert f.stat().st_size <= max_bytes
        frames += [r["frame"] for r in read_lines(f)]
    # The retained files hold an unbroken run of the newest records, in order.
    assert frames == list(range(n - len(frames), n))
    assert len(frames) > backups * max_bytes // 400


def test_appends_to_an_existing_log_and_rotates_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "det.jsonl"
    path.write_text(json.dumps({"frame": -1}) + "\n")
    pub = JsonlLogPublisher(path, max_bytes=300, backups=1, metrics=Metrics())
    pub.publish(record(0), FRAME, NO_DETECTIONS)  # 14 + ~200 bytes: fits
    pub.publish(record(1), FRAME, NO_DETECTIONS)  # would exceed: rotates first
    pub.close()
    assert [r["frame"] for r in read_lines(path.with_name("det.jsonl.1"))] == [-1, 0]
    assert [r["frame"] for r in read_lines(path)] == [1]


def test_zero_backups_restarts_the_log(tmp_path: Path) -> None:
    path = tmp_path / "det.jsonl"
    pub = JsonlLogPublisher(path, max_bytes=500, backups=0, metrics=Metrics())
    for i in range(10):
        pub.publish(record(i), FRAME, NO_DETECTIONS)
    pub.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.jsonl"]
    frames = [r["frame"] for r in read_lines(path)]
    assert frames and frames == list(range(10 - len(frames), 10))


def test_parent_that_is_a_file_is_counted_once_logged_and_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("not a directory")  # makes logs/det.jsonl fail with ENOTDIR/EEXIST
    metrics = Metrics()
    pub = JsonlLogPublisher(blocker / "det.jsonl", metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="edgedet.publishers.jsonl"):
        for i in range(5):
            pub.publish(record(i), FRAME, NO_DETECTIONS)
        wait_for(lambda: metrics.get("publish_errors_total", publisher="log") == 5)
        failures = [r for r in caplog.records if "cannot write" in r.getMessage()]
        assert len(failures) == 1, "one log line per failure episode, not per record"
        assert str(blocker / "det.jsonl") in failures[0].getMessage()

        blocker.unlink()
        blocker.mkdir()  # the operator fixes it; the next record gets through
        for i in range(5, 8):
            pub.publish(record(i), FRAME, NO_DETECTIONS)
        pub.close()
    assert [r["frame"] for r in read_lines(blocker / "det.jsonl")] == [5, 6, 7]
    assert metrics.get("publish_errors_total", publisher="log") == 5
    assert metrics.get("publish_dropped_total", publisher="log") == 5
    assert any("writing again after 5 lost" in r.getMessage() for r in caplog.records)


def test_disk_full_dev_full_is_counted_and_the_publisher_keeps_going(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available")
    metrics = Metrics()
    pub = JsonlLogPublisher("/dev/full", metrics=metrics)
    for i in range(20):
        pub.publish(record(i), FRAME, NO_DETECTIONS)
    pub.close()
    assert metrics.get("publish_errors_total", publisher="log") == 20
    assert 'edgedet_publish_errors_total{publisher="log"} 20' in metrics.render_prometheus()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 64 KiB tmpfs, to fill a real filesystem; skipped where mounting is not allowed."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_filling_a_real_filesystem_never_leaves_half_a_record(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "det.jsonl"
    metrics = Metrics()
    pub = JsonlLogPublisher(path, max_bytes=10_000_000, queue_size=2000, metrics=metrics)
    # ~1.3 KB records into 64 KiB: the disk fills mid-record at least once.
    for i in range(200):
        pub.publish(record(i, pad=1100 + (i * 37) % 200), FRAME, NO_DETECTIONS)
    pub.close(timeout=30)
    written = read_lines(path)  # fails on a partial line
    errors = metrics.get("publish_errors_total", publisher="log")
    dropped = metrics.get("publish_dropped_total", publisher="log")
    assert errors > 0 and written
    assert len(written) + dropped == 200  # every record is either whole in the file or dropped
    frames = [r["frame"] for r in written]
    assert frames == sorted(set(frames)) and frames[0] == 0


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_a_log_deleted_or_moved_by_someone_else_is_started_again(tmp_path: Path, how: str) -> None:
    path = tmp_path / "det.jsonl"
    pub = JsonlLogPublisher(path, metrics=Metrics())
    pub.reopen_check_interval = 0.0  # check before every record (default: once a second)
    for i in range(3):
        pub.publish(record(i), FRAME, NO_DETECTIONS)
    wait_for(lambda: path.exists() and path.read_text().count("\n") == 3)
    if how == "deleted":
        path.unlink()
    else:
        path.rename(tmp_path / "det.jsonl.old")
    for i in range(3, 6):
        pub.publish(record(i), FRAME, NO_DETECTIONS)
    pub.close()
    assert [r["frame"] for r in read_lines(path)] == [3, 4, 5]
    if how == "moved":
        assert [r["frame"] for r in read_lines(tmp_path / "det.jsonl.old")] == [0, 1, 2]
