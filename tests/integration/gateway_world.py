"""A local Discord for the gateway client's integration tests, behind one small interface.

The gateway server is always the emulator's real one (``discobase.emulator.gateway``) over
loopback sockets. Its REST side is the full ``Emulator`` when that package is present; while
it was being written concurrently, a minimal stand-in of the state and event bus the gateway
server reads (ARCHITECTURE.md, "The emulator") hosts the same server. Tests only see
:class:`World`: a bot, its guild, a channel, "write a record" and the fault injection.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from discobase.emulator.gateway import GatewayServer

GUILDS, GUILD_MESSAGES = 1 << 0, 1 << 9


class World:
    """A bot in one guild with one channel, on a local gateway."""

    gateway: Any  # the emulator's GatewayServer (fault injection, stats)
    gateway_url: str
    token: str
    bot_id: str
    guild_id: str
    channel_id: str
    time_scale: float

    def session_start_limit(self) -> dict[str, Any]:
        """Return the bot's budget as ``GET /gateway/bot`` reports it."""
        raise NotImplementedError

    async def write(self, content: str) -> str:
        """Post a message in the channel (a record being written); return its id."""
        raise NotImplementedError

    async def create_channel(self, name: str) -> str:
        """Create a text channel in the guild; return its id."""
        raise NotImplementedError


# --- the full emulator -------------------------------------------------------------------


class _EmulatorWorld(World):
    def __init__(self, emu: Any, http: aiohttp.ClientSession, time_scale: float) -> None:
        self.emu = emu
        self.http = http
        self.time_scale = time_scale
        self.gateway = emu.gateway
        bot = emu.create_bot("gateway-test")
        self.token = bot.token
        self.bot_id = str(bot.id)
        self.guild_id = str(emu.create_guild("gateway db", bots=[bot]))
        self.gateway_url = ""
        self.channel_id = ""

    async def _api(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bot {self.token}"}
        url = f"{self.emu.url}/api/v10{path}"
        async with self.http.request(method, url, json=body, headers=headers) as resp:
            assert resp.status < 300, (resp.status, await resp.text())
            return await resp.json()

    async def setup(self) -> None:
        info = await self._api("GET", "/gateway/bot")
        self.gateway_url = str(info["url"])
        self.channel_id = await self.create_channel("records")

    def session_start_limit(self) -> dict[str, Any]:
        bot = self.emu.state.bot_by_token(self.token)
        return dict(self.emu.state.session_start_limit(bot))

    async def write(self, content: str) -> str:
        body = await self._api(
            "POST", f"/channels/{self.channel_id}/messages", {"content": content}
        )
        return str(body["id"])

    async def create_channel(self, name: str) -> str:
        body = await self._api("POST", f"/guilds/{self.guild_id}/channels", {"name": name})
        return str(body["id"])


# --- the stand-in ------------------------------------------------------------------------


@dataclass
class _Bot:
    id: str
    token: str
    username: str
    application_id: str
    approved_intents: int = 0
    max_concurrency: int = 1
    identifies: int = 0


@dataclass
class _Guild:
    id: str
    name: str
    channels: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Event:
    name: str
    data: Any
    guild_id: str | None
    intent: int
    target_bot_id: str | None = None


class _Bus:
    def __init__(self) -> None:
        self.subscribers: list[Callable[[Any], None]] = []

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self.subscribers.append(callback)

    def publish(self, event: _Event) -> None:
        for callback in list(self.subscribers):
            callback(event)


class _State:
    def __init__(self) -> None:
        self.bots: dict[str, _Bot] = {}
        self.guilds: dict[str, _Guild] = {}
        self.members: dict[str, set[str]] = {}

    def bot_by_token(self, token: str) -> _Bot | None:
        return next((b for b in self.bots.values() if b.token == token), None)

    def guilds_for_bot(self, bot_id: str) -> list[_Guild]:
        return [g for g in self.guilds.values() if bot_id in self.members[g.id]]

    def guild_create_payload(self, guild_id: str, bot_id: str) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        return {
            "id": guild.id,
            "name": guild.name,
            "channels": [dict(c) for c in guild.channels],
            "roles": [],
            "members": [],
            "large": False,
            "member_count": 1,
        }

    def session_start_limit(self, bot: _Bot) -> dict[str, Any]:
        return {
            "total": 1000,
            "remaining": 1000 - bot.identifies,
            "reset_after": 86_400_000,
            "max_concurrency": bot.max_concurrency,
        }

    def record_identify(self, bot: _Bot) -> None:
        bot.identifies += 1


class _StandIn:
    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.state = _State()
        self.events = _Bus()
        self.url = ""
        self._ids = itertools.count(int(time.time() * 1000) << 22)

    def snowflake(self) -> str:
        return str(next(self._ids) + (1 << 22))


class _StandInWorld(World):
    def __init__(self, standin: _StandIn, gateway: GatewayServer) -> None:
        self.standin = standin
        self.gateway = gateway
        self.time_scale = standin.time_scale
        state = standin.state
        bot = _Bot(standin.snowflake(), "stand-in-token." + standin.snowflake(), "db", "1")
        state.bots[bot.id] = bot
        self.token, self.bot_id = bot.token, bot.id
        guild = _Guild(standin.snowflake(), "gateway db")
        state.guilds[guild.id] = guild
        state.members[guild.id] = {bot.id}
        self.guild_id = guild.id
        self.gateway_url = "ws" + standin.url[len("http") :] + "/gateway"
        self.channel_id = ""

    async def setup(self) -> None:
        self.channel_id = await self.create_channel("records")

    def session_start_limit(self) -> dict[str, Any]:
        return self.standin.state.session_start_limit(self.standin.state.bots[self.bot_id])

    async def write(self, content: str) -> str:
        message = {
            "id": self.standin.snowflake(),
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "content": content,
            "author": {"id": self.bot_id, "username": "db", "bot": True},
            "type": 0,
        }
        self.standin.events.publish(
            _Event("MESSAGE_CREATE", message, self.guild_id, GUILD_MESSAGES)
        )
        return str(message["id"])

    async def create_channel(self, name: str) -> str:
        channel = {"id": self.standin.snowflake(), "type": 0, "name": name}
        channel["guild_id"] = self.guild_id
        self.standin.state.guilds[self.guild_id].channels.append(channel)
        self.standin.events.publish(_Event("CHANNEL_CREATE", channel, self.guild_id, GUILDS))
        return str(channel["id"])


def _full_emulator() -> Any | None:
    try:
        from discobase.emulator import Emulator
    except ImportError:
        return None
    return Emulator


@asynccontextmanager
async def open_world(time_scale: float) -> AsyncIterator[World]:
    """Start a local Discord (the full emulator if present) with one bot, guild, channel."""
    emulator_cls = _full_emulator()
    if emulator_cls is not None:
        async with emulator_cls(time_scale=time_scale) as emu, aiohttp.ClientSession() as http:
            world = _EmulatorWorld(emu, http, time_scale)
            await world.setup()
            yield world
        return
    standin = _StandIn(time_scale)
    gateway = GatewayServer(standin)
    app = web.Application()
    gateway.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    standin.url = f"http://127.0.0.1:{port}"
    try:
        world2 = _StandInWorld(standin, gateway)
        await world2.setup()
        yield world2
    finally:
        await gateway.close()
        await runner.cleanup()
