"""Loopback HTTP endpoint (standard library only): health, metrics, latest record, snapshot.

Routes (GET and HEAD):
- ``/healthz``: 200 ``{"status":"ok"}`` while ``healthy()`` is true (a frame was processed
  recently), else 503 ``{"status":"stalled"}``. For systemd-independent probes.
- ``/metrics``: the shared ``Metrics`` in the Prometheus text format 0.0.4.
- ``/latest``: the last record (DESIGN.md), 404 before the first one.
- ``/snapshot.jpg``: the last frame with its detections drawn, 404 before the first one.
  Drawing and JPEG encoding happen only when requested (on the request's thread, never on
  the inference thread), and the result is cached until the next record.

- ``/events``: ``{"open": [...], "recent": [...]}``, the latest record of each open event
  and of the last ``RECENT_EVENTS`` ended ones (newest first), as DESIGN.md "Events".
- ``/events/<id>/snapshot.jpg`` (``?crop=1``: the crop of the object): the event's best
  snapshot, 404 when the event is unknown here or has no snapshot (yet).

``publish()`` only swaps three references under a lock, so it needs no queue; neither does
``publish_events()``, which updates a small dict. The server
binds at construction: a busy port or a bad address is an ``EdgedetError`` naming
host:port. Requests are not logged (a scraper every few seconds would flood journald).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from edgedet.errors import ConfigError
from edgedet.publishers import Publisher, PublisherContext, dumps_record
from edgedet.schema import setting

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.events.pipeline import EventBatch
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpConfig:
    """Loopback HTTP: /healthz /metrics /latest /snapshot.jpg /events."""

    enabled: bool = setting(True)
    host: str = setting("127.0.0.1")
    port: int = setting(8080, lo=0, hi=65535, doc="0: pick a free port")


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT_EVENTS = 50  # ended events still listed at /events


class HttpPublisher(Publisher):
    """Serves the routes above on ``host:port`` (``port=0``: a free port, see ``.port``)."""

    name = "http"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        metrics: Metrics,
        healthy: Callable[[], bool],
    ) -> None:
        self.metrics = metrics
        self.healthy = healthy
        self._lock = threading.Lock()
        self._latest: tuple[int, dict, np.ndarray, Detections] | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None  # (seq, encoded) cache
        self._events: dict[str, dict] = {}  # event id -> latest record, in start order
        self._ended: list[str] = []  # ids of ended events, oldest first
        try:
            self._server = _Server((host, int(port)), _Handler)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"HTTP endpoint {host}:{port}: cannot listen ({reason}); pick a free port with "
                "--http HOST:PORT, stop the process using it, or disable it with --http off"
            ) from None
        self._server.publisher = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="edgedet-http",
            daemon=True,
        )
        self._thread.start()
        log.info("HTTP endpoint on http://%s:%d/", host, self.port)

    @classmethod
    def from_config(cls, cfg: HttpConfig, context: PublisherContext) -> HttpPublisher:
        return cls(cfg.host, cfg.port, metrics=context.metrics, healthy=context.healthy)

    @property
    def port(self) -> int:
        """The bound TCP port (the one picked when ``port=0`` was asked for)."""
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        with self._lock:
            self._seq += 1
            self._latest = (self._seq, record, frame, detections)

    def publish_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        with self._lock:
            for record in batch.events:
                self._events[record["id"]] = record
                if record["type"] == "end":
                    self._ended.append(record["id"])
            while len(self._ended) > RECENT_EVENTS:
                self._events.pop(self._ended.pop(0), None)

    def close(self, timeout: float = 3.0) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()  # returns once serve_forever has stopped
        self._server.server_close()
        self._thread.join(timeout)

    # -- used by the request handler -------------------------------------------------

    def latest_json(self) -> bytes | None:
        with self._lock:
            latest = self._latest
        return None if latest is None else dumps_record(latest[1]).encode("utf-8")

    def events_json(self) -> bytes:
        with self._lock:
            records = list(self._events.values())
        open_ = [r for r in records if r["type"] != "end"]
        ended = [r for r in records if r["type"] == "end"]
        body = {"open": open_[::-1], "recent": ended[::-1]}
        return dumps_record(body).encode("utf-8")

    def event_snapshot(self, event_id: str, crop: bool) -> bytes | None:
        """The snapshot file of an event this endpoint knows (never a path from the URL)."""
        with self._lock:
            record = self._events.get(event_id)
        path = record.get("snapshot") if record else None
        if not path:
            return None
        if crop:
            path = path[: -len(".jpg")] + "-crop.jpg"
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None  # not written yet, or deleted by the snapshot budget

    def snapshot_jpeg(self) -> bytes | None:
        with self._lock:
            latest, cached = self._latest, self._jpeg
        if latest is None:
            return None
        seq, _record, frame, detections = latest
        if cached is not None and cached[0] == seq:
            return cached[1]
        from edgedet.annotate import encode_jpeg  # OpenCV only once a snapshot is asked for

        encoded = encode_jpeg(frame, detections)
        with self._lock:
            if self._jpeg is None or self._jpeg[0] < seq:
                self._jpeg = (seq, encoded)
        return encoded

    def is_healthy(self) -> bool:
        try:
            return bool(self.healthy())
        except Exception:
            log.exception("HTTP: healthy() raised; reporting unhealthy")
            self.count_error()
            return False

    def count_error(self) -> None:
        self.metrics.inc("publish_errors_total", publisher=self.name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    publisher: HttpPublisher


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a client may idle mid-request before its thread gives up
    server_version = "edgedet"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._route(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(send_body=False)

    def _route(self, *, send_body: bool) -> None:
        pub = self.server.publisher
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                ok = pub.is_healthy()
                body = {"status": "ok"} if ok else {"status": "stalled"}
                self._send_json(
                    HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, body, send_body
                )
            elif path == "/metrics":
                text = pub.metrics.render_prometheus().encode("utf-8")
                self._send(HTTPStatus.OK, PROMETHEUS_CONTENT_TYPE, text, send_body)
            elif path == "/latest":
                latest = pub.latest_json()
                if latest is None:
                    self._send_json(HTTPStatus.NOT_FOUND, {"error": "no record yet"}, send_body)
                else:
                    self._send(HTTPStatus.OK, "application/json", latest, send_body)
            elif path == "/events":
                self._send(HTTPStatus.OK, "application/json", pub.events_json(), send_body)
            elif path.startswith("/events/") and path.endswith("/snapshot.jpg"):
                event_id = path[len("/events/") : -len("/snapshot.jpg")]
                crop = "crop=1" in self.path.partition("?")[2].split("&")
                jpeg = pub.event_snapshot(event_id, crop)
                if jpeg is None:
                    self._send_json(HTTPStatus.NOT_FOUND, {"error": "no snapshot"}, send_body)
                else:
                    self._send(HTTPStatus.OK, "image/jpeg", jpeg, send_body)
            elif path == "/snapshot.jpg":
                jpeg = pub.snapshot_jpeg()
                if jpeg is None:
                    self._send_json(HTTPStatus.NOT_FOUND, {"error": "no frame yet"}, send_body)
                else:
                    self._send(HTTPStatus.OK, "image/jpeg", jpeg, send_body)
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"}, send_body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; nothing to answer
        except Exception:
            log.exception("HTTP: error serving %s", path)
            pub.count_error()
            try:
                self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal"}, True)
            except OSError:
                pass

    def _send_json(self, status: HTTPStatus, body: Any, send_body: bool) -> None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self._send(status, "application/json", data, send_body)

    def _send(self, status: HTTPStatus, content_type: str, data: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # no per-request lines in the journal

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("HTTP: " + format, *args)
