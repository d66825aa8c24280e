"""MQTT publisher: records to a (local) broker with paho-mqtt 2.x, staying up without it.

Topics under ``prefix`` (default ``edgedet/<device_id>``, chosen by the runner):
- ``<prefix>/detections``: each record as compact JSON, QoS 0, not retained;
- ``<prefix>/status``: ``online`` (retained, QoS 1) on every connect, ``offline``
  (retained, QoS 1) on a clean close, and ``offline`` as the last will, so subscribers see
  ``offline`` whichever way the service goes away;
- ``<prefix>/stats``: every ``stats_interval`` seconds, ``{"ts": UNIX_SECONDS,
  "metrics": Metrics.snapshot()}`` (QoS 0, not retained).
- ``<prefix>/events``: each event record (``edgedet.events``), QoS 1, not retained;
- ``<prefix>/<zone or all>/<label>``: the count, an integer, retained, QoS 1, sent when it
  changes; with Home Assistant discovery on, also ``.../<label>/occupancy`` = ``ON`` /
  ``OFF`` (retained, QoS 1) and the discovery configs (``edgedet.events.homeassistant``).

Per-frame records go out only as ``log.frames`` chooses (the service default is off).
Home Assistant discovery, once per connection: subscribe to this node's discovery topics
to find retained configs, clear those no longer configured, publish the current ones
(retained), and check that they came back through the subscription. A broker that
refuses them (an ACL: MQTT 3.1.1 drops such publishes silently, or refuses the
subscription) is logged once; events and counts go on.

Staying up: the connection is made on paho's network thread (``connect_async`` +
``loop_start``), so a broker that is down at start neither blocks nor fails the service.
paho reconnects with exponential backoff from ``reconnect_min_delay`` doubling up to
``reconnect_max_delay`` (30 s). While disconnected, records wait in this publisher's
bounded queue and are sent in order once connected; when the queue is full, new records
are dropped and counted (``publish_dropped_total{publisher="mqtt"}``). Failed connection
attempts count in ``publish_errors_total{publisher="mqtt"}``, successful reconnections in
``publish_reconnects_total{publisher="mqtt"}``; the connection state is the gauge
``publisher_connected{publisher="mqtt"}``. One log line per outage, not per attempt.

The password is read from ``password_file`` once at start and never logged.
paho-mqtt is imported here, lazily, so the runtime does not need it unless MQTT is on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgedet.episodes import FailureEpisode
from edgedet.errors import ConfigError
from edgedet.publishers import PublisherContext, QueuedPublisher, dumps_record, wants_frame
from edgedet.schema import setting

if TYPE_CHECKING:
    import numpy as np

    from edgedet.detections import Detections
    from edgedet.events.pipeline import EventBatch
    from edgedet.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttConfig:
    """MQTT to a broker on the device, topics in DESIGN.md."""

    enabled: bool = setting(False)
    host: str = setting("localhost")
    port: int = setting(1883, lo=1, hi=65535)
    prefix: str | None = setting(None, doc="null: edgedet/<device_id>")
    client_id: str | None = setting(None, doc="null: edgedet-<device_id>")
    username: str | None = setting(None)
    password_file: str | None = setting(None, doc="file holding the password (never logged)")
    keepalive: int = setting(30, lo=5, hi=3600)
    tls: bool = setting(False)
    stats_interval: float = setting(
        10.0, lo=0.5, hi=86400, doc="seconds between <prefix>/stats messages"
    )
    queue_size: int = setting(1000, lo=1, hi=1_000_000)


# How often a worker waiting for the broker re-checks whether it should give up (closing).
_WAIT_SLICE = 0.2
# How long close() waits for the retained ``offline`` to reach the broker.
_OFFLINE_TIMEOUT = 1.0
# How long close() waits for paho's network thread to end.
_LOOP_STOP_TIMEOUT = 1.0
# Home Assistant discovery: how long retained configs may take to arrive after SUBACK,
# and how long our own configs may take to come back through the subscription.
_RETAINED_WAIT = 0.5
_ECHO_WAIT = 3.0


class MqttPublisher(QueuedPublisher):
    """Publishes records, status and periodic stats to ``host:port``."""

    name = "mqtt"
    handles_events = True

    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefix: str,
        client_id: str,
        username: str | None = None,
        password_file: str | os.PathLike[str] | None = None,
        keepalive: int = 30,
        queue_size: int = 1000,
        stats_interval: float = 10.0,
        tls: bool = False,
        metrics: Metrics,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        frames: str = "all",
        discovery: Discovery | None = None,
    ) -> None:
        mqtt = _import_paho()
        self.frames = frames
        self.discovery = discovery
        self._occupied: dict[tuple[str, str], bool] = {}
        self._pairs: list[tuple[str, str]] = []  # (zone, label) of every count
        self._connection = 0  # incremented per CONNACK (paho's thread)
        self._discovered = -1  # the connection discovery was last done on
        self._ha_refused = False
        self.host = host
        self.port = int(port)
        self.prefix = prefix.rstrip("/")
        self.topic_detections = f"{self.prefix}/detections"
        self.topic_events = f"{self.prefix}/events"
        self.topic_status = f"{self.prefix}/status"
        self.topic_stats = f"{self.prefix}/stats"
        self.stats_interval = stats_interval
        self._mqtt = mqtt
        self._connected = threading.Event()
        self._ever_connected = False  # set on paho's network thread only
        self._outage = FailureEpisode(log)
        self._max_delay = reconnect_max_delay

        password = _read_password(password_file) if password_file is not None else None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if username is not None or password is not None:
            client.username_pw_set(username or "", password)
        if tls:
            client.tls_set()
        client.will_set(self.topic_status, "offline", qos=1, retain=True)
        client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)  # type: ignore[arg-type]
        # Bounds paho's own buffer for the rare record sent just as the link drops.
        client.max_queued_messages_set(queue_size)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._seen: dict[str, bytes] = {}  # discovery topic -> payload, while discovering
        self._seen_lock = threading.Lock()
        self._suback = threading.Event()
        self._suback_failed = False
        self._client = client
        metrics.set("publisher_connected", 0, publisher=self.name)

        super().__init__(queue_size=queue_size, metrics=metrics)
        client.connect_async(host, self.port, keepalive=keepalive)
        client.loop_start()
        self._stats_thread = threading.Thread(
            target=self._stats_loop, name="edgedet-mqtt-stats", daemon=True
        )
        self._stats_thread.start()

    @classmethod
    def from_config(cls, cfg: MqttConfig, context: PublisherContext) -> MqttPublisher:
        if cfg.prefix is None or cfg.client_id is None:
            raise ValueError(
                "mqtt.prefix/client_id are resolved by load_config"
            )  # programming error
        return cls(
            cfg.host,
            cfg.port,
            prefix=cfg.prefix,
            client_id=cfg.client_id,
            username=cfg.username,
            password_file=cfg.password_file,
            keepalive=cfg.keepalive,
            queue_size=cfg.queue_size,
            stats_interval=cfg.stats_interval,
            tls=cfg.tls,
            metrics=context.metrics,
            frames=context.frames,
            discovery=Discovery.from_context(context, cfg.prefix),
        )

    @property
    def connected(self) -> bool:
        """True while a CONNACK-confirmed session with the broker is up."""
        return self._connected.is_set()

    # -- worker thread ---------------------------------------------------------------

    def publish(self, record: dict, frame: np.ndarray, detections: Detections) -> None:
        if wants_frame(self.frames, record):
            super().publish(record, frame, detections)

    def _wait_connected(self) -> bool:
        """Block until connected; False when closing without a broker (nowhere to send)."""
        while not self._connected.is_set():
            if self._closing.is_set():
                return False
            self._connected.wait(_WAIT_SLICE)
        return True

    def _handle(self, record: dict) -> None:
        if not self._wait_connected():
            self._dropped()
            return
        info = self._client.publish(self.topic_detections, dumps_record(record), qos=0)
        rc = info.rc
        if rc == self._mqtt.MQTT_ERR_SUCCESS or rc == self._mqtt.MQTT_ERR_NO_CONN:
            # NO_CONN: the link dropped just now; paho keeps the message and resends it
            # after reconnecting.
            return
        self._error()
        self._dropped()

    def _handle_events(self, batch: EventBatch, frame: np.ndarray) -> None:
        for zone, label, _ in batch.counts:
            if (zone, label) not in self._pairs:
                self._pairs.append((zone, label))
        if not self._wait_connected():
            self._dropped()
            return
        if self.discovery is not None and self._discovered != self._connection:
            self._discover()
        client = self._client
        for record in batch.events:
            client.publish(self.topic_events, dumps_record(record), qos=1)
        for zone, label, value in batch.counts:
            client.publish(f"{self.prefix}/{zone}/{label}", str(value), qos=1, retain=True)
            occupied = value > 0
            if self.discovery is not None and self._occupied.get((zone, label)) != occupied:
                self._occupied[(zone, label)] = occupied
                client.publish(
                    f"{self.prefix}/{zone}/{label}/occupancy",
                    "ON" if occupied else "OFF",
                    qos=1,
                    retain=True,
                )

    def _discover(self) -> None:
        """Home Assistant discovery on this connection (see the module docstring)."""
        from edgedet.events.homeassistant import config_filter, discovery_configs, removals

        d = self.discovery
        self._discovered = self._connection
        configs = discovery_configs(
            self._pairs,
            discovery_prefix=d.prefix,
            state_prefix=self.prefix,
            device_id=d.device_id,
            name=d.name,
            model=d.model,
            sw_version=d.sw_version,
        )
        client = self._client
        topic = config_filter(d.prefix, d.device_id)
        with self._seen_lock:
            self._seen = {}
        self._suback.clear()
        self._suback_failed = False
        client.subscribe(topic, qos=1)
        if not self._suback.wait(_ECHO_WAIT) or self._suback_failed:
            self._refused(f"subscription to {topic} refused")
            client.unsubscribe(topic)
            return
        time.sleep(_RETAINED_WAIT)  # retained configs arrive right after SUBACK
        with self._seen_lock:
            retained = [t for t, payload in self._seen.items() if payload]
            self._seen = {}
        for stale in removals(retained, configs):
            client.publish(stale, "", qos=1, retain=True)
        for config_topic, payload in configs.items():
            client.publish(config_topic, payload, qos=1, retain=True)
        deadline = time.monotonic() + _ECHO_WAIT
        while time.monotonic() < deadline:
            with self._seen_lock:
                if all(self._seen.get(t) == p.encode() for t, p in configs.items()):
                    break
            time.sleep(0.05)
        else:
            self._refused(f"discovery configs under {d.prefix}/ did not reach the broker")
        client.unsubscribe(topic)
        if not self._ha_refused:
            log.info("Home Assistant discovery: %d entities under %s/", len(configs), d.prefix)

    def _refused(self, what: str) -> None:
        self._error()
        if not self._ha_refused:  # once per run: an ACL does not change by itself
            self._ha_refused = True
            log.warning(
                "Home Assistant discovery: %s (broker ACL?); events and counts go on. "
                "Allow the client to publish and subscribe under the discovery prefix, or "
                "set homeassistant.enabled: false",
                what,
            )

    def _on_close(self) -> None:
        client = self._client
        if self._connected.is_set():
            info = client.publish(self.topic_status, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(_OFFLINE_TIMEOUT)
            except (ValueError, RuntimeError) as exc:
                log.warning("MQTT: could not publish offline status: %s", exc)
        client.disconnect()
        # paho's network thread may be inside a blocking connect() to an unreachable broker
        # (up to its connect timeout); do not let that hold up the service's stop budget.
        stopper = threading.Thread(target=client.loop_stop, name="edgedet-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(_LOOP_STOP_TIMEOUT)
        self._connected.clear()
        self.metrics.set("publisher_connected", 0, publisher=self.name)

    def _stats_loop(self) -> None:
        while not self._closing.wait(self.stats_interval):
            if not self._connected.is_set():
                continue
            payload = json.dumps(
                {"ts": round(time.time(), 3), "metrics": self.metrics.snapshot()},
                separators=(",", ":"),
            )
            self._client.publish(self.topic_stats, payload, qos=0)

    # -- paho network thread callbacks -----------------------------------------------

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        if reason_code.is_failure:
            self._attempt_failed(f"broker refused the connection: {reason_code}")
            return
        client.publish(self.topic_status, "online", qos=1, retain=True)
        self._connection += 1
        reconnect, self._ever_connected = self._ever_connected, True
        if reconnect:
            self.metrics.inc("publish_reconnects_total", publisher=self.name)
        self.metrics.set("publisher_connected", 1, publisher=self.name)
        self._connected.set()
        again = "MQTT: connected to %s:%d again after {failures} failure(s)"
        if not self._outage.recovered(again, self.host, self.port):
            log.info("MQTT: connected to %s:%d", self.host, self.port)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        self._connected.clear()
        self.metrics.set("publisher_connected", 0, publisher=self.name)
        if self._closing.is_set():
            return
        self._outage.failed(
            "MQTT: lost the connection to %s:%d (%s); reconnecting with backoff up to %g s",
            self.host,
            self.port,
            reason_code,
            self._max_delay,
        )

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._seen_lock:
            self._seen[msg.topic] = bytes(msg.payload)

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: Any, reason_codes: Any, props: Any
    ) -> None:
        self._suback_failed = any(rc.is_failure for rc in reason_codes)
        self._suback.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._attempt_failed("connection failed")

    def _attempt_failed(self, reason: str) -> None:
        self._error()
        self._outage.failed(
            "MQTT: cannot reach the broker at %s:%d (%s); records are queued and "
            "connecting is retried with backoff up to %g s",
            self.host,
            self.port,
            reason,
            self._max_delay,
            quiet=self._closing.is_set(),
        )


@dataclass(frozen=True)
class Discovery:
    """Home Assistant discovery settings the MQTT publisher needs (None: off)."""

    prefix: str
    device_id: str
    name: str
    model: str
    sw_version: str

    @classmethod
    def from_context(cls, context: PublisherContext, state_prefix: str) -> Discovery | None:
        ha = context.homeassistant
        if ha is None or not ha.enabled:
            return None
        from edgedet import __version__

        device = context.device_id or state_prefix.rsplit("/", 1)[-1]
        return cls(
            prefix=ha.prefix.strip("/"),
            device_id=device,
            name=ha.name or device,
            model=context.model_name or "edgedet",
            sw_version=__version__,
        )


def _import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise ConfigError(
            "MQTT publishing needs paho-mqtt: pip install 'edgedet[mqtt]' (or disable mqtt)"
        ) from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise ConfigError(
            "MQTT publishing needs paho-mqtt 2.x: pip install --upgrade 'paho-mqtt>=2'"
        )
    return mqtt


def _read_password(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"MQTT password file {os.fspath(path)}: {exc.strerror}; create it, readable by "
            "the service user, or remove mqtt.password_file"
        ) from None
