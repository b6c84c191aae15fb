"""GatewayClient against the local gateway with faults injected while records are written.

Real loopback sockets, the emulator's gateway server, ``zlib-stream`` on every connection.
Shows: the connection always returns, resumes where it can (identifies counted server-side),
never retries a fatal close, never sends more than the gateway allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from discobase.gateway import (
    DispatchEvent,
    GatewayClient,
    GatewayClosed,
    GatewayEvent,
    SessionEvent,
)
from tests.helpers import eventually
from tests.integration.gateway_world import World, open_world

# Real seconds per Discord second: heartbeats every 0.9 s, identifies 0.1 s apart.
SCALE = 0.02
WAIT = 30.0  # generous: the suite must pass on a loaded 2-core machine


@dataclass
class Harness:
    world: World
    client: GatewayClient
    task: asyncio.Task[None]
    events: list[GatewayEvent] = field(default_factory=list)

    def sessions(self) -> list[bool]:
        return [e.resumed for e in self.events if isinstance(e, SessionEvent)]

    def message_ids(self) -> set[str]:
        return {
            e.data["id"]
            for e in self.events
            if isinstance(e, DispatchEvent) and e.name == "MESSAGE_CREATE"
        }

    def gw(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.world.gateway.stats()
        return stats

    async def write_many(self, n: int, prefix: str) -> set[str]:
        ids = set()
        for i in range(n):
            ids.add(await self.world.write(f"{prefix}-{i}"))
            await asyncio.sleep(0.005)
        return ids

    async def delivered(self, ids: set[str]) -> None:
        await eventually(lambda: ids <= self.message_ids())


@asynccontextmanager
async def connected(**kwargs: Any) -> AsyncIterator[Harness]:
    async with open_world(SCALE) as world:
        client = GatewayClient(
            world.token,
            url=world.gateway_url,
            session_start_limit=world.session_start_limit(),
            time_scale=SCALE,
            **kwargs,
        )
        events: list[GatewayEvent] = []

        async def listen(event: GatewayEvent) -> None:
            events.append(event)

        client.add_listener(listen)
        task = asyncio.create_task(client.run())
        harness = Harness(world, client, task, events)
        try:
            async with asyncio.timeout(WAIT):
                await client.wait_ready()
            yield harness
        finally:
            await client.close()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_connects_learns_its_guild_and_receives_records() -> None:
    async with connected() as h:
        assert h.client.user is not None and h.client.user["id"] == h.world.bot_id
        guild = h.client.guilds[h.world.guild_id]
        assert guild.name == "gateway db" and h.world.channel_id in guild.channels
        new = await h.world.create_channel("later")
        await eventually(lambda: new in h.client.guilds[h.world.guild_id].channels)
        ids = await h.write_many(5, "rec")
        await h.delivered(ids)
        assert h.sessions() == [False]
        assert h.gw()["identifies"] == 1
    assert h.task.done() and h.task.exception() is None
    assert h.gw()["client_close_codes"].get(1000) == 1


async def test_op7_resumes_on_the_resume_url_and_replays() -> None:
    async with connected() as h:
        before = await h.write_many(3, "a")
        await h.world.gateway.send_reconnect()
        during = await h.write_many(5, "b")
        await h.delivered(before | during)
        await eventually(lambda: h.sessions() == [False, True])
        gw = h.gw()
        assert gw["identifies"] == 1 and gw["resumes"] == 1
        assert gw["connects_by_url"].get("resume", 0) == 1


@pytest.mark.parametrize("close_code", [None, 4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001])
async def test_resumable_drops_resume(close_code: int | None) -> None:
    async with connected() as h:
        await h.world.gateway.drop(close_code=close_code)
        during = await h.write_many(3, "d")
        await eventually(lambda: len(h.sessions()) == 2)
        gw = h.gw()
        if close_code in (1000, 1001):
            # The server ends the session on these; the client tries RESUME first (costs no
            # session start) and identifies after op 9 false. Records written meanwhile are
            # not replayed: SessionEvent(resumed=False) tells storage to catch up over REST.
            assert h.sessions() == [False, False] and gw["identifies"] == 2
            assert gw["resume_failures"] == 1
            after = await h.write_many(2, "e")
            await h.delivered(after)
        else:
            await h.delivered(during)
            assert h.sessions() == [False, True]
            assert gw["identifies"] == 1 and gw["resumes"] == 1


@pytest.mark.parametrize("close_code", [4007, 4009])
async def test_new_session_codes_identify_again(close_code: int) -> None:
    async with connected() as h:
        await h.world.gateway.drop(close_code=close_code)
        await eventually(lambda: h.sessions() == [False, False])
        gw = h.gw()
        assert gw["identifies"] == 2 and gw["resumes"] == 0
        assert gw["connects_by_url"].get("base", 0) == 2
        ids = await h.write_many(2, "n")
        await h.delivered(ids)


@pytest.mark.slow
@pytest.mark.parametrize("close_code", [4004, 4010, 4011, 4012, 4013, 4014])
async def test_fatal_close_codes_raise_and_never_reconnect(close_code: int) -> None:
    async with connected() as h:
        connections = h.gw()["connections"]
        await h.world.gateway.drop(close_code=close_code)
        with pytest.raises(GatewayClosed) as info:
            async with asyncio.timeout(WAIT):
                await asyncio.shield(h.task)
        assert info.value.code == close_code and not info.value.may_reconnect
        with pytest.raises(GatewayClosed):
            await h.client.wait_ready()
        # A minute of Discord time later, still nobody knocked again.
        await asyncio.sleep(60 * SCALE)
        assert h.gw()["connections"] == connections


@pytest.mark.slow
async def test_a_zombie_connection_is_closed_with_4000_and_resumed() -> None:
    async with connected() as h:
        h.world.gateway.stop_acks()
        await eventually(lambda: h.sessions() == [False, True])
        gw = h.gw()
        assert gw["client_close_codes"].get(4000, 0) >= 1
        assert gw["identifies"] == 1 and gw["resumes"] == 1
        # The new connection starts with a fresh ACK flag: five intervals, no re-zombie.
        connections = gw["connections"]
        await asyncio.sleep(5 * 45 * SCALE)
        assert h.gw()["connections"] == connections and h.sessions() == [False, True]


async def test_invalid_session_resumable_resumes() -> None:
    async with connected() as h:
        await h.world.gateway.send_invalid_session(True)
        await eventually(lambda: h.sessions() == [False, True])
        assert h.gw()["identifies"] == 1


async def test_invalid_session_not_resumable_identifies_on_the_base_url() -> None:
    async with connected() as h:
        await h.world.gateway.send_invalid_session(False)
        await eventually(lambda: h.sessions() == [False, False])
        gw = h.gw()
        assert gw["identifies"] == 2
        assert gw["identifies_by_url"].get("base", 0) == 2


@pytest.mark.slow
async def test_a_requested_heartbeat_is_answered() -> None:
    async with connected() as h:
        beats = h.gw()["heartbeats"]
        await h.world.gateway.request_heartbeat()
        await eventually(lambda: h.gw()["heartbeats"] > beats)
        await asyncio.sleep(2 * 45 * SCALE)
        assert h.gw()["connections"] == 1 and h.gw()["missed_heartbeats"] == 0


@pytest.mark.slow
async def test_a_command_flood_never_trips_the_send_limit() -> None:
    async with connected() as h:
        for i in range(300):
            h.client.send_command(
                3, {"since": None, "activities": [], "status": "online", "afk": i < 0}
            )
        await h.world.gateway.request_heartbeat()
        await eventually(lambda: h.client.stats.frames_sent >= 300, timeout=WAIT + 60 * SCALE * 3)
        gw = h.gw()
        assert 4008 not in gw["close_codes"] and gw["connections"] == 1
        assert gw["missed_heartbeats"] == 0


async def test_uncompressed_connections_work_too() -> None:
    async with connected(compress=False) as h:
        await h.world.gateway.send_reconnect()
        ids = await h.write_many(3, "u")
        await h.delivered(ids)
        await eventually(lambda: h.sessions() == [False, True])
        assert h.gw()["connects_by_compression"] == {"none": 2}


@pytest.mark.slow
async def test_faults_while_records_are_written_lose_nothing() -> None:
    async with connected() as h:
        gateway = h.world.gateway
        written: set[str] = set()
        faults: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("op 7", gateway.send_reconnect),
            ("drop without a close frame", lambda: gateway.drop()),
            ("close 4000", lambda: gateway.drop(close_code=4000)),
            ("op 9 true", lambda: gateway.send_invalid_session(True)),
            ("op 1", gateway.request_heartbeat),
            ("close 4008", lambda: gateway.drop(close_code=4008)),
        ]
        for round_, (name, fault) in enumerate(faults * 2):
            written |= await h.write_many(3, f"r{round_}")
            sessions = len(h.sessions())
            await fault()
            written |= await h.write_many(3, f"s{round_}")
            if name != "op 1":
                await eventually(lambda n=sessions: len(h.sessions()) > n)  # type: ignore[misc]
        await h.delivered(written)
        gw = h.gw()
        # Every reconnect resumed: one session start for the whole run, compression intact.
        assert gw["identifies"] == 1 and all(h.sessions()[1:]) and len(h.sessions()) == 11
        assert gw["close_codes"].get(4008, 0) == 2  # only the two injected ones
        assert gw["missed_heartbeats"] == 0
        assert h.client.stats.connects == gw["connections"] == 11
        assert gw["connects_by_compression"] == {"zlib-stream": 11}
