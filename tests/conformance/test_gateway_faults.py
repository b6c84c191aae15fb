"""Conformance: fault injection through the admin API, as a test in another process would.

Layer: conformance tests over real loopback sockets: plain HTTP calls to
``/_emulator/gateway/...`` and the raw websocket client. Where "nothing happened" must be
shown (no ACK), a later frame the server is known to send proves the order instead of a wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from discobase.emulator.gateway import Opcode
from tests.conformance.test_gateway_raw_client import RawGateway
from tests.helpers import eventually

ADMIN = "/_emulator/gateway"


async def _admin(session: aiohttp.ClientSession, emu: Any, name: str, **body: Any) -> Any:
    async with session.post(f"{emu.url}{ADMIN}/{name}", json=body) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def _identified(session: aiohttp.ClientSession, emu: Any, bot: Any) -> RawGateway:
    # No background heartbeats: each test sends its own, so every ACK is accounted for.
    emu.gateway.config.heartbeat_timeout_factor = 1_000
    gw = await RawGateway.connect(session, emu.url)
    await gw.identify(bot.token)
    await gw.recv_dispatch("GUILD_CREATE")
    return gw


async def test_stop_acks_makes_a_zombie_until_resume_acks(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await _identified(session, emu, bot)
    await _admin(session, emu, "stop_acks", bot_id=bot.id)
    await gw.heartbeat()
    assert await _admin(session, emu, "reconnect", bot_id=bot.id) == {"affected": 1}
    assert (await gw.recv())["op"] == Opcode.RECONNECT  # no ACK came before it
    await _admin(session, emu, "resume_acks")
    await gw.heartbeat()
    assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK
    await gw.close()


async def test_invalid_session_and_requested_heartbeat_routes(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await _identified(session, emu, bot)
    await _admin(session, emu, "invalid_session", resumable=True, bot_id=bot.id)
    assert await gw.recv() == {"op": 9, "d": True, "s": None, "t": None}
    await _admin(session, emu, "request_heartbeat")
    request = await gw.recv()
    assert request["op"] == Opcode.HEARTBEAT and request["d"] == gw.seq
    await gw.close()


async def test_drop_route_closes_with_the_code_asked(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await _identified(session, emu, bot)
    assert await _admin(session, emu, "drop", close_code=4321) == {"affected": 1}
    assert await gw.expect_close() == 4321
    async with session.get(f"{emu.url}{ADMIN}/stats") as reply:
        stats = await reply.json()
    assert stats["close_codes"] == {"4321": 1}
    assert stats["identifies"] == 1


async def test_a_connection_already_closing_is_not_dropped_again(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    # A watchdog close racing an injected one: only the first counts, and only it is seen.
    gw = await _identified(session, emu, bot)
    first, second = await asyncio.gather(
        emu.gateway.drop(close_code=4321), emu.gateway.drop(close_code=4000)
    )
    assert (first, second) == (1, 0)
    assert await gw.expect_close() == 4321
    assert emu.stats()["gateway"]["close_codes"] == {4321: 1}


async def test_drop_route_without_a_code_cuts_the_socket(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await _identified(session, emu, bot)
    await _admin(session, emu, "drop", bot_id=bot.id)
    assert await gw.expect_close() in (None, 1006)
    assert emu.stats()["gateway"]["drops"] == 1
    assert emu.stats()["gateway"]["close_codes"] == {}


async def test_faults_aimed_at_one_bot_spare_the_others(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    other = emu.create_bot("other")
    emu.create_guild("Other", bots=[other])
    gw = await _identified(session, emu, bot)
    bystander = await _identified(session, emu, other)
    assert await _admin(session, emu, "reconnect", bot_id=other.id) == {"affected": 1}
    assert (await bystander.recv())["op"] == Opcode.RECONNECT
    await gw.heartbeat()
    assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK
    await gw.close()
    await bystander.close()


async def test_delay_dispatches_route_sets_the_delay(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    await _admin(session, emu, "delay_dispatches", seconds=2.5)
    assert emu.gateway.dispatch_delay == 2.5
    await _admin(session, emu, "delay_dispatches", seconds=0)
    assert emu.gateway.dispatch_delay == 0


async def test_history_records_each_connection_for_client_tests(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await _identified(session, emu, bot)
    await gw.heartbeat()
    await gw.recv_op(Opcode.HEARTBEAT_ACK)
    await gw.close(4000)
    again = await RawGateway.connect(session, emu.url, "/gateway/resume", compress=None)
    await again.resume(bot.token, _session_id(gw), gw.seq)
    await again.recv_dispatch("RESUMED")
    await again.close(1000)

    async with session.get(f"{emu.url}{ADMIN}/history", params={"bot_id": bot.id}) as reply:
        first, second = await reply.json()
    assert first["url"] == "base" and first["started"] == "identify"
    assert first["compression"] == "zlib-stream"
    assert first["heartbeat_seqs"] == [gw.seq] and len(first["heartbeats"]) == 1
    assert len(first["frames"]) == 2 and first["ops"] == [2, 1]  # IDENTIFY, heartbeat
    assert 0 <= first["ready_at"] <= first["heartbeats"][0]
    assert first["client_close_code"] == 4000 and not first["open"]
    assert second["url"] == "resume" and second["started"] == "resume"
    assert second["compression"] == "none" and second["client_close_code"] == 1000
    assert emu.gateway.history()[0].max_frames_in(60.0) == 2


def _session_id(gw: RawGateway) -> str:
    ready = next(f for f in gw.frames if f.get("t") == "READY")
    return str(ready["d"]["session_id"])


async def test_refused_connects_answer_503_on_the_url_asked(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    await _admin(session, emu, "refuse_connects", count=1, url="resume")
    base = await RawGateway.connect(session, emu.url, "/gateway")  # not refused
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await RawGateway.connect(session, emu.url, "/gateway/resume")
    assert refused.value.status == 503
    again = await RawGateway.connect(session, emu.url, "/gateway/resume")  # only once
    await base.close()
    await again.close()
    stats = emu.stats()["gateway"]
    assert stats["refused_connects"] == 1
    assert stats["connects_by_url"] == {"base": 1, "resume": 1}


async def test_reconnect_can_come_before_hello(emu: Any, session: aiohttp.ClientSession) -> None:
    emu.gateway.reconnect_before_hello()
    gw = await RawGateway.connect(session, emu.url, read_hello=False)
    assert (await gw.recv())["op"] == Opcode.RECONNECT
    assert (await gw.recv())["op"] == Opcode.HELLO
    await gw.close()
    later = await RawGateway.connect(session, emu.url)  # HELLO first again
    await later.close()


async def test_reset_zeroes_counters_but_keeps_live_connections(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    other = emu.create_bot("gone")
    emu.create_guild("Gone", bots=[other])
    gw = await _identified(session, emu, bot)
    gone = await _identified(session, emu, other)
    await gone.close(4000)  # its session is detached (resumable) now
    await eventually(lambda: emu.stats()["gateway"]["open"] == 1)
    emu.gateway.stop_acks(bot.id)
    emu.reset()
    stats = emu.stats()["gateway"]
    assert stats["identifies"] == 0 and stats["open"] == 1 and stats["sessions"] == 1
    await gw.heartbeat()
    assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK  # faults are forgotten too
    await gw.close()
