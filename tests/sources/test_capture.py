"""The capture thread and latest-frame slot on real files, folders and an HTTP stream."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
from srcmedia import index_of

from edgedet.metrics import Metrics
from edgedet.sources import EndOfSource, Frame
from edgedet.sources.capture import CaptureThread, LatestFrameSlot
from edgedet.sources.opencv import VideoFileSource


def frame(i: int) -> Frame:
    return Frame(i, np.zeros((2, 2, 3), np.uint8), 0.0)


def drain(slot: LatestFrameSlot, *, delay: float = 0.0, timeout: float = 10.0):
    """Take frames until the source ends; ``delay`` simulates slow inference."""
    taken = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = slot.take(0.5)
        except EndOfSource:
            return taken
        if item is not None:
            taken.append(item)
            time.sleep(delay)
    raise AssertionError(f"source did not end within {timeout} s; took {len(taken)}")


def test_slot_keeps_only_the_latest_frame_and_counts_overwrites():
    slot = LatestFrameSlot()
    for i in range(5):
        assert slot.put(frame(i)) == i
    got = slot.take(0.1)
    assert (got.seq, got.frame.index, got.dropped) == (4, 4, 4)
    assert slot.take(0.01) is None
    slot.put(frame(5))
    got = slot.take(0.1)
    assert (got.seq, got.dropped) == (5, 0)
    assert (slot.delivered, slot.dropped_total) == (6, 4)


def test_slot_put_with_wait_blocks_until_the_frame_is_taken():
    slot = LatestFrameSlot()
    slot.put(frame(0), wait=True)
    done = threading.Event()

    def producer():
        slot.put(frame(1), wait=True)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.2)  # still waiting: the first frame is not taken
    assert slot.take(0.1).seq == 0
    assert done.wait(2.0)
    got = slot.take(0.1)
    assert (got.seq, got.dropped) == (1, 0)


def test_file_paced_by_consumption_loses_nothing_to_a_slow_consumer(video):
    metrics = Metrics()
    slot = LatestFrameSlot()
    src = VideoFileSource(str(video(15, fps=1000)))
    src.open()
    capture = CaptureThread(src, slot, metrics=metrics, opened=True).start()
    taken = drain(slot, delay=0.01)
    capture.stop()
    assert [t.seq for t in taken] == list(range(15))
    assert [index_of(t.frame.image) for t in taken] == list(range(15))
    assert all(t.dropped == 0 for t in taken)
    assert capture.ended and not capture.alive
    assert metrics.get("stage_latency_seconds", stage="capture") == 15  # one per frame read


def test_realtime_file_drops_what_a_slow_consumer_misses_and_accounts_for_every_frame(video):
    n = 30
    slot = LatestFrameSlot()
    src = VideoFileSource(str(video(n, fps=200)))
    src.open()
    capture = CaptureThread(src, slot, realtime=True, opened=True).start()
    taken = drain(slot, delay=0.03)
    capture.stop()
    assert sum(t.dropped for t in taken) > 0
    assert sum(1 + t.dropped for t in taken) == n  # every delivered frame: taken or dropped
    prev = -1
    for t in taken:
        assert t.seq - prev - 1 == t.dropped
        assert index_of(t.frame.image) == t.seq
        prev = t.seq
    assert slot.dropped_total == n - len(taken)


def test_file_that_disappears_is_reopened_with_exponential_backoff(video, tmp_path, source_log):
    path = video(4, fps=1000, name="cam.avi")
    hidden = tmp_path / "hidden.avi"
    metrics = Metrics()
    slot = LatestFrameSlot()
    src = VideoFileSource(str(path), loop=True)
    src.open()
    capture = CaptureThread(
        src, slot, metrics=metrics, backoff_initial=0.05, backoff_max=0.2, opened=True
    ).start()
    try:
        first = slot.take(2.0)
        assert first is not None
        path.rename(hidden)  # the loop's reopen now fails
        deadline = time.monotonic() + 10
        while capture.reconnects < 4 and time.monotonic() < deadline:
            slot.take(0.05)
        assert capture.reconnects >= 4
        hidden.rename(path)  # back: frames flow again
        seen_after = []
        deadline = time.monotonic() + 10
        while len(seen_after) < 6 and time.monotonic() < deadline:
            got = slot.take(0.5)
            if got is not None:
                seen_after.append(got)
        assert len(seen_after) == 6
    finally:
        capture.stop()
    delays = [
        float(m) for m in re.findall(r"reconnecting in ([0-9.]+) s", "\n".join(source_log.messages))
    ]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # doubled each time, capped
    assert any("no such video file" in m for m in source_log.messages)
    assert metrics.get("source_reconnects_total") >= 4
    assert metrics.get("source_errors_total") >= 4
    # Numbering continued across the outage: nothing delivered was lost or renumbered.
    seqs = [first.seq] + [t.seq for t in seen_after]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
