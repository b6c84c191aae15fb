"""Conformance: the send limit, identify limits, missed and requested heartbeats.

Layer: conformance tests over real loopback sockets, driven by the raw websocket client.
Windows that a loaded machine could stretch are widened through ``emu.gateway.config`` so that
no test depends on how fast frames go out; nothing asserts a duration. Facts:
discord-api-facts.md §4.3, §4.4, §4.9.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from discobase.emulator.gateway import CloseCode, Opcode
from tests.conformance.test_gateway_raw_client import (
    RawGateway,
    ready_gateway,
)
from tests.helpers import eventually


async def test_the_121st_payload_in_a_window_closes_with_4008(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    emu.gateway.config.send_window = 100_000  # the whole test fits in one window
    emu.gateway.config.heartbeat_timeout_factor = 1_000
    gw = await RawGateway.connect(session, emu.url)
    for _ in range(120):
        await gw.heartbeat()
    for _ in range(120):
        assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK
    await gw.heartbeat()
    assert await gw.expect_close() == CloseCode.RATE_LIMITED


async def test_identifies_beyond_max_concurrency_per_window_get_invalid_session(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    emu.gateway.config.identify_window = 100_000
    async with ready_gateway(session, emu.url, bot.token):
        second = await RawGateway.connect(session, emu.url)
        second.start_heartbeats()
        await second.identify(bot.token)
        refused = await second.recv_op(Opcode.INVALID_SESSION)
        assert refused["d"] is False
        await second.close()
    stats = emu.stats()["gateway"]
    assert stats["identifies"] == 1 and stats["identify_rate_limited"] == 1


async def test_identifies_are_spent_from_the_daily_budget_get_gateway_bot_reports(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    headers = {"Authorization": f"Bot {bot.token}"}

    async def remaining() -> int:
        async with session.get(emu.url + "/api/v10/gateway/bot", headers=headers) as reply:
            body = await reply.json()
            return int(body["session_start_limit"]["remaining"])

    before = await remaining()
    async with ready_gateway(session, emu.url, bot.token):
        pass
    assert await remaining() == before - 1


async def test_a_client_that_stops_heartbeating_is_disconnected(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    gw = await RawGateway.connect(session, emu.url)
    await gw.heartbeat()
    assert await gw.expect_close() == emu.gateway.config.missed_heartbeat_close_code
    assert emu.stats()["gateway"]["missed_heartbeats"] == 1


async def test_a_requested_heartbeat_must_be_answered(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    emu.gateway.config.heartbeat_timeout_factor = 1_000  # only the request can time out
    gw = await RawGateway.connect(session, emu.url)
    await gw.identify(bot.token)
    await gw.recv_dispatch("GUILD_CREATE")

    assert await emu.gateway.request_heartbeat(bot.id) == 1
    request = await gw.recv_op(Opcode.HEARTBEAT)
    assert request["d"] == gw.seq
    await gw.heartbeat()
    assert (await gw.recv_op(Opcode.HEARTBEAT_ACK))["op"] == Opcode.HEARTBEAT_ACK

    await emu.gateway.request_heartbeat(bot.id)
    await gw.recv_op(Opcode.HEARTBEAT)
    assert await gw.expect_close() == emu.gateway.config.missed_heartbeat_close_code


async def test_payloads_other_than_heartbeats_count_toward_the_send_limit(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    emu.gateway.config.send_window = 100_000
    async with ready_gateway(session, emu.url, bot.token) as (gw, _):
        presence = {"since": None, "activities": [], "status": "online", "afk": False}
        for _ in range(130):
            await gw.send(Opcode.PRESENCE_UPDATE, presence)
        assert await gw.expect_close() == CloseCode.RATE_LIMITED
    await eventually(lambda: emu.stats()["gateway"]["close_codes"].get(4008) == 1)


async def test_an_exhausted_daily_budget_closes_with_4004(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    for _ in range(emu.state.session_start_limit(bot)["remaining"]):
        emu.state.record_identify(bot)
    assert emu.state.session_start_limit(bot)["remaining"] == 0
    gw = await RawGateway.connect(session, emu.url)
    await gw.identify(bot.token)
    assert await gw.expect_close() == CloseCode.AUTHENTICATION_FAILED
    assert emu.stats()["gateway"]["identifies"] == 0
