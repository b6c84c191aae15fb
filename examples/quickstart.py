"""The README's quickstart: a table on a local Discord, with no token and no network.

Run it with ``.venv/bin/python examples/quickstart.py``.
"""

import asyncio

import discobase
from discobase.emulator import Emulator


async def main() -> None:
    async with Emulator() as discord:  # a local Discord on a free port
        bot = discord.create_bot("my-bot")
        discord.create_guild("My discord database", bots=[bot])

        db = discobase.Database("My discord database", api_url=discord.url)

        @db.table
        class User(discobase.Table):
            name: str
            password: str

        async with db.conn(bot.token):
            await User(name="Peter", password="foobar").save()
            await User(name="Paul", password="hunter2").save()

            for user in User.find(name="Peter"):
                print(user.name, user.password)
            print(User.count(), "users")


asyncio.run(main())
