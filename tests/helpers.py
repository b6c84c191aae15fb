"""Helpers shared by the test folders: waiting for a condition, a database on the emulator,
a one-bot local Discord with an ``Item`` table.

One copy of each, so that a fix to how the suite waits reaches every test. Tests import them
from here (``from tests.helpers import eventually``), never from another test module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import discobase
from tests.conftest import TIME_SCALE

# A deadline, never a duration: generous, since the suite must pass on a loaded 2-core machine.
WAIT = 30.0
# Discord admits one IDENTIFY per bot per 5 s (max_concurrency 1), in Discord seconds.
IDENTIFY_WINDOW = 5.0


async def eventually(
    check: Callable[[], object], what: str | float = "the condition", timeout: float = WAIT
) -> None:
    """Poll ``check()`` every 10 ms until it is true; fail naming ``what`` after ``timeout`` s.

    Live sync has no completion signal to await, so tests wait for its effect; they never
    assert how long it took.

    Args:
        check: What must come true.
        what: Named in the failure (``"the reader to catch up"``). A number in its place is
            the timeout, the short form some tests use (``eventually(check, 10.0)``).
        timeout: How long to wait at most, in seconds.
    """
    if not isinstance(what, str):
        what, timeout = "the condition", what
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def identify_window(time_scale: float = TIME_SCALE) -> None:
    """Let one identify window (5 Discord seconds: 50 ms here) pass before the bot logs in again.

    A login of the same bot inside it is refused with op 9; the client then waits out the
    window plus a margin of 0.5 *real* seconds (latency does not scale with the time scale),
    ten times this pause. Pacing, not synchronisation: a login that still meets op 9 only
    takes longer. Tests that are about op 9 or two processes starting at once do not use it.
    """
    await asyncio.sleep((IDENTIFY_WINDOW + 1.0) * time_scale)


def make_db(emu: Any, name: str = "My discord database", **kwargs: Any) -> discobase.Database:
    """Return a database on guild ``name`` of the emulator ``emu``, at the suite's time scale."""
    return discobase.Database(name, api_url=emu.url, time_scale=TIME_SCALE, **kwargs)


def guild(emu: Any, name: str) -> tuple[Callable[[], discobase.Database], str, str]:
    """A fresh guild of ``emu`` with one bot: (a maker of databases on it, the bot's token,
    the guild's id)."""
    bot = emu.create_bot("db")
    guild_id = emu.create_guild(name, bots=[bot])
    return lambda: make_db(emu, name), bot.token, guild_id


def item_db(emu: Any, guild: str, **options: Any) -> tuple[discobase.Database, Any]:
    """Return a database on ``guild`` with one table, ``Item`` (``key: str``, ``n: int = 0``)."""
    db = make_db(emu, guild, **options)

    class Item(discobase.Table):
        key: str
        n: int = 0

    return db, db.table(Item)


@asynccontextmanager
async def one_bot_guild(guild: str, *, seed: int) -> AsyncIterator[tuple[Any, Any]]:
    """Run a seeded local Discord with one bot in ``guild``; yield ``(emulator, bot)``.

    The whole block must finish within ``WAIT``: a hang fails the test instead of the suite.
    """
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE, seed=seed) as emu:
        bot = emu.create_bot("db")
        emu.create_guild(guild, bots=[bot])
        async with asyncio.timeout(WAIT):
            yield emu, bot


@asynccontextmanager
async def running_items(
    emu: Any, bot: Any, guild: str, **options: Any
) -> AsyncIterator[tuple[discobase.Database, Any]]:
    """Connect an ``item_db`` as one process would; yield ``(database, Item)``.

    It logs in after an ``identify_window()``, so that a process started right after another
    of the same bot is not refused with op 9 (which costs ten times the pause).
    """
    db, item = item_db(emu, guild, **options)
    await identify_window()
    async with db.conn(bot.token):
        yield db, item
