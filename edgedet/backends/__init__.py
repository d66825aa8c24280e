"""Interpreter backends: the one place edgedet touches a TFLite interpreter package.

Three packages provide the same ``Interpreter`` / ``load_delegate`` API; the loader takes
the first installed, in this order, unless one is forced:

- ``litert``: ai-edge-litert (``ai_edge_litert.interpreter``), the default dependency:
  NumPy 1 or 2, XNNPACK int8 kernels on aarch64 and x86-64;
- ``tflite_runtime``: tflite-runtime 2.14, its last release, built against NumPy 1.x;
- ``tensorflow``: ``tf.lite`` (only where TensorFlow is installed anyway; never preferred).

The Edge TPU is a delegate (``libedgetpu.so.1``) loaded through the same package; see
`edgedet.backends.edgetpu`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edgedet.errors import BackendError

log = logging.getLogger(__name__)

# backend name -> module providing Interpreter and load_delegate
BACKENDS: dict[str, str] = {
    "litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}
_INSTALL_HINT = "pip install ai-edge-litert (or: pip install 'edgedet[tflite-runtime]' 'numpy<2')"


@dataclass(frozen=True)
class Backend:
    name: str
    module: ModuleType

    def interpreter(
        self,
        model_content: bytes,
        *,
        num_threads: int | None = None,
        delegates: list[Any] | None = None,
    ) -> Any:
        kwargs: dict[str, Any] = {"model_content": model_content}
        if num_threads:
            kwargs["num_threads"] = int(num_threads)
        if delegates:
            kwargs["experimental_delegates"] = delegates
        with _without_native_info_lines():
            interpreter = self.module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        return interpreter

    def load_delegate(self, library: str, options: dict[str, str] | None = None) -> Any:
        if self.name == "tensorflow":
            return self.module.experimental.load_delegate(library, options or {})
        return self.module.load_delegate(library, options or {})


# What the native runtime prints on stderr for every interpreter it builds; one line of
# noise per start that would break "one clear line" error output (a grep pattern).
_NATIVE_NOISE = "^INFO: Created TensorFlow Lite XNNPACK delegate"


@contextlib.contextmanager
def _without_native_info_lines() -> Iterator[None]:
    """While an interpreter is built, pass the C-level stderr (fd 2) through ``grep -v``,
    dropping the runtime's informational banner and forwarding every other line as it
    comes.

    The filter is a child process, not a thread, so that what native code writes just
    before a crash (its own message, then ``faulthandler``'s traceback, which `edgedet
    run` enables) still reaches the terminal or the journal: the child drains the pipe
    after this process died. Without grep, or without a real stderr, nothing is filtered.
    """
    grep = shutil.which("grep")
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = None  # no real stderr (embedded, some test captures)
    if grep is None or stderr_fd is None:
        yield
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    try:
        # Its own session: Ctrl-C in a terminal stops edgedet, not the filter mid-line.
        child = subprocess.Popen(
            [grep, "-v", "--line-buffered", "-e", _NATIVE_NOISE],
            stdin=read_end,
            stdout=stderr_fd,
            start_new_session=True,
        )
    except OSError:
        os.close(read_end)
        os.close(write_end)
        yield
        return
    os.close(read_end)
    real_stderr = os.dup(stderr_fd)
    os.dup2(write_end, stderr_fd)
    os.close(write_end)  # fd 2 is now the pipe's only write end
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, stderr_fd)  # closes the pipe: grep forwards the rest and ends
        os.close(real_stderr)
        try:
            child.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass  # a process started meanwhile holds the pipe; grep ends when it does


def _import_backend(name: str) -> ModuleType:
    module_name = BACKENDS[name]
    if name == "tflite_runtime":
        import numpy

        if int(numpy.__version__.split(".")[0]) >= 2:
            # tflite-runtime 2.14 was compiled against NumPy 1.x and fails on import.
            raise BackendError(
                f"tflite-runtime cannot run with NumPy {numpy.__version__} (it was built for "
                "NumPy 1.x); run `pip install 'numpy<2'`, or use ai-edge-litert "
                "(`pip install ai-edge-litert`, backend: litert)"
            )
    return importlib.import_module(module_name)


def get_backend(name: str = "auto") -> Backend:
    """The interpreter package to use; ``auto`` takes the first installed of
    litert, tflite_runtime, tensorflow. Raises `BackendError` with the fix."""
    if name != "auto":
        if name not in BACKENDS:
            raise BackendError(
                f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}"
            )
        try:
            return Backend(name, _import_backend(name))
        except ImportError as exc:
            raise BackendError(f"backend {name!r} is not usable: {exc}; {_INSTALL_HINT}") from None
    problems = []
    for candidate in BACKENDS:
        try:
            return Backend(candidate, _import_backend(candidate))
        except BackendError as exc:
            problems.append(str(exc))
        except ImportError:
            continue
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise BackendError(f"no TFLite interpreter is installed{detail}; {_INSTALL_HINT}")
