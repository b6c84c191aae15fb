"""A database that stops while code of the program still runs inside it (a fatal gateway
close), against the local Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discobase
from tests.helpers import WAIT, eventually, identify_window, item_db


async def test_wait_ready_inside_a_batch_of_a_stopping_database_does_not_hang(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The stop waits for the block's held write, which is sent only when the block ends:
    # wait_ready() waiting for the stop there would wait for itself.
    import logging

    bot = emulator.create_bot("db")
    emulator.create_guild("stopping", bots=[bot])
    db, Item = item_db(emulator, "stopping")
    async with asyncio.timeout(WAIT):
        runner = db.login_task(bot.token)
        await db.wait_ready()
        with caplog.at_level(logging.CRITICAL, logger="discobase"):
            async with db.batch():
                saving = Item(key="held").save()
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
    bot = emulator.create_bot("db")
    emulator.create_guild("closing", bots=[bot])
    db, Item = item_db(emulator, "closing")
    async with asyncio.timeout(WAIT), db.conn(bot.token):
        async with db.batch():
            saving = Item(key="held").save()
            with pytest.raises(discobase.UsageError, match="inside `async with db.batch"):
                await db.close()
            assert db.is_ready
        await saving
    assert not db.is_ready
    await identify_window()
    async with asyncio.timeout(WAIT), db.conn(bot.token):  # the write was stored
        assert [item.key for item in Item.find()] == ["held"]
