"""The Coral Edge TPU delegate (``libedgetpu.so.1``).

A model runs on the Edge TPU when the config says ``edgetpu: true`` or the file is named
``*_edgetpu.tflite`` (what ``edgetpu_compiler`` writes). The delegate is loaded through
the interpreter package's own ``load_delegate``; no pycoral needed.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from edgedet.backends import Backend
from edgedet.errors import BackendError

log = logging.getLogger(__name__)

LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}

FIXES = (
    "install the runtime (`sudo apt-get install libedgetpu1-std` from Coral's apt repository), "
    "plug the USB Accelerator into a USB 3 port or a powered hub, "
    "add the service user to group `plugdev` (then log in again), "
    "or run on the CPU with a non-_edgetpu model"
)


def wants_edgetpu(model_path: str, edgetpu: bool | None) -> bool:
    """``edgetpu`` True/False forces; None means: decide by the ``_edgetpu`` file name."""
    if edgetpu is not None:
        return bool(edgetpu)
    return str(model_path).endswith("_edgetpu.tflite")


def valid_device(device: str | None) -> bool:
    if device in (None, "", "usb", "pci"):
        return True
    kind, _, index = str(device).partition(":")
    return kind in ("usb", "pci") and index.isdigit()


def load_edgetpu_delegate(backend: Backend, device: str | None = None) -> Any:
    """Load the Edge TPU delegate; device ``usb``, ``usb:N``, ``pci``, ``pci:N`` or None
    (the first found). Raises `BackendError` naming the fixes when it cannot load."""
    if not valid_device(device):
        raise BackendError(f"Edge TPU device {device!r} is not valid; use usb, usb:N, pci or pci:N")
    library = LIBRARY.get(sys.platform, LIBRARY["linux"])
    options = {"device": device} if device else {}
    try:
        # Probe the library first: a failed load_delegate leaves a half-built Delegate
        # whose destructor prints a spurious traceback at exit.
        ctypes.CDLL(library)
        return backend.load_delegate(library, options)
    except (OSError, ValueError) as exc:
        # OSError: the library is missing; ValueError: it loaded but found no device.
        raise BackendError(
            f"cannot load the Edge TPU delegate {library}"
            f"{' for device ' + device if device else ''} ({exc}); {FIXES}"
        ) from None
