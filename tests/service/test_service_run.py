"""`edgedet run` end to end: bundled model, real clips, real processes and signals."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import cv2
import pytest
from support.service import ROOT, count_lines, read_log, run_edgedet
from support.waiting import wait_for

RECORD_KEYS = {"ts", "frame", "source", "width", "height", "dropped", "timing_ms", "detections"}


def check_record(rec: dict, *, width: int, height: int, min_score: float) -> None:
    """One DESIGN.md record, exactly."""
    assert set(rec) == RECORD_KEYS
    assert isinstance(rec["ts"], float) and rec["ts"] > 1.6e9
    assert (rec["width"], rec["height"]) == (width, height)
    assert isinstance(rec["dropped"], int) and rec["dropped"] >= 0
    assert set(rec["timing_ms"]) == {"preprocess", "invoke", "postprocess"}
    assert all(v >= 0 for v in rec["timing_ms"].values())
    scores = [d["score"] for d in rec["detections"]]
    assert scores == sorted(scores, reverse=True)
    for d in rec["detections"]:
        assert set(d) == {"label", "class_id", "score", "box"}
        assert d["label"] == "person" and d["class_id"] == 0
        assert min_score <= d["score"] <= 1.0
        ymin, xmin, ymax, xmax = d["box"]
        assert 0.0 <= ymin <= ymax <= 1.0 and 0.0 <= xmin <= xmax <= 1.0


def check_accounting(records: list[dict]) -> None:
    """Frame indices and `dropped` account for every delivered frame."""
    previous = -1
    for rec in records:
        assert rec["frame"] - previous - 1 == rec["dropped"], rec
        previous = rec["frame"]


def run_to_log(model: Path, source: Path, log: Path, *flags: str, cwd: Path):
    """``edgedet run`` of ``model`` on ``source`` to its end, records to ``log``, no HTTP."""
    return run_edgedet(
        "run", "--model", str(model), "--source", str(source), "--log", str(log),
        "--http", "off", *flags, cwd=cwd,
    )  # fmt: skip


def test_run_writes_one_valid_record_per_frame_and_prints_a_summary(
    tmp_path, run_model, clip_factory
):
    clip = clip_factory(40)
    log = tmp_path / "det.jsonl"
    proc = run_to_log(run_model, clip, log, "--max-frames", "12", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    assert len(records) == 12
    for rec in records:
        check_record(rec, width=384, height=288, min_score=0.5)  # the card's default
        assert rec["source"] == clip.name
    assert [r["frame"] for r in records] == list(range(12))  # paced by consumption
    check_accounting(records)
    assert sum(len(r["detections"]) for r in records) > 0  # vtest shows people
    out = proc.stdout
    assert "12 processed, 0 dropped" in out and "FPS" in out
    assert "detections" in out and "person" in out
    for stage in ("capture", "preprocess", "invoke", "postprocess", "publish"):
        assert stage in out
    # Events only on stderr, no per-frame lines.
    assert len(proc.stderr.strip().splitlines()) < 8, proc.stderr


def test_realtime_clip_to_its_end_accounts_for_every_frame_and_exits_0(
    tmp_path, run_model, clip_factory
):
    n = 40
    clip = clip_factory(n, fps=400.0)  # faster than inference: frames must be dropped
    log = tmp_path / "det.jsonl"
    proc = run_to_log(run_model, clip, log, "--realtime", "--min-score", "0.4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    for rec in records:
        check_record(rec, width=384, height=288, min_score=0.4)
    check_accounting(records)
    dropped = sum(r["dropped"] for r in records)
    assert dropped > 0
    last = records[-1]["frame"]
    assert len(records) + dropped == last + 1
    assert last == n - 1  # the slot's last frame is always processed before the end
    assert f"{len(records)} processed, {dropped} dropped" in proc.stdout
    assert "source ended" in proc.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_within_5_s_with_the_log_complete(
    tmp_path, spawn, run_model, clip_factory, signum
):
    log = tmp_path / "det.jsonl"
    proc = spawn(
        "--model",
        str(run_model),
        "--source",
        str(clip_factory(30)),
        "--loop",
        "--log",
        str(log),
        "--http",
        "off",
    )
    wait_for(lambda: count_lines(log) >= 5, timeout=60)
    sent = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - sent < 5.0
    records = read_log(log)  # every line complete and valid
    check_accounting(records)
    out = proc.stdout_path.read_text()
    assert f"stopped by {signal.Signals(signum).name}" in out
    assert f"{len(records)} processed" in out  # every processed frame reached the log
    assert "stopped cleanly" in proc.stderr_path.read_text()


def test_sighup_reloads_thresholds_and_reports_keys_needing_a_restart(
    tmp_path, spawn, run_model, clip_factory
):
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  min_score: 0.3\nlog:\n  backups: 5\n")
    log = tmp_path / "det.jsonl"
    proc = spawn(
        "--config",
        str(config),
        "--model",
        str(run_model),
        "--source",
        str(clip_factory(30)),
        "--loop",
        "--log",
        str(log),
        "--http",
        "off",
    )
    wait_for(lambda: count_lines(log) >= 5, timeout=60)
    before = read_log(log)
    assert any(d["score"] < 0.9 for r in before for d in r["detections"])
    config.write_text(
        "model:\n  min_score: 0.3\nfilters:\n  min_score: {person: 0.9}\nlog:\n  backups: 2\n"
    )
    proc.send_signal(signal.SIGHUP)
    stderr = proc.stderr_path
    wait_for(lambda: "config reloaded" in stderr.read_text(), timeout=30)
    boundary = int(re.search(r"frames after (-?\d+)", stderr.read_text()).group(1))
    wait_for(lambda: sum(r["frame"] > boundary for r in read_log(log)) >= 5, timeout=60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    after = [r for r in read_log(log) if r["frame"] > boundary]
    assert len(after) >= 5
    assert all(d["score"] >= 0.9 for r in after for d in r["detections"])
    text = stderr.read_text()
    assert re.search(r"in effect now \(frames after \d+\): filters.min_score", text)
    assert "need a restart to take effect: log.backups" in text
    check_accounting(read_log(log))


def test_sighup_with_an_invalid_config_keeps_running(tmp_path, spawn, run_model, clip_factory):
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  min_score: 0.3\n")
    log = tmp_path / "det.jsonl"
    proc = spawn(
        "--config",
        str(config),
        "--model",
        str(run_model),
        "--source",
        str(clip_factory(30)),
        "--loop",
        "--log",
        str(log),
        "--http",
        "off",
    )
    wait_for(lambda: count_lines(log) >= 3, timeout=60)
    config.write_text("model:\n  min_scor: 0.9\n")
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config not reloaded" in proc.stderr_path.read_text(), timeout=30)
    assert "did you mean 'min_score'" in proc.stderr_path.read_text()
    n = count_lines(log)
    wait_for(lambda: count_lines(log) >= n + 3, timeout=60)  # still processing
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_default_run_uses_the_bundled_clip_and_model(tmp_path, sample_clip):
    """`make run` on a machine with no camera: auto → the bundled clip, bundled model."""
    if Path("/dev/video0").exists():
        pytest.skip("a camera is present: `source: auto` would pick it")
    log = tmp_path / "det.jsonl"
    proc = run_edgedet("run", "--log", str(log), "--http", "off", "--max-frames", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    assert len(records) == 5 and {r["source"] for r in records} == {sample_clip.name}
    cap = cv2.VideoCapture(str(sample_clip))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    assert (records[0]["width"], records[0]["height"]) == size
    assert "ssdlite_mobilenet_v2_person_uint8" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--source", "/nonexistent/clip.mp4"], "no such file or folder"),
        (["--source", "/dev/video63"], "no such camera device"),
        (["--model", "/nonexistent/model.tflite"], "/nonexistent/model.tflite"),
    ],
)
def test_start_up_errors_are_one_line_exit_2(tmp_path, run_model, args, expected):
    model = [] if "--model" in args else ["--model", str(run_model)]
    proc = run_edgedet(
        "run",
        "--http",
        "off",
        "--log",
        str(tmp_path / "l.jsonl"),
        *model,
        *args,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("edgedet run: error")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_sighup_switches_the_source_and_numbering_continues(
    tmp_path, spawn, run_model, clip_factory, sample_clip
):
    config = tmp_path / "config.yaml"
    config.write_text(f"source:\n  uri: {clip_factory(30)}\n  loop: true\n")
    log = tmp_path / "det.jsonl"
    proc = spawn(
        "--config", str(config), "--model", str(run_model), "--log", str(log), "--http", "off"
    )
    wait_for(lambda: count_lines(log) >= 5, timeout=60)
    config.write_text(f"source:\n  uri: {sample_clip}\n  loop: true\n")
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "source switched to" in proc.stderr_path.read_text(), timeout=30)
    wait_for(lambda: any(r["source"] == sample_clip.name for r in read_log(log)), timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    records = read_log(log)
    sources = [r["source"] for r in records]
    switch = sources.index(sample_clip.name)
    assert switch >= 5 and set(sources[switch:]) == {sample_clip.name}
    assert {(r["width"], r["height"]) for r in records[:switch]} == {(384, 288)}
    assert (records[switch]["width"], records[switch]["height"]) != (384, 288)
    check_accounting(records)  # frame numbers continue across the switch
    assert re.search(
        r"in effect now \(frames after \d+\): source.uri", proc.stderr_path.read_text()
    )


def test_image_folder_run_skips_unreadable_images_and_reports_them(
    tmp_path, run_model, clip_factory
):
    folder = tmp_path / "images"
    folder.mkdir()
    cap = cv2.VideoCapture(str(clip_factory(30)))
    for i in range(4):
        ok, image = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"frame_{i}.jpg"), image)
    cap.release()
    (folder / "frame_2b.jpg").write_bytes(b"truncated upload")
    log = tmp_path / "det.jsonl"
    proc = run_to_log(run_model, folder, log, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    assert [r["frame"] for r in records] == [0, 1, 2, 3]  # skipped images are not frames
    assert {r["source"] for r in records} == {"images"}
    assert "4 processed, 0 dropped" in proc.stdout
    assert "1 unreadable images skipped" in proc.stdout
    assert "skipping unreadable images" in proc.stderr
