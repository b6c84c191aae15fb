"""A small to-do list kept in Discord, by default in a local Discord.

Usage::

    .venv/bin/python examples/todo.py add "buy milk"
    .venv/bin/python examples/todo.py done 1
    .venv/bin/python examples/todo.py list

With ``DISCOBASE_TOKEN`` set (and ``DISCOBASE_API_URL`` for a local Discord started with
``discobase emulator --guild todo``), it uses that server and the to-do list persists across
runs. Without a token, it starts a throw-away local Discord and shows a short session.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import Annotated

import pydantic

import discobase

db = discobase.Database(os.environ.get("DISCOBASE_DATABASE", "todo"))


@db.table
class Task(discobase.Table):
    number: Annotated[int, discobase.Index(unique=True)]
    text: str
    done: bool = False
    created: datetime = pydantic.Field(default_factory=lambda: datetime.now(UTC))


async def run(command: list[str]) -> None:
    """Run one command (`add TEXT`, `done NUMBER` or `list`) on the connected database."""
    match command:
        case ["add", text]:
            number = max((task.number for task in await Task.find()), default=0) + 1
            await Task(number=number, text=text).save()
            print(f"added #{number}: {text}")
        case ["done", number]:
            task = await Task.find_unique(number=int(number))
            task.done = True
            await task.update()
            print(f"done #{number}")
        case ["list"] | []:
            for task in await Task.find(order_by="number"):
                print(f"[{'x' if task.done else ' '}] #{task.number} {task.text}")
        case _:
            print(__doc__)


async def main(argv: list[str]) -> None:
    """Use the configured server, or show a session on a throw-away local Discord."""
    token = os.environ.get("DISCOBASE_TOKEN")
    if token:
        async with db.conn(token):
            await run(argv)
        return
    from discobase.emulator import Emulator

    async with Emulator() as discord:
        bot = discord.create_bot("todo-bot")
        discord.create_guild("todo", bots=[bot])
        db.api_url = discord.url
        async with db.conn(bot.token):
            for command in (["add", "write docs"], ["add", "run make demo"], ["done", "1"]):
                await run(command)
            await run(["list"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
