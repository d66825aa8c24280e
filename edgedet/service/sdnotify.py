"""sd_notify for ``Type=notify`` units, over ``NOTIFY_SOCKET``, without a dependency.

systemd passes the path of an AF_UNIX datagram socket in ``NOTIFY_SOCKET`` (a leading
``@`` means the Linux abstract namespace) and, with ``WatchdogSec=``, the watchdog period
in ``WATCHDOG_USEC`` (optionally ``WATCHDOG_PID``, the process that must ping). Each
message is one datagram of newline-separated ``KEY=VALUE`` assignments.

The notifier is a no-op when ``NOTIFY_SOCKET`` is unset (running by hand, in tests) and
never raises into the caller: a send failure is logged once per failure episode, because
losing a status update must not take the detector down. (A lost ``WATCHDOG=1`` does
matter, and systemd will restart the service if they keep failing, which is the point.)
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from edgedet.episodes import FailureEpisode

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to ``socket_path`` (default: ``$NOTIFY_SOCKET``)."""

    def __init__(self, socket_path: str | None = None) -> None:
        path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | bytes | None = _address(path) if path else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failures = FailureEpisode(log)
        if path and self._address is None:
            log.warning("NOTIFY_SOCKET=%s is not a unix socket path; sd_notify disabled", path)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``.

        None when the watchdog is off, malformed, or meant for another process
        (``WATCHDOG_PID`` names a different pid).
        """
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec:
            return None
        if pid:
            try:
                if int(pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value / 2e6 if value > 0 else None

    def ready(self) -> None:
        """``READY=1``: start-up finished (the first frame was processed)."""
        self.notify("READY=1")

    def status(self, text: str) -> None:
        """``STATUS=<text>``: one line shown by ``systemctl status``."""
        self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> None:
        """``WATCHDOG=1``: the service is alive; call only while frames flow."""
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """``STOPPING=1``: shutdown began."""
        self.notify("STOPPING=1")

    def notify(self, raw: str) -> None:
        """Send ``raw`` (newline-separated assignments) as one datagram; never raises."""
        if self._address is None:
            return
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(raw.encode("utf-8"), self._address)
            except OSError as exc:
                self._failures.failed("sd_notify to %r failed: %s", self._address, exc)
                # A fresh socket next time, in case this one is broken.
                self.close_socket()
            else:
                self._failures.recovered("sd_notify works again", level=logging.INFO)

    def close_socket(self) -> None:
        """Release the datagram socket (it is reopened on the next message)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _address(path: str) -> str | bytes | None:
    """Socket address for ``path``: filesystem path, or abstract name for ``@name``."""
    if path.startswith("@"):
        return b"\0" + path[1:].encode("utf-8")
    if path.startswith("/"):
        return path
    return None  # e.g. vsock: addresses (systemd >= 253) are not supported here
