"""The command line against the local Discord: tables, dump, load, stats, demo, settings.

`load`'s checks by line, `--keep-ids` and `delete` are in ``test_cli_load_delete.py``.

Each command runs in a worker thread (it calls ``asyncio.run`` as it does in a shell) while the
local Discord serves it from the test's loop; its stdout and stderr are captured by pytest.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import pytest

import discobase
from discobase.cli import main
from discobase.cli.commands import LOAD_CHUNK
from discobase.testing import LocalDiscord, local_discord

TIME_SCALE = 0.02
NAME = "cli db"


@pytest.fixture
async def local(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalDiscord]:
    async with local_discord(NAME, time_scale=TIME_SCALE) as local:
        for key, value in local.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
        yield local


async def fill(local: LocalDiscord, users: int = 3) -> None:
    """Create a `user` table with a few records, as an application would."""
    db = local.database()

    @db.table
    class User(discobase.Table):
        name: str
        age: int = 0

    async with db.conn(local.token):
        await User.save_many([User(name=f"user{i}", age=i) for i in range(users)])


async def run(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 60)


async def test_tables_lists_records_channel_and_schema(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill(local)
    assert await run("tables") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["TABLE", "RECORDS", "CHANNEL", "FIELDS"]
    name, records, channel, *fields = out[1].split()
    assert (name, records) == ("user", "3")
    assert channel.isdigit()
    assert " ".join(fields) == "name: string, age: integer = 0"


async def test_tables_shows_what_a_field_was_renamed_from(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill(local, users=1)
    db = local.database()

    @db.table
    class User(discobase.Table):
        full_name: Annotated[str, discobase.Renamed("name")]
        age: int = 0

    async with db.conn(local.token):
        assert [user.full_name for user in User.find()] == ["user0"]
    assert await run("tables") == 0
    fields = capsys.readouterr().out.splitlines()[1].split(maxsplit=3)[3]
    assert set(fields.split(", ")) == {"full_name: string (was name)", "age: integer = 0"}


async def test_dump_then_load_round_trips(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local, users=1200)
    assert await run("dump", "user") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1200
    first = json.loads(lines[0])
    assert set(first) == {"id", "name", "age"}
    assert captured.err == ""  # not a terminal: no progress line

    dump = tmp_path / "users.jsonl"
    dump.write_text(captured.out, encoding="utf-8")
    before = local.emulator.stats()["requests_total"]
    assert await run("load", "user", str(dump)) == 0
    assert "loaded 1200 records" in capsys.readouterr().err
    # Batched: 1200 records need a handful of writes, not one request per record.
    load_requests = local.emulator.stats()["requests_total"] - before
    assert load_requests < 60

    assert await run("dump", "user") == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(again) == 2400
    assert sorted(r["name"] for r in again) == sorted([f"user{i}" for i in range(1200)] * 2)


async def test_load_refuses_a_bad_line_before_writing(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "ok"}\n{"nom": "typo"}\n', encoding="utf-8")
    assert await run("load", "user", str(bad)) == 1
    assert "line 2 has unknown fields: nom" in capsys.readouterr().err
    assert await run("tables") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "3"


async def test_stats_shows_requests_and_buckets(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill(local)
    before = dict(local.emulator.stats()["requests_by_route"])
    assert await run("stats") == 0
    out = capsys.readouterr().out
    served = {
        route: count - before.get(route, 0)
        for route, count in local.emulator.stats()["requests_by_route"].items()
    }
    # It counts the requests that opened the tables, not the one asking the session budget.
    opening = sum(served.values()) - served["GET /gateway/bot"]
    assert f"requests {opening} sent to open 1 table(s)" in out
    assert f"guild    {NAME}" in out
    assert "0 rate-limited (429)" in out
    assert "gateway sessions left today" in out
    assert "user" in out and "WRITE BUCKET" in out
    assert "local Discord:" in out
    assert local.token not in out


async def test_errors_are_one_line_and_never_show_the_token(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await run("tables") == 1  # nothing created yet
    assert "no discobase database yet" in capsys.readouterr().err
    await fill(local)
    assert await run("dump", "nope") == 1
    assert "no table named 'nope' (tables: user)" in capsys.readouterr().err
    assert await run("tables", "--database", "elsewhere") == 1
    assert "no guild with the name 'elsewhere'" in capsys.readouterr().err
    monkeypatch.setenv("DISCOBASE_TOKEN", "not-a-valid-token")
    assert await run("tables") == 1
    err = capsys.readouterr().err
    assert "InvalidToken" in err or "Unauthorized" in err
    assert "not-a-valid-token" not in err


def test_the_command_line_starts_without_aiohttp_or_the_emulator() -> None:
    code = (
        "import sys\n"
        "from discobase.__main__ import main\n"
        "status = main(['tables'])\n"
        "bad = [m for m in ('aiohttp', 'discobase.emulator') if m in sys.modules]\n"
        "print(status, ','.join(bad))\n"
    )
    env = {"PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["2"]  # no token: a usage error, before any import
    assert "DISCOBASE_TOKEN" in out.stderr


@pytest.mark.parametrize("command", ["tables", "dump", "load", "delete", "stats", "demo"])
def test_there_is_no_token_flag(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "usage: discobase" in text
    assert "--token" not in text


def test_demo_runs_twice(capfd: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "discobase", "demo", "--time-scale", "0.05"],
            capture_output=True,
            text=True,
            timeout=100,
        )
        assert proc.returncode == 0, proc.stderr
        assert "UniqueViolation" in proc.stdout
        assert "users left: 2" in proc.stdout
        assert "#discobase" in proc.stdout and "#user" in proc.stdout
        assert "0 rate-limited (429)" in proc.stdout


async def test_progress_goes_to_stderr_when_it_is_a_terminal(local: LocalDiscord) -> None:
    await fill(local, users=300)
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "discobase",
            "dump",
            "user",
            stdout=asyncio.subprocess.PIPE,
            stderr=follower,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0
        assert len(out.splitlines()) == 300  # stdout stays clean JSON lines
        terminal = os.read(leader, 65536).decode()
        assert "300/300 records dumped" in terminal
    finally:
        os.close(leader)
        os.close(follower)


async def test_load_checks_unique_indexes_before_writing(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = local.database()

    @db.table
    class Account(discobase.Table):
        email: Annotated[str, discobase.Index(unique=True)]

    async with db.conn(local.token):
        await Account(email="taken@example.com").save()

    lines = [json.dumps({"email": f"user{i}@example.com"}) for i in range(LOAD_CHUNK + 10)]
    clash = tmp_path / "clash.jsonl"
    clash.write_text("\n".join([*lines, '{"email": "taken@example.com"}']), encoding="utf-8")
    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join([*lines, lines[3]]), encoding="utf-8")

    assert await run("load", "account", str(clash)) == 1
    err = capsys.readouterr().err
    assert f"line {LOAD_CHUNK + 11}: email is unique and 'taken@example.com'" in err
    assert "already taken by stored record" in err and "nothing was written" in err
    assert await run("load", "account", str(twice)) == 1
    assert "is already taken by line 4; nothing was written" in capsys.readouterr().err
    assert await run("tables") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["account", "1"]


def test_help_version_and_the_emulators_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"discobase {discobase.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    for command in ("emulator", "demo", "tables", "dump", "load", "delete", "stats"):
        assert command in listing
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--help"])  # handed over whole to the emulator's own parser
    assert exited.value.code == 0
    assert "--data" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
