"""Two processes share one database: what one writes, the other sees through the gateway.

Run it with ``.venv/bin/python examples/live_sync.py``. It starts a local Discord, keeps a
database open in this process, and runs a second Python process that writes into the same
table; this process does not poll, yet sees every record arrive: the gateway delivers each
within moments (its gap checks, one REST read every 15 Discord seconds, would find any the
gateway lost).
"""

import asyncio
import os
import sys

import discobase
from discobase.testing import local_discord

db = discobase.Database(os.environ.get("DISCOBASE_DATABASE", "shared"))


@db.table
class Message(discobase.Table):
    author: str
    text: str


async def writer() -> None:
    """The second process: write three messages and leave."""
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        for i in range(3):
            await Message(author=f"pid {os.getpid()}", text=f"hello #{i}").save()


async def reader() -> None:
    """This process: open the table, start the writer, watch its records arrive."""
    async with local_discord("shared", time_scale=0.05) as local:
        env = {**os.environ, **local.environ(), "DISCOBASE_TIME_SCALE": "0.05"}
        # `db` was built at import, before this local Discord existed: point it here.
        db.api_url, db.time_scale = local.url, local.time_scale
        async with db.conn(local.token):
            print("records before:", Message.count())
            changes = Message.watch()  # told of every change from here on, no polling
            child = await asyncio.create_subprocess_exec(sys.executable, __file__, "write", env=env)
            async with asyncio.timeout(10):  # the gateway delivers within moments
                async for change in changes:
                    message = change.record
                    print(f"seen live ({change.kind}): {message.author} says {message.text!r}")
                    if Message.count() == 3:
                        break
            await child.wait()
            print("records after:", Message.count())


if __name__ == "__main__":
    asyncio.run(writer() if sys.argv[1:] == ["write"] else reader())
