"""FailureEpisode: one log line when a failure starts, one when it ends."""

from __future__ import annotations

import logging

import pytest

from edgedet.episodes import FailureEpisode


def test_a_failure_episode_logs_its_start_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    episode = FailureEpisode(logging.getLogger("edgedet.test"))
    with caplog.at_level(logging.INFO, logger="edgedet.test"):
        assert episode.recovered("never failed") == 0
        assert episode.failed("disk %s full", "sda") is True
        for _ in range(4):
            assert episode.failed("disk %s full", "sda") is False
        assert episode.failing
        assert episode.recovered("writing again after {failures} failure(s) on %s", "sda") == 5
        assert not episode.failing
        episode.failed("gone", quiet=True)
        assert episode.recovered("back after {failures}", level=logging.INFO) == 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "disk sda full"),
        ("WARNING", "writing again after 5 failure(s) on sda"),
        ("INFO", "back after 1"),
    ]
