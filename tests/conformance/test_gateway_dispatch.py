"""Conformance: which bots see which events, in what shape, with which sequence numbers.

Layer: conformance tests over real loopback sockets: REST calls change the emulator, the raw
websocket client watches the dispatches. Facts: discord-api-facts.md §2.10, §4.6, §4.7.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from discobase.emulator.gateway import Opcode
from tests.conformance.conftest import call
from tests.conformance.openapi import CheckedSession, OpenAPISpec
from tests.conformance.test_gateway_raw_client import (
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    RawGateway,
    ready_gateway,
)


async def test_message_and_channel_events_follow_rest_changes(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    async with ready_gateway(session, emu.url, bot.token) as (gw, _):
        path = f"/channels/{channel_id}/messages"
        created = (await call(api, "POST", path, json={"content": "hello"})).json()
        event = await gw.recv_dispatch("MESSAGE_CREATE")
        assert event["d"]["id"] == created["id"] and event["d"]["content"] == "hello"
        assert event["d"]["guild_id"] == guild_id and event["d"]["channel_id"] == channel_id
        assert event["d"]["author"]["id"] == bot.id

        reply = await call(api, "PATCH", f"{path}/{created['id']}", json={"content": "edited"})
        assert reply.status == 200, reply.body
        updated = await gw.recv_dispatch("MESSAGE_UPDATE")
        assert updated["d"]["id"] == created["id"] and updated["d"]["content"] == "edited"

        reply = await call(api, "DELETE", f"{path}/{created['id']}")
        assert reply.status == 204, reply.body
        deleted = await gw.recv_dispatch("MESSAGE_DELETE")
        assert deleted["d"]["id"] == created["id"] and deleted["d"]["channel_id"] == channel_id

        ids = [
            (await call(api, "POST", path, json={"content": f"b{i}"})).json()["id"]
            for i in range(2)
        ]
        reply = await call(api, "POST", f"{path}/bulk-delete", json={"messages": ids})
        assert reply.status == 204, reply.body
        bulk = await gw.recv_dispatch("MESSAGE_DELETE_BULK")
        assert sorted(bulk["d"]["ids"]) == sorted(ids)

        reply = await call(
            api, "POST", f"/guilds/{guild_id}/channels", json={"name": "more", "type": 0}
        )
        new_channel = reply.json()["id"]
        assert (await gw.recv_dispatch("CHANNEL_CREATE"))["d"]["id"] == new_channel
        await call(api, "PATCH", f"/channels/{new_channel}", json={"topic": "t"})
        assert (await gw.recv_dispatch("CHANNEL_UPDATE"))["d"]["id"] == new_channel
        await call(api, "DELETE", f"/channels/{new_channel}")
        assert (await gw.recv_dispatch("CHANNEL_DELETE"))["d"]["id"] == new_channel

        dispatched = [f["s"] for f in gw.frames if f["op"] == Opcode.DISPATCH]
        assert dispatched == list(range(1, len(dispatched) + 1))


async def test_message_content_is_stripped_for_other_bots_without_the_intent(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
    http_session: aiohttp.ClientSession,
    openapi_spec: OpenAPISpec | None,
) -> None:
    reader = emu.create_bot("reader")
    trusted = emu.create_bot("trusted")
    trusted.approved_intents = MESSAGE_CONTENT
    emu.add_bot_to_guild(guild_id, reader)
    emu.add_bot_to_guild(guild_id, trusted)
    intents = GUILDS | GUILD_MESSAGES
    async with (
        ready_gateway(session, emu.url, bot.token, intents) as (own, _),
        ready_gateway(session, emu.url, reader.token, intents) as (other, _),
        ready_gateway(session, emu.url, trusted.token, intents | MESSAGE_CONTENT) as (full, _),
    ):
        path = f"/channels/{channel_id}/messages"
        await call(api, "POST", path, json={"content": "private", "embeds": [{"title": "e"}]})
        assert (await own.recv_dispatch("MESSAGE_CREATE"))["d"]["content"] == "private"
        seen = (await other.recv_dispatch("MESSAGE_CREATE"))["d"]
        assert seen["content"] == "" and seen["embeds"] == []
        assert (await full.recv_dispatch("MESSAGE_CREATE"))["d"]["content"] == "private"

        # A message that mentions the reader is readable by it.
        await call(api, "POST", path, json={"content": f"hi <@{reader.id}>"})
        assert (await other.recv_dispatch("MESSAGE_CREATE"))["d"]["content"].startswith("hi")


async def test_intents_and_guild_membership_gate_delivery(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    outsider = emu.create_bot("outsider")
    emu.create_guild("Elsewhere", bots=[outsider])
    async with (
        ready_gateway(session, emu.url, bot.token, GUILDS) as (guilds_only, _),
        ready_gateway(session, emu.url, outsider.token, GUILDS | GUILD_MESSAGES) as (other, _),
    ):
        await call(api, "POST", f"/channels/{channel_id}/messages", json={"content": "x"})
        await call(api, "POST", f"/guilds/{guild_id}/channels", json={"name": "n", "type": 0})
        # CHANNEL_CREATE (GUILDS) arrives; the MESSAGE_CREATE before it was not sent.
        first = await guilds_only.recv_dispatch("CHANNEL_CREATE")
        assert first["s"] == 3
        # The outsider is in neither guild: a heartbeat's ACK is the next thing it gets.
        await other.heartbeat()
        assert (await other.recv())["op"] == Opcode.HEARTBEAT_ACK
        assert not [f for f in other.frames if f.get("t") in ("MESSAGE_CREATE", "CHANNEL_CREATE")]


async def test_guild_create_and_delete_when_a_bot_joins_and_leaves(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    newcomer = emu.create_bot("newcomer")
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(newcomer.token, GUILDS)
    ready = await gw.recv_dispatch("READY")
    assert ready["d"]["guilds"] == []
    emu.add_bot_to_guild(guild_id, newcomer)
    joined = await gw.recv_dispatch("GUILD_CREATE")
    assert joined["d"]["id"] == guild_id
    assert newcomer.id in {m["user"]["id"] for m in joined["d"]["members"]}
    emu.remove_bot_from_guild(guild_id, newcomer)
    left = await gw.recv_dispatch("GUILD_DELETE")
    assert left["d"]["id"] == guild_id and "unavailable" not in left["d"]
    await gw.close()


async def test_request_guild_members_gets_one_chunk(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    async with ready_gateway(session, emu.url, bot.token, GUILDS | GUILD_MEMBERS) as (gw, _):
        await gw.send(
            Opcode.REQUEST_GUILD_MEMBERS,
            {"guild_id": guild_id, "query": "", "limit": 0, "nonce": "n1"},
        )
        chunk = (await gw.recv_dispatch("GUILD_MEMBERS_CHUNK"))["d"]
        assert chunk["guild_id"] == guild_id and chunk["nonce"] == "n1"
        assert chunk["chunk_index"] == 0 and chunk["chunk_count"] == 1
        assert bot.id in {m["user"]["id"] for m in chunk["members"]}

        await gw.send(
            Opcode.REQUEST_GUILD_MEMBERS, {"guild_id": guild_id, "user_ids": [bot.id, "1"]}
        )
        chunk = (await gw.recv_dispatch("GUILD_MEMBERS_CHUNK"))["d"]
        assert [m["user"]["id"] for m in chunk["members"]] == [bot.id]
        assert chunk["not_found"] == ["1"]
