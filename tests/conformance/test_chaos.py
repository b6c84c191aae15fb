"""Chaos mode and the admin API's locality, shown on the wire.

Layer: conformance tests (the emulator over loopback, the CLI in its own process). Facts:
discord-api-facts.md, "What Discord does not promise": events may come zero times, several
times, late or out of order; guilds go down; the CDN fails; a write can be stored and still
answered with a 5xx; the channel write limit answers 429 with code 20028. Chaos makes each of
them happen at random from one seed; these tests show that it is off by default, that it
injects each kind and counts it, that a seed replays the same decisions, and that it never
injects what a correct client could not survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from discobase.emulator import Chaos, Emulator
from tests.conformance.conftest import TIME_SCALE
from tests.conformance.openapi import CheckedSession, OpenAPISpec
from tests.conformance.test_gateway_raw_client import Closed, RawGateway

WAIT = 30.0
SEED = 424242
# The real limits would answer some 429s by timing alone; chaos's must be the only ones.
ROOMY = {"message_create": (100_000, 5.0), "global_limit": 100_000}
# Per-message kinds only: the timer's kinds change timing, not decisions, and are tested apart.
NO_TIMER = {"guild_outage": 0.0, "socket_drop": 0.0, "latency": 0.0}


async def _channel(api: CheckedSession, guild_id: str) -> str:
    reply = await api.get(f"/guilds/{guild_id}/channels")
    assert reply.status == 200, reply.body
    return str(reply.json()[0]["id"])


async def _upload(api: CheckedSession, channel: str, data: bytes) -> str:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "f"}), content_type="application/json")
    form.add_field("files[0]", data, filename="f.bin")
    reply = await api.post(f"/channels/{channel}/messages", data=form)
    assert reply.status == 200, reply.body
    return str(reply.json()["attachments"][0]["url"])


async def _download(session: aiohttp.ClientSession, url: str) -> int:
    """Return a download's status; -1 when the body was cut short."""
    try:
        async with session.get(url, allow_redirects=False) as reply:
            await reply.read()
            return reply.status
    except aiohttp.ClientPayloadError:
        return -1


@contextlib.asynccontextmanager
async def _world(
    openapi_spec: OpenAPISpec | None, **options: Any
) -> AsyncIterator[tuple[Emulator, Any, str, str, CheckedSession, aiohttp.ClientSession]]:
    """An emulator, a bot, its guild and #general, a checked client: set up with no chaos."""
    async with Emulator(time_scale=TIME_SCALE, limits=ROOMY, **options) as emu:
        bot = emu.create_bot("chaos")
        guild_id = emu.create_guild("Chaos", bots=[bot])
        async with aiohttp.ClientSession() as session:
            api = CheckedSession(session, emu.url, openapi_spec, bot.token)
            yield emu, bot, guild_id, await _channel(api, guild_id), api, session


def _summary(emu: Emulator) -> dict[str, int]:
    faults: dict[str, int] = emu.stats()["faults"]
    return faults


# -- off by default ---------------------------------------------------------------------------


async def test_no_chaos_and_no_fault_by_default(openapi_spec: OpenAPISpec | None) -> None:
    async with _world(openapi_spec) as (emu, bot, guild_id, channel, api, session):
        assert emu.chaos is None
        gw = await RawGateway.connect(session, emu.url)
        gw.start_heartbeats()
        await gw.identify(bot.token)
        await gw.recv_dispatch("GUILD_CREATE")
        url = await _upload(api, channel, b"x" * 1000)
        assert (await gw.recv_dispatch("MESSAGE_CREATE"))["d"]["content"] == "f"
        for i in range(20):
            reply = await api.post(f"/channels/{channel}/messages", json={"content": str(i)})
            assert reply.status == 200, reply.body
            assert (await gw.recv_dispatch("MESSAGE_CREATE"))["d"]["content"] == str(i)
            assert await _download(session, url) == 200
        await gw.close()
        summary = _summary(emu)
        assert summary["total"] == 0 and set(summary.values()) == {0}
        assert emu.stats()["faults_injected"] == 0
        async with session.get(f"{emu.url}/_emulator/chaos") as reply:
            assert (await reply.json())["chaos"] is None


# -- the settings -----------------------------------------------------------------------------


def test_a_rate_sets_every_kind_and_a_mapping_sets_some() -> None:
    every = Chaos.of(0.05)
    assert every is not None and set(every.as_dict()["rates"].values()) == {0.05}
    some = Chaos.of({"rate": 0.01, "socket_drop": 0, "rest_rate_limited": 0.5})
    assert some is not None
    assert some.rate_of("socket_drop") == 0 and some.rate_of("rest_rate_limited") == 0.5
    assert some.rate_of("cdn_truncated") == 0.01
    assert Chaos.of(0) is None and Chaos.of(None) is None and Chaos.of({"rate": 0}) is None
    for bad in (1.5, {"rate": -0.1}, {"bogus": 1}, {"tick": 0, "rate": 0.1}):
        with pytest.raises(ValueError):
            Chaos.of(bad)  # type: ignore[arg-type]


# -- chaos on: each kind happens and is counted -----------------------------------------------


async def test_chaos_with_a_seed_injects_faults_of_every_per_message_kind(
    openapi_spec: OpenAPISpec | None,
) -> None:
    async with _world(openapi_spec, seed=SEED) as (emu, bot, guild_id, channel, api, session):
        gw = await RawGateway.connect(session, emu.url)
        gw.start_heartbeats()
        await gw.identify(bot.token)
        await gw.recv_dispatch("GUILD_CREATE")
        url = await _upload(api, channel, b"y" * 2000)
        emu.set_chaos({"rate": 0.15, **NO_TIMER, "cdn_slow": 0.0})
        statuses = []
        for i in range(150):
            reply = await api.post(f"/channels/{channel}/messages", json={"content": str(i)})
            statuses.append(reply.status)
            if reply.status == 429:
                assert reply.json()["code"] == 20028
                assert reply.header("X-RateLimit-Scope") == "user" and reply.header("Retry-After")
        downloads = [await _download(session, url) for _ in range(150)]
        await gw.close()
        summary = _summary(emu)
        # Only answers a correct client survives: no 401, 403 or 404 from the API.
        assert set(statuses) <= {200, 429, 500, 502, 503, 504}
        assert set(downloads) <= {200, 302, 404, 429, 503, -1}
        for kind in (
            "rest_server_error",
            "rest_server_error_after_write",
            "rest_rate_limited",
            "cdn_server_error",
            "cdn_rate_limited",
            "cdn_redirect",
            "cdn_truncated",
            "cdn_expired",
            "dispatch_withhold",
            "dispatch_duplicate",
            "dispatch_reorder",
            "dispatch_delay",
        ):
            assert summary[kind] > 0, kind
        assert summary["cdn_slow"] == summary["socket_drop"] == summary["guild_outage"] == 0
        stats = emu.stats()
        assert summary["rest_rate_limited"] == statuses.count(429)
        assert summary["cdn_truncated"] == downloads.count(-1)
        assert stats["faults_injected"] == sum(summary[k] for k in summary if k.startswith("rest_"))
        assert summary["dispatch_duplicate"] == stats["gateway"]["faults"]["duplicated"]
        assert summary["total"] == sum(v for k, v in summary.items() if k != "total")


async def test_the_constructor_and_reset_keep_chaos_in_force() -> None:
    async with Emulator(time_scale=TIME_SCALE, chaos={"rest_server_error": 1.0}) as emu:
        bot = emu.create_bot("b")
        headers = {"Authorization": f"Bot {bot.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{emu.url}/api/v10/users/@me") as reply:
                assert reply.status in (500, 502, 503, 504)
            emu.reset()
            assert emu.stats()["faults"]["total"] == 0
            async with session.get(f"{emu.url}/api/v10/users/@me") as reply:
                assert reply.status in (500, 502, 503, 504)
            assert emu.stats()["faults"]["rest_server_error"] == 1
            emu.set_chaos(None)
            async with session.get(f"{emu.url}/api/v10/users/@me") as reply:
                assert reply.status == 200


# -- replay -----------------------------------------------------------------------------------


async def _decisions(openapi_spec: OpenAPISpec | None, seed: int) -> tuple[list[int], ...]:
    async with _world(openapi_spec) as (emu, bot, guild_id, channel, api, session):
        url = await _upload(api, channel, b"z" * 500)
        emu.set_chaos({"rate": 0.2, **NO_TIMER}, seed=seed)
        posts = []
        for i in range(40):
            reply = await api.post(f"/channels/{channel}/messages", json={"content": str(i)})
            posts.append(reply.status)
        gets = [(await api.get("/users/@me")).status for _ in range(20)]
        downloads = [await _download(session, url) for _ in range(40)]
        counted = [v for k, v in sorted(_summary(emu).items())]
        return posts, gets, downloads, counted


async def test_the_same_seed_and_requests_give_the_same_faults(
    openapi_spec: OpenAPISpec | None,
) -> None:
    first = await _decisions(openapi_spec, seed=7)
    again = await _decisions(openapi_spec, seed=7)
    other = await _decisions(openapi_spec, seed=8)
    assert first == again
    assert first != other
    assert len(set(first[0])) > 1 and len(set(first[2])) > 1  # faults happened at all


# -- count and probability together -----------------------------------------------------------


async def test_count_with_probability_fails_at_most_count_then_ends(
    openapi_spec: OpenAPISpec | None,
) -> None:
    async with _world(openapi_spec, seed=SEED) as (emu, bot, guild_id, channel, api, session):
        emu.fail_next("GET", r"/users/@me$", 503, count=2, probability=1.0)
        assert [(await api.get("/users/@me")).status for _ in range(4)] == [503, 503, 200, 200]
        emu.fail_next("GET", r"/users/@me$", 503, count=3, probability=0.5)
        statuses = [(await api.get("/users/@me")).status for _ in range(40)]
        assert statuses.count(503) == 3 and emu.rest.faults == []
        url = await _upload(api, channel, b"c" * 100)
        emu.fail_cdn("server_error", count=2, probability=1.0)
        assert [await _download(session, url) for _ in range(3)] == [503, 503, 200]
        emu.fail_cdn("expired", count=1, probability=0.5)
        downloads = [await _download(session, url) for _ in range(40)]
        assert downloads.count(404) == 1 and emu.cdn.faults == []
        # Without a count, a probability fault lasts until cleared.
        emu.fail_next("GET", r"/users/@me$", 500, probability=1.0)
        assert [(await api.get("/users/@me")).status for _ in range(3)] == [500] * 3
        emu.clear_faults()


# -- the timer's kinds ------------------------------------------------------------------------


async def test_timed_chaos_takes_a_guild_down_and_brings_it_back() -> None:
    chaos = Chaos(guild_outage=1.0, latency=1.0, tick=2.0, outage_seconds=(1.0, 3.0))
    async with Emulator(time_scale=TIME_SCALE, seed=SEED) as emu:
        bot = emu.create_bot("b")
        guild_id = emu.create_guild("g", bots=[bot])
        async with aiohttp.ClientSession() as session:
            gw = await RawGateway.connect(session, emu.url)
            gw.start_heartbeats()
            await gw.identify(bot.token)
            await gw.recv_dispatch("GUILD_CREATE")
            emu.set_chaos(chaos)
            gone = await gw.recv_dispatch("GUILD_DELETE")
            assert gone["d"] == {"id": guild_id, "unavailable": True}
            back = await gw.recv_dispatch("GUILD_CREATE")
            assert back["d"]["id"] == guild_id and back["d"]["unavailable"] is False
            await gw.close()
        summary = _summary(emu)
        assert summary["guild_outage"] >= 1 and summary["latency"] >= 1
        emu.set_chaos(None)
        assert emu.link.latency is None  # a spike in progress ends with chaos


async def test_timed_chaos_drops_sockets_and_the_session_resumes() -> None:
    async with Emulator(time_scale=TIME_SCALE, seed=SEED) as emu:
        bot = emu.create_bot("b")
        emu.create_guild("g", bots=[bot])
        async with aiohttp.ClientSession() as session:
            gw = await RawGateway.connect(session, emu.url)
            gw.start_heartbeats()
            await gw.identify(bot.token)
            ready = (await gw.recv_dispatch("READY"))["d"]
            await gw.recv_dispatch("GUILD_CREATE")
            emu.set_chaos(Chaos(socket_drop=1.0, tick=5.0))
            with pytest.raises(Closed):
                while True:
                    await gw.recv()
            emu.set_chaos(None)
            await gw.close()
            again = await RawGateway.connect(session, emu.url, "/gateway/resume")
            again.start_heartbeats()
            await again.resume(bot.token, ready["session_id"], gw.seq)
            await again.recv_dispatch("RESUMED")
            await again.close()
        assert _summary(emu)["socket_drop"] >= 1
        assert emu.stats()["gateway"]["resumes"] == 1


# -- the admin route --------------------------------------------------------------------------


async def test_the_admin_route_sets_reads_and_clears_chaos() -> None:
    async with Emulator(time_scale=TIME_SCALE) as emu, aiohttp.ClientSession() as session:
        base = f"{emu.url}/_emulator/chaos"
        body = {"rate": 0.02, "socket_drop": 0, "seed": 99}
        async with session.post(base, json=body) as reply:
            assert reply.status == 200
            answer = await reply.json()
        assert answer["seed"] == 99 == emu.seed
        assert answer["chaos"]["rates"]["socket_drop"] == 0
        assert answer["chaos"]["rates"]["cdn_truncated"] == 0.02
        assert emu.chaos is not None and emu.chaos.rate == 0.02
        async with session.get(base) as reply:
            settings = (await reply.json())["chaos"]
            assert settings["rate"] == 0.02
        async with session.post(base, json=settings) as reply:  # an answer can be sent back
            assert (await reply.json())["chaos"] == settings
        for bad in ({"rate": 2}, {"nonsense": 1}):
            async with session.post(base, json=bad) as reply:
                assert reply.status == 400 and "error" in await reply.json()
        async with session.delete(base, json={}) as reply:
            assert (await reply.json())["chaos"] is None
        assert emu.chaos is None
        assert emu.rest.faults == [] and emu.cdn.faults == []
        assert emu.gateway.dispatch_faults() == []


# -- the command line -------------------------------------------------------------------------


async def test_the_command_line_sets_chaos_and_its_seed() -> None:
    code = "from discobase.emulator.cli import main; raise SystemExit(main())"
    args = ["--chaos", "0.05", "--seed", "1234", "--time-scale", "0.01"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code.replace("main()", f"main({args!r})"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        lines: dict[str, str] = {}
        while "DISCOBASE_TIME_SCALE" not in lines:
            raw = await asyncio.wait_for(process.stdout.readline(), WAIT)
            assert raw, "the emulator exited before printing its address"
            key, _, value = raw.decode().strip().partition("=")
            lines[key] = value
        said = ""
        while "chaos" not in said:  # the line that says how to replay the run
            raw = await asyncio.wait_for(process.stderr.readline(), WAIT)
            assert raw, "the emulator said nothing of its chaos"
            said = raw.decode()
        assert "--chaos 0.05 --seed 1234" in said and lines["DISCOBASE_TOKEN"] not in said
        async with aiohttp.ClientSession() as session:
            async with session.get(lines["DISCOBASE_API_URL"] + "/_emulator/chaos") as reply:
                answer = await reply.json()
        assert answer["seed"] == 1234
        assert set(answer["chaos"]["rates"].values()) == {0.05}
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0


# -- the admin API is local in fact -----------------------------------------------------------


async def test_the_admin_api_refuses_a_foreign_host_or_origin() -> None:
    async with Emulator(time_scale=TIME_SCALE) as emu, aiohttp.ClientSession() as session:
        port = emu.port
        for path in ("/_emulator", "/_emulator/stats", "/_emulator/gateway/stats"):
            for host in ("evil.example", f"evil.example:{port}", f"127.0.0.2:{port}"):
                async with session.get(emu.url + path, headers={"Host": host}) as reply:
                    assert reply.status == 403, (path, host)
                    assert reply.content_type == "application/json"
                    assert "error" in await reply.json()
        async with session.post(
            f"{emu.url}/_emulator/reset", json={}, headers={"Host": f"rebound.example:{port}"}
        ) as reply:
            assert reply.status == 403
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            async with session.get(f"{emu.url}/_emulator", headers={"Host": host}) as reply:
                assert reply.status == 200, host
        origin = {"Origin": "http://evil.example"}
        async with session.post(f"{emu.url}/_emulator/reset", json={}, headers=origin) as reply:
            assert reply.status == 403
        own = {"Origin": f"http://127.0.0.1:{port}"}
        async with session.post(f"{emu.url}/_emulator/reset", json={}, headers=own) as reply:
            assert reply.status == 204
        # Discord's own routes are not the admin API's: any Host reaches them.
        async with session.get(f"{emu.url}/api/v10/gateway", headers={"Host": "x"}) as reply:
            assert reply.status == 200


async def test_the_admin_api_refuses_requests_that_are_not_json() -> None:
    async with Emulator(time_scale=TIME_SCALE) as emu, aiohttp.ClientSession() as session:
        bot = emu.create_bot("b")
        gid = emu.create_guild("g", bots=[bot])
        reset = f"{emu.url}/_emulator/reset"
        plain = {"Content-Type": "text/plain"}
        attempts = [
            session.post(reset, data={"data": "true"}),  # a form, as a web page would post
            session.post(reset, data=b'{"data": true}', headers=plain),  # a no-cors fetch
            session.post(reset),  # no body, no type
            session.post(f"{emu.url}/_emulator/gateway/drop"),
            session.delete(f"{emu.url}/_emulator/guilds/{gid}/bots/{bot.id}"),
            session.put(f"{emu.url}/_emulator/link", data=b"{}", headers=plain),
        ]
        for attempt in attempts:
            async with attempt as reply:
                assert reply.status == 415
                assert "application/json" in (await reply.json())["error"]
        assert emu.state.bots and bot.id in emu.state.guilds[gid].members
        async with session.post(reset, json={"data": True}) as reply:
            assert reply.status == 204
        assert not emu.state.bots


async def test_bot_tokens_are_given_only_for_one_bot_by_id() -> None:
    async with Emulator(time_scale=TIME_SCALE) as emu, aiohttp.ClientSession() as session:
        bots = [emu.create_bot(f"b{i}") for i in range(3)]
        async with session.get(f"{emu.url}/_emulator/bots") as reply:
            listed = await reply.json()
            raw = await reply.text()
        assert [b["id"] for b in listed] == [b.id for b in bots]
        assert all("token" not in b for b in listed)
        assert not any(b.token in raw for b in bots)
        async with session.get(f"{emu.url}/_emulator/bots/{bots[1].id}") as reply:
            assert (await reply.json())["token"] == bots[1].token
        async with session.get(f"{emu.url}/_emulator/bots/1") as reply:
            assert reply.status == 404
        for path in ("/_emulator", "/_emulator/stats", "/_emulator/guilds"):
            async with session.get(emu.url + path) as reply:
                text = await reply.text()
            assert not any(b.token in text for b in bots), path
