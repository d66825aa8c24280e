"""Log a recurring failure once per episode, not once per occurrence.

A disk that stays full, a broker that stays down or a notify socket that is gone fail on
every record or message; logging each would flood journald. ``FailureEpisode`` logs the
first failure of an episode and the recovery that ends it, and counts the failures in
between (for the recovery line). Thread-safe: paho's network thread and a worker may
report into the same episode.
"""

from __future__ import annotations

import logging
import threading
from typing import Any


class FailureEpisode:
    """One kind of failure of one component, reported to ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._lock = threading.Lock()
        self._failures = 0

    @property
    def failing(self) -> bool:
        """True between a failure and the next ``recovered()``."""
        with self._lock:
            return self._failures > 0

    def failed(self, message: str, *args: Any, quiet: bool = False) -> bool:
        """Count a failure; log ``message % args`` (WARNING) if it starts an episode.

        ``quiet``: count it but log nothing (e.g. while shutting down). Returns True when
        this failure started the episode.
        """
        with self._lock:
            self._failures += 1
            first = self._failures == 1
        if first and not quiet:
            self._log.warning(message, *args)
        return first

    def recovered(self, message: str, *args: Any, level: int = logging.WARNING) -> int:
        """End the episode, if one is open: log ``message`` formatted with ``args`` and
        ``failures=N`` (``{failures}`` in the message). Returns N (0: nothing was failing)."""
        with self._lock:
            failures, self._failures = self._failures, 0
        if failures:
            self._log.log(level, message.replace("{failures}", str(failures)), *args)
        return failures
