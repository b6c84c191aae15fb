"""Records come back exactly as saved: integers beyond 64 bits."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import discobase
from tests.integration.test_database_records import WAIT, connect

BIG = 2**64 + 1


async def test_integers_beyond_64_bits_round_trip_exactly(emulator: Any) -> None:
    db, token = connect(emulator, "bigints")

    @db.table
    class Counter(discobase.Table):
        value: int
        tag: Annotated[int, discobase.Index()] = 0
        data: Any = None

    many = [Counter(value=-BIG * i, data={"n": BIG + i}) for i in range(70)]
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Counter(value=BIG, tag=BIG, data={"n": BIG, "m": [-BIG]}).save()
            await Counter.save_many(many)  # large enough to be sent as an attachment
            (found,) = Counter.find(value=BIG)
            assert found.data == {"n": BIG, "m": [-BIG]}
            assert type(found.data["n"]) is int
            assert Counter.count(tag=BIG) == 1
        async with db.conn(token):
            reread = Counter.find(order_by="value")
    assert [r.value for r in reread] == [-BIG * i for i in range(69, -1, -1)] + [BIG]
    assert reread[-1].data == {"n": BIG, "m": [-BIG]}
    assert [r.data["n"] for r in reread[:-1]] == [BIG + i for i in range(69, -1, -1)]
