"""A migration of a large table says how far it is, on the ``discobase`` logger."""

from __future__ import annotations

import logging

import pytest

from discobase.migrate import MigrationProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_two_seconds_then_one_for_the_write(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = MigrationProgress("item", 1_000_000, clock)
    with caplog.at_level(logging.INFO, logger="discobase"):
        progress.show(0)
        clock.now += 1.9
        progress.show(4096)  # too soon for a line
        clock.now += 0.2
        progress.show(8192)
        progress.show(12288)  # the clock has not moved
        clock.now += 2.0
        progress.show(500_000)
        progress.writing(999_000)
    assert [r.getMessage() for r in caplog.records] == [
        "migrating table 'item': 8192 of 1000000 records rewritten",
        "migrating table 'item': 500000 of 1000000 records rewritten",
        "migrating table 'item': writing 999000 records as one batch",
    ]


def test_a_small_table_migrates_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = MigrationProgress("item", 12, clock)
    with caplog.at_level(logging.INFO, logger="discobase"):
        progress.show(0)
        progress.writing(12)
    assert caplog.records == []
