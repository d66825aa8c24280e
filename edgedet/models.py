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


def default_model_path() -> Path:
    path = models_dir() / DEFAULT_MODEL
    if not path.is_file():
        raise ModelError(
            f"the bundled model {DEFAULT_MODEL} is not in {path.parent}; pass --model PATH "
            "or set EDGEDET_MODELS to the folder that holds it"
        )
    return path


def sample_clip_path() -> Path | None:
    """The bundled sample clip (cut from OpenCV's vtest.avi), or None."""
    samples = models_dir() / "samples"
    found = sorted(samples.glob("vtest_clip.*")) if samples.is_dir() else []
    return found[0] if found else None
