"""The Coral Edge TPU: USB ids and link speed, PCIe node and driver, runtime, udev rule.

A Coral USB Accelerator enumerates as ``1a6e:089a`` (Global Unichip, boot mode, USB 2
only) until ``libedgetpu`` loads its firmware, then re-enumerates as ``18d1:9302``
(Google) at the port's full speed. The kernel says where it is in
``/sys/bus/usb/devices/*/{idVendor,idProduct,speed}``, and whether its port has a
SuperSpeed peer (``port/peer``), which tells a USB 3 port before the firmware is loaded.
A Coral PCIe/M.2 module is PCI ``1ac1:089a``, driven by the gasket/apex driver as
``/dev/apex_N``.

Everything here is SKIP when no Coral is configured and none is attached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result, read_text

AREA = "edgetpu"
USB_BOOT = ("1a6e", "089a")  # before firmware load
USB_RUNNING = ("18d1", "9302")  # after firmware load
PCI_ID = ("0x1ac1", "0x089a")
RUNTIME_FIX = (
    "sudo apt-get install libedgetpu1-std (Coral's apt repository "
    "https://packages.cloud.google.com/apt coral-edgetpu-stable main)"
)
RULE_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")


@dataclass(frozen=True)
class UsbCoral:
    name: str  # sysfs device name, e.g. 2-1 or 1-1.3
    firmware_loaded: bool
    speed_mbps: float | None
    superspeed_port: bool | None  # None: the kernel did not say (no port link)


def usb_corals(ctx: Context) -> list[UsbCoral]:
    found = []
    for dev in ctx.glob("/sys/bus/usb/devices/*"):
        ids = (
            (read_text(dev / "idVendor") or "").lower(),
            (read_text(dev / "idProduct") or "").lower(),
        )
        if ids not in (USB_BOOT, USB_RUNNING):
            continue
        try:
            speed = float(read_text(dev / "speed") or "")
        except ValueError:
            speed = None
        port = dev / "port"
        peer = (port / "peer").exists() if port.exists() else None
        found.append(UsbCoral(dev.name, ids == USB_RUNNING, speed, peer))
    return found


def pci_corals(ctx: Context) -> list[Path]:
    return [
        dev
        for dev in ctx.glob("/sys/bus/pci/devices/*")
        if (read_text(dev / "vendor"), read_text(dev / "device")) == PCI_ID
    ]


def _wanted_kind(ctx: Context) -> str | None:
    """usb, pci, any (Coral configured, device not named) or None (not configured)."""
    if not ctx.coral_configured:
        return None
    device = (ctx.cfg.model.edgetpu_device or "").split(":")[0]
    return device or "any"


def _not_applicable(ctx: Context, what: str) -> Result | None:
    if _wanted_kind(ctx) is None and not usb_corals(ctx) and not pci_corals(ctx):
        return Result(AREA, what, SKIP, "no Coral configured (model.edgetpu) and none attached")
    return None


def usb_check(ctx: Context) -> list[Result]:
    """Coral USB present (boot or running ids) and its USB link."""
    skip = _not_applicable(ctx, "usb")
    if skip:
        return [skip]
    corals = usb_corals(ctx)
    kind = _wanted_kind(ctx)
    if not corals:
        if kind == "usb" or (kind == "any" and not pci_corals(ctx)):
            return [
                Result(
                    AREA,
                    "usb",
                    FAIL,
                    "no Coral USB on the bus (neither 1a6e:089a nor 18d1:9302)",
                    "plug it in (lsusb should list it); use a powered hub if it resets",
                )
            ]
        return [Result(AREA, "usb", SKIP, "no Coral USB attached (PCIe is used)")]
    results = []
    for c in corals:
        state = (
            "18d1:9302, firmware loaded"
            if c.firmware_loaded
            else "1a6e:089a, firmware not loaded yet (libedgetpu loads it on first use)"
        )
        results.append(Result(AREA, "usb", OK, f"Coral USB at {c.name}: {state}"))
        results.append(_link(c))
    return results


def _link(c: UsbCoral) -> Result:
    speed = f"{c.speed_mbps:g} Mb/s" if c.speed_mbps is not None else "unknown speed"
    fix = "plug the Coral into a blue USB 3 port (directly, or through a powered USB 3 hub)"
    facts = {"device": c.name, "speed_mbps": c.speed_mbps, "superspeed_port": c.superspeed_port}
    if c.firmware_loaded:
        if c.speed_mbps is not None and c.speed_mbps >= 5000:
            return Result(AREA, "usb link", OK, f"USB 3 ({speed})", facts=facts)
        return Result(
            AREA,
            "usb link",
            WARN,
            f"USB 2 ({speed}): the model's weights and each frame cross a slow link, "
            "inference is several times slower",
            fix,
            facts,
        )
    # Boot mode is USB 2 only on any port; the port's SuperSpeed peer tells what follows.
    if c.superspeed_port is None:
        return Result(
            AREA,
            "usb link",
            SKIP,
            f"{speed} in boot mode; the link speed is known after the firmware is loaded",
            facts=facts,
        )
    if c.superspeed_port:
        return Result(AREA, "usb link", OK, f"{speed} in boot mode, on a USB 3 port", facts=facts)
    return Result(
        AREA,
        "usb link",
        WARN,
        f"{speed} in boot mode, on a USB 2-only port (no SuperSpeed peer): it will stay at "
        "USB 2 after the firmware loads",
        fix,
        facts,
    )


def pcie_check(ctx: Context) -> Result:
    """Coral PCIe: the PCI function, ``/dev/apex_N`` and the gasket/apex driver."""
    skip = _not_applicable(ctx, "pcie")
    if skip:
        return skip
    devices = pci_corals(ctx)
    nodes = [p for p in ctx.glob("/dev/apex_*") if re.fullmatch(r"apex_\d+", p.name)]
    modules = [m for m in ("gasket", "apex") if ctx.path(f"/sys/module/{m}").is_dir()]
    facts = {"pci": [d.name for d in devices], "nodes": [n.name for n in nodes]}
    if not devices and not nodes:
        if _wanted_kind(ctx) == "pci":
            return Result(
                AREA,
                "pcie",
                FAIL,
                "no Coral PCIe (1ac1:089a) on the PCI bus",
                "seat the module; on a Pi 5 set `dtparam=pciex1` in /boot/firmware/config.txt",
                facts,
            )
        return Result(AREA, "pcie", SKIP, "no Coral PCIe on the PCI bus", facts=facts)
    if not nodes:
        if "apex" not in modules:
            return Result(
                AREA,
                "pcie",
                FAIL,
                f"Coral PCIe at {devices[0].name} but the apex driver is not loaded "
                f"(loaded: {', '.join(modules) or 'neither gasket nor apex'})",
                "install the driver: sudo apt-get install gasket-dkms, then reboot "
                "(Pi 5: a 4K-page kernel, kernel=kernel8.img)",
                facts,
            )
        return Result(
            AREA,
            "pcie",
            FAIL,
            "the apex driver is loaded but there is no /dev/apex_0",
            "check `dmesg | grep apex`; reboot after installing gasket-dkms",
            facts,
        )
    driver = ", ".join(modules) or "built in"
    where = f" at {devices[0].name}" if devices else ""
    return Result(
        AREA,
        "pcie",
        OK,
        f"Coral PCIe{where}: {', '.join('/dev/' + n.name for n in nodes)}, driver {driver}",
        facts=facts,
    )


def runtime_check(ctx: Context) -> Result:
    """``libedgetpu.so.1``: loadable here (live system), or installed under the root."""
    skip = _not_applicable(ctx, "libedgetpu")
    if skip:
        return skip
    from edgedet.backends.edgetpu import LIBRARY

    library = LIBRARY["linux"]
    if not ctx.live:
        found = ctx.glob(f"/usr/lib/*/{library}") + ctx.glob(f"/usr/lib/{library}")
        if found:
            return Result(AREA, "libedgetpu", OK, f"{ctx.shown(found[0])} is installed")
        return Result(AREA, "libedgetpu", FAIL, f"{library} is not installed", RUNTIME_FIX)
    import ctypes

    try:
        ctypes.CDLL(library)
    except OSError as exc:
        return Result(AREA, "libedgetpu", FAIL, f"{library} does not load: {exc}", RUNTIME_FIX)
    return Result(AREA, "libedgetpu", OK, f"{library} loads")


def delegate_check(ctx: Context) -> Result:
    """The Edge TPU delegate loads on the device (`edgedet.backends.edgetpu`), in the probe."""
    if not ctx.coral_configured:
        return Result(AREA, "delegate", SKIP, "no Coral configured (model.edgetpu)")
    if not ctx.live:
        return Result(AREA, "delegate", SKIP, "--root: the delegate is loaded on the live system")
    if runtime_check(ctx).status != OK:
        return Result(AREA, "delegate", SKIP, "libedgetpu.so.1 does not load (see libedgetpu)")
    report = ctx.probe()
    found = report.stage("edgetpu")
    if found is None:
        if report.crashed_in == "edgetpu":
            return Result(
                AREA,
                "delegate",
                FAIL,
                f"loading the Edge TPU delegate crashed ({report.crash})",
                "reinstall libedgetpu1-std matching the interpreter; replug the Coral",
            )
        return Result(AREA, "delegate", SKIP, "no usable interpreter (see python)")
    if not found.get("loaded"):
        from edgedet.backends.edgetpu import FIXES

        error = str(found.get("error"))
        return Result(AREA, "delegate", FAIL, error.replace(f"; {FIXES}", ""), FIXES)
    ran = ", one invoke on the Edge TPU ran" if found.get("invoked") else ""
    return Result(AREA, "delegate", OK, f"the Edge TPU delegate loads{ran}")


def udev_rules(ctx: Context) -> dict[str, tuple[Path, str]]:
    """USB vendor id -> (rule file, GROUP or MODE it grants) for the Coral's two ids."""
    found: dict[str, tuple[Path, str]] = {}
    for directory in RULE_DIRS:
        for rule_file in ctx.glob(f"{directory}/*.rules"):
            try:
                text = rule_file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.lstrip().startswith("#"):
                    continue
                vendor = re.search(r'idVendor}=="([0-9a-fA-F]{4})"', line)
                if not vendor or vendor.group(1).lower() not in (USB_BOOT[0], USB_RUNNING[0]):
                    continue
                group = re.search(r'GROUP="([^"]+)"', line)
                mode = re.search(r'MODE="([0-7]+)"', line)
                grant = f"group {group.group(1)}" if group else ""
                if mode:
                    grant = f"{grant} mode {mode.group(1)}".strip()
                found.setdefault(vendor.group(1).lower(), (rule_file, grant or "no GROUP/MODE"))
    return found


def rule_groups(ctx: Context) -> set[str]:
    """The groups the Coral USB udev rules hand the device to."""
    out = set()
    for _, grant in udev_rules(ctx).values():
        m = re.match(r"group (\S+)", grant)
        if m:
            out.add(m.group(1))
    return out


def udev_check(ctx: Context) -> Result:
    """A udev rule gives the service user the Coral USB, under both of its ids."""
    skip = _not_applicable(ctx, "udev rule")
    if skip:
        return skip
    if _wanted_kind(ctx) == "pci" or (not usb_corals(ctx) and pci_corals(ctx)):
        return Result(AREA, "udev rule", SKIP, "Coral PCIe: /dev/apex_N is checked instead")
    rules = udev_rules(ctx)
    missing = [v for v in (USB_BOOT[0], USB_RUNNING[0]) if v not in rules]
    shown = "; ".join(f"{v}: {ctx.shown(p)} ({g})" for v, (p, g) in sorted(rules.items()))
    if missing:
        return Result(
            AREA,
            "udev rule",
            FAIL,
            f"no udev rule for USB vendor {', '.join(missing)}"
            + (f" (found {shown})" if shown else "")
            + ": only root can open the Coral",
            "sudo apt-get install libedgetpu1-std (its udev rule gives the Coral to group "
            "plugdev), then replug it",
        )
    return Result(AREA, "udev rule", OK, shown)


CHECKS = [usb_check, pcie_check, runtime_check, delegate_check, udev_check]
