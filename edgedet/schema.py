"""Config settings: one definition per key (type, default, range, one-line doc).

Each component declares its own section as a frozen dataclass whose fields are made with
``setting()``; ``edgedet.service.config`` assembles the sections into the ``Config`` tree.
This module sits low in the layers (it imports nothing from edgedet but ``errors``), so a
source or publisher can own its config without importing the service.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(
    default: Any = None,
    *,
    doc: str = "",
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    int_as_str: bool = False,
) -> Any:
    """A config field with its validation limits and doc line kept beside it (``metadata``).

    ``lo``/``hi`` bound numbers (inclusive; ``lo_open`` makes ``lo`` exclusive) and the
    values of lists and mappings of numbers; ``choices`` restricts a string;
    ``int_as_str`` accepts a YAML integer for a string key (``source: 0``).
    """
    meta = {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "lo_open": lo_open,
        "choices": choices,
        "int_as_str": int_as_str,
    }
    if isinstance(default, list):
        raise TypeError("use tuples for sequence defaults")  # frozen defaults only
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)
