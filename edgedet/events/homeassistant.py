"""Home Assistant MQTT discovery payloads (opt-in ``homeassistant.enabled``).

Per label, overall and per zone, two entities on one device:

- ``binary_sensor`` (device class ``occupancy``): state topic
  ``<prefix>/<zone or all>/<label>/occupancy`` carrying ``ON`` / ``OFF``;
- ``sensor`` (a count): state topic ``<prefix>/<zone or all>/<label>`` carrying an
  integer (the retained count topic of DESIGN.md).

Config topics: ``<discovery prefix>/<component>/<node>/<object>/config``, retained, with
``node`` the device id and ``object`` ``<zone>_<label>_occupancy`` / ``<zone>_<label>_count``
(characters outside ``[A-Za-z0-9_-]`` become ``_``, as HA requires). Availability is the
service's retained status topic (``online`` / ``offline``, last will ``offline``).

Removal: an empty retained payload on a config topic makes HA delete the entity. The
publisher subscribes to ``<discovery prefix>/+/<node>/+/config`` at start, and every
retained config of this node that the current configuration no longer produces (a label
or zone removed) is cleared with ``removals()``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def object_id(text: str) -> str:
    return _UNSAFE.sub("_", text)


def count_topic(prefix: str, zone: str, label: str) -> str:
    return f"{prefix}/{zone}/{label}"


def occupancy_topic(prefix: str, zone: str, label: str) -> str:
    return f"{prefix}/{zone}/{label}/occupancy"


def discovery_configs(
    pairs: Iterable[tuple[str, str]],
    *,
    discovery_prefix: str,
    state_prefix: str,
    device_id: str,
    name: str,
    model: str,
    sw_version: str,
) -> dict[str, str]:
    """{config topic: JSON payload} for every (zone or "all", label) in ``pairs``."""
    node = object_id(device_id)
    device = {
        "identifiers": [f"edgedet_{node}"],
        "name": name,
        "model": model,
        "manufacturer": "edgedet",
        "sw_version": sw_version,
    }
    availability = {
        "availability_topic": f"{state_prefix}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    out: dict[str, str] = {}
    for zone, label in pairs:
        where = "" if zone == "all" else f" in {zone}"
        base = object_id(f"{zone}_{label}")
        occupancy: dict[str, Any] = {
            "name": f"{label.capitalize()} occupancy{where}",
            "unique_id": f"edgedet_{node}_{base}_occupancy",
            "object_id": f"edgedet_{node}_{base}_occupancy",
            "state_topic": occupancy_topic(state_prefix, zone, label),
            "device_class": "occupancy",
            "payload_on": "ON",
            "payload_off": "OFF",
            **availability,
            "device": device,
        }
        count: dict[str, Any] = {
            "name": f"{label.capitalize()} count{where}",
            "unique_id": f"edgedet_{node}_{base}_count",
            "object_id": f"edgedet_{node}_{base}_count",
            "state_topic": count_topic(state_prefix, zone, label),
            "state_class": "measurement",
            "unit_of_measurement": "objects",
            "icon": "mdi:counter",
            **availability,
            "device": device,
        }
        out[f"{discovery_prefix}/binary_sensor/{node}/{base}_occupancy/config"] = json.dumps(
            occupancy, separators=(",", ":")
        )
        out[f"{discovery_prefix}/sensor/{node}/{base}_count/config"] = json.dumps(
            count, separators=(",", ":")
        )
    return out


def config_filter(discovery_prefix: str, device_id: str) -> str:
    """The subscription that finds this node's retained discovery configs."""
    return f"{discovery_prefix}/+/{object_id(device_id)}/+/config"


def removals(retained_topics: Iterable[str], current: dict[str, str]) -> list[str]:
    """Config topics retained on the broker for this node but no longer configured: each
    gets an empty retained payload so HA removes the entity."""
    return sorted(t for t in set(retained_topics) if t not in current)
