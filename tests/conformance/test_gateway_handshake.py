"""Conformance: HELLO, heartbeats, IDENTIFY validation, READY and GUILD_CREATE.

Layer: conformance tests, driven by the raw websocket client in ``test_gateway_raw_client``
(never by discobase's gateway client). Facts: discord-api-facts.md §4.1-4.6, §4.10, §4.11.
"""

from __future__ import annotations

import importlib
from typing import Any

import aiohttp
import orjson
import pytest

from discobase.emulator.gateway import CloseCode, Opcode
from tests.conformance.conftest import TIME_SCALE
from tests.conformance.test_gateway_raw_client import (
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    RawGateway,
    ready_gateway,
)
from tests.helpers import eventually


async def test_hello_comes_first_with_a_scaled_interval_and_heartbeats_are_acked(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    gw = await RawGateway.connect(session, emu.url)
    assert gw.hello == {
        "op": 10,
        "d": {"heartbeat_interval": 45000 * TIME_SCALE},
        "s": None,
        "t": None,
    }
    assert type(gw.hello["d"]["heartbeat_interval"]) is int  # milliseconds, an integer
    await gw.send(Opcode.HEARTBEAT, None)
    assert await gw.recv() == {"op": 11, "d": None, "s": None, "t": None}
    assert gw.binary_frames >= 2 and gw.text_frames == 0
    await gw.close()
    stats = emu.stats()["gateway"]
    assert stats["heartbeats"] == 1 and stats["connects_by_compression"] == {"zlib-stream": 1}


async def test_uncompressed_connections_get_text_frames(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    async with ready_gateway(session, emu.url, bot.token, compress=None) as (gw, ready):
        assert ready["user"]["id"] == bot.id
        assert gw.text_frames >= 3 and gw.binary_frames == 0


async def test_ready_and_guild_create_carry_what_clients_need(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str, channel_id: str
) -> None:
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(bot.token, GUILDS | GUILD_MESSAGES)
    ready = await gw.recv_dispatch("READY")
    assert ready["s"] == 1
    d = ready["d"]
    assert d["v"] == 10
    assert d["user"]["id"] == bot.id and d["user"]["bot"] is True
    assert d["guilds"] == [{"id": guild_id, "unavailable": True}]
    assert isinstance(d["session_id"], str) and d["session_id"]
    assert d["resume_gateway_url"] == "ws" + emu.url[len("http") :] + "/gateway/resume"
    assert d["application"]["id"] == str(bot.application_id)
    assert "flags" in d["application"]

    created = await gw.recv_answer()
    assert created["t"] == "GUILD_CREATE" and created["s"] == 2
    guild = created["d"]
    assert guild["id"] == guild_id and guild["unavailable"] is False
    assert any(role["id"] == guild_id for role in guild["roles"])  # @everyone
    assert channel_id in {channel["id"] for channel in guild["channels"]}
    assert bot.id in {member["user"]["id"] for member in guild["members"]}
    await gw.close()
    stats = emu.stats()["gateway"]
    assert stats["identifies"] == 1 and stats["connects_by_url"]["base"] == 1


async def test_both_urls_serve_and_are_counted_apart(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    first = await RawGateway.connect(session, emu.url, "/gateway")
    second = await RawGateway.connect(session, emu.url, "/gateway/resume")
    await first.close()
    await second.close()
    stats = emu.stats()["gateway"]
    assert stats["connects_by_url"] == {"base": 1, "resume": 1}
    assert stats["connections"] == 2


def _identify(token: str, intents: int) -> dict[str, Any]:
    return {
        "token": token,
        "properties": {"os": "x", "browser": "y", "device": "z"},
        "intents": intents,
    }


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([("identify", "bad-token", GUILDS)], 4004, id="bad-token-4004"),
        pytest.param([("identify", None, 1 << 30)], 4013, id="invalid-intents-4013"),
        pytest.param([("identify", None, -1)], 4013, id="negative-intents-4013"),
        pytest.param([("identify", None, GUILDS | MESSAGE_CONTENT)], 4014, id="unapproved-4014"),
        pytest.param([("raw", '{"op": 3, "d": {}}')], 4003, id="before-identify-4003"),
        pytest.param([("identify", None, GUILDS), ("identify", None, GUILDS)], 4005, id="4005"),
        pytest.param([("raw", '{"op": 1, "d": "' + "x" * 4100 + '"}')], 4002, id="oversize-4002"),
        pytest.param([("raw", "{not json")], 4002, id="decode-4002"),
        pytest.param([("raw", '{"op": 5, "d": null}')], 4001, id="unknown-op-4001"),
    ],
)
async def test_close_codes(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    frames: list[tuple[Any, ...]],
    code: int,
) -> None:
    bot.approved_intents = 0  # emulator bots are approved for every privileged intent
    gw = await RawGateway.connect(session, emu.url)
    for frame in frames:
        if frame[0] == "identify":
            await gw.send(Opcode.IDENTIFY, _identify(frame[1] or bot.token, frame[2]))
        else:
            await gw.ws.send_str(frame[1])
    assert await gw.expect_close() == code
    await eventually(lambda: emu.stats()["gateway"]["close_codes"].get(code) == 1)


async def test_a_bad_api_version_closes_with_4012(emu: Any, session: aiohttp.ClientSession) -> None:
    gw = await RawGateway.connect(
        session, emu.url, query={"v": "3", "encoding": "json"}, read_hello=False
    )
    assert await gw.expect_close() == CloseCode.INVALID_API_VERSION


async def test_heartbeats_before_identify_are_allowed(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw = await RawGateway.connect(session, emu.url)
    await gw.heartbeat()
    assert (await gw.recv())["op"] == Opcode.HEARTBEAT_ACK
    gw.start_heartbeats()
    await gw.identify(bot.token)
    assert (await gw.recv_dispatch("READY"))["d"]["user"]["id"] == bot.id
    await gw.close()


async def test_an_approved_privileged_intent_is_accepted(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    bot.approved_intents = MESSAGE_CONTENT
    async with ready_gateway(session, emu.url, bot.token, GUILDS | MESSAGE_CONTENT) as (_, ready):
        assert ready["user"]["id"] == bot.id


async def test_a_heartbeat_carries_any_seq_and_is_acked_with_null_s(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    async with ready_gateway(session, emu.url, bot.token) as (gw, _):
        await gw.send(Opcode.HEARTBEAT, 2)
        ack = await gw.recv_op(Opcode.HEARTBEAT_ACK)
        assert ack["s"] is None and ack["t"] is None


def _zstd_decompressor() -> Any:
    """A streaming zstd decoder from whichever zstd module this process has, or None.

    The standard library's ``compression.zstd`` (3.14+), its backport ``backports.zstd`` (one
    API, PEP 784), or ``zstandard``: the modules hikari and discord.py decode zstd-stream with.
    """
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name).ZstdDecompressor()
        except ImportError:
            continue
    try:
        zstandard = importlib.import_module("zstandard")
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompressobj()


async def test_zstd_stream_is_served_where_a_zstd_module_is_importable(
    emu: Any, session: aiohttp.ClientSession
) -> None:
    # Discord serves zstd-stream (facts §4.11); the emulator can only where a zstd module is
    # importable, and then must, since a client asking for it by default brings one.
    decompressor = _zstd_decompressor()
    gw = await RawGateway.connect(session, emu.url, compress="zstd-stream", read_hello=False)
    if decompressor is None:
        assert await gw.expect_close() == CloseCode.UNKNOWN_ERROR
        return
    frame = await gw.ws.receive(timeout=10)
    hello = orjson.loads(decompressor.decompress(frame.data))
    assert hello["op"] == Opcode.HELLO
    await gw.ws.send_str('{"op": 1, "d": null}')
    frame = await gw.ws.receive(timeout=10)
    assert orjson.loads(decompressor.decompress(frame.data))["op"] == Opcode.HEARTBEAT_ACK
    await gw.close()


async def test_ready_echoes_the_shard_only_when_identify_sent_one(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    emu.gateway.config.identify_window = 0.0  # two identifies back to back
    for shard in ([0, 1], None):
        gw = await RawGateway.connect(session, emu.url)
        gw.start_heartbeats()
        extra = {} if shard is None else {"shard": shard}
        await gw.identify(bot.token, **extra)
        ready = (await gw.recv_dispatch("READY"))["d"]
        assert ready.get("shard") == shard
        await gw.close(4000)


async def test_an_invalid_shard_closes_with_4010(
    emu: Any, session: aiohttp.ClientSession, bot: Any
) -> None:
    gw = await RawGateway.connect(session, emu.url)
    await gw.identify(bot.token, shard=[1, 1])
    assert await gw.expect_close() == CloseCode.INVALID_SHARD


async def test_etf_encoding_is_refused_with_4002(emu: Any, session: aiohttp.ClientSession) -> None:
    gw = await RawGateway.connect(
        session, emu.url, query={"v": "10", "encoding": "etf"}, read_hello=False
    )
    assert await gw.expect_close() == CloseCode.DECODE_ERROR
