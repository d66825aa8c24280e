"""HA discovery payloads (pure) and the snapshot budget (real JPEG files)."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np

from edgedet.events.homeassistant import config_filter, discovery_configs, removals
from edgedet.events.snapshots import SnapshotStore

# What Home Assistant's MQTT discovery requires (state_topic) or needs to group and keep
# entities (unique_id, device identifiers), per component.
REQUIRED = {
    "binary_sensor": {"state_topic", "unique_id", "device", "payload_on", "payload_off"},
    "sensor": {"state_topic", "unique_id", "device"},
}


def _configs(pairs):
    return discovery_configs(
        pairs,
        discovery_prefix="homeassistant",
        state_prefix="edgedet/cam1",
        device_id="cam.1",
        name="cam1",
        model="ssdlite",
        sw_version="0.1.0",
    )


def test_one_occupancy_and_one_count_entity_per_zone_and_label() -> None:
    configs = _configs([("all", "person"), ("driveway", "person")])
    assert sorted(configs) == [
        "homeassistant/binary_sensor/cam_1/all_person_occupancy/config",
        "homeassistant/binary_sensor/cam_1/driveway_person_occupancy/config",
        "homeassistant/sensor/cam_1/all_person_count/config",
        "homeassistant/sensor/cam_1/driveway_person_count/config",
    ]
    for topic, text in configs.items():
        payload = json.loads(text)
        component = topic.split("/")[1]
        assert REQUIRED[component] <= set(payload)
        assert payload["availability_topic"] == "edgedet/cam1/status"
        assert set(payload["device"]) >= {"name", "model", "sw_version", "identifiers"}
    count = json.loads(configs["homeassistant/sensor/cam_1/driveway_person_count/config"])
    assert count["state_topic"] == "edgedet/cam1/driveway/person"
    ids = {json.loads(t)["unique_id"] for t in configs.values()}
    assert len(ids) == 4


def test_a_removed_zone_leaves_its_configs_to_be_cleared() -> None:
    before = _configs([("all", "person"), ("driveway", "person")])
    after = _configs([("all", "person")])
    gone = removals(before, after)
    assert gone == sorted(set(before) - set(after)) and len(gone) == 2
    assert config_filter("homeassistant", "cam.1") == "homeassistant/+/cam_1/+/config"


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (240, 320, 3), np.uint8)


def test_snapshot_and_crop_are_real_jpegs_of_the_box(tmp_path) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    path = store.save("1.000-abc123", _frame(0), np.array([0.25, 0.25, 0.75, 0.5]), "person", 0.8)
    full = cv2.imread(str(path))
    crop = cv2.imread(str(store.find("1.000-abc123", crop=True)))
    assert full.shape == (240, 320, 3)
    # The box (120 x 80 px) plus a 10 % margin each side.
    assert abs(crop.shape[0] - 144) <= 2 and abs(crop.shape[1] - 96) <= 2
    assert store.find("../etc/passwd") is None


def test_budget_keeps_the_newest_events_within_count_and_bytes(tmp_path) -> None:
    store = SnapshotStore(tmp_path, max_count=3, max_bytes=10**9)
    for i in range(6):
        p = store.save(f"{i}.000-aaaaaa", _frame(i), np.array([0.1, 0.1, 0.9, 0.9]), "car", 0.9)
        os.utime(p, (1000 + i, 1000 + i))
        os.utime(store.path(f"{i}.000-aaaaaa", crop=True), (1000 + i, 1000 + i))
    assert store.events() == ["5.000-aaaaaa", "4.000-aaaaaa", "3.000-aaaaaa"]
    one = sum(f.stat().st_size for f in tmp_path.glob("5.000-*"))
    store.max_bytes = one + 1  # room for one pair only
    store.save("6.000-aaaaaa", _frame(6), np.array([0.1, 0.1, 0.9, 0.9]), "car", 0.9)
    assert store.events() == ["6.000-aaaaaa"]
    assert sum(f.stat().st_size for f in tmp_path.glob("*.jpg")) <= 2 * one
