"""A real HTTP MJPEG stream that stalls: the camera source times out and reconnects."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import numpy as np
import pytest

from edgedet.metrics import Metrics
from edgedet.sources.capture import CaptureThread, LatestFrameSlot
from edgedet.sources.opencv import CameraSource


class StallingMjpegServer:
    """multipart/x-mixed-replace JPEG stream on 127.0.0.1; the first connection stalls
    after ``stall_after`` frames (socket kept open, nothing sent), later ones stream on."""

    def __init__(self, stall_after: int = 4) -> None:
        self.connections = 0
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                server.connections += 1
                connection = server.connections
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(400):
                    if connection == 1 and i == stall_after:
                        server.release.wait(30)  # the stall
                        return
                    # Grey level tells the connection apart: 40 first, 200 later.
                    grey = 40 if connection == 1 else 200
                    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), grey, np.uint8))[1].tobytes()
                    try:
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + b"Content-Length: %d\r\n\r\n" % len(jpeg)
                            + jpeg
                            + b"\r\n"
                        )
                    except OSError:
                        return
                    if server.release.wait(0.01):
                        return

            def log_message(self, *args) -> None:
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg_server():
    server = StallingMjpegServer()
    yield server
    server.close()


def test_stalled_stream_times_out_and_reconnects(mjpeg_server, source_log):
    metrics = Metrics()
    slot = LatestFrameSlot()
    src = CameraSource(mjpeg_server.url, timeout=0.5)
    src.open()
    capture = CaptureThread(
        src, slot, metrics=metrics, read_timeout=0.5, backoff_initial=0.05, opened=True
    ).start()
    greys = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not greys or greys[-1] < 150):
            got = slot.take(0.2)
            if got is not None:
                greys.append(float(got.frame.image.mean()))
    finally:
        capture.stop()
    assert greys and greys[0] < 100  # frames of the first connection
    assert greys[-1] > 150  # ... and of the second, after the stall
    assert mjpeg_server.connections >= 2
    assert capture.reconnects >= 1
    assert metrics.get("source_reconnects_total") >= 1
    assert any("no frame" in m and "reconnecting" in m for m in source_log.messages)
