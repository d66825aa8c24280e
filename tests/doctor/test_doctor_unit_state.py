"""What `systemctl show` says about the unit, turned into the `active` line.

These machines have no running systemd, so the live check is SKIP here; its reading of
``systemctl show`` output (the format of systemd 252, Debian 12) is tested directly.
"""

from __future__ import annotations

import pytest

from edgedet.doctor.service import unit_state

SHOW = (
    "Result={result}\nExecMainCode={code}\nExecMainStatus={status}\nNRestarts={restarts}\n"
    "LoadState=loaded\nActiveState={active}\nSubState={sub}\n"
)


def show(active, sub, result="success", code="0", status="0", restarts="0") -> str:
    return SHOW.format(
        active=active, sub=sub, result=result, code=code, status=status, restarts=restarts
    )


@pytest.mark.parametrize(
    ("text", "status", "detail"),
    [
        (show("active", "running", restarts="2"), "OK", "active (running), 2 restart(s)"),
        (
            show("failed", "failed", "exit-code", "1", "2", "5"),
            "FAIL",
            "failed (failed), 5 restart(s), last exit status 2: a bad config, model or camera "
            "(the one-line reason is in the journal)",
        ),
        (
            show("activating", "auto-restart", "watchdog", "2", "6", "1"),
            "WARN",
            "activating (auto-restart), 1 restart(s), last run killed by signal 6; the "
            "watchdog stopped it (no frame processed within WatchdogSec=)",
        ),
        (
            show("failed", "failed", "start-limit-hit", "1", "2", "5"),
            "FAIL",
            "failed (failed), 5 restart(s), last exit status 2: a bad config, model or camera "
            "(the one-line reason is in the journal); systemd stopped restarting it "
            "(StartLimitBurst=)",
        ),
        (show("inactive", "dead"), "WARN", "inactive (dead), 0 restart(s), last exit status 0"),
    ],
)
def test_unit_state_from_systemctl_show(text, status, detail):
    result = unit_state(text)
    assert (result.status, result.detail) == (status, detail)
    if status != "OK":
        assert "journalctl -u edgedet" in result.fix
