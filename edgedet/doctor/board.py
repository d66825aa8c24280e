"""The machine itself: power and throttling flags, SoC temperature, 64-bit userland."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result, read_text

AREA = "board"
THROTTLED_FILE = "/sys/devices/platform/soc/soc:firmware/get_throttled"
THROTTLED_GLOB = "/sys/devices/platform/soc*/soc*:firmware/get_throttled"
THERMAL_ZONE = "/sys/class/thermal/thermal_zone0/temp"
# Bits of the firmware's get_throttled word (Raspberry Pi documentation, vcgencmd).
NOW = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
SINCE_BOOT = {16 + bit: what for bit, what in NOW.items()}
POWER_FIX = (
    "use the official supply (Pi 4: 5.1 V 3 A, Pi 5: 5.1 V 5 A) and a short cable; "
    "power a Coral USB through a powered hub"
)
HOT_C, TOO_HOT_C = 70.0, 80.0  # the firmware starts throttling the ARM cores at 80 °C
ELF_MACHINES = {0x03: "i386", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64", 0xF3: "riscv64"}


def board_model(ctx: Context) -> str | None:
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        text = ctx.read(path)
        if text:
            return text.rstrip("\x00").strip()
    return None


def _throttled_word(ctx: Context) -> tuple[int, str] | None:
    """The get_throttled word and where it was read: the firmware driver's sysfs file (Pi 4:
    ``soc:firmware``; Pi 5: ``soc@107c000000:firmware``), else ``vcgencmd`` (live only)."""
    for path in [ctx.path(THROTTLED_FILE), *ctx.glob(THROTTLED_GLOB)]:
        text = read_text(path)
        if text:
            try:
                return int(text, 16), ctx.shown(path)
            except ValueError:
                continue
    if ctx.live and shutil.which("vcgencmd"):
        try:
            done = subprocess.run(
                ["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5
            )
            return int(done.stdout.strip().partition("=")[2], 16), "vcgencmd get_throttled"
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None
    return None


def _undervoltage_alarm(ctx: Context) -> tuple[str, bool] | None:
    """The ``rpi_volt`` hwmon's under-voltage alarm (Pi 4 and 5 kernels): (file, on)."""
    for name_file in ctx.glob("/sys/class/hwmon/hwmon*/name"):
        if read_text(name_file) == "rpi_volt":
            alarm = name_file.parent / "in0_lcrit_alarm"
            text = read_text(alarm)
            if text in ("0", "1"):
                return ctx.shown(alarm), text == "1"
    return None


def throttling_check(ctx: Context) -> Result:
    """Under-voltage and throttling, now (FAIL/WARN) and since boot (WARN)."""
    found = _throttled_word(ctx)
    if found is None:
        alarm = _undervoltage_alarm(ctx)
        if alarm is not None:
            path, on = alarm
            if on:
                return Result(AREA, "power", FAIL, f"under-voltage now ({path})", POWER_FIX)
            return Result(AREA, "power", OK, f"no under-voltage now ({path})")
        model = board_model(ctx) or "this machine"
        return Result(AREA, "power", SKIP, f"no throttling flags on {model} ({THROTTLED_FILE})")
    word, source = found
    now = [what for bit, what in NOW.items() if word >> bit & 1]
    before = [what for bit, what in SINCE_BOOT.items() if word >> bit & 1]
    facts = {"get_throttled": hex(word), "source": source}
    detail = f"get_throttled={hex(word)}"
    if word & 1:
        return Result(
            AREA, "power", FAIL, f"{detail}: under-voltage now ({', '.join(now)})", POWER_FIX, facts
        )
    if now:
        return Result(
            AREA,
            "power",
            WARN,
            f"{detail}: {', '.join(now)} now",
            "cool the SoC (heatsink, fan, Pi 5 Active Cooler); " + POWER_FIX,
            facts,
        )
    if before:
        return Result(
            AREA,
            "power",
            WARN,
            f"{detail}: {', '.join(before)} happened since boot",
            POWER_FIX if word >> 16 & 1 else "cool the SoC (heatsink, fan)",
            facts,
        )
    return Result(AREA, "power", OK, f"{detail}: no under-voltage or throttling", facts=facts)


def temperature_check(ctx: Context) -> Result:
    text = ctx.read(THERMAL_ZONE)
    try:
        celsius = int(text or "") / 1000
    except ValueError:
        return Result(AREA, "temperature", SKIP, f"no {THERMAL_ZONE}")
    facts = {"celsius": celsius}
    detail = f"SoC {celsius:.1f} °C"
    fix = "add a heatsink and fan (Pi 5: the Active Cooler); keep the case ventilated"
    if celsius >= TOO_HOT_C:
        return Result(
            AREA, "temperature", FAIL, f"{detail}: the firmware throttles at 80 °C", fix, facts
        )
    if celsius >= HOT_C:
        return Result(AREA, "temperature", WARN, f"{detail}: close to 80 °C", fix, facts)
    return Result(AREA, "temperature", OK, detail, facts=facts)


def _inside(ctx: Context, path: Path, hops: int = 16) -> Path:
    """Follow symlinks staying under the root (an absolute link target is re-rooted)."""
    for _ in range(hops):
        if not path.is_symlink():
            return path
        target = Path(os.readlink(path))
        path = ctx.path(target) if target.is_absolute() else path.parent / target
    return path


def elf_class(path: Path) -> tuple[int, str] | None:
    """(32 or 64, machine) from an ELF header, or None when not ELF."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[4] not in (1, 2):
        return None
    order = "little" if header[5] == 1 else "big"
    machine = int.from_bytes(header[18:20], order)
    return (32 if header[4] == 1 else 64), ELF_MACHINES.get(machine, f"machine {machine:#x}")


def userland_check(ctx: Context) -> Result:
    """The userland's word size, from the ELF header of the system's python3 (or sh)."""
    for candidate in ("/usr/bin/python3", "/bin/sh", "/usr/bin/sh"):
        found = elf_class(_inside(ctx, ctx.path(candidate)))
        if found:
            bits, machine = found
            detail = f"{bits}-bit {machine} ({candidate})"
            if bits == 32:
                return Result(
                    AREA,
                    "64-bit userland",
                    FAIL,
                    f"{detail}: ai-edge-litert has no 32-bit build and a 32-bit userland "
                    "halves the memory a process can use",
                    "install Raspberry Pi OS (64-bit), Bookworm",
                    {"bits": bits, "machine": machine},
                )
            return Result(
                AREA, "64-bit userland", OK, detail, facts={"bits": bits, "machine": machine}
            )
    return Result(AREA, "64-bit userland", SKIP, "no ELF python3 or sh under the root")


CHECKS = [throttling_check, temperature_check, userland_check]
