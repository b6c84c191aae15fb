"""Third-party proof, second witness: an unmodified hikari ``GatewayBot`` lives on the gateway.

Layer: conformance tests. hikari 2.7 is pointed at the emulator through public constructor
arguments only: ``rest_url`` (its REST base). The gateway URL is not configured at all: hikari
takes it from ``GET /gateway/bot``, as it does on Discord. No hikari name is patched. The bot
connects with hikari's default compression (zstd-stream where ``compression.zstd`` or
``backports.zstd`` is importable, zlib-stream otherwise), reaches READY, caches its guild and
channels, receives the events for the messages it sends, edits and deletes, and survives both
op 7 and a dropped socket by resuming on READY's ``resume_gateway_url``: the server counts one
IDENTIFY and one RESUME.

Time scale: 0.1, not the suite's 0.01. hikari's reconnect backoff is its own, unscaled clock:
a reconnect within 30 s of the last connect first sleeps 1 to 2 real seconds (then 1.85 to
2.85). At 0.01 a detached session lives 180 Discord seconds = 1.8 real seconds, so the session
could expire while hikari backs off, and hikari would rightly IDENTIFY anew. At 0.1 the session
lives 18 s. hikari also calls a connection a zombie when one heartbeat interval passes without
an ACK; 4.5 s (0.1) rather than 450 ms (0.01) keeps a loaded machine from producing an
unplanned reconnect that the counters below would see.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

hikari = pytest.importorskip("hikari")

WAIT = 30.0
# See the module docstring: hikari's unscaled backoff must fit in the scaled session lifetime.
HIKARI_TIME_SCALE = 0.1


def _hikari_default_compression() -> str:
    """The transport compression hikari 2.7 asks for when none is configured (its rule)."""
    if sys.version_info >= (3, 14):
        return "zstd-stream"
    try:
        importlib.import_module("backports.zstd")
    except ImportError:
        return "zlib-stream"
    return "zstd-stream"


@pytest.fixture
async def emu() -> AsyncIterator[Any]:
    """A fresh local Discord at the time scale hikari's own timers need (module docstring)."""
    from discobase.emulator import Emulator

    async with Emulator(time_scale=HIKARI_TIME_SCALE) as emulator:
        yield emulator


class Recorder:
    """A hikari ``GatewayBot`` plus what it saw, as events and queues the test can wait on."""

    def __init__(self, emu: Any, token: str, guild_id: str) -> None:
        self.bot = hikari.GatewayBot(
            token,
            rest_url=emu.url + "/api/v10",
            # Quiet: no ASCII-art banner on stdout, no logging setup of hikari's own (pytest
            # captures its loggers), no "run with -O" advice.
            banner=None,
            logs=None,
            suppress_optimization_warning=True,
        )
        self.guild_id = int(guild_id)
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.guild_available = asyncio.Event()
        self.resumed = asyncio.Event()
        self.events: asyncio.Queue[tuple[str, int, Any]] = asyncio.Queue()
        bot = self.bot

        @bot.listen(hikari.ShardReadyEvent)
        async def on_ready(event: Any) -> None:
            if not self.ready.done():
                self.ready.set_result(event)

        @bot.listen(hikari.GuildAvailableEvent)
        async def on_guild(event: Any) -> None:
            if event.guild_id == self.guild_id:
                self.guild_available.set()

        @bot.listen(hikari.ShardResumedEvent)
        async def on_resumed(event: Any) -> None:
            self.resumed.set()

        @bot.listen(hikari.GuildMessageCreateEvent)
        async def on_create(event: Any) -> None:
            await self.events.put(("create", event.message_id, event.content))

        @bot.listen(hikari.GuildMessageUpdateEvent)
        async def on_update(event: Any) -> None:
            await self.events.put(("update", event.message_id, event.content))

        @bot.listen(hikari.GuildMessageDeleteEvent)
        async def on_delete(event: Any) -> None:
            old = event.old_message.content if event.old_message is not None else None
            await self.events.put(("delete", event.message_id, old))

    async def start(self) -> None:
        # check_for_updates would ask PyPI for hikari's newest version: not a test's business.
        await asyncio.wait_for(self.bot.start(check_for_updates=False), WAIT)
        await asyncio.wait_for(self.guild_available.wait(), WAIT)

    async def next_event(self) -> tuple[str, int, Any]:
        return await asyncio.wait_for(self.events.get(), WAIT)


def resumed_once(emu: Any) -> dict[str, Any]:
    """Assert one session, resumed once on the resume URL and never refused; return the stats."""
    stats: dict[str, Any] = emu.stats()["gateway"]
    assert stats["identifies"] == 1
    assert stats["resumes"] == 1
    assert stats["resumes_by_url"]["resume"] == 1
    assert stats["resume_failures"] == 0
    return stats


@pytest.fixture
async def recorder(emu: Any, bot: Any, guild_id: str, channel_id: str) -> AsyncIterator[Recorder]:
    """A started hikari bot, started after ``channel_id`` exists; closed after the test."""
    recorder = Recorder(emu, bot.token, guild_id)
    try:
        await recorder.start()
        yield recorder
    finally:
        await asyncio.wait_for(recorder.bot.close(), WAIT)


@pytest.mark.slow
async def test_hikari_connects_sees_guild_and_message_events_and_resumes_after_op7(
    emu: Any, bot: Any, guild_id: str, channel_id: str, recorder: Recorder
) -> None:
    hk = recorder.bot
    ready = await asyncio.wait_for(recorder.ready, WAIT)
    assert str(ready.my_user.id) == bot.id
    assert int(guild_id) in ready.unavailable_guilds
    assert ready.resume_gateway_url.endswith("/gateway/resume")

    guild = hk.cache.get_guild(int(guild_id))
    assert guild is not None and guild.name == "Conformance"
    channels = hk.cache.get_guild_channels_view_for_guild(int(guild_id))
    assert {channel.name for channel in channels.values()} == {"general", "records"}
    channel = channels[int(channel_id)]
    assert channel.type == hikari.ChannelType.GUILD_TEXT
    assert hk.cache.get_role(int(guild_id)) is not None  # @everyone, id = guild id
    assert hk.cache.get_member(int(guild_id), int(bot.id)) is not None

    message = await hk.rest.create_message(channel, "hello from hikari")
    assert await recorder.next_event() == ("create", message.id, "hello from hikari")
    await hk.rest.edit_message(channel, message, "edited")
    assert await recorder.next_event() == ("update", message.id, "edited")
    await hk.rest.delete_message(channel, message)
    # hikari's message cache followed the update: the deleted message it hands over is edited.
    assert await recorder.next_event() == ("delete", message.id, "edited")

    assert await emu.gateway.send_reconnect(bot.id) == 1
    await asyncio.wait_for(recorder.resumed.wait(), WAIT)
    after = await hk.rest.create_message(channel, "after the reconnect")
    assert await recorder.next_event() == ("create", after.id, "after the reconnect")

    stats = resumed_once(emu)
    # hikari closes with 3000 on op 7, a code that keeps the session resumable.
    assert stats["client_close_codes"] == {3000: 1}
    assert stats["connects_by_compression"] == {_hikari_default_compression(): 2}
    assert stats["connects_by_url"] == {"base": 1, "resume": 1}


@pytest.mark.slow
async def test_hikari_survives_a_dropped_socket_by_resuming(
    emu: Any, bot: Any, guild_id: str, channel_id: str, recorder: Recorder
) -> None:
    hk = recorder.bot
    assert await emu.gateway.drop(bot.id) == 1  # no close frame
    await asyncio.wait_for(recorder.resumed.wait(), WAIT)
    message = await hk.rest.create_message(int(channel_id), "after the drop")
    assert await recorder.next_event() == ("create", message.id, "after the drop")

    stats = resumed_once(emu)
    assert stats["drops"] == 1
