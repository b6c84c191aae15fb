"""GuildNotFound says which guilds the bot is in, and how a local Discord makes one.

A new user's most likely mistakes: a typo in the name, or a program pointed at
`discobase emulator` (whose guild is `discobase` unless `--guild` names another) with the name
of the server it will use on Discord. Both used to get only the link that invites the bot on
Discord, which cannot help against a local Discord.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from discobase.errors import GuildNotFound
from tests.helpers import WAIT, make_db


async def _missing(db: Any, token: str) -> str:
    async with asyncio.timeout(WAIT):
        with pytest.raises(GuildNotFound) as caught:
            async with db.conn(token):
                pass
    return str(caught.value)


async def test_the_message_names_the_guilds_the_bot_is_in(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("library", bots=[bot])
    emulator.create_guild("discobase", bots=[bot])
    message = await _missing(make_db(emulator, "libary"), bot.token)
    assert "'libary'" in message
    assert "it is in 2 guilds: 'discobase', 'library'" in message
    assert bot.token not in message


async def test_on_a_local_discord_it_says_how_to_create_the_guild(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    message = await _missing(make_db(emulator, "My discord database"), bot.token)
    assert "it is in no guild" in message
    assert "discobase emulator --guild" in message and "create_guild(" in message
    assert "client_id=" in message  # the Discord advice stays
