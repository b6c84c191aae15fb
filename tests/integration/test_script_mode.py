"""Scripts without a gateway: ``Database(..., live=False)`` and the command line.

A script-mode process reads its tables over REST at login, sees others' writes after
``refresh()`` (or its next gap check), writes as usual, and never starts a gateway session:
the local Discord's gateway counters show no connection and no IDENTIFY.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

import discobase
from discobase.cli import main
from discobase.emulator import Emulator
from tests.helpers import WAIT, item_db, one_bot_guild

SCALE = 0.01
GUILD = "scripts"
# Discord seconds: long enough that only refresh() reads the log during a test.
NEVER = 1e6


def world() -> AbstractAsyncContextManager[tuple[Emulator, Any]]:
    return one_bot_guild(GUILD, seed=3)


def sessions(emu: Emulator) -> tuple[int, int]:
    """(gateway connections, IDENTIFYs) so far."""
    stats = emu.stats()["gateway"]
    return stats["connections"], stats["identifies"]


async def test_a_script_opens_no_gateway_session_and_reads_the_tables() -> None:
    async with world() as (emu, bot):
        db, item = item_db(emu, GUILD)
        async with db.conn(bot.token):
            await item.save_many([item(key=f"k{i}", n=i) for i in range(3)])
        emu.reset()  # the live process's session is forgotten: count the script's only
        script, scripted = item_db(emu, GUILD, live=False)
        assert script.live is False
        async with script.conn(bot.token):
            assert script.is_ready
            assert sorted(i.n for i in scripted.find()) == [0, 1, 2]
            await scripted(key="from the script").save()
        assert sessions(emu) == (0, 0)
        async with db.conn(bot.token):
            assert item.count(key="from the script") == 1


async def test_a_script_sees_other_writes_after_refresh_and_watch_yields_them() -> None:
    async with world() as (emu, bot):
        live_db, live = item_db(emu, GUILD)
        script, scripted = item_db(emu, GUILD, live=False, gap_check_interval=NEVER)
        async with live_db.conn(bot.token):
            await live(key="first").save()
            async with script.conn(bot.token):
                changes = scripted.watch()
                other = await live(key="second").save()
                await asyncio.sleep(0.1)  # 10 Discord seconds: no event can reach a script
                assert scripted.count() == 1
                await script.refresh()
                assert scripted.count(key="second") == 1
                (change,) = [await anext(changes)]
                assert (change.kind, change.id) == ("insert", other.id)
                other.n = 5
                await other.update()
                await script.refresh()
                change = await anext(changes)
                assert (change.kind, change.previous.n, change.record.n) == ("update", 0, 5)
        assert emu.stats()["gateway"]["identifies"] == 1  # the live process's only


async def test_refresh_needs_a_connected_database_and_live_must_be_a_bool() -> None:
    async with world() as (emu, _):
        db, _ = item_db(emu, GUILD, live=False)
        with pytest.raises(discobase.NotConnected):
            await db.refresh()
        with pytest.raises(discobase.UsageError):
            item_db(emu, GUILD, live="no")


async def test_the_command_line_reads_and_writes_without_a_gateway_session(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    async with world() as (emu, bot):
        db, item = item_db(emu, GUILD, live=False)
        async with db.conn(bot.token):
            await item.save_many([item(key=f"k{i}", n=i) for i in range(3)])
        monkeypatch.setenv("DISCOBASE_TOKEN", bot.token)
        monkeypatch.setenv("DISCOBASE_API_URL", emu.url)
        monkeypatch.setenv("DISCOBASE_DATABASE", GUILD)
        monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(SCALE))
        lines = tmp_path / "more.jsonl"
        lines.write_text(json.dumps({"key": "loaded", "n": 9}) + "\n")

        async def run(*argv: str) -> int:
            return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), WAIT)

        assert await run("tables") == 0
        assert await run("load", "item", str(lines)) == 0
        capsys.readouterr()
        assert await run("dump", "item") == 0
        dumped = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted(r["n"] for r in dumped) == [0, 1, 2, 9]
        assert sessions(emu) == (0, 0)
