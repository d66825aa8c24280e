"""`edgedet doctor --root` on fixture machines: Pi 4 + Coral USB, Pi 5 + Coral PCIe, power
and heat, users and groups, the systemd unit, 32-bit userland. The real CLI runs on
/sys, /proc, /dev and /etc trees written by `FakeRoot`."""

from __future__ import annotations

import os

import pytest
from doctorroot import REPO, FakeRoot, doctor, one, results

SYSUSERS = REPO / "systemd" / "edgedet-sysusers.conf"

PI4 = "Raspberry Pi 4 Model B Rev 1.4"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"
CORAL_RULES = (
    'SUBSYSTEM=="usb",ATTRS{idVendor}=="1a6e",GROUP="plugdev"\n'
    'SUBSYSTEM=="usb",ATTRS{idVendor}=="18d1",GROUP="plugdev"\n'
)


def healthy_pi(root: FakeRoot, model: str = PI4) -> FakeRoot:
    """A cool, well-powered 64-bit Pi with its log directory in place."""
    root.board(model).throttled(0).temperature(48_000).userland(64, "aarch64")
    (root.path / "var/log").mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    ("ids", "speed", "superspeed_port", "link", "words"),
    [
        (("1a6e", "089a"), "480", False, "WARN", "USB 2-only port"),
        (("1a6e", "089a"), "480", True, "OK", "on a USB 3 port"),
        (("1a6e", "089a"), "480", None, "SKIP", "known after the firmware is loaded"),
        (("18d1", "9302"), "480", None, "WARN", "USB 2 (480 Mb/s)"),
        (("18d1", "9302"), "5000", None, "OK", "USB 3 (5000 Mb/s)"),
    ],
)
def test_pi4_coral_usb_ids_and_link_speed(fake_root, ids, speed, superspeed_port, link, words):
    healthy_pi(fake_root)
    fake_root.usb_device("1-1.3", *ids, speed, superspeed_port)
    fake_root.udev_rule("/lib/udev/rules.d/60-libedgetpu1-std.rules", CORAL_RULES)
    fake_root.config("model: {edgetpu: true}\n")
    rc, doc, err = doctor(fake_root.path, "--only", "edgetpu")
    usb = one(doc, "edgetpu", "usb")
    assert usb["status"] == "OK"
    assert "1-1.3" in usb["detail"]
    state = "firmware loaded" if ids == ("18d1", "9302") else "firmware not loaded yet"
    assert state in usb["detail"]
    usb_link = one(doc, "edgetpu", "usb link")
    assert (usb_link["status"], words in usb_link["detail"]) == (link, True), usb_link
    if link == "WARN":
        assert "blue USB 3 port" in usb_link["fix"]
    assert one(doc, "edgetpu", "udev rule")["status"] == "OK"
    assert one(doc, "edgetpu", "pcie")["status"] == "SKIP"
    # No libedgetpu under this root: a FAIL naming the package, so the exit code is 1.
    runtime = one(doc, "edgetpu", "libedgetpu")
    assert runtime["status"] == "FAIL" and "libedgetpu1-std" in runtime["fix"]
    assert one(doc, "edgetpu", "delegate")["status"] == "SKIP"  # only on the live system
    assert {r["area"] for r in doc["checks"]} == {"config", "edgetpu"}
    assert rc == 1 and doc["exit_code"] == 1, err


def test_pi4_with_coral_usb_full_report(fake_root):
    healthy_pi(fake_root)
    fake_root.usb_device("1-1.3", "1a6e", "089a", "480", False)
    fake_root.udev_rule("/lib/udev/rules.d/60-libedgetpu1-std.rules", CORAL_RULES)
    fake_root.config("model: {edgetpu: true}\n")
    rc, doc, err = doctor(fake_root.path)
    areas = [r["area"] for r in doc["checks"]]
    assert list(dict.fromkeys(areas)) == [
        "config", "python", "model", "camera", "edgetpu", "board", "service", "outputs"
    ]  # fmt: skip
    # The bundled model is a CPU model: the Edge TPU would run nothing.
    assert one(doc, "model", "edgetpu compiled")["status"] == "WARN"
    assert one(doc, "board", "power")["status"] == "OK"
    assert one(doc, "board", "temperature")["detail"] == "SoC 48.0 °C"
    assert one(doc, "board", "64-bit userland")["detail"].startswith("64-bit aarch64")
    assert one(doc, "edgetpu", "usb link")["status"] == "WARN"
    failed = {(r["area"], r["check"]) for r in doc["checks"] if r["status"] == "FAIL"}
    assert failed == {("edgetpu", "libedgetpu")}, failed
    assert rc == 1 and doc["exit_code"] == 1, err


def test_coral_usb_without_udev_rule_names_the_package(fake_root):
    healthy_pi(fake_root)
    fake_root.usb_device("2-1", "18d1", "9302", "5000", None)
    fake_root.config("model: {edgetpu: true}\n")
    rc, doc, _ = doctor(fake_root.path, "--only", "edgetpu")
    rule = one(doc, "edgetpu", "udev rule")
    assert rule["status"] == "FAIL"
    assert "1a6e, 18d1" in rule["detail"] and "libedgetpu1-std" in rule["fix"]
    assert rc == 1


def test_configured_coral_usb_missing_is_a_failure(fake_root):
    healthy_pi(fake_root)
    fake_root.config("model: {edgetpu: true, edgetpu_device: usb}\n")
    _, doc, _ = doctor(fake_root.path, "--only", "edgetpu")
    usb = one(doc, "edgetpu", "usb")
    assert usb["status"] == "FAIL" and "1a6e:089a" in usb["detail"]


def test_no_coral_configured_or_attached_skips_the_edge_tpu(fake_root):
    healthy_pi(fake_root)
    rc, doc, _ = doctor(fake_root.path)
    edgetpu = [r for r in doc["checks"] if r["area"] == "edgetpu"]
    assert edgetpu and {r["status"] for r in edgetpu} == {"SKIP"}
    assert one(doc, "model", "edgetpu compiled")["status"] == "OK"


def test_pi5_with_coral_pcie(fake_root):
    healthy_pi(fake_root, PI5)
    fake_root.pci_device("0000:01:00.0", "0x1ac1", "0x089a")
    fake_root.dev_node("/dev/apex_0")
    fake_root.kernel_module("gasket").kernel_module("apex")
    fake_root.write("/usr/lib/aarch64-linux-gnu/libedgetpu.so.1", b"\x7fELF")
    fake_root.config("model: {edgetpu: true, edgetpu_device: 'pci:0'}\n")
    _, doc, _ = doctor(fake_root.path, "--only", "edgetpu")
    pcie = one(doc, "edgetpu", "pcie")
    assert pcie["status"] == "OK", pcie
    assert "0000:01:00.0" in pcie["detail"] and "/dev/apex_0" in pcie["detail"]
    assert "gasket, apex" in pcie["detail"]
    assert one(doc, "edgetpu", "usb")["status"] == "SKIP"
    assert one(doc, "edgetpu", "udev rule")["status"] == "SKIP"
    runtime = one(doc, "edgetpu", "libedgetpu")
    assert runtime["status"] == "OK"
    assert "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1" in runtime["detail"]


def test_pi5_coral_pcie_without_driver(fake_root):
    healthy_pi(fake_root, PI5)
    fake_root.pci_device("0000:01:00.0", "0x1ac1", "0x089a")
    fake_root.pci_device("0000:00:00.0", "0x14e4", "0x2712")  # the Pi 5's own bridge
    fake_root.config("model: {edgetpu: true, edgetpu_device: pci}\n")
    rc, doc, _ = doctor(fake_root.path, "--only", "edgetpu")
    pcie = one(doc, "edgetpu", "pcie")
    assert pcie["status"] == "FAIL"
    assert "apex driver is not loaded" in pcie["detail"] and "gasket-dkms" in pcie["fix"]
    assert rc == 1


@pytest.mark.parametrize(
    ("word", "millidegrees", "power", "power_words", "heat", "heat_words"),
    [
        (0x50005, 83_500, "FAIL", "under-voltage now", "FAIL", "83.5 °C"),
        (0x50000, 72_000, "WARN", "under-voltage, throttled happened since boot", "WARN", "72.0"),
        (0x8, 60_000, "WARN", "soft temperature limit now", "OK", "60.0"),
        (0x0, 45_000, "OK", "no under-voltage", "OK", "45.0"),
    ],
)
def test_power_and_temperature(fake_root, word, millidegrees, power, power_words, heat, heat_words):
    fake_root.board(PI4).throttled(word).temperature(millidegrees).userland(64, "aarch64")
    _, doc, _ = doctor(fake_root.path, "--only", "board")
    found = one(doc, "board", "power")
    assert found["status"] == power and power_words in found["detail"], found
    assert found["facts"]["get_throttled"] == hex(word)
    if power != "OK":
        assert found["fix"]
    temp = one(doc, "board", "temperature")
    assert temp["status"] == heat and heat_words in temp["detail"], temp


def test_pi5_firmware_path_and_the_hwmon_alarm(fake_root):
    fake_root.board(PI5)
    flags = "/sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled"
    fake_root.write(flags, "0x20000\n")
    _, doc, _ = doctor(fake_root.path, "--only", "board")
    found = one(doc, "board", "power")
    assert found["status"] == "WARN", found
    assert found["detail"] == "get_throttled=0x20000: ARM frequency capped happened since boot"
    assert found["facts"]["source"] == flags

    # Without the firmware's flags, the rpi_volt hwmon alarm says whether it is low now.
    (fake_root.path / flags.lstrip("/")).unlink()
    fake_root.write("/sys/class/hwmon/hwmon2/name", "rpi_volt\n")
    fake_root.write("/sys/class/hwmon/hwmon2/in0_lcrit_alarm", "1\n")
    _, doc, _ = doctor(fake_root.path, "--only", "board")
    found = one(doc, "board", "power")
    assert found["status"] == "FAIL"
    assert found["detail"] == "under-voltage now (/sys/class/hwmon/hwmon2/in0_lcrit_alarm)"


def test_not_a_pi_skips_the_pi_checks(fake_root):
    fake_root.userland(64, "x86_64")
    _, doc, _ = doctor(fake_root.path, "--only", "board,camera")
    assert one(doc, "board", "power")["status"] == "SKIP"
    assert one(doc, "board", "temperature")["status"] == "SKIP"
    assert one(doc, "camera", "picamera2")["status"] == "SKIP"


def test_32bit_userland_fails(fake_root):
    fake_root.board(PI4).userland(32, "arm")
    rc, doc, _ = doctor(fake_root.path, "--only", "board")
    found = one(doc, "board", "64-bit userland")
    assert found["status"] == "FAIL" and "32-bit arm" in found["detail"]
    assert "64-bit" in found["fix"]
    assert rc == 1


def test_service_user_missing_the_video_group(fake_root):
    healthy_pi(fake_root)
    gid = os.getgid()  # the fixture device nodes belong to this process's group
    fake_root.accounts({"edgedet": 999}, {"video": (gid, ["pi"]), "edgedet": (999, [])})
    fake_root.video_device(0, "HD Pro Webcam C920")
    fake_root.config("source: /dev/video0\n")
    rc, doc, _ = doctor(fake_root.path, "--only", "service,camera")
    user = one(doc, "service", "user")
    assert user["status"] == "FAIL", user
    assert "not in group(s) video" in user["detail"] and "/dev/video0" in user["detail"]
    assert user["fix"].startswith("sudo usermod -aG video edgedet")
    video = one(doc, "camera", "video devices")
    assert video["status"] == "OK" and "HD Pro Webcam C920" in video["detail"]
    assert rc == 1


def test_a_libcamera_node_as_an_opencv_source(fake_root):
    """On a Pi with a camera module, /dev/video0 is the CSI receiver, not a webcam."""
    healthy_pi(fake_root)
    fake_root.video_device(0, "unicam").video_device(13, "bcm2835-isp")
    fake_root.config("source: /dev/video0\n")
    _, doc, _ = doctor(fake_root.path, "--only", "camera")
    found = one(doc, "camera", "video devices")
    assert found["status"] == "FAIL", found
    assert found["detail"].startswith("/dev/video0 is unicam, a node libcamera drives")
    assert found["fix"] == "set source: picamera2"
    assert found["facts"]["nodes"] == ["video0", "video13"] and found["facts"]["capture"] == []


def test_service_user_in_its_groups_passes(fake_root):
    healthy_pi(fake_root)
    gid = os.getgid()
    fake_root.accounts(
        {"edgedet": 999}, {"video": (gid, ["edgedet"]), "plugdev": (gid + 1, ["edgedet"])}
    )
    fake_root.video_device(0, "HD Pro Webcam C920")
    fake_root.dev_node("/dev/dma_heap/linux,cma")
    fake_root.usb_device("2-1", "18d1", "9302", "5000", None)
    fake_root.udev_rule("/lib/udev/rules.d/60-libedgetpu1-std.rules", CORAL_RULES)
    _, doc, _ = doctor(fake_root.path, "--only", "service")
    user = one(doc, "service", "user")
    assert user["status"] == "OK", user
    assert user["facts"]["needed"] == ["plugdev", "video"]


def test_service_user_needs_the_group_that_owns_a_device_node(fake_root):
    """Groups come from the nodes themselves: here the DMA heap belongs to ``render``."""
    healthy_pi(fake_root, PI5)
    gid = os.getgid()
    fake_root.accounts({"edgedet": 999}, {"render": (gid, []), "video": (gid + 1, ["edgedet"])})
    fake_root.dev_node("/dev/dma_heap/system", 0o660)
    fake_root.dev_node("/dev/media0", 0o666)  # anyone may open it: no group needed
    _, doc, _ = doctor(fake_root.path, "--only", "service")
    user = one(doc, "service", "user")
    assert user["status"] == "FAIL", user
    assert (
        "not in group(s) render: needed (render for /dev/dma_heap/system (mode 0660))"
        in (user["detail"])
    )
    assert user["fix"].startswith("sudo usermod -aG render edgedet")
    assert user["facts"]["needed"] == ["render", "video"]


def test_unit_supplementary_group_missing_from_etc_group(fake_root):
    healthy_pi(fake_root)
    fake_root.accounts({"edgedet": 999}, {"video": (44, ["edgedet"]), "edgedet": (999, [])})
    fake_root.unit().enable()
    rc, doc, _ = doctor(fake_root.path, "--only", "service")
    user = one(doc, "service", "user")
    assert (
        user["status"] == "FAIL" and "plugdev" in user["detail"] and "216/GROUP" in user["detail"]
    )
    assert rc == 1


def test_service_user_declared_for_systemd_sysusers_but_not_created(fake_root):
    """An image prepared with `edgedet service install --root`, not booted yet."""
    healthy_pi(fake_root)
    fake_root.accounts({"pi": 1000}, {"pi": (1000, []), "video": (44, ["pi"])})
    fake_root.unit()
    fake_root.write("/etc/sysusers.d/edgedet.conf", SYSUSERS.read_text())
    _, doc, _ = doctor(fake_root.path, "--only", "service")
    user = one(doc, "service", "user")
    assert user["status"] == "WARN", user
    assert user["detail"] == (
        "user edgedet is declared in /etc/sysusers.d/edgedet.conf but not created yet"
    )
    assert "systemd-sysusers" in user["fix"]


def test_installed_unit_its_config_and_directories(fake_root):
    healthy_pi(fake_root)
    fake_root.unit()
    fake_root.config("source: /media/clip.mp4\nhttp: {enabled: false}\n")
    rc, doc, _ = doctor(fake_root.path)
    # The unit's --config is read under the root, and its LogsDirectory decides the log path.
    assert doc["config"] == str(fake_root.path / "etc/edgedet/config.yaml")
    assert one(doc, "config", "config")["status"] == "OK"
    unit = one(doc, "service", "unit")
    assert unit["status"] == "FAIL" and "/opt/edgedet/venv/bin/edgedet" in unit["detail"]
    assert "--system-site-packages" in unit["fix"]
    assert one(doc, "service", "enabled")["status"] == "WARN"
    active = one(doc, "service", "active")
    assert active["status"] == "SKIP" and "--root" in active["detail"]
    log_dir = one(doc, "outputs", "log directory")
    assert log_dir["status"] in ("OK", "WARN"), log_dir
    assert log_dir["detail"].startswith("/var/log/edgedet (to be created in /var/log)")
    assert one(doc, "outputs", "http port")["status"] == "SKIP"
    assert one(doc, "camera", "picamera2")["status"] == "SKIP"  # a file source
    # With the venv in place and the wants/ link, both pass.
    fake_root.write("/opt/edgedet/venv/bin/edgedet", "#!/bin/sh\n", 0o755)
    fake_root.enable()
    _, doc, _ = doctor(fake_root.path)
    assert one(doc, "service", "unit")["status"] == "OK"
    enabled = one(doc, "service", "enabled")
    assert enabled["status"] == "OK"
    assert enabled["detail"] == "/etc/systemd/system/multi-user.target.wants/edgedet.service"


def test_a_broken_config_is_a_fail_line_and_the_rest_still_runs(fake_root):
    healthy_pi(fake_root)
    fake_root.config("model:\n  min_scor: 0.5\n")
    rc, doc, _ = doctor(fake_root.path)
    config = one(doc, "config", "config")
    assert config["status"] == "FAIL" and "model.min_scor" in config["detail"]
    assert one(doc, "model", "model file")["status"] == "OK"
    assert rc == 1


def test_a_missing_config_flag_is_one_line_and_exit_2(fake_root):
    rc, doc, err = doctor(fake_root.path, "--config", str(fake_root.path / "nope.yaml"))
    assert rc == 2 and doc is None
    assert err.strip().splitlines() == [
        f"edgedet doctor: error: --config {fake_root.path / 'nope.yaml'}: not a file; "
        "pass an existing config file"
    ]


def test_unknown_area_is_one_line_and_exit_2(fake_root):
    rc, doc, err = doctor(fake_root.path, "--only", "board,gpu")
    assert rc == 2 and doc is None
    assert err.strip().splitlines() == [
        "edgedet doctor: error: --only board,gpu: unknown area gpu; choose from python, "
        "model, camera, edgetpu, board, service, outputs"
    ]


def test_missing_root_is_one_line_and_exit_2(tmp_path):
    rc, _, err = doctor(tmp_path / "absent")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--root" in err


def test_results_are_well_formed(fake_root):
    healthy_pi(fake_root)
    _, doc, _ = doctor(fake_root.path)
    for r in doc["checks"]:
        assert r["status"] in ("OK", "WARN", "FAIL", "SKIP")
        assert "\n" not in r["detail"] and "\n" not in r["fix"]
        if r["status"] in ("WARN", "FAIL"):
            assert r["fix"], r
    assert results(doc, "python", "interpreter")
