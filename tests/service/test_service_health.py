"""Staying up: a source that stalls turns /healthz 503 and stops watchdog pings; frames
back turn both on again. Real process, real AF_UNIX notify socket, real HTTP, real file."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request

from support.service import NotifyListener, clean_env, count_lines, read_log
from support.waiting import free_port, wait_for


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return -1


def test_stall_turns_healthz_503_and_stops_watchdog_then_recovers(
    tmp_path, spawn, run_model, clip_factory
):
    clip = tmp_path / "camera.avi"
    clip.write_bytes(clip_factory(20).read_bytes())
    hidden = tmp_path / "hidden.avi"
    notify = NotifyListener(str(tmp_path / "notify.sock"))
    port = free_port()
    log = tmp_path / "det.jsonl"
    env = clean_env(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="400000")  # ping every 0.2 s
    try:
        proc = spawn(
            "--model", str(run_model), "--source", str(clip), "--loop",
            "--log", str(log), "--http", f"127.0.0.1:{port}",
            "--set", "service.stall_timeout=1", "--set", "service.status_interval=0.5",
            "--set", "source.backoff_initial=0.1", "--set", "source.backoff_max=0.4",
            env=env,
        )  # fmt: skip
        wait_for(lambda: notify.lines("READY=1"), timeout=60)
        wait_for(lambda: healthz(port) == 200, timeout=10)
        wait_for(lambda: notify.lines("STATUS="), timeout=10)
        assert notify.lines("WATCHDOG=1")

        clip.rename(hidden)  # the loop's reopen fails: frames stop
        wait_for(lambda: healthz(port) == 503, timeout=15)
        quiet_from = time.monotonic()
        time.sleep(1.0)
        assert notify.lines("WATCHDOG=1", since=quiet_from) == []  # no pings while stalled
        frames_stalled = count_lines(log)

        hidden.rename(clip)  # frames flow again
        wait_for(lambda: healthz(port) == 200, timeout=15)
        back = time.monotonic()
        wait_for(lambda: notify.lines("WATCHDOG=1", since=back), timeout=5)
        assert count_lines(log) > frames_stalled

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        wait_for(lambda: notify.lines("STOPPING=1"), timeout=5)
    finally:
        notify.close()
    stderr = proc.stderr_path.read_text()
    assert "reconnecting in" in stderr
    assert "unhealthy, watchdog pings stopped" in stderr
    assert "frames flowing again" in stderr
    records = read_log(log)
    previous = -1
    for rec in records:  # numbering continues across the outage
        assert rec["frame"] - previous - 1 == rec["dropped"]
        previous = rec["frame"]
