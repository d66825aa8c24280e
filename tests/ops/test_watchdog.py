"""A stalled source: /healthz turns 503 and WATCHDOG=1 pings stop, then both recover.

`edgedet run` reads a real HTTP MJPEG stream served by the test, with NOTIFY_SOCKET and
WATCHDOG_USEC set as systemd would, notifying a real AF_UNIX datagram socket.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import support.service as sp
from support.service import NotifyListener
from support.waiting import wait_for

pytestmark = pytest.mark.slow

PING_USEC = 600_000  # WATCHDOG_USEC: the service pings every 0.3 s


class MjpegCamera:
    """An HTTP multipart JPEG stream on 127.0.0.1 at ~20 FPS.

    While ``stalled`` is set every connection keeps its socket open and sends nothing,
    like a hung network camera; clearing it lets all of them stream again.
    """

    def __init__(self) -> None:
        self.stalled = threading.Event()
        self.stop = threading.Event()
        self.frames_sent = 0
        camera = self
        jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()
        part = (
            b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
            + jpeg
            + b"\r\n"
        )

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
                self.end_headers()
                while not camera.stop.is_set():
                    if camera.stalled.is_set():
                        time.sleep(0.02)
                        continue
                    try:
                        self.wfile.write(part)
                        self.wfile.flush()
                    except OSError:
                        return
                    camera.frames_sent += 1
                    time.sleep(0.05)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_stalled_source_turns_healthz_503_and_stops_watchdog_pings(tmp_path: Path) -> None:
    camera = MjpegCamera()
    notify = NotifyListener(tmp_path / "notify.sock")
    env = sp.clean_env(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(PING_USEC))
    svc = sp.Service(
        tmp_path,
        [
            *sp.model_args(),
            "--source",
            camera.url,
            "--log",
            str(tmp_path / "det.jsonl"),
            "--set",
            "service.stall_timeout=1",
            "--set",
            "service.status_interval=0.5",
            "--set",
            "source.read_timeout=3",
            "--set",
            "source.backoff_max=1",
        ],
        env=env,
    )
    try:
        wait_for(lambda: notify.count("WATCHDOG=1") >= 3, 60, "watchdog pings")
        assert notify.all()[0] == "READY=1"
        assert notify.count("READY=1") == 1
        assert svc.get("/healthz")[0] == 200

        camera.stalled.set()
        wait_for(lambda: svc.get("/healthz")[0] == 503, 30, "/healthz to report the stall")
        # Let the listener read a ping sent just before the service turned unhealthy.
        time.sleep(0.5)
        pings = notify.count("WATCHDOG=1")
        time.sleep(5 * PING_USEC / 1e6)  # five ping intervals while still stalled
        assert notify.count("WATCHDOG=1") == pings, "no watchdog ping without frames"
        assert svc.get("/healthz")[0] == 503

        camera.stalled.clear()
        wait_for(lambda: svc.get("/healthz")[0] == 200, 60, "recovery after the stall")
        wait_for(lambda: notify.count("WATCHDOG=1") > pings, 30, "pings to resume")
        assert svc.terminate(within=5.0) == 0
    finally:
        svc.kill()
        camera.close()
    wait_for(lambda: "STOPPING=1" in notify.all(), 5, "STOPPING=1")
    messages = notify.all()
    notify.close()
    assert any(m.startswith("STATUS=") for m in messages)
    assert messages.index("STOPPING=1") > messages.index("READY=1")
