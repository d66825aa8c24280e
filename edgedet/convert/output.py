"""Writing results: the model and its card appear whole or not at all.

Both files are written to temporary names in the destination folder, flushed to disk,
then renamed over the targets (``os.replace`` is atomic within one file system). A
failure before the renames leaves the destination as it was; temporary files are removed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgedet import atomicfile
from edgedet.errors import InputError


def check_writable(out: Path) -> None:
    """Fail early (before a long conversion) when ``out`` cannot be written."""
    if out.suffix != ".tflite":
        raise InputError(f"--out {out} must end in .tflite (the card goes beside it as .yaml)")
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; pass a file path ending in .tflite")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {out}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {out}: folder {parent} is not writable")
    for existing in (out, out.with_suffix(".yaml")):
        if existing.exists() and not os.access(existing, os.W_OK):
            raise InputError(f"cannot write {existing}: the file is read-only")


def card_yaml(card: Mapping[str, Any]) -> str:
    """The card as YAML: block style at the top, flow style for short leaf lists/maps."""
    import yaml

    return yaml.safe_dump(dict(card), sort_keys=False, default_flow_style=None, width=100)


def write_model_and_card(out: Path, model: bytes, card: Mapping[str, Any]) -> Path:
    """Write ``out`` (.tflite) and its ``.yaml`` card atomically; return the card path."""
    card_path = out.with_suffix(".yaml")
    staged: list[tuple[str, Path]] = []
    try:
        staged.append((atomicfile.stage(out, model), out))
        staged.append((atomicfile.stage(card_path, card_yaml(card).encode("utf-8")), card_path))
        for tmp, final in staged:
            os.replace(tmp, final)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return card_path
