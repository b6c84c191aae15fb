"""HTTPClient over real sockets against a misbehaving Discord; 429s counted server-side.

Buckets are fixed windows that open at their first request, as Discord's are; the server
enforces them and counts every 429, so ``server.rejected == 0`` is the bucket check. The global
limit is a sliding second, checked from the server's arrival log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from discobase.http import HTTPClient, routes
from discobase.http.errors import CloudflareBanned, InvalidToken, RateLimited
from tests.integration.adversarial_server import AdversarialServer, Rule, drop_connection

SCALE = 0.05


@pytest.fixture
async def server() -> AsyncIterator[AdversarialServer]:
    async with AdversarialServer(time_scale=SCALE) as srv:
        yield srv


def client_for(server: AdversarialServer, **kwargs: object) -> HTTPClient:
    return HTTPClient("good-token", api_url=server.url, time_scale=SCALE, **kwargs)  # type: ignore[arg-type]


async def test_cold_burst_one_channel(server: AdversarialServer) -> None:
    async with client_for(server) as http:
        await asyncio.gather(*(http.create_message(1, content=str(i)) for i in range(20)))
        stats = http.stats
    assert server.rejected == 0 and stats.ratelimited == 0
    server.check_limits()
    assert len(server.messages["1"]) == 20
    first = server.arrivals[0].at
    assert server.arrivals[1].at > first  # nothing else went out with the probe


async def test_many_channels_in_parallel(server: AdversarialServer) -> None:
    async with client_for(server) as http:
        await asyncio.gather(
            *(http.create_message(c, content="x") for c in range(1, 41) for _ in range(5))
        )
    assert server.rejected == 0
    server.check_limits()


async def test_shared_hash_and_skewed_reset(server: AdversarialServer) -> None:
    server.reset_skew = -3600.0  # Reset says the window ended an hour ago
    server.rules = [
        Rule("GET", r"/channels/(\d+)", "shared", 4, 5.0),
        Rule("PATCH", r"/channels/(\d+)", "shared", 4, 5.0),
    ]
    async with client_for(server) as http:
        await asyncio.gather(
            *(http.fetch_channel(9) for _ in range(8)),
            *(http.edit_channel(9, position=1) for _ in range(8)),
        )
    assert server.rejected == 0


async def test_hash_change_mid_queue(server: AdversarialServer) -> None:
    rule = Rule("POST", r"/channels/(\d+)/messages", "counter", 5, 5.0)
    rule.hash_of = lambda hits: "hash-a" if hits < 3 else "hash-b"
    server.rules = [rule]
    async with client_for(server) as http:
        await asyncio.gather(*(http.create_message(2, content="x") for _ in range(13)))
        assert http.ratelimiter.stats.hash_changes == 1
    assert server.rejected == 0


async def test_missing_headers_still_one_at_a_time(server: AdversarialServer) -> None:
    server.rules = [Rule("DELETE", r"/channels/(\d+)/messages/(\d+)", "quiet", 50, 1.0, False)]
    async with client_for(server) as http:
        await asyncio.gather(*(http.delete_message(3, 1000 + i) for i in range(6)))
    assert server.rejected == 0
    assert server.max_concurrency == 1


async def test_disagreeing_retry_after_uses_the_larger(server: AdversarialServer) -> None:
    server.inject(
        "GET",
        r"/users/@me",
        lambda r: server.ratelimited(retry_after=2.0, header_retry_after=1.0, scope="shared"),
    )
    async with client_for(server) as http:
        await http.fetch_current_user()
        assert http.ratelimiter.invalid_count == 0
    first, second = server.arrivals
    assert second.at - first.at >= 2.0


async def test_global_429_halts_everyone() -> None:
    # A slower scale: requests already on the wire when the 429 goes out may arrive a little
    # later on a busy machine; 1 Discord second is 200 ms here.
    async with AdversarialServer(time_scale=0.2) as server:
        server.inject(
            "POST",
            r"/channels/\d+/messages",
            lambda r: server.ratelimited(retry_after=2.0, scope="global", is_global=True),
        )
        async with HTTPClient("good-token", api_url=server.url, time_scale=0.2) as http:
            await asyncio.gather(*(http.create_message(c, content="x") for c in range(1, 31)))
            assert http.ratelimiter.stats.global_ratelimited == 1
    assert server.rejected == 1
    rejected_at = next(a.at for a in server.arrivals if a.status == 429)
    # Nothing new starts during the 2 s block (stragglers sent before it get 1 s to arrive).
    late = [a for a in server.arrivals if rejected_at + 1.0 < a.at < rejected_at + 2.0]
    assert not late
    assert sum(len(v) for v in server.messages.values()) == 30


async def test_sublimit_raises_over_max_wait(server: AdversarialServer) -> None:
    def rename_limit(request: web.Request) -> web.Response:
        extra = {"X-RateLimit-Remaining": "4", "X-RateLimit-Limit": "5"}
        return server.ratelimited(retry_after=600.0, scope="user", extra=extra)

    server.inject("PATCH", r"/channels/\d+", rename_limit)
    async with client_for(server) as http:
        with pytest.raises(RateLimited):
            await http.edit_channel(4, name="renamed")
        with pytest.raises(RateLimited):
            await http.edit_channel(4, topic="again")
        await asyncio.gather(*(http.edit_channel(4, position=i) for i in range(3)))
    assert server.rejected == 1


async def test_cloudflare_page_opens_breaker(server: AdversarialServer) -> None:
    server.inject("GET", r"/users/@me", lambda r: server.cloudflare())
    async with client_for(server) as http:
        with pytest.raises(CloudflareBanned):
            await http.fetch_current_user()
        with pytest.raises(CloudflareBanned):
            await http.create_message(1, content="x")
    assert len(server.arrivals) == 1


async def test_invalid_token_fails_all_queued(server: AdversarialServer) -> None:
    async with HTTPClient("bad-token", api_url=server.url, time_scale=SCALE) as http:
        results = await asyncio.gather(
            *(http.create_message(1, content="x") for _ in range(51)), return_exceptions=True
        )
    assert all(isinstance(r, InvalidToken) for r in results)
    assert len(server.arrivals) == 1


async def test_500_after_write_stores_one_message(server: AdversarialServer) -> None:
    server.inject(
        "POST",
        r"/channels/\d+/messages",
        lambda r: web.json_response({"message": "boom", "code": 0}, status=500),
        after_write=True,
    )
    async with client_for(server) as http:
        message = await http.create_message(6, content="once")
        assert http.stats.retries >= 1
    assert len(server.messages["6"]) == 1
    assert message["id"] == server.messages["6"][0]["id"]
    assert server.rejected == 0


async def test_502s_then_success(server: AdversarialServer) -> None:
    server.inject(
        "GET",
        r"/users/@me",
        lambda r: web.json_response({"message": "bad gateway", "code": 0}, status=502),
        count=2,
    )
    async with client_for(server) as http:
        assert await http.fetch_current_user() == {"id": "@me"}
    assert [a.status for a in server.arrivals] == [502, 502, 200]


async def test_dropped_connection_is_retried(server: AdversarialServer) -> None:
    # aiohttp quietly re-sends an idempotent request once when its connection drops, so drop
    # three times to be sure the client's own retry runs too.
    server.inject("GET", r"/users/@me", drop_connection, count=3)
    async with client_for(server) as http:
        assert await http.fetch_current_user() == {"id": "@me"}
        assert http.stats.transport_failures >= 1
    assert [a.status for a in server.arrivals][-1] == 200


async def test_proactive_global_limit_server_side() -> None:
    # A slower scale here: 47 requests per 0.5 s real is easy to keep up with on a busy machine.
    async with AdversarialServer(time_scale=0.5) as srv:
        async with HTTPClient("good-token", api_url=srv.url, time_scale=0.5) as http:
            await asyncio.gather(*(http.create_message(c, content="x") for c in range(1, 121)))
            view = http.ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=1))
        assert srv.rejected == 0
        srv.check_limits()
        assert view.known


async def test_old_message_edit_quota_holds_only_old_edits(server: AdversarialServer) -> None:
    """A 30046 429 on an edit of an old message delays that kind of edit only."""
    server.rules.append(Rule("PATCH", r"/channels/(\d+)/messages/(\d+)", "msg-edit", 50, 5.0))
    server.inject(
        "PATCH",
        r"/channels/\d+/messages/1",
        lambda r: server.ratelimited(retry_after=3.0, code=30046),
    )
    async with client_for(server) as http:
        old = asyncio.ensure_future(http.edit_message(7, 1, content="old"))  # id 1: 2015
        await asyncio.sleep(0.5 * SCALE)  # let the old edit meet its 429 first
        young = await asyncio.gather(
            *(http.edit_message(7, http_now_id(), content="new") for _ in range(3))
        )
        assert await old == {"content": "old"}
        assert all(m == {"content": "new"} for m in young)
        assert http.ratelimiter.stats.sublimited == 1
    assert server.rejected == 1
    old_arrivals = [a.at for a in server.arrivals if a.path.endswith("/messages/1")]
    assert old_arrivals[1] - old_arrivals[0] >= 3.0


def http_now_id() -> int:
    """A snowflake made now: a message younger than an hour."""
    import time

    return (int(time.time() * 1000) - 1_420_070_400_000) << 22
