"""A local Discord for the gateway client's integration tests, behind one small interface.

The full emulator (REST and its real gateway server) over loopback sockets. Records are
written through discobase's own HTTP client, which keeps them under the emulator's rate limits.
Tests only see :class:`World`: a bot, its guild, a channel, "write a record" and the gateway
server's fault injection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from discobase.emulator import Emulator
from discobase.http import HTTPClient


class World:
    """A bot in one guild with one channel, on a local Discord."""

    def __init__(self, emu: Any, http: HTTPClient, bot: Any, guild_id: str, scale: float) -> None:
        self.emu = emu
        self.http = http
        self.gateway: Any = emu.gateway  # the emulator's GatewayServer: faults and stats
        self.token: str = bot.token
        self.bot_id = str(bot.id)
        self.guild_id = guild_id
        self.time_scale = scale
        self.gateway_url = ""
        self.channel_id = ""
        self._gateway_bot: dict[str, Any] = {}

    async def setup(self) -> None:
        self._gateway_bot = dict(await self.http.fetch_gateway_bot())
        self.gateway_url = str(self._gateway_bot["url"])
        self.channel_id = await self.create_channel("records")

    def session_start_limit(self) -> dict[str, Any]:
        """Return the bot's budget as ``GET /gateway/bot`` reported it."""
        return dict(self._gateway_bot["session_start_limit"])

    async def write(self, content: str) -> str:
        """Post a message in the channel (a record being written); return its id."""
        body = await self.http.create_message(self.channel_id, content=content)
        return str(body["id"])

    async def create_channel(self, name: str) -> str:
        """Create a text channel in the guild; return its id."""
        body = await self.http.create_guild_channel(self.guild_id, name=name)
        return str(body["id"])


@asynccontextmanager
async def open_world(time_scale: float) -> AsyncIterator[World]:
    """Start a local Discord with one bot in one guild with one channel."""
    async with Emulator(time_scale=time_scale) as emu:
        bot = emu.create_bot("gateway-test")
        guild_id = str(emu.create_guild("gateway db", bots=[bot]))
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=time_scale) as http:
            world = World(emu, http, bot, guild_id, time_scale)
            await world.setup()
            yield world
