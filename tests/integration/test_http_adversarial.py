"""HTTPClient over real sockets against a misbehaving Discord; 429s counted server-side.

Buckets are fixed windows that open at their first request, as Discord's are. The server
enforces them, counts every 429 it sends (``server.rejected``) and keeps a ledger of every
bucket window; ``server.check_limits()`` then compares what each window and each sliding
second received with what was allowed (the bucket's limit, 50 per second).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from discobase.http import HTTPClient, routes
from discobase.http.errors import (
    CloudflareBanned,
    HTTPException,
    InvalidToken,
    RateLimited,
    TransportError,
)
from tests.helpers import eventually
from tests.integration.adversarial_server import AdversarialServer, Rule, drop_connection

SCALE = 0.05
# A hang guard, not a measurement: a client that trusted a skewed clock would wait an hour.
GUARD = 30.0


@pytest.fixture
async def server() -> AsyncIterator[AdversarialServer]:
    async with AdversarialServer(time_scale=SCALE) as srv:
        yield srv


def client_for(server: AdversarialServer, **kwargs: object) -> HTTPClient:
    return HTTPClient("good-token", api_url=server.url, time_scale=SCALE, **kwargs)  # type: ignore[arg-type]


def windows_of(server: AdversarialServer, bucket: str, major: str) -> list[int]:
    """Requests each window of one bucket at one resource received, in order."""
    return [w.arrivals for w in server.bucket_windows() if (w.bucket, w.major) == (bucket, major)]


async def test_cold_burst_one_channel(server: AdversarialServer) -> None:
    """Scenario 1: 20 creates at once on an unknown route; one probe, then full windows."""
    server.latency = 0.2 * SCALE  # answers take a fifth of a Discord second
    async with client_for(server) as http:
        await asyncio.gather(*(http.create_message(1, content=str(i)) for i in range(20)))
        stats = http.stats
    assert server.rejected == 0 and stats.ratelimited == 0
    server.check_limits()
    assert len(server.messages["1"]) == 20
    probe, second = server.arrivals[:2]
    assert second.at >= probe.answered  # nothing else went out before the probe's answer
    assert sum(windows_of(server, "msg-create", "1")) == 20


async def test_many_channels_in_parallel(server: AdversarialServer) -> None:
    """Scenario 2: 40 channels x 5 creates; each channel's first request is its own probe."""
    server.latency = 0.2 * SCALE
    async with client_for(server) as http:
        await asyncio.gather(
            *(http.create_message(c, content="x") for c in range(1, 41) for _ in range(5))
        )
    assert server.rejected == 0
    server.check_limits()
    assert len({w.major for w in server.bucket_windows()}) == 40
    for channel in range(1, 41):
        probe, second = [a for a in server.arrivals if a.major == str(channel)][:2]
        assert second.at >= probe.answered  # one probe per channel, then its bucket
    probes = [next(a for a in server.arrivals if a.major == str(c)) for c in range(1, 41)]
    # The probes went out together, not one after another's answer. Counted by overlap,
    # not by a time span: a stalled loop on a busy machine widens any span.
    in_flight = max(sum(q.at <= p.at < q.answered for q in probes) for p in probes)
    assert in_flight >= 20


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
async def test_shared_hash_and_skewed_reset(server: AdversarialServer, skew: float) -> None:
    """Scenario 3 under a skewed clock: two routes on one counter, and ``X-RateLimit-Reset``
    an hour off either way (too early would earn 429s, too late would hang)."""
    server.reset_skew = skew
    server.rules = [
        Rule("GET", r"/channels/(\d+)", "shared", 4, 5.0),
        Rule("PATCH", r"/channels/(\d+)", "shared", 4, 5.0),
    ]
    async with client_for(server) as http:
        await asyncio.wait_for(
            asyncio.gather(
                *(http.fetch_channel(9) for _ in range(8)),
                *(http.edit_channel(9, position=1) for _ in range(8)),
            ),
            GUARD,
        )
    assert server.rejected == 0
    server.check_limits()
    assert sum(windows_of(server, "shared", "9")) == 16


async def test_hash_change_mid_queue(server: AdversarialServer) -> None:
    """Scenario 4: after 3 answers the route names hash B (same counter), 10 more queued."""
    rule = Rule("POST", r"/channels/(\d+)/messages", "counter", 5, 5.0)
    rule.hash_of = lambda hits: "hash-a" if hits < 3 else "hash-b"
    server.rules = [rule]
    async with client_for(server) as http:
        await asyncio.gather(*(http.create_message(2, content="x") for _ in range(13)))
        assert http.ratelimiter.stats.hash_changes == 1
    assert server.rejected == 0
    server.check_limits()


@pytest.mark.slow
async def test_hash_flipping_between_two_counters(server: AdversarialServer) -> None:
    """A route answered by two real counters in turn, each naming its own hash: after a few
    flips the client pins the route to the stricter terms of both; afterwards no 429."""
    rule = Rule("POST", r"/channels/(\d+)/messages", "flip", 5, 5.0)
    rule.hash_of = lambda hits: "fast" if hits % 2 == 0 else "slow"
    rule.counters = {"fast": (5, 1.0), "slow": (2, 3.0)}
    server.rules = [rule]
    async with client_for(server) as http:
        await asyncio.gather(*(http.create_message(3, content="x") for _ in range(20)))
        view = http.ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=3))
    assert view.limit == 2  # the stricter limit, over the longer window
    # Only requests already sent when the route was pinned (the first dozen) may be refused.
    assert all(a.status != 429 for a in server.arrivals[12:])
    assert server.rejected <= 2
    assert not [w for w in server.overfull_windows() if w.starts > server.arrivals[12].at]


async def test_missing_headers_still_one_at_a_time(server: AdversarialServer) -> None:
    """Scenario 5's young deletes: no X-RateLimit-* at all; the client never guesses."""
    server.rules = [Rule("DELETE", r"/channels/(\d+)/messages/(\d+)", "quiet", 50, 1.0, False)]
    async with client_for(server) as http:
        await asyncio.gather(*(http.delete_message(3, 1000 + i) for i in range(6)))
    assert server.rejected == 0
    server.check_limits()
    assert server.max_concurrency == 1


async def test_strict_limit_without_headers_stops_refusing(server: AdversarialServer) -> None:
    """No X-RateLimit-* ever, yet 1 delete per second per channel is enforced: the client
    learns the window from the first 429s and the refusals stop."""
    server.rules = [Rule("DELETE", r"/channels/(\d+)/messages/(\d+)", "strict", 1, 1.0, False)]
    async with client_for(server) as http:
        await asyncio.gather(*(http.delete_message(3, 1000 + i) for i in range(10)))
    assert server.rejected <= 3
    assert all(a.status == 204 for a in server.arrivals[-5:])


async def test_disagreeing_retry_after_uses_the_larger(server: AdversarialServer) -> None:
    """A shared-scope 429 whose header says 1 s and body 2 s: wait 2 s, count nothing."""
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
    server.check_limits()


async def test_429_without_any_wait_is_not_retried_at_once(server: AdversarialServer) -> None:
    """A JSON 429 with no ``Retry-After`` and no ``retry_after``: no instant retry spin."""

    def bare(request: web.Request) -> web.Response:
        body = {"message": "You are being rate limited.", "global": False}
        return web.json_response(body, status=429, headers={"Via": "1.1 google"})

    server.inject("GET", r"/users/@me", bare, count=3)
    async with client_for(server) as http:
        await http.fetch_current_user()
    statuses = [a.status for a in server.arrivals]
    assert statuses == [429, 429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    server.check_limits()


async def test_global_429_halts_everyone(server: AdversarialServer) -> None:
    """Scenario 8: a global 429 (2 s) while 30 writes to 30 channels are under way; the
    refused one and writes to 5 other channels begun once it is known wait out the block."""
    server.inject(
        "POST",
        r"/channels/\d+/messages",
        lambda r: server.ratelimited(retry_after=2.0, scope="global", is_global=True),
    )
    async with client_for(server) as http:
        under_way = asyncio.gather(*(http.create_message(c, content="x") for c in range(1, 31)))
        await eventually(lambda: http.ratelimiter.stats.global_ratelimited == 1, "the 429")
        begun_after = [http.create_message(c, content="y") for c in range(31, 36)]
        await asyncio.gather(under_way, *begun_after)
        assert http.ratelimiter.stats.global_ratelimited == 1
    assert server.rejected == 1
    server.check_limits()
    rejected = next(a for a in server.arrivals if a.status == 429)
    # The 30 first requests were sent before the 429 was known: they may arrive during the
    # block, and on a busy machine as late as a stalled event loop makes them. Anything sent
    # once it was known (the refused write again, the 5 new ones) arrives after the block,
    # which began no earlier than the 429's answer. Order, not a window: a stall only delays.
    firsts = {str(c): next(a for a in server.arrivals if a.major == str(c)) for c in range(1, 31)}
    held = [a for a in server.arrivals if firsts.get(a.major) is not a]
    assert len(held) == 6
    assert all(a.at >= rejected.answered + 2.0 for a in held), (rejected, held)
    assert sum(len(v) for v in server.messages.values()) == 35


async def test_sublimit_raises_over_max_wait(server: AdversarialServer) -> None:
    """Scenario 6: a rename 429s with Remaining 4 and 600 s; other edits go through."""

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
    server.check_limits()


async def test_cloudflare_page_opens_breaker(server: AdversarialServer) -> None:
    """An HTML 429 without Via: the breaker opens and nothing more is sent."""
    server.inject("GET", r"/users/@me", lambda r: server.cloudflare())
    async with client_for(server) as http:
        with pytest.raises(CloudflareBanned):
            await http.fetch_current_user()
        with pytest.raises(CloudflareBanned):
            await http.create_message(1, content="x")
        results = await asyncio.gather(
            *(http.create_message(c, content="x") for c in range(2, 12)), return_exceptions=True
        )
    assert all(isinstance(r, CloudflareBanned) for r in results)
    assert len(server.arrivals) == 1


async def test_invalid_token_fails_all_queued(server: AdversarialServer) -> None:
    """Scenario 15: one 401 reaches the server; the 50 queued behind it fail at once."""
    async with HTTPClient("bad-token", api_url=server.url, time_scale=SCALE) as http:
        results = await asyncio.gather(
            *(http.create_message(1, content="x") for _ in range(51)), return_exceptions=True
        )
    assert all(isinstance(r, InvalidToken) for r in results)
    assert len(server.arrivals) == 1


async def test_500_after_write_stores_one_message(server: AdversarialServer) -> None:
    """Scenario 16: a 500 after the write; the retry's nonce finds the stored message."""
    server.inject("POST", r"/channels/\d+/messages", server.error(500, "boom"), after_write=True)
    async with client_for(server) as http:
        message = await http.create_message(6, content="once")
        assert http.stats.retries >= 1
    assert len(server.messages["6"]) == 1
    assert message["id"] == server.messages["6"][0]["id"]
    assert server.rejected == 0
    server.check_limits()  # the retry was counted by the bucket too, and fit


async def test_post_without_nonce_is_not_retried(server: AdversarialServer) -> None:
    """A message create without ``enforce_nonce`` is sent once, even after a 500."""
    server.inject("POST", r"/channels/\d+/messages", server.error(500, "boom"), after_write=True)
    async with client_for(server) as http:
        route = routes.CREATE_MESSAGE.compile(channel_id=8)
        with pytest.raises(HTTPException) as info:
            await http.request(route, json={"content": "maybe", "nonce": "n1"})
    assert info.value.status == 500
    assert len(server.arrivals) == 1 and len(server.messages["8"]) == 1


async def test_502s_then_success(server: AdversarialServer) -> None:
    server.inject("GET", r"/users/@me", server.error(502, "bad gateway"), count=2)
    async with client_for(server) as http:
        assert await http.fetch_current_user() == {"id": "@me"}
    assert [a.status for a in server.arrivals] == [502, 502, 200]
    server.check_limits()


async def test_dropped_connection_is_retried(server: AdversarialServer) -> None:
    # aiohttp quietly re-sends an idempotent request once when its connection drops, so drop
    # three times to be sure the client's own retry runs too.
    server.inject("GET", r"/users/@me", drop_connection, count=3)
    async with client_for(server) as http:
        assert await http.fetch_current_user() == {"id": "@me"}
        assert http.stats.transport_failures >= 1
    assert [a.status for a in server.arrivals][-1] == 200


async def test_timeout_is_retried_then_typed(server: AdversarialServer) -> None:
    """A hung answer times out (aiohttp's TimeoutError stays inside) and is retried."""
    server.inject("GET", r"/users/@me", server.stall(2.0), count=1)
    async with client_for(server, timeout=0.3) as http:
        assert await http.fetch_current_user() == {"id": "@me"}
        # At least the hung attempt: an event loop stalled past 0.3 s on a busy machine
        # times out a healthy retry as well, and that one is retried too.
        assert http.stats.transport_failures >= 1
    server.inject("GET", r"/users/@me", server.stall(2.0), count=4)
    async with client_for(server, timeout=0.2, max_retries=1) as http:
        with pytest.raises(TransportError) as info:
            await http.fetch_current_user()
    assert info.value.status is None and "good-token" not in str(info.value)


async def test_refused_connection_is_a_typed_error() -> None:
    """Nobody listening: TransportError after the retries, never an aiohttp error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with HTTPClient(
        "good-token", api_url=f"http://127.0.0.1:{port}", time_scale=SCALE, max_retries=2
    ) as http:
        with pytest.raises(TransportError) as info:
            await http.fetch_current_user()
        assert http.stats.transport_failures == 3
    assert "good-token" not in str(info.value) and "good-token" not in repr(info.value)


@pytest.mark.slow
async def test_proactive_global_limit_server_side() -> None:
    """Scenario 9: 120 creates to 120 channels; at most 50 in any sliding second."""
    # A slower scale here: 47 requests per 0.5 s real is easy to keep up with on a busy machine.
    async with AdversarialServer(time_scale=0.5) as srv:
        async with HTTPClient("good-token", api_url=srv.url, time_scale=0.5) as http:
            await asyncio.gather(*(http.create_message(c, content="x") for c in range(1, 121)))
            view = http.ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=1))
        assert srv.rejected == 0
        srv.check_limits()
        assert srv.max_in_window(1.0) <= 47  # the client's own cap, under Discord's 50
        assert view.known


async def test_old_message_edit_quota_holds_only_old_edits(server: AdversarialServer) -> None:
    """Scenario 7: a 30046 429 on an edit of an old message delays that kind of edit only."""
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
    server.check_limits()
    old_arrivals = [a.at for a in server.arrivals if a.path.endswith("/messages/1")]
    assert old_arrivals[1] - old_arrivals[0] >= 3.0


def http_now_id() -> int:
    """A snowflake made now: a message younger than an hour."""
    import time

    return (int(time.time() * 1000) - 1_420_070_400_000) << 22
