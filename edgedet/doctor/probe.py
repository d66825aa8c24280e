"""The interpreter probe: what the configured backend does with the model, in a child process.

``python -m edgedet.doctor.probe`` imports the interpreter package the way `edgedet run`
would (`edgedet.backends.get_backend`), lists the model's ops
(`edgedet.convert.verify.summarize`), builds a CPU interpreter and invokes it once, and,
when asked, loads the Edge TPU delegate. It prints one JSON line when it begins a stage
(``{"begin": STAGE}``) and one with the stage's findings (``{"stage": STAGE, ...}``), so
the parent knows which stage a native crash (SIGSEGV, SIGILL, abort) happened in.

The probe never imports TensorFlow: with ``backend: auto`` it tries ai-edge-litert and
tflite-runtime only, and reports ``tf.lite`` as installed or not without importing it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgedet.doctor import Context

STAGES = ("backend", "summary", "xnnpack", "edgetpu")
# backend name -> the distribution that provides it (for its version, without importing it)
DISTRIBUTIONS = {
    "litert": "ai-edge-litert",
    "tflite_runtime": "tflite-runtime",
    "tensorflow": "tensorflow",
}
EDGETPU_OP = "edgetpu-custom-op"


@dataclass
class ProbeReport:
    """What the child reported per stage; ``crash`` names the signal or error that ended it
    early, ``crashed_in`` the stage it was in."""

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    crash: str | None = None
    crashed_in: str | None = None
    stderr_tail: str = ""

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.stages.get(name)


def run_probe(ctx: Context) -> ProbeReport:
    """Run the probe for the context's model and config; never raises."""
    model = ctx.model_path
    cmd = [sys.executable, "-m", "edgedet.doctor.probe", "--backend", ctx.cfg.model.backend]
    if model is not None:
        cmd += ["--model", str(model)]
    if ctx.bundled_model is not None:
        cmd += ["--cpu-model", str(ctx.bundled_model)]
    if ctx.cfg.model.threads:
        cmd += ["--threads", str(ctx.cfg.model.threads)]
    if ctx.coral_configured and ctx.live:  # the delegate opens this machine's devices
        cmd += ["--edgetpu"]
        if ctx.cfg.model.edgetpu_device:
            cmd += ["--edgetpu-device", ctx.cfg.model.edgetpu_device]
    report = ProbeReport()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=ctx.probe_timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        _parse(out, report)
        report.crash = f"timed out after {ctx.probe_timeout:g} s"
        return report
    _parse(done.stdout, report)
    report.stderr_tail = "\n".join(done.stderr.strip().splitlines()[-3:])
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        report.crash = f"killed by {name}"
    elif done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        report.crash = last[0]
    return report


def _parse(stdout: str, report: ProbeReport) -> None:
    begun: str | None = None
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a native library printing to stdout
        if not isinstance(item, dict):
            continue
        if "begin" in item:
            begun = str(item["begin"])
        elif "stage" in item:
            report.stages[str(item["stage"])] = item
            begun = None
    report.crashed_in = begun


# --------------------------------------------------------------------------- the child


def _emit(item: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(item) + "\n")
    sys.stdout.flush()


def _version(backend: str) -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTIONS[backend])
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(backend: str) -> bool:
    top = {"litert": "ai_edge_litert", "tflite_runtime": "tflite_runtime"}.get(backend, backend)
    return importlib.util.find_spec(top) is not None


def _choose_backend(name: str) -> tuple[Any, dict[str, Any]]:
    """The backend `edgedet run` would use, minus TensorFlow; (Backend or None, findings)."""
    from edgedet.backends import BACKENDS, get_backend
    from edgedet.errors import BackendError

    findings: dict[str, Any] = {
        "stage": "backend",
        "requested": name,
        "installed": {b: _version(b) for b in BACKENDS if _installed(b)},
        "unusable": {},
    }
    candidates = [name] if name != "auto" else [b for b in BACKENDS if b != "tensorflow"]
    for candidate in candidates:
        if candidate == "tensorflow":
            findings["not_probed"] = "tensorflow"
            continue
        if not _installed(candidate):
            if name != "auto":
                findings["unusable"][candidate] = (
                    f"backend {candidate!r} is not installed ({DISTRIBUTIONS[candidate]})"
                )
            continue
        try:
            backend = get_backend(candidate)
        except BackendError as exc:
            findings["unusable"][candidate] = str(exc)
            continue
        findings["name"] = backend.name
        findings["version"] = _version(backend.name)
        return backend, findings
    return None, findings


def _invoke_once(interpreter: Any) -> None:
    """Invoke ``interpreter`` once on an all-zero input."""
    import numpy as np

    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()


def _cpu_run(backend: Any, data: bytes, threads: int | None) -> dict[str, Any]:
    """Build a CPU interpreter the runtime's way and invoke it once on a zero input."""
    interpreter = backend.interpreter(data, num_threads=threads)
    # The public API lists no delegates; a node named DELEGATE in the op list is a
    # partition a default delegate took over, and on the CPU that delegate is XNNPACK.
    ops = interpreter._get_ops_details()
    partitions = sum(1 for op in ops if op["op_name"] == "DELEGATE")
    _invoke_once(interpreter)
    return {"xnnpack_partitions": partitions, "invoked": True}


def child(argv: list[str] | None = None) -> int:
    import faulthandler

    faulthandler.enable()  # a native crash names its Python frame on stderr
    p = argparse.ArgumentParser(prog="python -m edgedet.doctor.probe")
    p.add_argument("--backend", default="auto")
    p.add_argument("--model")
    p.add_argument("--cpu-model", help="model for the XNNPACK check when --model is not one")
    p.add_argument("--threads", type=int)
    p.add_argument("--edgetpu", action="store_true")
    p.add_argument("--edgetpu-device")
    args = p.parse_args(argv)

    from edgedet.errors import EdgedetError, ModelError
    from edgedet.modelcard import check_tflite_file

    _emit({"begin": "backend"})
    backend, found = _choose_backend(args.backend)
    _emit(found)
    if backend is None:
        return 0

    data: bytes | None = None
    compiled = False
    if args.model:
        _emit({"begin": "summary"})
        try:
            from edgedet.convert.verify import summarize

            data = check_tflite_file(args.model)
            s = summarize(data)
            compiled = EDGETPU_OP in s.op_counts
            _emit(
                {
                    "stage": "summary",
                    "full_integer": s.full_integer,
                    "float_ops": s.float_op_names,
                    "edgetpu_ops": s.op_counts.get(EDGETPU_OP, 0),
                    "num_ops": s.num_ops,
                    "inputs": [t.dtype for t in s.inputs],
                    "has_postprocess_op": s.has_postprocess_op,
                }
            )
        except ModelError as exc:  # the file itself: the model file check says it
            _emit({"stage": "summary", "error": str(exc), "file_problem": True})
        except (EdgedetError, ValueError, RuntimeError) as exc:
            data = None
            _emit({"stage": "summary", "error": str(exc)})

    _emit({"begin": "xnnpack"})
    cpu_data, cpu_model = data, args.model
    if (cpu_data is None or compiled) and args.cpu_model:
        cpu_model = args.cpu_model
        try:
            cpu_data = check_tflite_file(args.cpu_model)
        except ModelError:
            cpu_data = None
    if cpu_data is None:
        _emit({"stage": "xnnpack", "skipped": "no CPU model to build an interpreter with"})
    else:
        try:
            found = _cpu_run(backend, cpu_data, args.threads)
            _emit({"stage": "xnnpack", "model": cpu_model, **found})
        except (EdgedetError, ValueError, RuntimeError) as exc:
            _emit({"stage": "xnnpack", "model": cpu_model, "error": str(exc)})

    if args.edgetpu:
        _emit({"begin": "edgetpu"})
        from edgedet.backends.edgetpu import load_edgetpu_delegate

        try:
            delegate = load_edgetpu_delegate(backend, args.edgetpu_device)
            result: dict[str, Any] = {"stage": "edgetpu", "loaded": True}
            if data is not None and compiled:
                _invoke_once(backend.interpreter(data, delegates=[delegate]))
                result["invoked"] = True
            _emit(result)
        except (EdgedetError, ValueError, RuntimeError) as exc:
            _emit({"stage": "edgetpu", "loaded": False, "error": str(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(child())
