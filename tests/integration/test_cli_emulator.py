"""`discobase emulator` in its own process, and the other commands pointed at it.

This is the README's command-line path: start the local Discord, export what it prints, fill
a table from a program, then look at it with `tables`, `dump` and `stats`; with `--data` the
database survives a restart of the server.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
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
        env.update([env_line(line)])
    return proc, env


def env_line(line: str) -> tuple[str, str]:
    """Read one `NAME=value` line as a POSIX shell would (the value may be quoted)."""
    (word,) = shlex.split(line)
    key, _, value = word.partition("=")
    return key, value


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


# Spaces, both quotes, `$`, a backtick and a backslash: what a shell would expand or split.
AWKWARD = """My "discord" database's $HOME `id` $(id) \\ end"""


def test_the_printed_lines_are_safe_to_source(tmp_path: Path) -> None:
    # The documented way: the lines go to a file, and a shell sources it.
    env_file = tmp_path / "discobase.env"
    with env_file.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "discobase", "emulator", "--guild", AWKWARD]
            + ["--time-scale", "0.02"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "DISCOBASE_TIME_SCALE" not in env_file.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the emulator printed nothing"
            time.sleep(0.05)
        printed = dict(env_line(line) for line in env_file.read_text().splitlines())
        assert printed["DISCOBASE_DATABASE"] == AWKWARD
        for name, value in printed.items():
            sourced = subprocess.run(
                ["sh", "-c", f'. ./discobase.env; printf %s "${name}"'],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=True,
                env={"PATH": os.environ.get("PATH", ""), "HOME": "/nowhere"},
            )
            assert sourced.stdout == value, name
            assert sourced.stderr == ""
        # Plain values are printed as before (no quotes), for readers that split at `=`.
        url_line = next(line for line in env_file.read_text().splitlines() if "_URL=" in line)
        assert url_line == f"DISCOBASE_API_URL={printed['DISCOBASE_API_URL']}"
    finally:
        stop(proc)
