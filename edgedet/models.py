"""Where the bundled model and sample clip live.

In a source checkout they are in ``models/`` at the repository root; an installed copy
looks in ``<sys.prefix>/share/edgedet/models``. ``EDGEDET_MODELS`` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edgedet.errors import ModelError

DEFAULT_MODEL = "ssdlite_mobilenet_v2_person_uint8.tflite"


def models_dir() -> Path:
    candidates = []
    if os.environ.get("EDGEDET_MODELS"):
        candidates.append(Path(os.environ["EDGEDET_MODELS"]))
    candidates.append(Path(__file__).resolve().parent.parent / "models")
    candidates.append(Path(sys.prefix) / "share" / "edgedet" / "models")
    for c in candidates:
        if (c / DEFAULT_MODEL).is_file():
            return c
    return candidates[0]


def bundled_model_path() -> Path | None:
    """The bundled model file, or None when this installation has none."""
    path = models_dir() / DEFAULT_MODEL
    return path if path.is_file() else None


def default_model_path() -> Path:
    """The bundled model file; `ModelError` with the fix when it is missing."""
    path = bundled_model_path()
    if path is None:
        raise ModelError(
            f"the bundled model {DEFAULT_MODEL} is not in {models_dir()}; pass --model PATH "
            "or set EDGEDET_MODELS to the folder that holds it"
        )
    return path


def sample_clip_path() -> Path | None:
    """The bundled sample clip (cut from OpenCV's vtest.avi), or None."""
    samples = models_dir() / "samples"
    found = (
        sorted(p for p in samples.glob("vtest_clip.*") if p.is_file()) if samples.is_dir() else []
    )
    return found[0] if found else None
