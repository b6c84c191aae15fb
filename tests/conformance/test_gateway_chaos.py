"""Conformance: dispatch faults and guild outages, shown happening on the wire.

Layer: conformance tests over real loopback sockets, driven by the raw websocket client, by
plain HTTP calls to ``/_emulator/gateway/...``, and by unmodified discord.py and hikari.
Facts: discord-api-facts.md §4.5, §4.6 and §6 ("What Discord does not promise"): events may
come zero times, several times, late or out of order (reference.mdx, "Consistency"); a guild
down at READY is sent as GUILD_DELETE ``{id, unavailable: true}`` and comes back with a full
GUILD_CREATE (gateway-events.mdx, "Guild Create"). Where "nothing arrived" must be shown, a
later dispatch the server is known to send proves it, never a wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import TIME_SCALE, call
from tests.conformance.openapi import CheckedSession
from tests.conformance.test_gateway_raw_client import RawGateway
from tests.helpers import eventually

ADMIN = "/_emulator/gateway"
WAIT = 30.0


async def _identified(
    session: aiohttp.ClientSession, emu: Any, bot: Any, guilds: int = 1
) -> tuple[RawGateway, dict[str, Any]]:
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(bot.token)
    ready = await gw.recv_dispatch("READY")
    for _ in range(guilds):
        await gw.recv_dispatch("GUILD_CREATE")
    return gw, ready["d"]


async def _post(api: CheckedSession, channel_id: str, content: str) -> str:
    reply = await call(api, "POST", f"/channels/{channel_id}/messages", json={"content": content})
    assert reply.status == 200, reply.body
    return str(reply.json()["id"])


async def _admin(session: aiohttp.ClientSession, emu: Any, name: str, **body: Any) -> Any:
    async with session.post(f"{emu.url}{ADMIN}/{name}", json=body) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def _dispatches(gw: RawGateway, count: int) -> list[dict[str, Any]]:
    """Read the next ``count`` dispatches (ACKs skipped), checking ``s`` only ever grows."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        payload = await gw.recv()
        if payload["op"] == 0:
            assert not out or payload["s"] > out[-1]["s"], "sequence numbers went backwards"
            out.append(payload)
    return out


def _faults(emu: Any) -> dict[str, int]:
    faults: dict[str, int] = emu.stats()["gateway"]["faults"]
    return faults


# -- nothing by default ----------------------------------------------------------------------


async def test_no_fault_is_in_force_by_default(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    assert emu.gateway.dispatch_faults() == []
    assert set(_faults(emu).values()) == {0}
    assert set(_faults(emu)) >= {"withheld", "duplicated", "reordered", "delayed"}
    assert "guild_outages" in _faults(emu)
    gw, ready = await _identified(session, emu, bot)
    assert ready["guilds"] == [{"id": guild_id, "unavailable": True}]
    await gw.close()


# -- each dispatch fault on the wire ---------------------------------------------------------


async def test_a_withheld_dispatch_never_arrives_and_a_resume_does_not_replay_it(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, ready = await _identified(session, emu, bot)
    before = gw.seq
    assert before is not None
    emu.gateway.withhold_dispatches("MESSAGE_CREATE", count=1)
    lost = await _post(api, channel_id, "lost")
    kept = await _post(api, channel_id, "kept")
    (first,) = await _dispatches(gw, 1)
    assert first["d"]["id"] == kept and first["s"] == before + 1  # no gap: never numbered
    assert emu.gateway.dispatch_faults() == []  # count=1 is spent

    # Resume from before both: the replay holds the kept one only, as on Discord.
    await gw.close(4000)
    again = await RawGateway.connect(session, emu.url, "/gateway/resume")
    again.start_heartbeats()
    await again.resume(bot.token, ready["session_id"], before)
    replayed = []
    while (payload := await again.recv_answer())["t"] != "RESUMED":
        replayed.append(payload["d"]["id"])
    assert replayed == [kept] and lost not in replayed
    await again.close()
    assert _faults(emu)["withheld"] == 1


async def test_a_duplicated_dispatch_arrives_twice_each_with_its_own_seq(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.duplicate_dispatches("MESSAGE_CREATE", count=1)
    twice = await _post(api, channel_id, "twice")
    once = await _post(api, channel_id, "once")
    got = await _dispatches(gw, 3)
    assert [p["d"]["id"] for p in got] == [twice, twice, once]
    assert got[1]["s"] == got[0]["s"] + 1 and got[1]["d"] == got[0]["d"]
    assert _faults(emu)["duplicated"] == 1
    await gw.close()


async def test_a_reordered_dispatch_comes_after_later_ones_within_the_window(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    emu.gateway.config.reorder_max_hold = 1_000  # the window alone lets go: 10 real s
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.reorder_dispatches(1, "MESSAGE_CREATE", count=1)
    a = await _post(api, channel_id, "a")
    b = await _post(api, channel_id, "b")
    assert [p["d"]["id"] for p in await _dispatches(gw, 2)] == [b, a]

    window = 3
    emu.gateway.reorder_dispatches(window, "MESSAGE_CREATE", count=1)
    ids = [await _post(api, channel_id, f"w{i}") for i in range(window + 1)]
    got = [p["d"]["id"] for p in await _dispatches(gw, window + 1)]
    assert sorted(got) == sorted(ids) and got != ids
    assert 1 <= got.index(ids[0]) <= window  # overtaken by 1..window later ones
    assert _faults(emu)["reordered"] == 2
    await gw.close()


async def test_a_reordered_dispatch_on_a_quiet_session_still_arrives(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.reorder_dispatches(5, "MESSAGE_CREATE", count=1)
    alone = await _post(api, channel_id, "alone")  # nothing follows it
    assert (await gw.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == alone
    await gw.close()


@pytest.mark.slow
async def test_a_delayed_dispatch_arrives_later_and_is_overtaken(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.delay_dispatches(100, "MESSAGE_CREATE", count=1)  # 1 real s at 0.01
    late = await _post(api, channel_id, "late")
    on_time = await _post(api, channel_id, "on time")
    got = await _dispatches(gw, 2)
    assert [p["d"]["id"] for p in got] == [on_time, late]
    assert _faults(emu)["delayed"] == 1
    assert emu.gateway.dispatch_delay == 0  # the slow gateway stays off
    await gw.close()


async def test_clearing_sends_what_reorder_and_delay_hold_and_ends_every_fault(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.delay_dispatches(100_000, "MESSAGE_CREATE", count=1)
    emu.gateway.withhold_dispatches("MESSAGE_UPDATE")
    held = await _post(api, channel_id, "held")
    assert len(emu.gateway.dispatch_faults()) == 1
    emu.gateway.clear_dispatch_faults()
    assert (await gw.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == held
    reply = await call(
        api, "PATCH", f"/channels/{channel_id}/messages/{held}", json={"content": "edit"}
    )
    assert reply.status == 200
    assert (await gw.recv_dispatch("MESSAGE_UPDATE"))["d"]["id"] == held
    await gw.close()


# -- selectors -------------------------------------------------------------------------------


async def test_faults_select_by_event_name_bot_and_guild(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    other = emu.create_bot("other")
    emu.add_bot_to_guild(guild_id, other)
    second_guild = str(emu.create_guild("Second", bots=[bot]))
    reply = await call(
        api, "POST", f"/guilds/{second_guild}/channels", json={"name": "two", "type": 0}
    )
    second_channel = str(reply.json()["id"])
    mine, _ = await _identified(session, emu, bot, guilds=2)
    theirs, _ = await _identified(session, emu, other)

    # By name: the update is withheld, the create and the delete are not.
    emu.gateway.withhold_dispatches(["MESSAGE_UPDATE"], bot_id=bot.id)
    message = await _post(api, channel_id, "m")
    path = f"/channels/{channel_id}/messages/{message}"
    assert (await call(api, "PATCH", path, json={"content": "e"})).status == 200
    assert (await call(api, "DELETE", path)).status == 204
    assert [p["t"] for p in await _dispatches(mine, 2)] == ["MESSAGE_CREATE", "MESSAGE_DELETE"]
    # By bot: the other bot got all three.
    names = [p["t"] for p in await _dispatches(theirs, 3)]
    assert names == ["MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"]
    emu.gateway.clear_dispatch_faults()

    # By guild: the first guild's message is withheld, the second guild's is not.
    emu.gateway.withhold_dispatches(guild_id=guild_id, bot_id=bot.id)
    withheld = await _post(api, channel_id, "first guild")
    passed = await _post(api, second_channel, "second guild")
    (got,) = await _dispatches(mine, 1)
    assert got["d"]["id"] == passed and got["d"]["guild_id"] == second_guild
    assert (await theirs.recv_dispatch("MESSAGE_CREATE"))["d"]["id"] == withheld
    assert _faults(emu)["withheld"] == 2
    await mine.close()
    await theirs.close()


async def _probability_run(seed: int, http_session: aiohttp.ClientSession) -> list[int]:
    """Send 16 messages with half withheld at random; return the indexes that arrived."""
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE, seed=seed) as emu:
        bot = emu.create_bot("seeded")
        guild = str(emu.create_guild("Seeded", bots=[bot]))
        api = CheckedSession(http_session, emu.url, None, bot.token)
        reply = await call(api, "POST", f"/guilds/{guild}/channels", json={"name": "s"})
        channel = str(reply.json()["id"])
        gw, _ = await _identified(http_session, emu, bot)
        emu.gateway.withhold_dispatches("MESSAGE_CREATE", probability=0.5)
        ids = [await _post(api, channel, f"p{i}") for i in range(16)]
        emu.gateway.clear_dispatch_faults()
        end = await _post(api, channel, "end")
        arrived = []
        while (got := (await gw.recv_dispatch("MESSAGE_CREATE"))["d"]["id"]) != end:
            arrived.append(ids.index(got))
        assert _faults(emu)["withheld"] == 16 - len(arrived)
        await gw.close()
        return arrived


async def test_a_probability_with_a_fixed_seed_makes_the_same_decisions(
    http_session: aiohttp.ClientSession,
) -> None:
    first = await _probability_run(1234, http_session)
    assert 0 < len(first) < 16  # some withheld, some not
    assert await _probability_run(1234, http_session) == first


# -- guild outages ---------------------------------------------------------------------------


async def test_a_guild_unavailable_at_ready_gets_guild_delete_then_its_guild_create(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    assert emu.gateway.guild_outage(guild_id) == 0  # nobody connected yet
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(bot.token)
    ready = await gw.recv_dispatch("READY")
    assert ready["d"]["guilds"] == [{"id": guild_id, "unavailable": True}]
    down = await gw.recv_answer()
    assert (down["t"], down["d"]) == ("GUILD_DELETE", {"id": guild_id, "unavailable": True})

    # While it is down, its dispatches are not delivered.
    await _post(api, channel_id, "during the outage")
    await eventually(lambda: _faults(emu)["suppressed"] == 1)

    assert emu.gateway.guild_restore(guild_id) == 1
    back = await gw.recv_answer()
    assert back["t"] == "GUILD_CREATE" and back["s"] == down["s"] + 1
    assert back["d"]["id"] == guild_id and back["d"]["unavailable"] is False
    assert channel_id in {c["id"] for c in back["d"]["channels"]}
    after = await _post(api, channel_id, "after")
    assert (await gw.recv_answer())["d"]["id"] == after
    faults = _faults(emu)
    assert faults["guild_outages"] == 1 and faults["guild_restores"] == 1
    await gw.close()


async def test_unavailable_at_ready_touches_only_the_next_session_and_comes_back_by_itself(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    # One bot per session, so that no identify waits for another's max_concurrency slot.
    second, third_bot = emu.create_bot("second"), emu.create_bot("third")
    for other in (second, third_bot):
        emu.add_bot_to_guild(guild_id, other)
    live, _ = await _identified(session, emu, bot)
    emu.gateway.unavailable_at_ready(guild_id, count=1, seconds=20)  # 0.2 real s
    gw = await RawGateway.connect(session, emu.url)
    gw.start_heartbeats()
    await gw.identify(second.token)
    await gw.recv_dispatch("READY")
    assert (await gw.recv_answer())["d"] == {"id": guild_id, "unavailable": True}
    back = await gw.recv_answer()
    assert back["t"] == "GUILD_CREATE" and back["d"]["unavailable"] is False
    third, _ = await _identified(session, emu, third_bot)  # the count is spent: normal READY
    assert emu.gateway.guild_restore(guild_id) == 0  # nothing left down
    for socket in (live, gw, third):
        await socket.close()
    assert _faults(emu)["guild_outages"] == 1


async def test_a_guild_goes_down_during_a_session_and_comes_back(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    other = emu.create_bot("other")
    emu.add_bot_to_guild(guild_id, other)
    outsider = emu.create_bot("outsider")
    emu.create_guild("Elsewhere", bots=[outsider])
    mine, _ = await _identified(session, emu, bot)
    theirs, _ = await _identified(session, emu, other)
    away, _ = await _identified(session, emu, outsider)

    assert emu.gateway.guild_outage(guild_id) == 2  # every session of a bot in it
    for gw in (mine, theirs):
        down = await gw.recv_answer()
        assert (down["t"], down["d"]) == ("GUILD_DELETE", {"id": guild_id, "unavailable": True})
    await _post(api, channel_id, "lost in the outage")
    await eventually(lambda: _faults(emu)["suppressed"] == 2)

    assert emu.gateway.guild_restore(guild_id) == 2
    for gw in (mine, theirs):
        back = await gw.recv_answer()
        assert back["t"] == "GUILD_CREATE" and back["d"]["id"] == guild_id
    after = await _post(api, channel_id, "after")
    assert (await mine.recv_answer())["d"]["id"] == after
    # The outsider heard nothing of it: its next dispatch is its own guild's.
    assert emu.gateway.guild_outage(str(emu.create_guild("Lonely", bots=[outsider]))) == 1
    assert (await away.recv_dispatch("GUILD_CREATE"))["d"]["name"] == "Lonely"
    assert (await away.recv_answer())["t"] == "GUILD_DELETE"
    for gw in (mine, theirs, away):
        await gw.close()


async def test_an_outage_with_seconds_ends_by_itself_and_a_resume_replays_both_halves(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw, ready = await _identified(session, emu, bot)
    before = gw.seq
    await gw.close(4000)  # detached: the outage is numbered and buffered for the resume
    await eventually(lambda: emu.stats()["gateway"]["open"] == 0)
    emu.gateway.guild_outage(guild_id, seconds=10)  # 0.1 real s
    await eventually(lambda: _faults(emu)["guild_restores"] == 1)
    again = await RawGateway.connect(session, emu.url, "/gateway/resume")
    again.start_heartbeats()
    await again.resume(bot.token, ready["session_id"], before)
    names = [p["t"] for p in await _dispatches(again, 3)]
    assert names == ["GUILD_DELETE", "GUILD_CREATE", "RESUMED"]
    await again.close()


async def test_reset_ends_faults_and_outages(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw, _ = await _identified(session, emu, bot)
    emu.gateway.duplicate_dispatches()
    emu.gateway.guild_outage(guild_id)
    assert (await gw.recv_answer())["t"] == "GUILD_DELETE"  # outage notices are not faulted
    emu.reset()
    assert (await gw.recv_answer())["t"] == "GUILD_CREATE"  # the reset ended the outage
    assert emu.gateway.dispatch_faults() == [] and set(_faults(emu).values()) == {0}
    await gw.close()


# -- the admin HTTP API ----------------------------------------------------------------------


@pytest.mark.slow
async def test_the_admin_api_drives_every_dispatch_fault(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    emu.gateway.config.reorder_max_hold = 1_000  # the window alone lets go: 10 real s
    gw, _ = await _identified(session, emu, bot)
    one = {"event": "MESSAGE_CREATE", "bot_id": bot.id, "guild_id": guild_id, "count": 1}

    answer = await _admin(session, emu, "withhold_dispatches", **one)
    assert answer["fault"]["kind"] == "withhold" and answer["fault"]["events"] == ["MESSAGE_CREATE"]
    assert len(await _admin_get(session, emu, "dispatch_faults")) == 1
    await _post(api, channel_id, "withheld")
    kept = await _post(api, channel_id, "kept")
    assert [p["d"]["id"] for p in await _dispatches(gw, 1)] == [kept]

    await _admin(session, emu, "duplicate_dispatches", **one)
    twice = await _post(api, channel_id, "twice")
    assert [p["d"]["id"] for p in await _dispatches(gw, 2)] == [twice, twice]

    await _admin(session, emu, "reorder_dispatches", window=1, **one)
    a, b = await _post(api, channel_id, "a"), await _post(api, channel_id, "b")
    assert [p["d"]["id"] for p in await _dispatches(gw, 2)] == [b, a]

    await _admin(session, emu, "delay_dispatches", seconds=100, **one)
    late, soon = await _post(api, channel_id, "late"), await _post(api, channel_id, "soon")
    assert [p["d"]["id"] for p in await _dispatches(gw, 2)] == [soon, late]

    await _admin(session, emu, "withhold_dispatches", probability=0.5)
    await _admin(session, emu, "clear_dispatch_faults")
    assert await _admin_get(session, emu, "dispatch_faults") == []
    stats = await _admin_get(session, emu, "stats")
    assert {k: stats["faults"][k] for k in ("withheld", "duplicated", "reordered", "delayed")} == {
        "withheld": 1,
        "duplicated": 1,
        "reordered": 1,
        "delayed": 1,
    }
    for bad in ({"probability": 2}, {"count": 0}, {"colour": "red"}):
        async with session.post(f"{emu.url}{ADMIN}/withhold_dispatches", json=bad) as reply:
            assert reply.status == 400
    await gw.close()


async def test_the_admin_api_drives_guild_outages(
    emu: Any, session: aiohttp.ClientSession, bot: Any, guild_id: str
) -> None:
    gw, _ = await _identified(session, emu, bot)
    assert await _admin(session, emu, "guild_outage", guild_id=guild_id) == {"affected": 1}
    assert (await gw.recv_answer())["d"] == {"id": guild_id, "unavailable": True}
    assert await _admin(session, emu, "guild_restore", guild_id=guild_id) == {"affected": 1}
    assert (await gw.recv_answer())["t"] == "GUILD_CREATE"

    await _admin(session, emu, "unavailable_at_ready", guild_id=guild_id, count=1)
    other = emu.create_bot("other")  # its own identify slot
    emu.add_bot_to_guild(guild_id, other)
    fresh = await RawGateway.connect(session, emu.url)
    fresh.start_heartbeats()
    await fresh.identify(other.token)
    await fresh.recv_dispatch("READY")
    assert (await fresh.recv_answer())["t"] == "GUILD_DELETE"
    assert await _admin(session, emu, "guild_restore", guild_id=guild_id) == {"affected": 1}
    assert (await fresh.recv_answer())["t"] == "GUILD_CREATE"
    stats = await _admin_get(session, emu, "stats")
    assert stats["faults"]["guild_outages"] == 2 and stats["faults"]["guild_restores"] == 2
    async with session.post(f"{emu.url}{ADMIN}/guild_outage", json={}) as reply:
        assert reply.status == 400
    await gw.close()
    await fresh.close()


async def _admin_get(session: aiohttp.ClientSession, emu: Any, name: str) -> Any:
    async with session.get(f"{emu.url}{ADMIN}/{name}") as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


# -- third-party clients survive ---------------------------------------------------------------

SEED = 20260807


@contextlib.asynccontextmanager
async def _seeded(time_scale: float) -> AsyncIterator[tuple[Any, Any, str, str]]:
    """A seeded emulator with a bot, a guild and a channel: (emu, bot, guild, channel)."""
    from discobase.emulator import Emulator

    async with Emulator(time_scale=time_scale, seed=SEED) as emu:
        bot = emu.create_bot("chaos")
        guild = str(emu.create_guild("Chaos", bots=[bot]))
        emu.gateway.config.heartbeat_timeout_factor = 10  # a loaded machine beats late
        async with aiohttp.ClientSession() as http:
            api = CheckedSession(http, emu.url, None, bot.token)
            reply = await call(api, "POST", f"/guilds/{guild}/channels", json={"name": "c"})
            yield emu, bot, guild, str(reply.json()["id"])


@contextlib.asynccontextmanager
async def _discord_py(emu: Any, token: str) -> AsyncIterator[tuple[Any, asyncio.Queue[int]]]:
    """Run an unmodified discord.py client against ``emu`` until it is ready."""
    discord = pytest.importorskip("discord")
    yarl = pytest.importorskip("yarl")
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = emu.url + "/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + emu.url[len("http") :] + "/gateway")
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.2)
    ready = asyncio.Event()
    seen: asyncio.Queue[int] = asyncio.Queue()

    @client.event
    async def on_ready() -> None:
        ready.set()

    @client.event
    async def on_message(message: Any) -> None:
        await seen.put(message.id)

    runner = asyncio.create_task(client.start(token))
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        yield client, seen
    finally:
        await client.close()
        await asyncio.wait_for(runner, WAIT)
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def _all_seen(seen: asyncio.Queue[int], ids: set[int]) -> int:
    """Wait until every id in ``ids`` was seen; return how many events that took."""
    missing, events = set(ids), 0
    while missing:
        missing.discard(await asyncio.wait_for(seen.get(), WAIT))
        events += 1
    return events


async def test_discord_py_survives_duplication_reordering_and_a_guild_outage() -> None:
    pytest.importorskip("discord")
    async with _seeded(TIME_SCALE) as (emu, bot, guild_id, channel_id):
        emu.gateway.duplicate_dispatches(probability=0.5)
        emu.gateway.reorder_dispatches(2, probability=0.5)
        async with _discord_py(emu, bot.token) as (client, seen):
            await eventually(lambda: client.get_guild(int(guild_id)) is not None, WAIT)
            channel = client.get_guild(int(guild_id)).get_channel(int(channel_id))
            ids = {(await channel.send(f"m{i}")).id for i in range(6)}
            assert await _all_seen(seen, ids) >= len(ids)
            faults = _faults(emu)
            assert faults["duplicated"] > 0 and faults["reordered"] > 0

            emu.gateway.clear_dispatch_faults()
            emu.gateway.guild_outage(guild_id)
            await eventually(lambda: client.get_guild(int(guild_id)).unavailable, WAIT)
            emu.gateway.guild_restore(guild_id)
            await eventually(lambda: not client.get_guild(int(guild_id)).unavailable, WAIT)
            after = await client.get_guild(int(guild_id)).get_channel(int(channel_id)).send("a")
            await _all_seen(seen, {after.id})


async def test_discord_py_gets_ready_with_a_guild_unavailable_at_ready() -> None:
    pytest.importorskip("discord")
    async with _seeded(TIME_SCALE) as (emu, bot, guild_id, channel_id):
        emu.gateway.guild_outage(guild_id)
        async with _discord_py(emu, bot.token) as (client, seen):
            guild = client.get_guild(int(guild_id))
            assert guild is not None and guild.unavailable
            emu.gateway.guild_restore(guild_id)
            await eventually(lambda: not client.get_guild(int(guild_id)).unavailable, WAIT)
            channel = client.get_guild(int(guild_id)).get_channel(int(channel_id))
            await _all_seen(seen, {(await channel.send("back")).id})


async def test_hikari_survives_duplication_reordering_and_a_guild_outage() -> None:
    hikari = pytest.importorskip("hikari")
    # hikari's own timers are unscaled (see test_gateway_hikari.py): 0.1 keeps them inside
    # the emulator's scaled heartbeat and session windows.
    async with _seeded(0.1) as (emu, bot, guild_id, channel_id):
        emu.gateway.duplicate_dispatches(probability=0.5)
        emu.gateway.reorder_dispatches(2, probability=0.5)
        hk = hikari.GatewayBot(
            bot.token,
            rest_url=emu.url + "/api/v10",
            banner=None,
            logs=None,
            suppress_optimization_warning=True,
        )
        seen: asyncio.Queue[int] = asyncio.Queue()
        available, unavailable = asyncio.Event(), asyncio.Event()

        @hk.listen(hikari.GuildMessageCreateEvent)
        async def on_create(event: Any) -> None:
            await seen.put(int(event.message_id))

        @hk.listen(hikari.GuildAvailableEvent)
        async def on_available(event: Any) -> None:
            available.set()

        @hk.listen(hikari.GuildUnavailableEvent)
        async def on_unavailable(event: Any) -> None:
            unavailable.set()

        await asyncio.wait_for(hk.start(check_for_updates=False), WAIT)
        try:
            await asyncio.wait_for(available.wait(), WAIT)
            sent = [await hk.rest.create_message(int(channel_id), f"m{i}") for i in range(6)]
            await _all_seen(seen, {int(m.id) for m in sent})
            faults = _faults(emu)
            assert faults["duplicated"] > 0 and faults["reordered"] > 0

            emu.gateway.clear_dispatch_faults()
            available.clear()
            emu.gateway.guild_outage(guild_id)
            await asyncio.wait_for(unavailable.wait(), WAIT)
            emu.gateway.guild_restore(guild_id)
            await asyncio.wait_for(available.wait(), WAIT)
            after = await hk.rest.create_message(int(channel_id), "after")
            await _all_seen(seen, {int(after.id)})
        finally:
            await asyncio.wait_for(hk.close(), WAIT)


# -- third-party clients survive the gateway faults of chaos mode ------------------------------

# Every gateway fault chaos makes that leaves a client able to see its messages: dispatches
# duplicated, reordered and delayed at random, and guild outages at random moments that end by
# themselves. (A withheld dispatch is gone for good; neither library reads history back.)
GATEWAY_CHAOS: dict[str, Any] = {
    "dispatch_duplicate": 0.3,
    "dispatch_reorder": 0.3,
    "dispatch_delay": 0.3,
    "dispatch_delay_seconds": 1.0,
}
OUTAGES: dict[str, Any] = {"guild_outage": 1.0, "tick": 2.0, "outage_seconds": (1.0, 3.0)}


async def _through_random_outages(emu: Any) -> None:
    """Let chaos take the guild down and back at random twice, then stop the outages."""
    emu.set_chaos({**GATEWAY_CHAOS, **OUTAGES})
    await eventually(lambda: _faults(emu)["guild_restores"] >= 2, WAIT)
    emu.set_chaos(GATEWAY_CHAOS)  # the outage in progress still ends by itself
    await eventually(lambda: not emu.gateway.delivery.down, WAIT)


def _stayed_connected(emu: Any) -> None:
    gateway = emu.stats()["gateway"]
    assert gateway["identifies"] == 1 and gateway["open"] == 1
    faults = gateway["faults"]
    assert faults["guild_outages"] >= 2
    assert faults["duplicated"] > 0 and faults["reordered"] > 0 and faults["delayed"] > 0


async def test_discord_py_stays_connected_through_gateway_chaos() -> None:
    pytest.importorskip("discord")
    async with _seeded(TIME_SCALE) as (emu, bot, guild_id, channel_id):
        emu.set_chaos(GATEWAY_CHAOS)
        async with _discord_py(emu, bot.token) as (client, seen):
            await _through_random_outages(emu)

            def available() -> bool:
                guild = client.get_guild(int(guild_id))
                return guild is not None and not guild.unavailable

            await eventually(available, WAIT)
            channel = client.get_guild(int(guild_id)).get_channel(int(channel_id))
            ids = {(await channel.send(f"m{i}")).id for i in range(12)}
            assert await _all_seen(seen, ids) >= len(ids)
            _stayed_connected(emu)


@pytest.mark.slow
async def test_hikari_stays_connected_through_gateway_chaos() -> None:
    hikari = pytest.importorskip("hikari")
    async with _seeded(0.1) as (emu, bot, guild_id, channel_id):
        emu.set_chaos(GATEWAY_CHAOS)
        hk = hikari.GatewayBot(
            bot.token,
            rest_url=emu.url + "/api/v10",
            banner=None,
            logs=None,
            suppress_optimization_warning=True,
        )
        seen: asyncio.Queue[int] = asyncio.Queue()

        @hk.listen(hikari.GuildMessageCreateEvent)
        async def on_create(event: Any) -> None:
            await seen.put(int(event.message_id))

        await asyncio.wait_for(hk.start(check_for_updates=False), WAIT)
        try:
            await _through_random_outages(emu)
            sent = [await hk.rest.create_message(int(channel_id), f"m{i}") for i in range(12)]
            await _all_seen(seen, {int(m.id) for m in sent})
            _stayed_connected(emu)
        finally:
            await asyncio.wait_for(hk.close(), WAIT)
