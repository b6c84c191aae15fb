"""Third-party proof: an unmodified discord.py ``Client`` lives on the local gateway.

Layer: conformance tests. discord.py 2.x is pointed at the emulator through two public class
attributes and nothing else: ``discord.http.Route.BASE`` (its REST base URL) and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (the gateway URL a plain ``Client``
connects to; discord.py also falls back to it after op 9 ``d: false``). No private name is
patched. The client connects with its default compression (zlib-stream, or zstd-stream when a
zstd module is importable), reaches ``on_ready``, sees its guild and channels, receives the
events for the messages it sends, edits and deletes, and survives op 7 by resuming on READY's
``resume_gateway_url``: the server counts one IDENTIFY and one RESUME.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.helpers import eventually

discord = pytest.importorskip("discord")
yarl = pytest.importorskip("yarl")
from discord.gateway import DiscordWebSocket  # noqa: E402
from discord.http import Route  # noqa: E402

WAIT = 30.0


def _discord_py_default_compression() -> str:
    """What discord.py 2.x asks for: zstd-stream when it can import ``zstandard`` or
    ``compression.zstd`` (Python 3.14), zlib-stream otherwise (its rule, not the emulator's)."""
    for name in ("zstandard", "compression.zstd"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return "zstd-stream"
    return "zlib-stream"


@pytest.fixture
def pointed_at(emu: Any) -> Iterator[None]:
    """Point discord.py's REST and gateway URLs at the emulator, and restore them after."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    # discord.py beats from a thread every 450 ms here; on a loaded machine a late beat must
    # not turn into an unplanned resume that the counters below would then see.
    emu.gateway.config.heartbeat_timeout_factor = 10
    Route.BASE = emu.url + "/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + emu.url[len("http") :] + "/gateway")
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


class Recorder:
    """A discord.py client plus what it saw, as queues the test can wait on."""

    def __init__(self) -> None:
        # A short guild_ready_timeout only makes on_ready come sooner; late GUILD_CREATEs
        # still fill the cache, and the test waits for the guild itself.
        self.client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.5)
        self.resumed = asyncio.Event()
        self.events: asyncio.Queue[tuple[str, int, Any]] = asyncio.Queue()
        client = self.client

        @client.event
        async def on_resumed() -> None:
            self.resumed.set()

        @client.event
        async def on_message(message: Any) -> None:
            await self.events.put(("create", message.id, message.content))

        @client.event
        async def on_raw_message_edit(payload: Any) -> None:
            await self.events.put(("edit", payload.message_id, payload.data.get("content")))

        @client.event
        async def on_raw_message_delete(payload: Any) -> None:
            await self.events.put(("delete", payload.message_id, None))

    async def next_event(self) -> tuple[str, int, Any]:
        return await asyncio.wait_for(self.events.get(), WAIT)


@contextlib.asynccontextmanager
async def running(client: Any, token: str, guild_id: str) -> AsyncIterator[Any]:
    """Start ``client``, wait for ``on_ready`` and for its guild, yield the guild; close after."""
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    runner = asyncio.create_task(client.start(token))
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        await eventually(lambda: client.get_guild(int(guild_id)) is not None, WAIT)
        yield client.get_guild(int(guild_id))
    finally:
        await client.close()
        await asyncio.wait_for(runner, WAIT)


async def test_discord_py_client_connects_sees_events_and_resumes_after_op7(
    emu: Any, bot: Any, guild_id: str, channel_id: str, pointed_at: None
) -> None:
    recorder = Recorder()
    client = recorder.client
    async with running(client, bot.token, guild_id) as guild:
        assert client.user is not None and str(client.user.id) == bot.id
        channel = guild.get_channel(int(channel_id))
        assert channel is not None and channel in guild.text_channels
        assert guild.default_role.id == int(guild_id)

        message = await channel.send("hello from discord.py")
        assert await recorder.next_event() == ("create", message.id, "hello from discord.py")
        await message.edit(content="edited")
        assert await recorder.next_event() == ("edit", message.id, "edited")
        await message.delete()
        assert await recorder.next_event() == ("delete", message.id, None)

        assert await emu.gateway.send_reconnect(bot.id) == 1
        await asyncio.wait_for(recorder.resumed.wait(), WAIT)
        after = await channel.send("after the reconnect")
        assert await recorder.next_event() == ("create", after.id, "after the reconnect")

        stats = emu.stats()["gateway"]
        assert stats["identifies"] == 1
        assert stats["resumes"] == 1
        assert stats["resumes_by_url"]["resume"] == 1
        assert stats["client_close_codes"].get(4000) == 1  # discord.py closes resumably on op 7
        # Its default compression, which the emulator must serve (the dev venv has no zstd
        # module before Python 3.14, so zlib-stream there).
        assert stats["connects_by_compression"] == {_discord_py_default_compression(): 2}


async def test_discord_py_client_survives_a_dropped_socket(
    emu: Any, bot: Any, guild_id: str, channel_id: str, pointed_at: None
) -> None:
    recorder = Recorder()
    async with running(recorder.client, bot.token, guild_id) as guild:
        channel = guild.get_channel(int(channel_id))

        assert await emu.gateway.drop(bot.id) == 1  # no close frame
        await asyncio.wait_for(recorder.resumed.wait(), WAIT)
        message = await channel.send("after the drop")
        assert await recorder.next_event() == ("create", message.id, "after the drop")
        stats = emu.stats()["gateway"]
        assert stats["identifies"] == 1 and stats["resumes"] == 1


async def test_discord_py_sharded_client_uses_the_url_from_get_gateway_bot(
    emu: Any, bot: Any, guild_id: str, pointed_at: None
) -> None:
    # AutoShardedClient asks GET /gateway/bot for the URL and shard count, so no gateway URL
    # is configured here beyond the REST base: the emulator's answer must be enough.
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("wss://gateway.invalid/")
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.5)
    async with running(client, bot.token, guild_id):
        assert client.shard_count == 1
        stats = emu.stats()["gateway"]
        assert stats["identifies"] == 1 and stats["connects_by_url"]["base"] == 1


@pytest.mark.parametrize("presences", [False, True], ids=["op8-chunk", "presences"])
async def test_discord_py_with_the_members_intent_gets_every_member(
    emu: Any, bot: Any, guild_id: str, pointed_at: None, presences: bool
) -> None:
    # With the members intent but not presences, discord.py requests each guild's members
    # (op 8) before on_ready: GUILD_CREATE lists only the bot and the owner, so the third
    # member can only come from the GUILD_MEMBERS_CHUNK. With presences, GUILD_CREATE itself
    # lists every member of a small guild, and discord.py asks for nothing.
    other = emu.create_bot("another-member")
    emu.add_bot_to_guild(guild_id, other)
    intents = discord.Intents.all()
    intents.presences = presences
    client = discord.Client(intents=intents, guild_ready_timeout=0.5)
    async with running(client, bot.token, guild_id) as guild:
        await eventually(lambda: guild.chunked, WAIT)
        chunks = emu.stats()["gateway"]["dispatches_by_name"].get("GUILD_MEMBERS_CHUNK", 0)
        assert chunks == (0 if presences else 1)
        assert guild.get_member(int(bot.id)) is not None
        assert guild.get_member(int(other.id)) is not None
