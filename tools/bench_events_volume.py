#!/usr/bin/env python3
"""Bytes written and MQTT messages per hour: per-frame records vs events (issue 8).

Runs `edgedet run` on a video looped at real-time pace (default: OpenCV's vtest.avi,
10 FPS) with MQTT to a private mosquitto on a free loopback port, for ``--seconds`` per
configuration, one configuration after the other in the same session:

- ``frames``: what edgedet did before events: every frame a record in the detections log
  and on ``<prefix>/detections`` (``--log PATH``, ``events.enabled: false``);
- ``events``: the default configuration (events and counts; ``log.frames: off``);
- ``events+snapshots`` (with ``--snapshots``): the default plus ``events.snapshots: true``.

Bytes written: the total size of the files the service created in its working directory
(logs including rotated ones, events log, snapshots, seq state). Messages: every MQTT
message a subscriber to ``#`` received while the service ran (the retained status and
stats included). Both are scaled to one hour. Needs mosquitto (apt-get install mosquitto)
and paho-mqtt.

    PYTHONPATH=. .venv/bin/python tools/bench_events_volume.py --seconds 240
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

CONFIGS = {
    "frames": ["--set", "events.enabled=false", "--log", "{dir}/detections.jsonl"],
    "events": [],
    "events+snapshots": ["--set", "events.snapshots=true"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


class Counter:
    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.messages = 0
        self.payload_bytes = 0
        self.on = False
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            if self.on:
                self.messages += 1
                self.payload_bytes += len(msg.payload)

    def take(self) -> tuple[int, int]:
        with self._lock:
            out = (self.messages, self.payload_bytes)
            self.messages = self.payload_bytes = 0
            return out


def _bytes_in(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def measure(name: str, video: str, seconds: float, port: int, counter: Counter) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"edgedet-volume-{name}-"))
    args = [a.format(dir=workdir) for a in CONFIGS[name]]
    cmd = [
        sys.executable, "-m", "edgedet", "run", "--source", video, "--http", "off",
        "--mqtt", f"127.0.0.1:{port}", "--device-id", "bench",
        "--set", "source.loop=true", "--set", "source.realtime=true", *args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("LOGS_DIRECTORY", "STATE_DIRECTORY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    counter.take()
    counter.on = True
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    time.sleep(0.5)  # the last messages
    counter.on = False
    messages, payload = counter.take()
    written = _bytes_in(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    frames = next(
        (ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("frames")), "?"
    )
    events = next((ln.strip() for ln in out.splitlines() if ln.strip().startswith("events")), "")
    hour = 3600.0 / seconds
    return {
        "config": name,
        "frames": frames,
        "events": events,
        "bytes_per_hour": written * hour,
        "messages_per_hour": messages * hour,
        "mqtt_payload_bytes_per_hour": payload * hour,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", default=VTEST)
    parser.add_argument("--seconds", type=float, default=240.0, help="per configuration")
    parser.add_argument("--snapshots", action="store_true", help="also events+snapshots")
    args = parser.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"{args.video}: not found (apt-get install opencv-doc)")
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = _mosquitto(Path(tmp))
        try:
            counter = Counter(port)
            names = ["frames", "events"] + (["events+snapshots"] if args.snapshots else [])
            rows = [measure(n, args.video, args.seconds, port, counter) for n in names]
        finally:
            broker.terminate()
            broker.wait(10)
    import cv2
    import numpy as np

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}"
    )
    print(f"video: {args.video} looped at real-time pace, {args.seconds:.0f} s per config")
    base = rows[0]
    print("| config | bytes written / h | MQTT messages / h | MQTT payload / h | frames |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['config']} | {r['bytes_per_hour'] / 1e6:.2f} MB "
            f"({100 * r['bytes_per_hour'] / max(base['bytes_per_hour'], 1):.1f} %) "
            f"| {r['messages_per_hour']:.0f} "
            f"({base['messages_per_hour'] / max(r['messages_per_hour'], 1):.1f}x fewer) "
            f"| {r['mqtt_payload_bytes_per_hour'] / 1e6:.2f} MB | {r['frames']} |"
        )
    for r in rows:
        if r["events"]:
            print(f"{r['config']}: {r['events']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
