"""The rate limiter against a fake Discord on a manual clock (design doc §4, REST scenarios).

Nothing here sleeps for real: the limiter and the fake server share a ManualClock, and
``run`` advances it from one timer to the next until every request has finished.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from discobase.http import ManualClock, RateLimiter, routes
from discobase.http.errors import (
    CloudflareBanned,
    InvalidRequestLimit,
    InvalidToken,
    RateLimited,
)
from discobase.http.routes import CompiledRoute

VIA = {"via": "1.1 google"}


@dataclass
class Window:
    count: int = 0
    ends: float = 0.0


@dataclass
class FakeDiscord:
    """Fixed-window buckets per (hash, majors), a sliding global limit, and a log."""

    clock: ManualClock
    limits: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    default: tuple[int, float] = (5, 5.0)
    global_limit: int = 50
    with_headers: Callable[[CompiledRoute], bool] = lambda route: True
    hash_of: Callable[[CompiledRoute, int], str | None] | None = None
    windows: dict[tuple[str, Any], Window] = field(default_factory=dict)
    arrivals: list[tuple[float, CompiledRoute]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    hook: Callable[[CompiledRoute, int], tuple[int, dict[str, str], Any] | None] | None = None
    # Which counter (name, limit, period) answers the index-th arrival; default: bucket_of.
    counter_of: Callable[[CompiledRoute, int], tuple[str, int, float]] | None = None
    remaining_lie: int = 0  # added to X-RateLimit-Remaining (headers that disagree)
    exact_retry_after: bool = False  # Retry-After to the millisecond, not in whole seconds

    @property
    def rejected(self) -> int:
        return self.statuses.count(429)

    def bucket_of(self, route: CompiledRoute) -> tuple[str, int, float]:
        base = f"{route.method} {route.route.template}"
        if route.key in self.limits:
            return self.limits[route.key]
        if base in self.limits:
            return self.limits[base]
        return (base, *self.default)

    def global_count(self, now: float) -> int:
        return sum(1 for t, _ in self.arrivals if t > now - 1.0)

    def handle(self, route: CompiledRoute) -> tuple[int, dict[str, str], Any]:
        now = self.clock.now()
        index = len(self.arrivals)
        self.arrivals.append((now, route))
        if self.hook is not None:
            forced = self.hook(route, index)
            if forced is not None:
                self.statuses.append(forced[0])
                return forced
        if self.global_count(now) > self.global_limit:
            self.statuses.append(429)
            body = {"message": "global", "retry_after": 1.0, "global": True}
            return 429, {**VIA, "x-ratelimit-global": "true", "retry-after": "1"}, body
        if self.counter_of is not None:
            name, limit, period = self.counter_of(route, index)
        else:
            name, limit, period = self.bucket_of(route)
        window = self.windows.setdefault((name, route.majors), Window())
        if now >= window.ends:
            window.count, window.ends = 0, now + period
        reset_after = window.ends - now
        bucket_hash = name if self.hash_of is None else self.hash_of(route, index)
        headers = dict(VIA)
        if self.with_headers(route):
            headers.update(
                {
                    "x-ratelimit-limit": str(limit),
                    "x-ratelimit-reset-after": f"{reset_after:.3f}",
                    # A wall clock far off ours: the limiter must not use it.
                    "x-ratelimit-reset": str(now + 86_400.0),
                }
            )
            if bucket_hash is not None:
                headers["x-ratelimit-bucket"] = bucket_hash
        if window.count >= limit:
            # Discord's Retry-After is whole seconds; some servers say the exact wait.
            retry_after = str(int(reset_after) + 1)
            if self.exact_retry_after:
                retry_after = f"{reset_after:.3f}"
            headers.update(
                {
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-scope": "user",
                    "retry-after": retry_after,
                }
            )
            self.statuses.append(429)
            return 429, headers, {"message": "limited", "retry_after": reset_after, "global": False}
        window.count += 1
        if self.with_headers(route):
            headers["x-ratelimit-remaining"] = str(limit - window.count + self.remaining_lie)
        self.statuses.append(200)
        return 200, headers, {"id": "1"}

    def max_per_window(self, period: float = 1.0) -> int:
        times = sorted(t for t, _ in self.arrivals)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - period:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


async def pause(clock: ManualClock, seconds: float) -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock.call_later(seconds, lambda: future.done() or future.set_result(None))
    await future


async def call(
    limiter: RateLimiter,
    server: FakeDiscord,
    route: CompiledRoute,
    *,
    latency: float | Callable[[], tuple[float, float]] = 0.02,
    started: list[float] | None = None,
) -> int:
    """Send one request the way the client does; return the final status."""
    front = False
    while True:
        permit = await limiter.acquire(route, front=front)
        front = True
        permit.mark_sent()
        if started is not None:
            started.append(server.clock.now())
        there, back = latency() if callable(latency) else (latency / 2, latency / 2)
        server.in_flight += 1
        server.max_in_flight = max(server.max_in_flight, server.in_flight)
        await pause(server.clock, there)
        status, headers, body = server.handle(route)
        server.in_flight -= 1
        await pause(server.clock, back)
        if status == 401:
            limiter.on_response(permit, status, headers, body)
            raise InvalidToken("401", status=401)
        if not limiter.on_response(permit, status, headers, body):
            return status


async def run(clock: ManualClock, coros: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run the coroutines to completion, moving the clock from timer to timer."""
    # Outside asyncio's debug mode (on for the suite): debug mode records where each of the
    # simulation's ~70,000 callbacks was scheduled, a stack walk each, which made this file
    # 12 times slower (9 s -> 104 s for tests/unit), and its slow-callback check times the
    # wall clock, which a ManualClock simulation does not use.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    try:
        tasks = [asyncio.ensure_future(c) for c in coros]
        for _ in range(200_000):
            await clock.settle()
            if all(t.done() for t in tasks):
                break
            deadline = clock.next_deadline
            assert deadline is not None, "deadlock: tasks wait and no timer is pending"
            await clock.advance(max(0.0, deadline - clock.now()))
        return [t.exception() or t.result() for t in tasks]
    finally:
        loop.set_debug(debug)


def create(channel: int | str) -> CompiledRoute:
    return routes.CREATE_MESSAGE.compile(channel_id=channel)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limiter(clock: ManualClock) -> RateLimiter:
    return RateLimiter(clock=clock)


async def test_cold_burst_probes_one_then_fills_windows(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    """Scenario 1: 20 creates at once on an unknown route."""
    server = FakeDiscord(clock)
    start = clock.now()
    results = await run(clock, [call(limiter, server, create(1)) for _ in range(20)])
    assert results == [200] * 20
    assert server.rejected == 0
    first_answer = server.arrivals[0][0] + 0.01
    assert sum(1 for t, _ in server.arrivals if t <= first_answer) == 1
    assert server.max_per_window(5.0) <= 5
    assert clock.now() - start < 4 * 5.0 + 1.0
    view = limiter.view(create(1))
    assert view.known and view.limit == 5 and view.bucket_hash is not None


async def test_resources_probe_in_parallel(clock: ManualClock, limiter: RateLimiter) -> None:
    """Scenario 2: 40 channels x 5 creates; each channel's first request goes out at once."""
    server = FakeDiscord(clock)
    start = clock.now()
    coros = [call(limiter, server, create(c)) for c in range(40) for _ in range(5)]
    results = await run(clock, coros)
    assert results == [200] * 200
    assert server.rejected == 0
    first_wave = [t for t, _ in server.arrivals if t <= start + 0.01]
    assert len(first_wave) == 40
    assert server.max_per_window(1.0) <= 47
    # 200 sends at 47/s: global-bounded, well within one 5 s window (plus a last partial second).
    assert clock.now() - start < 5.5


async def test_shared_hash_counts_routes_together(clock: ManualClock, limiter: RateLimiter) -> None:
    """Scenario 3: two routes share one server counter under one hash."""
    shared = ("shared-hash", 5, 5.0)
    server = FakeDiscord(
        clock,
        limits={"GET /channels/{channel_id}": shared, "PATCH /channels/{channel_id}": shared},
    )
    get = routes.GET_CHANNEL.compile(channel_id=7)
    patch = routes.UPDATE_CHANNEL.compile(channel_id=7)
    coros = [call(limiter, server, r) for _ in range(10) for r in (get, patch)]
    results = await run(clock, coros)
    assert results == [200] * 20
    assert server.rejected == 0
    assert server.max_per_window(5.0) <= 5
    assert limiter.view(get) == limiter.view(patch)
    assert limiter.view(get).in_flight == 0  # merging the probes' buckets counted each once


async def test_hash_change_rehomes_queued_requests(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    """Scenario 4: after 3 answers the route reports hash B; 10 more are queued."""
    server = FakeDiscord(clock, hash_of=lambda route, index: "A" if index < 3 else "B")
    results = await run(clock, [call(limiter, server, create(1)) for _ in range(13)])
    assert results == [200] * 13
    assert server.rejected == 0
    assert server.max_per_window(5.0) <= 5
    assert limiter.view(create(1)).bucket_hash == "B"
    assert limiter.stats.hash_changes == 1


async def test_delete_age_variants_without_headers(clock: ManualClock) -> None:
    """Scenario 5: three delete buckets by age; young deletes answer with no headers."""
    limiter = RateLimiter(clock=clock)
    now_ms = 1_800_000_000_000.0

    def message(age_ms: float, n: int) -> int:
        return (int(now_ms - age_ms - routes.DISCORD_EPOCH_MS) << 22) + n

    ids = [message(2_000, n) for n in range(6)]
    ids += [message(3_600_000, n) for n in range(6)]
    ids += [message(20 * 86_400_000, n) for n in range(6)]
    delete_routes = [
        routes.DELETE_MESSAGE.compile(
            routes.message_delete_variant(i, now_ms), channel_id=5, message_id=i
        )
        for i in ids
    ]
    assert {r.variant for r in delete_routes} == {"young", "", "ancient"}
    base = "DELETE /channels/{channel_id}/messages/{message_id}"
    server = FakeDiscord(
        clock,
        limits={
            base + ":young": ("young-hash", 50, 1.0),
            base: ("mid-hash", 3, 0.333),
            base + ":ancient": ("old-hash", 30, 4.0),
        },
        with_headers=lambda route: route.variant != "young",
    )
    results = await run(clock, [call(limiter, server, r) for r in delete_routes])
    assert results == [200] * 18
    assert server.rejected == 0
    assert limiter.stats.hash_changes <= 3
    young = limiter.view(delete_routes[0])
    assert not young.known and young.in_flight == 0


async def test_sublimit_delays_only_its_variant(clock: ManualClock) -> None:
    """Scenario 6: a rename 429s with remaining 4; plain edits carry on; 600 s > max_wait."""
    limiter = RateLimiter(clock=clock, max_wait=60.0)
    renames = 0

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        nonlocal renames
        if route.variant != "name":
            return None
        renames += 1
        if renames < 3:
            return None
        headers = {
            **VIA,
            "x-ratelimit-limit": "5",
            "x-ratelimit-remaining": "4",
            "x-ratelimit-reset-after": "4.0",
            "x-ratelimit-bucket": "channel-edit",
            "x-ratelimit-scope": "user",
            "retry-after": "600",
        }
        return 429, headers, {"message": "limited", "retry_after": 600.0, "global": False}

    server = FakeDiscord(clock, hook=hook, default=(10, 15.0))
    rename = routes.UPDATE_CHANNEL.compile("name", channel_id=9)
    plain = routes.UPDATE_CHANNEL.compile(channel_id=9)
    first = await run(clock, [call(limiter, server, rename) for _ in range(2)])
    assert first == [200, 200]
    third = await run(clock, [call(limiter, server, rename)])
    assert isinstance(third[0], RateLimited) and third[0].scope == "sublimit"
    before = clock.now()
    later = await run(
        clock, [call(limiter, server, plain) for _ in range(3)] + [call(limiter, server, rename)]
    )
    assert later[:3] == [200, 200, 200]
    assert isinstance(later[3], RateLimited)
    assert clock.now() - before < 1.0
    assert server.rejected == 1
    assert limiter.view(rename).sublimited_in > 500


async def test_old_message_edit_quota_is_a_sublimit(clock: ManualClock) -> None:
    """Scenario 7: 30046 on edits of an old message; other edits go on, no retry spin."""
    limiter = RateLimiter(clock=clock)
    old_edits = 0

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        nonlocal old_edits
        if route.variant != "old":
            return None
        old_edits += 1
        if old_edits != 3:
            return None
        body = {"message": "old", "code": 30046, "retry_after": 30.0, "global": False}
        return 429, {**VIA, "retry-after": "30"}, body

    server = FakeDiscord(clock, hook=hook, default=(50, 5.0))

    def edit(channel: int, variant: str) -> CompiledRoute:
        return routes.UPDATE_MESSAGE.compile(variant, channel_id=channel, message_id=1)

    old = [edit(1, "old") for _ in range(4)]
    fresh = [edit(1, "") for _ in range(6)] + [edit(2, "old") for _ in range(3)]
    started: list[float] = []
    results = await run(clock, [call(limiter, server, r, started=started) for r in old])
    assert results == [200] * 4
    assert server.rejected == 1
    assert limiter.stats.sublimited == 1
    stamp = clock.now()
    results = await run(clock, [call(limiter, server, r) for r in fresh])
    assert results == [200] * 9
    assert clock.now() - stamp < 1.0
    assert server.rejected == 1


async def test_global_429_halts_every_sender(clock: ManualClock, limiter: RateLimiter) -> None:
    """Scenario 8: a global 429 (2.0 s) while 30 writes to 30 channels are in flight."""
    blocked_at: list[float] = []

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 10:
            blocked_at.append(clock.now())
            headers = {**VIA, "x-ratelimit-global": "true", "retry-after": "2"}
            return 429, headers, {"message": "global", "retry_after": 2.0, "global": True}
        return None

    server = FakeDiscord(clock, hook=hook)
    started: list[float] = []
    coros = [call(limiter, server, create(c), started=started) for c in range(30)]
    coros += [call(limiter, server, create(c), started=started) for c in range(30)]
    results = await run(clock, coros)
    assert results == [200] * 60
    answered = blocked_at[0] + 0.01
    in_flight_then = sum(1 for t in started if t <= answered) - 10
    assert server.rejected <= max(1, in_flight_then)
    assert not [t for t in started if answered < t < answered + 2.0]
    assert limiter.stats.global_ratelimited == server.rejected


async def test_proactive_global_limit(clock: ManualClock, limiter: RateLimiter) -> None:
    """Scenario 9: 600 creates to 600 channels stay under 50 in every sliding second."""
    server = FakeDiscord(clock)
    start = clock.now()
    results = await run(clock, [call(limiter, server, create(c)) for c in range(600)])
    assert results == [200] * 600
    assert server.rejected == 0
    assert server.max_per_window(1.0) <= 47
    elapsed = clock.now() - start
    assert 600 / elapsed >= 0.9 * 47


async def test_invalid_token_fails_everything_at_once(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    """Scenario 15: a 401 on the first request; the 50 queued behind it never reach the server."""

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        return 401, {}, {"message": "401: Unauthorized", "code": 0}

    server = FakeDiscord(clock, hook=hook)
    results = await run(clock, [call(limiter, server, create(1)) for _ in range(51)])
    assert all(isinstance(r, InvalidToken) for r in results)
    assert len(server.arrivals) == 1
    with pytest.raises(InvalidToken):
        await limiter.acquire(create(2))


@pytest.mark.parametrize(("header", "body"), [("3", 2.5), ("2", 2.75)])
async def test_shared_scope_waits_without_counting(
    clock: ManualClock, header: str, body: float
) -> None:
    """A shared 429 waits max(Retry-After, retry_after) and is not an invalid request."""
    limiter = RateLimiter(clock=clock)
    seen: list[float] = []

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        seen.append(clock.now())
        if index == 0:
            headers = {**VIA, "x-ratelimit-scope": "shared", "retry-after": header}
            return 429, headers, {"message": "shared", "retry_after": body, "global": False}
        return None

    server = FakeDiscord(clock, hook=hook)
    results = await run(clock, [call(limiter, server, create(1))])
    assert results == [200]
    assert seen[1] - seen[0] >= max(float(header), body)
    assert limiter.invalid_count == 0
    assert limiter.stats.shared_ratelimited == 1


async def test_fractional_reset_after_is_kept(clock: ManualClock, limiter: RateLimiter) -> None:
    """A 0.333 s window refills after 0.333 s (+margin), not after 0 s or 1 s."""
    server = FakeDiscord(clock, default=(1, 0.333))
    started: list[float] = []
    results = await run(
        clock, [call(limiter, server, create(1), latency=0.0, started=started) for _ in range(3)]
    )
    assert results == [200] * 3
    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    assert all(0.333 <= g < 0.45 for g in gaps), gaps


async def test_cloudflare_429_opens_breaker(clock: ManualClock, limiter: RateLimiter) -> None:
    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        return 429, {"retry-after": "120", "content-type": "text/html"}, b"<html>banned</html>"

    server = FakeDiscord(clock, hook=hook)
    results = await run(clock, [call(limiter, server, create(1))])
    assert isinstance(results[0], CloudflareBanned)
    with pytest.raises(CloudflareBanned):
        await limiter.acquire(create(2))
    await clock.advance(121.0)
    permit = await limiter.acquire(create(2))
    limiter.release(permit)
    assert len(server.arrivals) == 1


async def test_429_without_via_is_cloudflare(clock: ManualClock, limiter: RateLimiter) -> None:
    """No Via and not Discord's body (Cloudflare's JSON error shape): the breaker opens."""

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        body = {"title": "Error 1015", "error_code": 1015, "cloudflare_error": True}
        return 429, {"retry-after": "5"}, body

    server = FakeDiscord(clock, hook=hook)
    results = await run(clock, [call(limiter, server, create(1))])
    assert isinstance(results[0], CloudflareBanned)
    assert limiter.stats.cloudflare == 1


async def test_discord_429_without_via_is_not_a_ban(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    """A proxy stripped Via, but the body is Discord's: wait and retry, no breaker."""

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 0:
            body = {"message": "x", "retry_after": 5.0, "global": False}
            return 429, {"retry-after": "5", "x-ratelimit-scope": "user"}, body
        return None

    server = FakeDiscord(clock, hook=hook)
    started: list[float] = []
    assert await run(clock, [call(limiter, server, create(1), started=started)]) == [200]
    assert started[1] - started[0] >= 5.0
    assert limiter.stats.cloudflare == 0


async def test_invalid_counter_warns_then_refuses(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(clock=clock, invalid_warn=3, invalid_refuse=5)

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        return 403, dict(VIA), {"message": "Missing Access", "code": 50001}

    server = FakeDiscord(clock, hook=hook)
    for _ in range(5):
        assert await run(clock, [call(limiter, server, create(1))]) == [403]
    assert any("invalid" in r.message for r in caplog.records)
    with pytest.raises(InvalidRequestLimit):
        await limiter.acquire(create(1))
    await clock.advance(601.0)
    limiter.release(await limiter.acquire(create(1)))


async def test_cancelled_waiter_gives_its_place_back(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    route = create(1)
    first = await limiter.acquire(route)
    queued = asyncio.ensure_future(limiter.acquire(route))
    behind = asyncio.ensure_future(limiter.acquire(route))
    await clock.settle()
    assert limiter.view(route).queued == 2
    queued.cancel()
    await clock.settle()
    assert limiter.view(route).queued == 1
    limiter.release(first)  # never sent: the probe slot comes back
    await clock.settle()
    assert behind.done()
    limiter.release(behind.result())


async def test_unsent_permit_returns_bucket_and_global_slots(clock: ManualClock) -> None:
    limiter = RateLimiter(clock=clock, global_limit=2)
    server = FakeDiscord(clock)
    await run(clock, [call(limiter, server, create(1))])
    await clock.advance(1.01)  # a second (and a millisecond) later
    route = create(1)
    remaining = limiter.view(route).remaining
    permits = [await limiter.acquire(route), await limiter.acquire(create(2))]
    assert limiter.capacity(create(3)) == 0
    assert limiter.view(route).remaining == remaining - 1
    for permit in permits:
        limiter.release(permit)
    assert limiter.view(route).remaining == remaining
    assert limiter.capacity(create(3)) == 1  # unknown bucket: one probe


async def test_try_acquire_and_next_slot(clock: ManualClock, limiter: RateLimiter) -> None:
    server = FakeDiscord(clock, default=(2, 5.0))
    route = create(1)
    await run(clock, [call(limiter, server, route) for _ in range(2)])
    assert limiter.try_acquire(route) is None
    assert 0 < limiter.next_slot(route) <= 5.1
    await clock.advance(limiter.next_slot(route))
    permit = limiter.try_acquire(route)
    assert permit is not None
    limiter.release(permit)


async def test_global_wait_over_max_wait_raises(clock: ManualClock) -> None:
    limiter = RateLimiter(clock=clock, max_wait=10.0)

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 0:
            headers = {**VIA, "x-ratelimit-global": "true", "retry-after": "30"}
            return 429, headers, {"message": "g", "retry_after": 30.0, "global": True}
        return None

    server = FakeDiscord(clock, hook=hook)
    results = await run(clock, [call(limiter, server, create(1))])
    assert isinstance(results[0], RateLimited) and results[0].scope == "global"
    with pytest.raises(RateLimited):
        await limiter.acquire(create(2))


@pytest.mark.parametrize(("header", "wait"), [("3", 2.5), ("4", 4.0)])
async def test_drained_429_applies_headers_and_retries(
    clock: ManualClock, limiter: RateLimiter, header: str, wait: float
) -> None:
    """Another process spent the bucket: a user 429 with remaining 0 waits, then succeeds.

    A ``Retry-After`` that is the body's 2.5 s rounded up gives way to the exact value (waiting
    out the rounding would lose every refill to the other process); one that says more wins.
    """
    drained = deque([True])

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 0 and drained:
            drained.popleft()
            headers = {
                **VIA,
                "x-ratelimit-limit": "5",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset-after": "2.5",
                "x-ratelimit-bucket": "b",
                "x-ratelimit-scope": "user",
                "retry-after": header,
            }
            return 429, headers, {"message": "x", "retry_after": 2.5, "global": False}
        return None

    server = FakeDiscord(clock, hook=hook)
    started: list[float] = []
    results = await run(clock, [call(limiter, server, create(1), started=started)])
    assert results == [200]
    assert wait <= started[1] - started[0] < wait + 0.5
    assert server.rejected == 1


def test_headers_parse_rejects_garbage() -> None:
    from discobase.http.ratelimit import RateLimitHeaders

    info = RateLimitHeaders.parse(
        {"x-ratelimit-limit": "five", "x-ratelimit-reset-after": "nan", "retry-after": "-1"}
    )
    assert info.limit is None and info.reset_after is None and info.retry_after is None
    assert not info.complete


async def test_idle_buckets_are_forgotten(clock: ManualClock, limiter: RateLimiter) -> None:
    server = FakeDiscord(clock, default=(5, 1.0))
    await run(clock, [call(limiter, server, create(c)) for c in range(600)])
    await clock.advance(2.0)
    await run(clock, [call(limiter, server, create(f"new{c}")) for c in range(600)])
    assert limiter.view(create(0)).limit == 1  # forgotten: back to probing
    assert limiter.view(create("new599")).known
    assert server.rejected == 0


async def test_global_line_is_first_come_first_served(clock: ManualClock) -> None:
    """With the global budget spent, ready buckets get slots in the order they became ready."""
    limiter = RateLimiter(clock=clock, global_limit=2)
    server = FakeDiscord(clock, default=(50, 5.0))
    started: list[tuple[float, Any]] = []

    async def one(channel: int) -> None:
        permit = await limiter.acquire(create(channel))
        started.append((clock.now(), channel))
        permit.mark_sent()
        status, headers, body = server.handle(create(channel))
        limiter.on_response(permit, status, headers, body)

    await run(clock, [one(c) for c in range(6)])
    assert [c for _, c in started] == list(range(6))
    assert server.max_per_window(1.0) <= 2
    assert limiter.capacity(create(99)) == 0  # the last two answers are under a second old
    await clock.advance(1.01)
    assert limiter.capacity(create(99)) == 1  # an unknown bucket: one probe


@pytest.mark.parametrize("seed", range(5))
async def test_jittery_latency_earns_no_429(clock: ManualClock, seed: int) -> None:
    """Answers overtake each other and arrive late (old windows after a refill): no 429."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(clock, default=(5, 2.0))

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.5), rng.uniform(0.0, 1.5)

    coros = [call(limiter, server, create(c), latency=jitter) for c in range(4) for _ in range(40)]
    results = await run(clock, coros)
    assert results == [200] * 160
    assert server.rejected == 0


@pytest.mark.parametrize("seed", range(5))
async def test_jittery_mix_of_shared_changing_and_global(clock: ManualClock, seed: int) -> None:
    """Shared hashes, a hash change mid-run and a tight global cap, under jitter: no 429."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock, global_limit=8)
    shared = ("shared", 4, 1.5)
    server = FakeDiscord(
        clock,
        global_limit=8,
        default=(3, 1.0),
        limits={"GET /channels/{channel_id}": shared, "PATCH /channels/{channel_id}": shared},
        hash_of=lambda route, index: (
            "shared" if route.method != "POST" else ("post-a" if index < 40 else "post-b")
        ),
    )

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.6)

    kinds = [routes.GET_CHANNEL, routes.UPDATE_CHANNEL, routes.CREATE_MESSAGE]
    coros = [
        call(
            limiter, server, rng.choice(kinds).compile(channel_id=rng.randrange(3)), latency=jitter
        )
        for _ in range(150)
    ]
    results = await run(clock, coros)
    assert results == [200] * 150
    assert server.rejected == 0
    assert server.max_per_window(1.0) <= 8


@pytest.mark.parametrize("seed", range(5))
async def test_trickle_across_window_edges_earns_no_429(clock: ManualClock, seed: int) -> None:
    """Requests start at random times, so some land just after a reset (a new window that
    one of our own answers reveals early): narrowing the reset must not refill too soon."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(clock, default=(3, 1.0))

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.12)

    async def later(delay: float) -> int:
        await pause(clock, delay)
        return await call(limiter, server, create(1), latency=jitter)

    results = await run(clock, [later(rng.uniform(0.0, 20.0)) for _ in range(80)])
    assert results == [200] * 80
    assert server.rejected == 0


async def test_429_naming_another_bucket_gates_only_its_variant(clock: ManualClock) -> None:
    """Renames pass under 10-per-15-s headers, then a 429 names a hidden 2-per-10-min bucket."""
    limiter = RateLimiter(clock=clock, max_wait=60.0)
    renames = 0

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        nonlocal renames
        if route.variant != "name":
            return None
        renames += 1
        if renames < 3:
            return None
        headers = {
            **VIA,
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset-after": "590.0",
            "x-ratelimit-bucket": "hidden-renames",
            "x-ratelimit-scope": "user",
            "retry-after": "590",
        }
        return 429, headers, {"message": "limited", "retry_after": 590.0, "global": False}

    server = FakeDiscord(
        clock, hook=hook, limits={"PATCH /channels/{channel_id}": ("edits", 10, 15.0)}
    )
    rename = routes.UPDATE_CHANNEL.compile("name", channel_id=1)
    plain = routes.UPDATE_CHANNEL.compile(channel_id=1)
    assert await run(clock, [call(limiter, server, rename) for _ in range(2)]) == [200, 200]
    (third,) = await run(clock, [call(limiter, server, rename)])
    assert isinstance(third, RateLimited) and third.scope == "sublimit"
    assert limiter.view(rename).bucket_hash == "edits"  # not re-homed onto the hidden bucket
    results = await run(clock, [call(limiter, server, plain) for _ in range(3)])
    assert results == [200] * 3
    (fourth,) = await run(clock, [call(limiter, server, rename)])
    assert isinstance(fourth, RateLimited)
    assert server.rejected == 1


async def test_window_longer_than_max_wait_raises(clock: ManualClock) -> None:
    limiter = RateLimiter(clock=clock, max_wait=10.0)
    server = FakeDiscord(clock, default=(1, 600.0))
    assert await run(clock, [call(limiter, server, create(1))]) == [200]
    (second,) = await run(clock, [call(limiter, server, create(1))])
    assert isinstance(second, RateLimited) and second.retry_after > 500
    assert len(server.arrivals) == 1


async def test_answers_without_headers_after_a_refill_do_not_stall(clock: ManualClock) -> None:
    """A known bucket whose next window's answers carry no headers (5xx pages, young deletes
    misfiled) still refills: one window after the last answer."""
    limiter = RateLimiter(clock=clock)
    headers_on = True
    server = FakeDiscord(clock, default=(2, 1.0), with_headers=lambda route: headers_on)
    assert await run(clock, [call(limiter, server, create(1)) for _ in range(2)]) == [200] * 2
    headers_on = False
    await clock.advance(2.0)
    results = await run(clock, [call(limiter, server, create(1)) for _ in range(6)])
    assert results == [200] * 6
    assert server.rejected == 0


@pytest.mark.parametrize("seed", range(5))
async def test_hash_flipping_between_two_counters_pins_the_stricter(
    clock: ManualClock, seed: int
) -> None:
    """The route answers from two real counters in turn (A 5/1 s, B 2/3 s), each naming its
    own hash: after a few flips the limiter pins the route to the stricter terms of both and
    stops remapping; from then on neither counter refuses anything."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(
        clock, counter_of=lambda route, index: ("A", 5, 1.0) if index % 2 == 0 else ("B", 2, 3.0)
    )

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.05)

    results = await run(
        clock, [call(limiter, server, create(1), latency=jitter) for _ in range(30)]
    )
    assert results == [200] * 30
    # The fifth flip pins the route; only a request already sent by then may be refused.
    assert server.rejected <= 1
    assert 429 not in server.statuses[12:], server.statuses
    assert limiter.stats.hash_changes <= 5
    view = limiter.view(create(1))
    assert view.limit == 2 and view.window >= 2.9


async def test_429_naming_no_wait_is_not_retried_at_once(clock: ManualClock) -> None:
    """A 429 with neither Retry-After nor retry_after (discordrb read it as 0 s and spun)."""
    limiter = RateLimiter(clock=clock)

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 0:
            return 429, dict(VIA), {"message": "limited", "global": False}
        return None

    server = FakeDiscord(clock, hook=hook)
    started: list[float] = []
    assert await run(clock, [call(limiter, server, create(1), started=started)]) == [200]
    assert started[1] - started[0] >= 1.0
    assert server.rejected == 1


@pytest.mark.parametrize("code", [20028, 30046, 40062])
async def test_sublimit_codes_hold_only_their_variant(clock: ManualClock, code: int) -> None:
    """A 429 with a sub-limit code gates its route variant at its resource for the whole
    ``retry_after``; the bucket's other variants wait only for its window, and the same
    variant elsewhere goes on at once."""
    limiter = RateLimiter(clock=clock)

    base = "PATCH /channels/{channel_id}/messages/{message_id}"

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 2:
            # Remaining 0 and the bucket's own hash: only the code says "sub-limit".
            headers = {
                **VIA,
                "x-ratelimit-limit": "50",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset-after": "4.0",
                "x-ratelimit-bucket": base,
                "x-ratelimit-scope": "user",
                "retry-after": "30",
            }
            return 429, headers, {"message": "x", "code": code, "retry_after": 30.0}
        return None

    server = FakeDiscord(clock, hook=hook, default=(50, 5.0))

    def edit(variant: str, channel: int) -> CompiledRoute:
        return routes.UPDATE_MESSAGE.compile(variant, channel_id=channel, message_id=1)

    # Both variants learn the one hash they share.
    assert await run(clock, [call(limiter, server, edit(v, 1)) for v in ("old", "")]) == [200] * 2
    assert limiter.view(edit("old", 1)).bucket_hash == limiter.view(edit("", 1)).bucket_hash
    start = clock.now()

    async def later(route: CompiledRoute, started: list[float]) -> int:
        await pause(clock, 0.1)  # after the first old edit met its 429
        return await call(limiter, server, route, started=started)

    gated: list[float] = []
    free: list[float] = []
    coros = [call(limiter, server, edit("old", 1), started=gated), later(edit("old", 1), gated)]
    coros += [later(edit("", 1), free), later(edit("old", 2), free)]
    assert await run(clock, coros) == [200] * 4
    assert server.rejected == 1 and limiter.stats.sublimited == 1
    # The bucket itself is drained (Remaining 0) only until its window ends (5 s at most).
    assert all(t < start + 5.5 for t in free), (start, free, gated)
    assert sorted(gated)[1] >= start + 30.0


@pytest.mark.parametrize(
    ("headers", "body_global"),
    [
        ({"x-ratelimit-global": "true"}, False),
        ({"x-ratelimit-scope": "global"}, False),
        ({}, True),
    ],
)
async def test_any_global_signal_halts_everyone(
    clock: ManualClock, headers: dict[str, str], body_global: bool
) -> None:
    """Headers and body disagree on ``global``: any one of the three signals is enough."""
    limiter = RateLimiter(clock=clock)

    def hook(route: CompiledRoute, index: int) -> tuple[int, dict[str, str], Any] | None:
        if index == 0:
            answer = {**VIA, **headers, "retry-after": "2"}
            return 429, answer, {"message": "g", "retry_after": 2.0, "global": body_global}
        return None

    server = FakeDiscord(clock, hook=hook)
    started: list[float] = []
    results = await run(
        clock, [call(limiter, server, create(c), started=started) for c in range(5)]
    )
    assert results == [200] * 5
    rejected_at = server.arrivals[0][0]
    late = [t for t in started if rejected_at + 0.01 < t < rejected_at + 2.0]
    assert not late
    assert limiter.stats.global_ratelimited == 1


async def test_view_reports_the_learned_bucket(clock: ManualClock, limiter: RateLimiter) -> None:
    """view(): learned limit, remaining, reset in, in flight, queued; capacity agrees."""
    server = FakeDiscord(clock, default=(5, 5.0))
    route = create(1)
    unknown = limiter.view(route)
    assert (unknown.known, unknown.limit, unknown.remaining, unknown.queued) == (False, 1, 1, 0)
    assert limiter.capacity(route) == 1
    assert await run(clock, [call(limiter, server, route, latency=0.0) for _ in range(2)]) == [
        200,
        200,
    ]
    view = limiter.view(route)
    assert view.known and view.bucket_hash is not None
    assert (view.limit, view.remaining, view.in_flight, view.queued) == (5, 3, 0, 0)
    assert 4.9 <= view.reset_in <= 5.1
    assert limiter.capacity(route) == 3
    held = [await limiter.acquire(route) for _ in range(3)]
    waiting = asyncio.ensure_future(limiter.acquire(route))
    await clock.settle()
    view = limiter.view(route)
    assert (view.remaining, view.in_flight, view.queued) == (0, 3, 1)
    assert limiter.capacity(route) == 0
    assert limiter.next_slot(route) == pytest.approx(view.reset_in)
    waiting.cancel()
    for permit in held:
        limiter.release(permit)
    assert limiter.view(route).remaining == 3


async def test_hash_change_moves_every_resource_queue(
    clock: ManualClock, limiter: RateLimiter
) -> None:
    """Scenario 4 across resources: an answer on channel 1 reveals hash B while channel 2 still
    has requests queued under A; channel 2's later requests join that same queue, not a fresh
    probe beside it."""
    server = FakeDiscord(clock, hash_of=lambda route, index: "A" if index < 3 else "B")

    async def later(channel: int) -> int:
        await pause(clock, 2.0)
        return await call(limiter, server, create(channel))

    coros = [call(limiter, server, create(c)) for c in (1, 2) for _ in range(8)]
    coros += [later(c) for c in (1, 2) for _ in range(4)]
    assert await run(clock, coros) == [200] * 24
    assert server.rejected == 0
    assert limiter.view(create(2)).bucket_hash == "B"


@pytest.mark.parametrize("seed", range(10))
async def test_hash_change_onto_a_known_bucket_merges_conservatively(
    clock: ManualClock, seed: int
) -> None:
    """PATCH channel has its own counter, then Discord folds it into GET's (its answers name
    GET's hash, first on a 429): the two learned buckets merge, keeping the smaller remaining
    and the later reset, and the one counter then sees no more than its limit."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    patches = 0

    def counter_of(route: CompiledRoute, index: int) -> tuple[str, int, float]:
        nonlocal patches
        if route.method == "PATCH":
            patches += 1
            if patches <= 6:
                return ("p", 5, 2.0)
        return ("g", 5, 2.0)

    server = FakeDiscord(clock, counter_of=counter_of)
    # Two channels: the answer that reveals the fold comes from one, and the other's
    # buckets merge on what the limiter already knew (no headers of their own).
    kinds = [
        r.compile(channel_id=c) for r in (routes.GET_CHANNEL, routes.UPDATE_CHANNEL) for c in (3, 4)
    ]

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.1)

    async def later(route: CompiledRoute, delay: float) -> int:
        await pause(clock, delay)
        return await call(limiter, server, route, latency=jitter)

    coros = [later(rng.choice(kinds), rng.uniform(0.0, 10.0)) for _ in range(100)]
    assert await run(clock, coros) == [200] * 100
    # PATCHes already on the wire when the counters fold may be refused (they were sent
    # on PATCH's own budget); anything sent after the first refusal came back is not.
    refused = [t for (t, _), s in zip(server.arrivals, server.statuses, strict=True) if s == 429]
    assert all(t <= refused[0] + 0.2 for t in refused), refused
    for channel in (3, 4):
        views = {limiter.view(r) for r in kinds if r.majors == (("channel_id", str(channel)),)}
        assert len(views) == 1 and views.pop().in_flight == 0


@pytest.mark.parametrize(
    ("headers", "body", "ban"),
    [
        ({"retry-after": "120"}, {"title": "Error 1015", "error_code": 1015}, 120.0),
        ({**VIA, "retry-after": "30"}, b"<html>Error 1015</html>", 30.0),
        ({}, b"<html>Error 1015</html>", 3600.0),
    ],
    ids=["cloudflare-json-without-via", "html-with-via", "no-retry-after"],
)
async def test_cloudflare_breaker_lasts_its_retry_after_or_an_hour(
    clock: ManualClock, headers: dict[str, str], body: Any, ban: float
) -> None:
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(clock, hook=lambda route, index: (429, headers, body))
    (result,) = await run(clock, [call(limiter, server, create(1))])
    assert isinstance(result, CloudflareBanned) and result.retry_after == pytest.approx(ban)
    await clock.advance(ban - 1.0)
    assert limiter.capacity(create(2)) == 0
    with pytest.raises(CloudflareBanned):
        await limiter.acquire(routes.GET_MY_USER.compile())
    await clock.advance(1.0)
    limiter.release(await limiter.acquire(create(2)))
    assert len(server.arrivals) == 1


async def test_remaining_above_limit_is_not_believed(clock: ManualClock) -> None:
    """Headers that disagree (Remaining 9 of Limit 5): the answering request was counted, so
    at most Limit - 1 remain; the server never sees more than 5 in a window."""
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(clock, default=(5, 5.0), remaining_lie=5)
    results = await run(clock, [call(limiter, server, create(1)) for _ in range(15)])
    assert results == [200] * 15
    assert server.rejected == 0
    assert server.max_per_window(5.0) <= 5


async def test_cancelled_in_the_global_line_wakes_the_next(clock: ManualClock) -> None:
    """A request cancelled while its bucket is ready and it waits for a global slot leaves
    the line, and an unsent permit's global slot is free at once: the next in line takes it
    without waiting for time to pass."""
    limiter = RateLimiter(clock=clock, global_limit=1)
    first = await limiter.acquire(create(1))
    second = asyncio.ensure_future(limiter.acquire(create(2)))
    third = asyncio.ensure_future(limiter.acquire(create(3)))
    await clock.settle()
    assert not second.done() and not third.done()
    second.cancel()
    await clock.settle()
    limiter.release(first)  # never sent: its global slot comes straight back
    await clock.settle()
    assert third.done()
    limiter.release(third.result())


@pytest.mark.parametrize("seed", range(5))
async def test_limit_without_headers_is_learned_from_its_429s(
    clock: ManualClock, seed: int
) -> None:
    """A route that never sends rate-limit headers yet enforces 1 per 2.5 s: the first 429s
    teach the limiter a window (one request per the waits it was told), and the refusals stop
    instead of recurring in every window."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(clock, default=(1, 2.5), with_headers=lambda route: False)

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.6)

    results = await run(
        clock, [call(limiter, server, create(1), latency=jitter) for _ in range(12)]
    )
    assert results == [200] * 12
    assert server.rejected <= 3, server.statuses
    assert 429 not in server.statuses[-8:], server.statuses


@pytest.mark.parametrize("seed", range(5))
async def test_a_limit_learned_from_exact_waits_stops_refusing_when_answers_speed_up(
    clock: ManualClock, seed: int
) -> None:
    """1 per second without rate-limit headers, its 429s saying the exact wait (Retry-After
    to the millisecond, as the body). The first request finds its window already spent (by
    another process), so nothing of ours dates the window, the first guess is the wait alone,
    short, and a second 429 corrects it. After that, answers that come a little quicker than
    those the guess was learned from (jitter within the margin) earn no 429; the guess used
    to fall a margin short, and every new quickest answer earned one."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(
        clock, default=(1, 1.0), with_headers=lambda route: False, exact_retry_after=True
    )
    route = create(1)
    server.windows[(f"{route.method} {route.route.template}", route.majors)] = Window(
        count=1, ends=clock.now() + 0.8
    )
    first_two = iter([(0.01, 0.01), (0.01, 0.01)])

    def jitter() -> tuple[float, float]:
        return next(first_two, None) or (rng.uniform(0.0, 0.02), rng.uniform(0.0, 0.02))

    results = await run(clock, [call(limiter, server, route, latency=jitter) for _ in range(20)])
    assert results == [200] * 20
    assert server.statuses[:4] == [429, 200, 429, 200]
    assert 429 not in server.statuses[4:], server.statuses


async def test_a_first_guess_counts_from_the_last_answer(clock: ManualClock) -> None:
    """1 per 5 s without rate-limit headers: a request answered at t=0, the next sent at t=1
    and refused with a wait of 4. The window is 5, not 4: the first guess adds the time since
    the last answer to the wait, so the next window's second request earns no 429 (the guess
    of 4 alone sent it a second early, and a second 429 grew the guess)."""
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(
        clock, default=(1, 5.0), with_headers=lambda route: False, exact_retry_after=True
    )

    async def scenario() -> list[int]:
        first = await call(limiter, server, create(1))
        await pause(clock, 1.0)
        later = [call(limiter, server, create(1)) for _ in range(4)]
        return [first, *await asyncio.gather(*later)]

    assert await run(clock, [scenario()]) == [[200] * 5]
    assert server.statuses == [200, 429, 200, 200, 200, 200]  # the refused one, sent again


@pytest.mark.parametrize("seed", range(5))
async def test_a_burst_on_a_limit_without_headers_earns_one_429(
    clock: ManualClock, seed: int
) -> None:
    """1 per 5 s without rate-limit headers, a burst of 12: the second request goes out the
    moment the first is answered but reaches the server late (0.3 s), so the 429's wait
    alone falls that much short of the window. Counting from the first answer to the 429's
    answer (both read at arrival, so the latencies cancel) guesses the window whole: one 429
    in all, where the wait alone earned a second one in the next window."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(
        clock, default=(1, 5.0), with_headers=lambda route: False, exact_retry_after=True
    )
    first_two = iter([(0.01, 0.01), (0.3, 0.01)])

    def jitter() -> tuple[float, float]:
        return next(first_two, None) or (rng.uniform(0.0, 0.02), rng.uniform(0.0, 0.02))

    coros = [call(limiter, server, create(1), latency=jitter) for _ in range(12)]
    assert await run(clock, coros) == [200] * 12
    assert server.rejected == 1, server.statuses


@pytest.mark.parametrize("seed", range(10))
async def test_pinning_covers_every_resource_of_the_route(clock: ManualClock, seed: int) -> None:
    """Hash flips seen on one channel pin the route on every channel, including channels
    first used after the pin: none of them keeps following the flipping headers."""
    rng = random.Random(seed)
    limiter = RateLimiter(clock=clock)
    server = FakeDiscord(
        clock, counter_of=lambda route, index: ("A", 4, 2.0) if index % 2 else ("B", 1, 3.0)
    )

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.1)

    async def later(channel: int, delay: float) -> int:
        await pause(clock, delay)
        return await call(limiter, server, create(channel), latency=jitter)

    coros = [later(c, 0.0) for c in (1, 2) for _ in range(8)]
    coros += [later(c, rng.uniform(1.0, 40.0)) for c in (3, 4) for _ in range(8)]
    assert await run(clock, coros) == [200] * 32
    late = [s for (t, _), s in zip(server.arrivals, server.statuses, strict=True) if t > 1010.0]
    assert 429 not in late, server.statuses


async def test_global_window_is_not_read_short_at_its_edge(clock: ManualClock) -> None:
    """With answers arriving at once, the next batch must not start at the very instant the
    previous one is a second old: a server counting that second inclusively would refuse it."""
    limiter = RateLimiter(clock=clock, global_limit=5)
    server = FakeDiscord(clock, global_limit=5, default=(50, 5.0))
    started: list[float] = []
    coros = [call(limiter, server, create(c), latency=0.0, started=started) for c in range(20)]
    assert await run(clock, coros) == [200] * 20
    times = sorted(started)
    assert all(b - a > 1.0 for a, b in zip(times, times[5:], strict=False))
    assert server.rejected == 0


async def share_one_bucket(
    clock: ManualClock, clients: int, writers: int, each: int, seed: int
) -> tuple[FakeDiscord, list[RateLimiter], list[Any]]:
    """``clients`` limiters (processes of one bot) creating in one channel, each with
    ``writers`` requests in flight, on a 5-per-5-s bucket; latency drawn from ``seed``."""
    rng = random.Random(seed)
    latency = rng.choice([0.0, 0.05, 0.5])
    server = FakeDiscord(clock, default=(5, 5.0))
    limiters = [RateLimiter(clock=clock) for _ in range(clients)]

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, latency), rng.uniform(0.0, latency)

    async def writer(limiter: RateLimiter, count: int) -> list[int]:
        return [await call(limiter, server, create(1), latency=jitter) for _ in range(count)]

    coros = [writer(limiter, each // writers) for limiter in limiters for _ in range(writers)]
    return server, limiters, await run(clock, coros)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("clients", "writers"), [(2, 1), (2, 8), (3, 2)])
async def test_processes_sharing_a_bucket_stop_earning_429s(
    clock: ManualClock, clients: int, writers: int, seed: int
) -> None:
    """Nobody tells a limiter about the other processes: it learns from Remaining and from
    the first 429s. Every request succeeds, the refusals all fall in the first two windows
    (before the sharing shows; the unpaced limiter earned one or more in every window), and
    the bucket is still spent at 70% or more of its rate."""
    start = clock.now()
    server, limiters, results = await share_one_bucket(clock, clients, writers, 40, seed)
    assert results == [[200] * (40 // writers)] * (clients * writers)
    late = [
        t - start for (t, _), s in zip(server.arrivals, server.statuses, strict=True) if s == 429
    ]
    assert all(t < 11.0 for t in late), late
    windows = (clock.now() - start) / 5.0
    assert 40 * clients / windows >= 0.7 * 5, windows
    assert any(limiter.stats.contended for limiter in limiters)
    # Each refusal drained a bucket its limiter's count said had room: another spent it.
    assert sum(limiter.stats.drained for limiter in limiters) == len(late)


async def test_sightings_of_others_decay_back_to_whole_windows(clock: ManualClock) -> None:
    """After the other process stops, the paced limiter probes its way back: within a few
    minutes it again sends a whole window at once, and never earns a 429 doing so."""
    server, limiters, _ = await share_one_bucket(clock, 2, 4, 20, seed=1)
    route = create(1)
    paced = next(limiter for limiter in limiters if limiter.view(route).contended)
    rejected = server.rejected
    await run(clock, [pause(clock, 200.0)])
    assert not paced.view(route).contended
    server.max_in_flight = 0
    assert await run(clock, [call(paced, server, route) for _ in range(10)]) == [200] * 10
    assert server.max_in_flight == 5
    assert server.rejected == rejected


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
async def test_processes_sharing_the_global_limit_settle_below_it(
    clock: ManualClock, seed: int
) -> None:
    """Two processes each keep themselves under 47 a second: together they overrun Discord's
    50 (the unadjusted limiter earned about 850 global 429s here). After a global 429 each
    halves its share and wins it back one request a second, so past the first collision a
    handful of global 429s remain, and together they still get most of the 50."""
    rng = random.Random(seed)
    latency = rng.choice([0.0, 0.05, 0.3])
    server = FakeDiscord(clock, default=(50, 5.0), global_limit=50)
    limiters = [RateLimiter(clock=clock) for _ in range(2)]
    start = clock.now()

    def jitter() -> tuple[float, float]:
        return rng.uniform(0.0, latency), rng.uniform(0.0, latency)

    async def writer(limiter: RateLimiter, channel: int) -> list[int]:
        return [await call(limiter, server, create(channel), latency=jitter) for _ in range(15)]

    coros = [writer(limiter, 100 * i + c) for i, limiter in enumerate(limiters) for c in range(40)]
    assert await run(clock, coros) == [[200] * 15] * 80
    late = [t for (t, _), s in zip(server.arrivals, server.statuses, strict=True) if s == 429]
    late = [t - start for t in late if t - start > 2.0]
    assert len(late) <= 15, late
    assert 1200 / (clock.now() - start) >= 25.0
    assert all(limiter.stats.global_ratelimited for limiter in limiters)
