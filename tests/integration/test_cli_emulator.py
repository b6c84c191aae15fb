"""`discobase emulator` in its own process, and the other commands pointed at it.

This is the README's command-line path: start the local Discord, export what it prints, fill
a table from a program, then look at it with `tables`, `dump` and `stats`; with `--data` the
database survives a restart of the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import discobase
from discobase.cli import main

GUILD = "My db"


def start_emulator(data: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `discobase emulator` and read the variables it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "discobase", "emulator", "--guild", GUILD, "--time-scale", "0.02"]
        + ["--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while "DISCOBASE_TIME_SCALE" not in env:
        line = proc.stdout.readline()
        assert line, f"the emulator stopped: {proc.stderr.read() if proc.stderr else ''}"
        key, _, value = line.strip().partition("=")
        env[key] = value
    return proc, env


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop the server as Ctrl-C would, and close its pipes."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def run(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 60)


async def test_the_command_line_against_a_separate_local_discord(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, env = start_emulator(tmp_path)
    try:
        assert env["DISCOBASE_DATABASE"] == GUILD
        for key, value in env.items():
            monkeypatch.setenv(key, value)

        db = discobase.Database(GUILD)  # api_url and time_scale from the environment

        @db.table
        class Book(discobase.Table):
            title: str
            year: int

        async with db.conn(os.environ["DISCOBASE_TOKEN"]):
            await Book.save_many([Book(title=f"Book {i}", year=1900 + i) for i in range(50)])

        assert await run("tables") == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["book", "50"]
        assert await run("dump", "book") == 0
        assert len(capsys.readouterr().out.splitlines()) == 50
    finally:
        stop(proc)

    # Restarted on the same data directory, the database is still there.
    proc, env = start_emulator(tmp_path)
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert await run("stats") == 0
        out = capsys.readouterr().out
        assert "book" in out and "0 rate-limited (429)" in out
        assert await run("tables") == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["book", "50"]
    finally:
        stop(proc)
