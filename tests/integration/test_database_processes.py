"""Two operating-system processes writing one table converge through Discord."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import discobase
from tests.conftest import TIME_SCALE
from tests.helpers import identify_window
from tests.integration.child_process import start_child

WAIT = 60.0

CHILD = """
import asyncio, json, os
import discobase

db = discobase.Database("two processes")


@db.table
class Entry(discobase.Table):
    author: str
    n: int


async def main():
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        for n in range(40):
            Entry(author="child", n=n).save()
            await asyncio.sleep(0)
        # Wait until the parent's 40 entries arrived too, then report what this side sees.
        async with asyncio.timeout({wait}):
            while Entry.count() < 80:
                await asyncio.sleep(0.01)
        print(json.dumps([[e.id, e.author, e.n] for e in Entry.find()]), flush=True)


asyncio.run(main())
"""


async def test_two_processes_write_one_table(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("two processes", bots=[bot])
    db = discobase.Database("two processes", api_url=emulator.url, time_scale=TIME_SCALE)

    @db.table
    class Entry(discobase.Table):
        author: str
        n: int

    async with asyncio.timeout(WAIT):
        # Create the table first, so that both processes open the same channel.
        async with db.conn(bot.token):
            pass
        await identify_window()
        async with db.conn(bot.token):
            child = await start_child(CHILD.format(wait=WAIT), emulator, bot.token)
            await asyncio.gather(*(Entry(author="parent", n=n).save() for n in range(40)))
            out, err = await child.communicate()
            assert child.returncode == 0, err.decode()
            seen_by_child = json.loads(out)
            while Entry.count() < 80:
                await asyncio.sleep(0.01)
            # Both processes hold the same 80 records under the same ids.
            assert seen_by_child == [[e.id, e.author, e.n] for e in Entry.find()]
            assert sorted(e.n for e in Entry.find(author="child")) == list(range(40))
