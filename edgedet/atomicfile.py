"""Replace a file whole: write a hidden temporary file beside it, fsync it, rename it.

A reader, or a crash, sees the old file or the new one, never half of either:
``os.replace`` is atomic within one file system, and the temporary file lives in the
target's own folder. Used for model files and cards, which a Pi may read while they are
being replaced.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def stage(final: Path, data: bytes, mode: int = 0o644) -> str:
    """Write ``data`` to a new temporary file next to ``final`` (flushed to disk, with
    ``mode``) and return its path. The caller renames it over ``final`` with
    ``os.replace`` or unlinks it; on an error here nothing is left behind."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write(final: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``final`` with ``data`` atomically (``stage`` then ``os.replace``).
    Raises ``OSError``; the temporary file never outlives the call."""
    tmp = stage(final, data, mode)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.unlink(tmp)
        raise
