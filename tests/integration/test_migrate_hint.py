"""The SchemaMismatch that sends a user to db.migrate() says how to reach it.

A class registered before login whose table it cannot open stops `db.conn()`, so a user who
registers the new class as usual and then calls `db.migrate()` inside the block never gets
there, and meets the same message again. The message says to register the class inside
`db.conn()`; doing what it says migrates the table.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discobase
from tests.helpers import WAIT, make_db


async def test_the_mismatch_says_to_register_the_new_class_after_connecting(
    emulator: Any,
) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("shop", bots=[bot])
    old_db = make_db(emulator, "shop", live=False)

    @old_db.table
    class Item(discobase.Table):
        price: str

    async with asyncio.timeout(WAIT), old_db.conn(bot.token):
        await Item(price="4.20").save()

    early = make_db(emulator, "shop", live=False)

    @early.table
    class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        cents: int

    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.SchemaMismatch) as caught:
            async with early.conn(bot.token):
                pass
    message = str(caught.value)
    assert "db.migrate(Item" in message
    assert "register Item inside `async with db.conn(...)`" in message, message

    late = make_db(emulator, "shop", live=False)
    async with asyncio.timeout(WAIT), late.conn(bot.token):

        @late.table
        class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
            cents: int

        def to_cents(record: dict[str, Any]) -> dict[str, Any]:
            return {"cents": round(float(record["price"]) * 100)}

        assert await late.migrate(Item, transform=to_cents) == 1
        assert [item.cents for item in Item.find()] == [420]


async def test_every_table_that_does_not_fit_is_named_at_once(emulator: Any) -> None:
    # A rollout changes several tables: one attempt names them all, and the tables that fit
    # are opened (and checked) all the same.
    bot = emulator.create_bot("db")
    emulator.create_guild("venue", bots=[bot])
    first = make_db(emulator, "venue", live=False)

    @first.table
    class Event(discobase.Table):
        capacity: int

    @first.table
    class Seat(discobase.Table):
        row: str

    @first.table
    class Ticket(discobase.Table):
        holder: str

    async with asyncio.timeout(WAIT), first.conn(bot.token):
        await Event(capacity=10).save()

    second = make_db(emulator, "venue", live=False)

    @second.table
    class Event(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        capacity: str

    @second.table
    class Seat(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        row: str

    @second.table
    class Ticket(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        attendee: str

    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.SchemaMismatch) as caught:
            async with second.conn(bot.token):
                pass
    error = caught.value
    assert [error.table, *(other.table for other in error.also)] == ["event", "ticket"]
    assert sorted(error.also[0].fields) == ["attendee", "holder"]
    message = str(error)
    assert message.startswith("2 tables do not fit their stored schemas.")
    assert "table 'event'" in message and "table 'ticket'" in message
    assert "'seat'" not in message
