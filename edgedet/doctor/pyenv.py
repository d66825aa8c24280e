"""Python, NumPy, OpenCV and the interpreter package of the running environment.

These are properties of this Python process, not of ``--root``: what matters is what the
venv that runs `edgedet` imports.
"""

from __future__ import annotations

import importlib.metadata
import struct
import sys
from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result

AREA = "python"
LITERT_FIX = "pip install ai-edge-litert and set model.backend: litert (or auto)"


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def _system_site_packages() -> bool | None:
    """The venv's ``include-system-site-packages`` (None outside a venv)."""
    if not _in_venv():
        return None
    try:
        text = (Path(sys.prefix) / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def python_check(ctx: Context) -> Result:
    """Version, pointer size, venv and whether it sees apt's packages."""
    v = sys.version_info
    bits = struct.calcsize("P") * 8
    where = f"venv {sys.prefix}" if _in_venv() else f"no venv ({sys.prefix})"
    system = _system_site_packages()
    if system is not None:
        where += f", system site packages {'on' if system else 'off'}"
    detail = f"{v.major}.{v.minor}.{v.micro} {bits}-bit, {where}"
    facts = {"version": f"{v.major}.{v.minor}.{v.micro}", "bits": bits, "prefix": sys.prefix}
    if v < (3, 10):
        return Result(AREA, "python", FAIL, detail, "edgedet needs Python 3.10 or newer", facts)
    return Result(AREA, "python", OK, detail, facts=facts)


def _origin(location: str) -> str:
    if _in_venv() and Path(location).resolve().is_relative_to(Path(sys.prefix).resolve()):
        return "pip, this venv"
    if "dist-packages" in location:
        return "apt"
    return location


def numpy_copies() -> list[tuple[str, str]]:
    """Every NumPy distribution on ``sys.path`` as (version, site directory), in path order."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions(name="numpy"):
        location = str(dist.locate_file(""))
        seen.setdefault(location, dist.version)
    order = {str(Path(p)): i for i, p in enumerate(sys.path)}
    return sorted(
        ((v, loc) for loc, v in seen.items()), key=lambda vl: order.get(str(Path(vl[1])), 1 << 30)
    )


def numpy_check(ctx: Context) -> Result:
    """The NumPy that imports, and any other copy whose ABI differs (apt vs pip)."""
    try:
        import numpy
    except Exception as exc:  # ImportError, or a broken C extension
        return Result(AREA, "numpy", FAIL, f"numpy does not import: {exc}", "pip install numpy")
    version = numpy.__version__
    imported_dir = str(Path(numpy.__file__).resolve().parent.parent)
    copies = numpy_copies()
    facts = {"version": version, "location": imported_dir, "copies": [list(c) for c in copies]}
    detail = f"{version} ({_origin(imported_dir)}: {imported_dir})"
    major = version.split(".")[0]
    others = [
        (v, loc)
        for v, loc in copies
        if v.split(".")[0] != major and str(Path(loc).resolve()) != imported_dir
    ]
    if others:
        v, loc = others[0]
        if int(major) >= 2:  # pip's NumPy 2 in front of apt's 1.x: the usual Pi OS clash
            symptom = (
                f"modules built for NumPy {v.split('.')[0]}.x (apt's python3-simplejpeg, "
                "python3-picamera2, python3-opencv) fail with 'numpy.dtype size changed'"
            )
        else:
            symptom = f"modules built for NumPy {v.split('.')[0]}.x fail to import"
        if _origin(imported_dir) == "pip, this venv":
            fix = (
                f"keep one NumPy: `pip uninstall numpy` in this venv so {_origin(loc)}'s {v} "
                f"is used, and install with the constraint `numpy=={v}`"
            )
        else:
            fix = f"keep one NumPy: remove the copy in {loc} or the one in {imported_dir}"
        return Result(
            AREA, "numpy", WARN, f"{detail} shadows numpy {v} ({_origin(loc)}: {loc}); {symptom}",
            fix, facts,
        )  # fmt: skip
    return Result(AREA, "numpy", OK, detail, facts=facts)


def opencv_check(ctx: Context) -> Result:
    try:
        import cv2
    except Exception as exc:  # a NumPy ABI clash shows up here as well
        return Result(
            AREA,
            "opencv",
            FAIL,
            f"cv2 does not import: {exc}",
            "pip install opencv-python-headless (or make NumPy match it, see numpy above)",
        )
    return Result(
        AREA,
        "opencv",
        OK,
        f"{cv2.__version__} ({Path(cv2.__file__).parent})",
        facts={"version": cv2.__version__},
    )


def _crash_line(ctx: Context, what: str) -> str:
    report = ctx.probe()
    tail = f"; stderr: {report.stderr_tail.splitlines()[-1]}" if report.stderr_tail else ""
    return f"{what} crashed ({report.crash}){tail}"


def interpreter_check(ctx: Context) -> list[Result]:
    """The interpreter package `edgedet run` would import, and installed ones that fail."""
    requested = ctx.cfg.model.backend
    if requested == "tensorflow":
        return [
            Result(
                AREA,
                "interpreter",
                SKIP,
                "model.backend is tensorflow: doctor does not import TensorFlow",
                facts={"requested": requested},
            )
        ]
    report = ctx.probe()
    found = report.stage("backend")
    if found is None:
        return [
            Result(
                AREA,
                "interpreter",
                FAIL,
                _crash_line(ctx, f"importing the interpreter (backend {requested})"),
                "reinstall the interpreter package: " + LITERT_FIX,
            )
        ]
    results = []
    name = found.get("name")
    if name:
        results.append(
            Result(
                AREA,
                "interpreter",
                OK,
                f"{name} {found.get('version') or '(version unknown)'} (backend {requested})",
                facts=found,
            )
        )
    else:
        problems = "; ".join(found["unusable"].values())
        detail = problems or f"no TFLite interpreter is installed (backend {requested})"
        if found.get("installed", {}).get("tensorflow") and requested == "auto":
            detail += "; only TensorFlow's tf.lite is left (not probed: doctor never imports it)"
        results.append(Result(AREA, "interpreter", FAIL, detail, LITERT_FIX, found))
    for other, problem in found.get("unusable", {}).items():
        if name and other != name:
            results.append(
                Result(
                    AREA,
                    other.replace("_", "-"),
                    WARN,
                    f"installed but unusable: {problem}",
                    f"pip uninstall {other.replace('_', '-')} (unused: {name} is used)",
                )
            )
    return results


def xnnpack_check(ctx: Context) -> Result:
    """XNNPACK took part of the graph, and one invoke ran without crashing."""
    report = ctx.probe()
    if report.stage("backend") is None or not report.stage("backend").get("name"):
        return Result(AREA, "xnnpack", SKIP, "no usable interpreter (see above)")
    found = report.stage("xnnpack")
    if found is None:
        if report.crashed_in == "xnnpack":
            return Result(
                AREA,
                "xnnpack",
                FAIL,
                _crash_line(ctx, "building or invoking a CPU interpreter"),
                "run `python -X faulthandler -m edgedet run --max-frames 1` to see the native "
                "frame; under qemu, bind-mount a Pi /proc/cpuinfo and set QEMU_CPU",
            )
        return Result(AREA, "xnnpack", SKIP, "the probe stopped before this check")
    if "skipped" in found:
        return Result(AREA, "xnnpack", SKIP, found["skipped"])
    model = Path(str(found.get("model", "the model"))).name
    if "error" in found:
        return Result(
            AREA,
            "xnnpack",
            FAIL,
            f"the interpreter rejected {model}: {found['error']}",
            "check the model (see the model lines)",
            found,
        )
    partitions = int(found.get("xnnpack_partitions", 0))
    if partitions == 0:
        return Result(
            AREA,
            "xnnpack",
            WARN,
            f"no XNNPACK partition in {model}: int8 ops run on the slow reference kernels "
            "(tflite-runtime on x86-64: ~30x slower)",
            LITERT_FIX,
            found,
        )
    return Result(
        AREA,
        "xnnpack",
        OK,
        f"XNNPACK took {partitions} partition(s) of {model}; one invoke ran",
        facts=found,
    )


CHECKS = [python_check, numpy_check, opencv_check, interpreter_check, xnnpack_check]
