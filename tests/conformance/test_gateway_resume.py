"""Conformance: sequence numbers, RESUME and replay, session end and expiry, op 7 and op 9.

Layer: conformance tests over real loopback sockets, driven by the raw websocket client.
Facts: discord-api-facts.md §4.8; design scenarios 20 and 22 (the server side of them).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from discobase.emulator.gateway import Opcode
from tests.conformance.conftest import call
from tests.conformance.openapi import CheckedSession
from tests.conformance.test_gateway_raw_client import RawGateway
from tests.helpers import eventually


async def _identified(session: aiohttp.ClientSession, emu: Any, bot: Any) -> tuple[RawGateway, str]:
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(bot.token)
    ready = await gw.recv_dispatch("READY")
    await gw.recv_dispatch("GUILD_CREATE")
    return gw, ready["d"]["session_id"]


async def _post(api: CheckedSession, channel_id: str, content: str) -> str:
    reply = await call(api, "POST", f"/channels/{channel_id}/messages", json={"content": content})
    assert reply.status == 200, reply.body
    return str(reply.json()["id"])


async def _resume(
    session: aiohttp.ClientSession, emu: Any, bot: Any, session_id: str, seq: int | None
) -> RawGateway:
    gw = await RawGateway.connect(session, emu.url, "/gateway/resume")
    gw.start_heartbeats()
    await gw.resume(bot.token, session_id, seq)
    return gw


async def test_resume_replays_every_missed_dispatch_in_order_then_resumed(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    first = await _post(api, channel_id, "seen")
    seen = await gw.recv_dispatch("MESSAGE_CREATE")
    assert seen["d"]["id"] == first and seen["s"] == 3
    last_seq = gw.seq

    assert await emu.gateway.drop(bot.id) == 1  # no close frame
    assert await gw.expect_close() in (None, 1006)
    missed = [await _post(api, channel_id, f"missed {i}") for i in range(3)]

    again = await _resume(session, emu, bot, session_id, last_seq)
    replayed = [await again.recv_dispatch("MESSAGE_CREATE") for _ in missed]
    assert [p["d"]["id"] for p in replayed] == missed
    assert [p["s"] for p in replayed] == [last_seq + 1, last_seq + 2, last_seq + 3]
    resumed = await again.recv_answer()
    assert resumed["t"] == "RESUMED" and resumed["op"] == 0

    live = await _post(api, channel_id, "live")
    assert (await again.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == live
    await again.close()
    stats = emu.stats()["gateway"]
    assert stats["identifies"] == 1 and stats["resumes"] == 1
    assert stats["resumes_by_url"] == {"base": 0, "resume": 1}
    assert stats["drops"] == 1


async def test_resume_from_an_older_seq_replays_what_was_already_seen_too(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    ids = [await _post(api, channel_id, f"m{i}") for i in range(2)]
    for _ in ids:
        await gw.recv_dispatch("MESSAGE_CREATE")
    await gw.close(4000)
    again = await _resume(session, emu, bot, session_id, 2)  # after GUILD_CREATE
    assert [(await again.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] for _ in ids] == ids
    assert (await again.recv_answer())["t"] == "RESUMED"
    await again.close()


@pytest.mark.parametrize("bad", ["unknown-session", "future-seq", "null-seq", "other-bot"])
async def test_an_unresumable_resume_gets_invalid_session_false(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str, bad: str
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    await gw.close(4000)
    token, sid, seq = bot.token, session_id, gw.seq
    if bad == "unknown-session":
        sid = "0" * 32
    elif bad == "future-seq":
        seq = (gw.seq or 0) + 10
    elif bad == "null-seq":
        seq = None
    else:
        token = emu.create_bot("someone-else").token
    resumed = await RawGateway.connect(session, emu.url, "/gateway/resume")
    await resumed.resume(token, sid, seq)
    refused = await resumed.recv_op(Opcode.INVALID_SESSION)
    assert refused["d"] is False
    await resumed.close()
    assert emu.stats()["gateway"]["resume_failures"] == 1


@pytest.mark.parametrize(("code", "resumable"), [(1000, False), (1001, False), (4000, True)])
async def test_a_client_close_with_1000_or_1001_ends_the_session(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str, code: int, resumable: bool
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    await gw.close(code)
    await eventually(lambda: emu.stats()["gateway"]["client_close_codes"].get(code) == 1)
    again = await _resume(session, emu, bot, session_id, gw.seq)
    answer = await again.recv_answer()
    if resumable:
        assert answer["t"] == "RESUMED"
    else:
        assert answer == {"op": 9, "d": False, "s": None, "t": None}
    await again.close()


async def test_a_detached_session_expires(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    emu.gateway.config.session_ttl = 1.0  # Discord seconds
    gw, session_id = await _identified(session, emu, bot)
    await gw.close(4000)
    await eventually(lambda: emu.stats()["gateway"]["sessions"] == 0)
    again = await _resume(session, emu, bot, session_id, gw.seq)
    assert (await again.recv_op(Opcode.INVALID_SESSION))["d"] is False
    await again.close()


async def test_reconnect_op7_then_resume_on_the_resume_url(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    assert await emu.gateway.send_reconnect(bot.id) == 1
    assert await gw.recv_op(Opcode.RECONNECT) == {"op": 7, "d": None, "s": None, "t": None}
    await gw.close(4000)
    missed = await _post(api, channel_id, "during reconnect")
    again = await _resume(session, emu, bot, session_id, gw.seq)
    assert (await again.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == missed
    assert (await again.recv_answer())["t"] == "RESUMED"
    await again.close()


@pytest.mark.parametrize("resumable", [True, False])
async def test_invalid_session_injection(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str, resumable: bool
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    assert await emu.gateway.send_invalid_session(resumable, bot.id) == 1
    assert (await gw.recv_op(Opcode.INVALID_SESSION))["d"] is resumable
    await gw.close(4000)
    again = await _resume(session, emu, bot, session_id, gw.seq)
    answer = await again.recv_answer()
    assert answer["t"] == "RESUMED" if resumable else answer["op"] == Opcode.INVALID_SESSION
    await again.close()


@pytest.mark.parametrize(("code", "resumable"), [(4000, True), (4009, False), (4007, False)])
async def test_drop_with_a_close_code(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str, code: int, resumable: bool
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    await emu.gateway.drop(close_code=code)
    assert await gw.expect_close() == code
    again = await _resume(session, emu, bot, session_id, gw.seq)
    answer = await again.recv_answer()
    assert answer["t"] == "RESUMED" if resumable else answer["op"] == Opcode.INVALID_SESSION
    await again.close()
    assert emu.stats()["gateway"]["close_codes"][code] == 1


async def test_a_resume_takes_over_a_session_still_attached_elsewhere(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    again = await _resume(session, emu, bot, session_id, gw.seq)
    assert (await again.recv_answer())["t"] == "RESUMED"
    assert await gw.expect_close() == 4000
    await again.close()


async def test_delayed_dispatches_wait_while_acks_do_not_and_resume_replays_them(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    last_seq = gw.seq
    emu.gateway.delay_dispatches(100_000)
    held = await _post(api, channel_id, "held back")
    await gw.heartbeat()
    assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK  # not the held dispatch
    emu.gateway.delay_dispatches(0)
    await emu.gateway.drop(bot.id)
    await gw.expect_close()
    again = await _resume(session, emu, bot, session_id, last_seq)
    assert (await again.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == held
    await again.close()


async def test_reconnect_closes_a_socket_the_client_left_open_when_asked(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw, session_id = await _identified(session, emu, bot)
    assert await emu.gateway.send_reconnect(bot.id, close_after=1.0) == 1
    await gw.recv_op(Opcode.RECONNECT)
    assert await gw.expect_close() == 4000  # the session is kept: resume works
    again = await _resume(session, emu, bot, session_id, gw.seq)
    assert (await again.recv_answer())["t"] == "RESUMED"
    await again.close()
