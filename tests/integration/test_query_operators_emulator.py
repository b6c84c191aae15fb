"""Query operators and bulk writes through every layer, against the local Discord.

The unit tests cover each operator; here the real storage engine answers: a range on an
indexed field is served by the sorted index of the table's state, which follows the writes a
second database (another process, as far as the first can tell) makes through Discord.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pydantic

import discobase
from discobase import contains, ge, gt, lt, one_of, startswith
from tests.conftest import TIME_SCALE
from tests.helpers import WAIT


class Tagged(pydantic.BaseModel):
    tag: str


async def test_operators_and_bulk_writes_over_discord(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("ops", bots=[bot])
    first = discobase.Database("ops", api_url=emulator.url, time_scale=TIME_SCALE)
    second = discobase.Database("ops", api_url=emulator.url, time_scale=TIME_SCALE)

    def declare(db: discobase.Database) -> type[discobase.Table]:
        @db.table
        class Reading(discobase.Table):
            sensor: Annotated[str, discobase.Index()]
            value: Annotated[int, discobase.Index()]
            notes: list[Tagged] = []

        return Reading

    mine, theirs = declare(first), declare(second)
    async with first.conn(bot.token), second.conn(bot.token):
        await mine.save_many(
            mine(sensor=f"s{i:03d}", value=i, notes=[Tagged(tag="odd" if i % 2 else "even")])
            for i in range(200)
        )
        assert [r.value for r in mine.find(value=ge(10) & lt(13))] == [10, 11, 12]
        state = mine.__discobase_binding__.store.state  # type: ignore[union-attr]
        assert state._sorted["value"].built  # the range was answered by the sorted index

        # Writes by another database reach this one's sorted index through Discord.
        async def arrived() -> None:
            while theirs.count() != 200:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(arrived(), WAIT)
        moved = await theirs.find(value=lt(5)).update_many(value=1000)
        assert len(moved) == 5
        await theirs.find(sensor=one_of("s100", "s101")).delete_many()

        async def caught_up() -> None:
            while mine.count(value=ge(1000)) != 5 or mine.count(sensor=startswith("s10")) != 8:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(caught_up(), WAIT)
        assert [r.sensor for r in mine.find(value=gt(998))] == [f"s{i:03d}" for i in range(5)]
        assert mine.count(notes=contains(Tagged(tag="odd"))) == 99
        assert mine.find(value=ge(10) & lt(13), order_by="-value").first() is not None
        found = [r.value async for r in mine.find(value=ge(195) & lt(1000))]
        assert found == [195, 196, 197, 198, 199]
