"""The per-device event sequence number, strictly increasing across restarts.

Every event record carries ``seq``; consumers dedupe QoS 1 redeliveries by (id, seq) and
see gaps. To stay strictly increasing across restarts without writing the SD card for
every event, numbers are *reserved* in blocks: the state file holds the first number not
yet reserved; when a block of ``block`` numbers is used up, the next block is reserved by
rewriting the file (write to a temporary file, fsync, rename: a crash leaves the old or
the new value, never a torn one). After a restart numbering continues at the reserved
value, so the unused rest of the last block shows as a gap (at most ``block - 1``).

Without a state file (``path=None``) the counter starts from the current time in
milliseconds, which is still strictly increasing across restarts as long as fewer than
1000 events per second were numbered and the clock does not go back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class SeqCounter:
    """``next()`` returns 1, 2, 3 ... continuing after the previous run's reservation."""

    def __init__(self, path: str | os.PathLike[str] | None, *, block: int = 1000) -> None:
        self.path = Path(path) if path is not None else None
        self.block = int(block)
        self._lock = threading.Lock()
        if self.path is None:
            self._next = int(time.time() * 1000)
            self._reserved = None
            return
        self._next = self._read()
        self._reserved = self._next
        self._reserve()

    def _read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
            return max(1, int(text))
        except FileNotFoundError:
            return 1
        except (ValueError, OSError) as exc:
            # A damaged file must not stop the service; the clock keeps numbers rising.
            log.warning(
                "event sequence state %s unreadable (%s): restarting from the clock", self.path, exc
            )
            return int(time.time() * 1000)

    def _reserve(self) -> None:
        new = self._next + self.block
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{new}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("event sequence state %s not saved: %s", self.path, exc)
        self._reserved = new

    def next(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            if self._reserved is not None and self._next >= self._reserved:
                self._reserve()
            return value
