"""The command line's progress line and settings: pure, with an injected clock."""

from __future__ import annotations

import io

import pytest

from discobase.cli.env import read_settings
from discobase.cli.errors import CommandError
from discobase.cli.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_shows_done_rate_and_time_left() -> None:
    clock = FakeClock()
    progress = Progress(io.StringIO(), total=1000, verb="loaded", enabled=True, clock=clock)
    clock.now += 2.0
    progress.advance(200)
    assert progress.line() == "200/1000 records loaded, 100/s, 0:08 left"


def test_line_without_total_has_no_time_left() -> None:
    clock = FakeClock()
    progress = Progress(io.StringIO(), verb="dumped", enabled=True, clock=clock)
    clock.now += 4.0
    progress.advance(50)
    assert progress.line() == "50 records dumped, 12/s"


def test_draws_only_when_enabled_and_not_too_often() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress(stream, total=10, enabled=True, clock=clock)
    progress.advance()
    progress.advance()  # same instant: not redrawn
    clock.now += 1.0
    progress.advance()
    progress.finish()
    assert stream.getvalue().count("\r") == 3
    assert stream.getvalue().endswith("\n")

    quiet = io.StringIO()
    silent = Progress(quiet, total=10, clock=clock)  # StringIO is not a terminal
    silent.advance(10)
    silent.finish()
    assert quiet.getvalue() == ""


def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(61.4) == "1:01"
    assert format_duration(3725) == "1:02:05"


def test_settings_come_from_the_environment_only() -> None:
    env = {"DISCOBASE_TOKEN": "tok", "DISCOBASE_API_URL": "http://x", "DISCOBASE_DATABASE": "db"}
    settings = read_settings(None, None, env)
    assert (settings.api_url, settings.database) == ("http://x", "db")
    assert "tok" not in repr(settings)
    assert read_settings("other", None, env).database == "other"
    with pytest.raises(CommandError, match="DISCOBASE_TOKEN"):
        read_settings("db", None, {})
    with pytest.raises(CommandError, match="--database"):
        read_settings(None, None, {"DISCOBASE_TOKEN": "tok"})
