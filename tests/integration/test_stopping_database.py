"""A database that stops while code of the program still runs inside it (a fatal gateway
close), against the local Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discobase
from tests.helpers import WAIT, eventually, identify_window, make_db


def labelled(emulator: Any, guild: str) -> tuple[Any, discobase.Database, Any]:
    """Return a bot, its database on a new guild, and the database's one table (``label``)."""
    bot = emulator.create_bot("db")
    emulator.create_guild(guild, bots=[bot])
    db = make_db(emulator, guild)

    class Item(discobase.Table):
        label: str

    return bot, db, db.table(Item)


async def test_wait_ready_inside_a_batch_of_a_stopping_database_does_not_hang(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The stop waits for the block's held write, which is sent only when the block ends:
    # wait_ready() waiting for the stop there would wait for itself.
    import logging

    bot, db, Item = labelled(emulator, "stopping")
    async with asyncio.timeout(WAIT):
        runner = db.login_task(bot.token)
        await db.wait_ready()
        with caplog.at_level(logging.CRITICAL, logger="discobase"):
            async with db.batch():
                saving = Item(label="held").save()
                assert await emulator.gateway.drop(bot.id, close_code=4004) == 1
                await eventually(lambda: not db.is_ready, "the database to stop")
                with pytest.raises(discobase.NotConnected):
                    await db.wait_ready()
            await asyncio.wait({runner})
            assert isinstance(runner.exception(), discobase.GatewayError)
            await asyncio.wait({saving})


async def test_close_inside_a_batch_is_refused_instead_of_waiting_for_itself(
    emulator: Any,
) -> None:
    # close() waits for pending writes; a block's are sent only when the block ends.
    bot, db, Item = labelled(emulator, "closing")
    async with asyncio.timeout(WAIT), db.conn(bot.token):
        async with db.batch():
            saving = Item(label="held").save()
            with pytest.raises(discobase.UsageError, match="inside `async with db.batch"):
                await db.close()
            assert db.is_ready
        await saving
    assert not db.is_ready
    await identify_window()
    async with asyncio.timeout(WAIT), db.conn(bot.token):  # the write was stored
        assert [item.label for item in Item.find()] == ["held"]
