"""The camera: picamera2/libcamera in this venv, V4L2 device nodes, DMA heaps.

Whether a problem is a FAIL depends on the configured source: ``picamera2`` or a
``/dev/videoN`` needs that camera (FAIL), ``auto`` may do without (WARN), a file, folder
or URL needs none (SKIP).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result
from edgedet.sources import picamera2_problem

AREA = "camera"
APT_SITE = "/usr/lib/python3/dist-packages"
# V4L2 nodes libcamera drives itself on a Pi: not cameras OpenCV can read frames from.
LIBCAMERA_NODES = ("unicam", "bcm2835-isp", "bcm2835-codec", "rp1-cfe", "pispbe", "rpi-hevc")
ABI_ERRORS = ("numpy.dtype size changed", "_ARRAY_API", "numpy.core.multiarray failed")


def source_kind(ctx: Context) -> str:
    """picamera2, camera (a V4L2 node or index), auto, or other (file, folder, URL)."""
    uri = str(ctx.cfg.source.uri).strip()
    if uri in ("auto", "picamera2"):
        return uri
    if uri.isdigit() or re.fullmatch(r"/dev/video\d+", uri):
        return "camera"
    return "other"


def _severity(needed: bool) -> str:
    return FAIL if needed else WARN


def _not_a_pi(ctx: Context) -> Result | None:
    """``source: auto`` on a machine that is not a Pi never looks for a Pi camera."""
    from edgedet.doctor.board import board_model

    if source_kind(ctx) != "auto":
        return None
    model = board_model(ctx) or ""
    if "Raspberry Pi" in model:
        return None
    return Result(AREA, "", SKIP, f"source auto on {model or 'a machine that is not a Pi'}")


def picamera2_check(ctx: Context) -> Result:
    """picamera2 (and the libcamera it imports) import in this venv, and why not."""
    kind = source_kind(ctx)
    if kind in ("camera", "other"):
        return Result(AREA, "picamera2", SKIP, f"source is {ctx.cfg.source.uri}")
    other_machine = _not_a_pi(ctx)
    if other_machine:
        return Result(AREA, "picamera2", SKIP, other_machine.detail)
    status = _severity(kind == "picamera2")
    problem = picamera2_problem()
    if problem is None:
        return Result(AREA, "picamera2", OK, "picamera2 imports and libcamera lists a Pi camera")
    return Result(AREA, "picamera2", status, problem, _picamera2_fix(ctx, problem))


def _picamera2_fix(ctx: Context, problem: str) -> str:
    """The fix for a `picamera2_problem` line."""
    if any(marker in problem for marker in ABI_ERRORS):
        return "NumPy ABI clash: keep apt's NumPy in this venv (see python / numpy)"
    missing = re.search(r"No module named '([\w.]+)'", problem)
    if missing and missing.group(1).split(".")[0] == "libcamera":
        return "sudo apt-get install python3-libcamera"
    if missing:
        apt_copy = ctx.path(APT_SITE) / "picamera2"
        if apt_copy.is_dir() and sys.prefix != sys.base_prefix and not _sees_system_site():
            return (
                f"this venv does not see apt's {APT_SITE}: recreate it with "
                "`python3 -m venv --system-site-packages`"
            )
        return (
            "sudo apt-get install python3-picamera2, in a venv made with "
            "`python3 -m venv --system-site-packages`"
        )
    if problem.startswith("libcamera lists no Pi camera"):
        return "reseat the ribbon cable (contacts towards the board), then reboot"
    return "sudo apt-get install --reinstall python3-picamera2 python3-libcamera"


def _sees_system_site() -> bool:
    from edgedet.doctor.pyenv import _system_site_packages

    return bool(_system_site_packages())


def video_devices_check(ctx: Context) -> Result:
    """``/dev/video*`` and what each one is (``/sys/class/video4linux/*/name``)."""
    kind = source_kind(ctx)
    nodes = [p for p in ctx.glob("/dev/video*") if re.fullmatch(r"video\d+", p.name)]
    named = []
    readable = []
    internal: dict[str, str] = {}  # node -> driver name, for libcamera's own nodes
    for node in nodes:
        name = ctx.read(f"/sys/class/video4linux/{node.name}/name") or "?"
        if name.startswith(LIBCAMERA_NODES):
            internal[node.name] = name
        named.append(f"{node.name} ({name}{', libcamera' if node.name in internal else ''})")
        if node.name not in internal:
            readable.append(node.name)
    facts = {"nodes": [n.name for n in nodes], "capture": readable}
    if kind == "camera":
        uri = str(ctx.cfg.source.uri)
        wanted = uri if uri.startswith("/dev/") else f"/dev/video{uri}"
        if not ctx.path(wanted).exists():
            return Result(
                AREA,
                "video devices",
                FAIL,
                f"{wanted} does not exist ({', '.join(named) or 'no /dev/video*'})",
                "plug the camera in (lsusb, dmesg) or set source to an existing /dev/videoN",
                facts,
            )
        node = ctx.path(wanted).name
        if node in internal:
            return Result(
                AREA,
                "video devices",
                FAIL,
                f"{wanted} is {internal[node]}, a node libcamera drives for the Pi camera: "
                "OpenCV reads no usable frames from it",
                "set source: picamera2",
                facts,
            )
    if kind == "other":
        return Result(AREA, "video devices", SKIP, f"source is {ctx.cfg.source.uri}", facts=facts)
    if not nodes:
        status = WARN if kind in ("auto", "picamera2") else FAIL
        return Result(
            AREA,
            "video devices",
            status,
            "no /dev/video* node: no camera driver is loaded",
            "connect a camera; for a Pi camera check `dtoverlay`/camera_auto_detect in config.txt",
            facts,
        )
    return Result(AREA, "video devices", OK, ", ".join(named), facts=facts)


def dma_heap_check(ctx: Context) -> Result:
    """``/dev/dma_heap/*``: libcamera allocates the Pi camera's buffers there."""
    if source_kind(ctx) not in ("auto", "picamera2"):
        return Result(AREA, "dma_heap", SKIP, f"source is {ctx.cfg.source.uri}")
    other_machine = _not_a_pi(ctx)
    if other_machine:
        return Result(AREA, "dma_heap", SKIP, other_machine.detail)
    heap = ctx.path("/dev/dma_heap")
    heaps = sorted(p.name for p in heap.iterdir()) if heap.is_dir() else []
    if heaps:
        return Result(AREA, "dma_heap", OK, f"/dev/dma_heap: {', '.join(heaps)}")
    return Result(
        AREA,
        "dma_heap",
        _severity(source_kind(ctx) == "picamera2"),
        "no /dev/dma_heap: libcamera cannot allocate camera buffers",
        "update Raspberry Pi OS (sudo apt-get update && sudo apt-get full-upgrade) and reboot",
    )


def device_nodes(ctx: Context) -> list[Path]:
    """The device nodes the detector may open, under the root (for the group check)."""
    nodes = [p for p in ctx.glob("/dev/video*") if re.fullmatch(r"video\d+", p.name)]
    nodes += [p for p in ctx.glob("/dev/media*") if re.fullmatch(r"media\d+", p.name)]
    nodes += ctx.glob("/dev/dma_heap/*")
    nodes += ctx.glob("/dev/apex_*")
    return nodes


CHECKS = [picamera2_check, video_devices_check, dma_heap_check]
