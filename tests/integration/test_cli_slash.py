"""`discobase commands --global`: the global slash commands the original discobase left behind.

The original (1.0.0) synced ten commands globally at every login; Discord keeps them after a
program moves to this discobase, which registers guild commands only. `--global` lists and
removes them, and needs no database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from discobase.cli import main
from discobase.http import HTTPClient
from discobase.testing import LocalDiscord, local_discord

TIME_SCALE = 0.02
ORIGINALS = ["insert", "find", "reset"]  # three of the original's ten, as it synced them


@pytest.fixture
async def local(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalDiscord]:
    async with local_discord("slash db", time_scale=TIME_SCALE) as local:
        monkeypatch.setenv("DISCOBASE_API_URL", local.url)
        monkeypatch.setenv("DISCOBASE_TOKEN", local.token)
        monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
        monkeypatch.delenv("DISCOBASE_DATABASE", raising=False)
        monkeypatch.delenv("DISCOBASE_GUILD_ID", raising=False)
        yield local


async def global_commands(local: LocalDiscord, replace: list[str] | None = None) -> list[Any]:
    async with HTTPClient(local.token, api_url=local.url, time_scale=TIME_SCALE) as http:
        app = str((await http.fetch_current_application())["id"])
        if replace is not None:
            commands = [{"name": n, "description": f"{n} (original)"} for n in replace]
            await http.bulk_overwrite_global_application_commands(app, commands)
        return list(await http.fetch_global_application_commands(app))


async def run(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 60)


async def test_global_commands_are_listed_and_removed_without_a_database(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(await global_commands(local, ORIGINALS)) == 3
    assert await run("commands", "--global", "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [f"/{n}: {n} (original)" for n in ORIGINALS]
    assert await run("commands", "--global", "remove") == 0
    out = capsys.readouterr().out
    assert "removed the bot's global slash commands" in out and local.token not in out
    assert await global_commands(local) == []
    assert await run("commands", "--global", "list") == 0
    assert capsys.readouterr().out == "no global slash commands of the bot\n"


async def test_guild_commands_still_need_a_database(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("commands", "list") == 2
    assert "name the database" in capsys.readouterr().err
