"""Publishers keep optional dependencies optional: paho-mqtt only inside the MQTT one,
also when loading the config imports every publisher module for its config section."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgedet.publishers, edgedet.publishers.jsonl, edgedet.publishers.http
import edgedet.publishers.snapshot, edgedet.metrics, edgedet.service.sdnotify
import edgedet.cli.service, edgedet.service.config
edgedet.service.config.load_config()  # the config tree imports every publisher module
heavy = [m for m in ("paho", "tensorflow", "cv2") if m in sys.modules]
print(",".join(heavy))
"""


def test_importing_the_publishers_loads_neither_paho_nor_tensorflow_nor_opencv() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_paho_is_imported_when_the_mqtt_publisher_is_built() -> None:
    code = (
        "import sys\n"
        "import edgedet.publishers.mqtt as m\n"
        "assert 'paho' not in sys.modules\n"
        "from edgedet.metrics import Metrics\n"
        "p = m.MqttPublisher('127.0.0.1', 1, prefix='t', client_id='c', metrics=Metrics())\n"
        "p.close(timeout=2)\n"
        "print('paho' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "True"
