"""The rate limiter: the core's parts wired together (http layer; no aiohttp, clock injected).

:class:`RateLimiter` is what the client holds. It asks the parts in turn whether a request may
go (the guard, the route variant's gate, the bucket, the global limit), queues it where it must
wait, and feeds each answer back: headers to the registry and the bucket, a 429 to
:func:`~discobase.http.ratelimit.classify.classify_429` and its kind's row of
:data:`~discobase.http.ratelimit.classify.REACTIONS`. The sleeping itself (futures, timers,
permits) is in ``waiting``; the theory is in the package docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from discobase.http.clock import Clock, LoopClock
from discobase.http.errors import RateLimited
from discobase.http.ratelimit.bucket import HEADER_ROUNDING, INF, Bucket, Tuning
from discobase.http.ratelimit.classify import REACTIONS, Hold, classify_429
from discobase.http.ratelimit.global_limit import GlobalLimit
from discobase.http.ratelimit.guard import BanGuard
from discobase.http.ratelimit.headers import RateLimitHeaders
from discobase.http.ratelimit.registry import BucketRegistry
from discobase.http.ratelimit.stats import BucketView, LimiterStats
from discobase.http.ratelimit.waiting import Permit, Waiter
from discobase.http.routes import CompiledRoute

__all__ = ["RateLimiter"]

_log = logging.getLogger("discobase.http")


class RateLimiter:
    """Decide when each request may be sent; see the package docstring for the theory.

    Args:
        clock: the clock (default: the running loop's).
        time_scale: real seconds per Discord second, applied to this module's constants.
        global_limit: sends allowed in any one-second window (Discord allows 50).
        max_wait: the longest rate-limit wait (Discord seconds) to sleep through before raising
            :class:`RateLimited`.
        margin: Discord seconds added to every reset, for rounding on the server.
        invalid_warn: invalid responses per 10 minutes at which to log a warning.
        invalid_refuse: invalid responses per 10 minutes at which to refuse to send.
        require_via: treat a 429 without a ``Via`` header as Cloudflare's, unless its body is
            Discord's JSON (an object with ``retry_after``); non-JSON 429s always are.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        time_scale: float = 1.0,
        global_limit: int = 47,
        max_wait: float = 60.0,
        margin: float = 0.05,
        invalid_warn: int = 100,
        invalid_refuse: int = 1000,
        require_via: bool = True,
    ) -> None:
        if global_limit < 1:
            raise ValueError("global_limit must be at least 1")
        self._clock: Clock = clock or LoopClock()
        self.time_scale = time_scale
        self.global_limit = global_limit
        # A second and a millisecond: a request answered at the instant another is sent a
        # second later must not be read as out of the server's window (ties, rounding).
        self.global_period = (1.0 + HEADER_ROUNDING) * time_scale
        self.max_wait = max_wait * time_scale
        self.margin = margin * time_scale
        # How long a bucket stays contended after the last sign of another sender.
        self.contention_memory = 30.0 * time_scale
        self.require_via = require_via
        self.stats = LimiterStats()
        tuning = Tuning(self.margin, self.global_period, self.contention_memory, self.max_wait)
        self._registry = BucketRegistry(tuning, self.stats, flip_window=60.0 * time_scale)
        self._global = GlobalLimit(global_limit, self.global_period)
        self._guard = BanGuard(
            self.stats,
            time_scale=time_scale,
            invalid_warn=invalid_warn,
            invalid_refuse=invalid_refuse,
        )
        self._waiters: set[Waiter] = set()

    @property
    def invalid_warn(self) -> int:
        """Invalid responses per 10 minutes at which a warning is logged."""
        return self._guard.invalid_warn

    @property
    def invalid_refuse(self) -> int:
        """Invalid responses per 10 minutes at which sending is refused."""
        return self._guard.invalid_refuse

    @property
    def invalid_window(self) -> float:
        """The invalid-request counter's window (real seconds)."""
        return self._guard.invalid_window

    @property
    def breaker_default(self) -> float:
        """How long the Cloudflare breaker stays open without a ``Retry-After``."""
        return self._guard.breaker_default

    # ------------------------------------------------------------------ queries

    def view(self, route: CompiledRoute) -> BucketView:
        """Describe the bucket of ``route`` without changing anything."""
        now = self._clock.now()
        bucket = self._registry.peek(route)
        gate = self._registry.gate_left(route, now)
        bucket_hash = self._registry.hash_of(route)
        if bucket is None:
            return BucketView(False, bucket_hash, 1, 1, INF, 0, 0, gate, 0.0)
        return bucket.view(now, bucket_hash, gate)

    def capacity(self, route: CompiledRoute) -> int:
        """Return how many requests on ``route`` could start right now."""
        now = self._clock.now()
        exempt = route.route.global_exempt
        if self._refusal(route, now) is not None or self._registry.gate_delay(route, now) > 0:
            return 0
        if self._global.delay(exempt, now) > 0:
            return 0
        view = self.view(route)
        bucket_free = max(0, view.remaining - view.queued)
        bucket = self._registry.peek(route)
        if bucket is not None and bucket.log is None and bucket.contended(now):
            paced = view.queued or bucket.contended_delay(now) > 0
            bucket_free = 0 if paced else 1
        if exempt:
            return bucket_free
        return max(0, min(bucket_free, self._global.cap(now) - self._global.used()))

    def next_slot(self, route: CompiledRoute) -> float:
        """Return seconds until a request on ``route`` could start (0 if now)."""
        now = self._clock.now()
        bucket = self._registry.peek(route)
        delay = max(
            self._registry.gate_delay(route, now),
            self._global.delay(route.route.global_exempt, now),
        )
        if bucket is not None:
            delay = max(delay, bucket.delay(now))
        return delay

    @property
    def invalid_count(self) -> int:
        """Return how many 401/403/429 responses fell in the last 10 (scaled) minutes."""
        return self._guard.invalid_count(self._clock.now())

    @property
    def token_invalid(self) -> bool:
        """Whether a 401 has poisoned the token."""
        return self._guard.token_invalid

    # ------------------------------------------------------------------ acquiring

    def try_acquire(self, route: CompiledRoute) -> Permit | None:
        """Take a permit if one is free right now and nobody is queued; never wait."""
        now = self._clock.now()
        error = self._refusal(route, now)
        if error is not None:
            raise error
        if self._registry.gate_delay(route, now) > 0:
            return None
        exempt = route.route.global_exempt
        bucket = self._registry.bucket_for(route, now)
        if bucket.queue or (self._global.line and not exempt):
            return None
        if max(bucket.delay(now), self._global.delay(exempt, now)) > 0:
            return None
        return self._take(bucket, route, now)

    async def acquire(self, route: CompiledRoute, *, front: bool = False) -> Permit:
        """Wait until ``route`` may be sent and return its permit.

        Args:
            route: the request's route.
            front: queue ahead of everyone (a retry of a request that was already queued).

        Raises:
            InvalidToken: the token was refused earlier.
            CloudflareBanned: the Cloudflare breaker is open.
            InvalidRequestLimit: too many invalid responses lately.
            RateLimited: a known rate-limit wait exceeds ``max_wait``.
        """
        waiter = Waiter(route)
        self._waiters.add(waiter)
        exempt = route.route.global_exempt
        try:
            while True:
                now = self._clock.now()
                error = self._refusal(route, now)
                if error is not None:
                    raise error
                gate = self._registry.gate_delay(route, now)
                if gate > 0:
                    waiter.leave_queue()
                    self._global.leave(waiter)
                    self._check_wait(gate, route, "sublimit")
                    await waiter.sleep(self._clock, gate)
                    continue
                if waiter.bucket is None:
                    bucket = self._registry.bucket_for(route, now)
                    waiter.bucket = bucket
                    if front:
                        bucket.queue.appendleft(waiter)
                    else:
                        bucket.queue.append(waiter)
                bucket = waiter.bucket
                if bucket.queue[0] is not waiter:
                    self._global.leave(waiter)  # a retry went ahead of us in the bucket
                    await waiter.sleep(self._clock, None)
                    continue
                blocked = self._global.blocked_for(now)
                if blocked > 0:
                    self._check_wait(blocked, route, "global")
                delay = bucket.delay(now)
                if delay > 0:
                    if delay < INF:
                        # A window longer than max_wait: say so rather than sleep through it.
                        self._check_wait(delay, route, "user")
                    self._global.leave(waiter)  # parked on its bucket: hold no global place
                    await waiter.sleep(self._clock, delay)
                    continue
                if not exempt:
                    # Ready buckets take global slots in FIFO order; only the first sleeps on
                    # a timer, the rest are woken one by one as slots are taken.
                    self._global.join(waiter)
                    if self._global.line[0] is not waiter:
                        await waiter.sleep(self._clock, None)
                        continue
                delay = self._global.delay(exempt, now)
                if delay > 0:
                    await waiter.sleep(self._clock, delay)
                    continue
                self._global.leave(waiter)
                bucket.queue.popleft()
                waiter.bucket = None
                permit = self._take(bucket, route, now)
                bucket.wake_head()
                return permit
        finally:
            waiter.leave_queue()
            self._global.leave(waiter)
            self._waiters.discard(waiter)

    def _take(self, bucket: Bucket, route: CompiledRoute, now: float) -> Permit:
        bucket.take(now)
        counted = not route.route.global_exempt
        if counted:
            self._global.take()
        self.stats.acquired += 1
        permit = Permit(route, bucket, counted, now)
        if permit.probe:
            self._registry.start_probe(route.majors)
        return permit

    def _end(self, permit: Permit, now: float) -> None:
        """Give back what a permit holds outside its bucket: its probe and its global slot."""
        permit.done = True
        if permit.probe:
            permit.probe = False
            self._registry.end_probe(permit.route.majors)
        if permit.counted:
            permit.counted = False
            self._global.end(permit.sent, now)

    # ------------------------------------------------------------------ answers

    def release(self, permit: Permit) -> None:
        """Hand back a permit whose request got no answer (cancelled, failed, timed out)."""
        if permit.done:
            return
        now = self._clock.now()
        self._end(permit, now)
        bucket = permit.bucket.resolve()
        if permit.sent:
            bucket.let_through(permit.taken_at)  # it may have been counted
        bucket.give_back(permit.sent, now)
        bucket.wake_head()

    def on_response(
        self, permit: Permit, status: int, headers: Mapping[str, str], body: Any
    ) -> bool:
        """Learn from a response; say whether a 429'd request should be sent again.

        Args:
            permit: the request's permit (consumed).
            status: the HTTP status.
            headers: the response headers, keys in lower case.
            body: the decoded JSON body, or the raw bytes when it was not JSON.

        Returns:
            ``True`` when the request was rate limited and should be re-acquired (at the front
            of its queue) and sent again; ``False`` when the response is final.

        Raises:
            CloudflareBanned: the 429 came from Cloudflare.
            RateLimited: the 429 asks for a wait longer than ``max_wait``.
        """
        if permit.done:
            return False
        now = self._clock.now()
        self._end(permit, now)
        route = permit.route
        info = RateLimitHeaders.parse(headers)
        bucket = permit.bucket.resolve()
        payload = body if isinstance(body, dict) else None
        shared = status == 429 and info.scope == "shared"
        if info.bucket is not None and info.complete and status != 429:
            self._registry.note_terms(info)
        if status in (401, 403) or (status == 429 and not shared):
            self._guard.count_invalid(now)
        if status == 401:
            self.mark_token_invalid()
        hidden = status == 429 and self._registry.hides_limit(route, info.bucket)
        if info.bucket is not None and not hidden:
            bucket = self._registry.learn(route, info.bucket, bucket, now)
        try:
            if permit.bucket is bucket and permit.epoch != bucket.epoch:
                info = info.without_window()  # it describes a window already refilled past
            if status != 429:
                bucket.let_through(permit.taken_at)
                self._apply(bucket, info, now, permit)
                return False
            return self._on_429(permit, bucket, info, payload, now, hidden)
        finally:
            bucket.answered(now)
            bucket.wake_head()

    def _on_429(
        self,
        permit: Permit,
        bucket: Bucket,
        info: RateLimitHeaders,
        payload: dict[str, Any] | None,
        now: float,
        hidden: bool,
    ) -> bool:
        """Classify a 429 and carry out its kind's reaction; return ``True`` (retry)."""
        self.stats.ratelimited += 1
        route = permit.route
        verdict = classify_429(
            info,
            payload,
            hidden=hidden,
            require_via=self.require_via,
            no_wait=self.global_period,
            time_scale=self.time_scale,
        )
        reaction = REACTIONS[verdict.kind]
        if reaction.counter is not None:
            self.stats.add(reaction.counter)
        if reaction.note is not None:
            _log.info(reaction.note, route, verdict.wait)
        if reaction.learn:
            self._apply(bucket, info, now, permit)
        until = now + verdict.wait + self.margin
        hold = reaction.hold
        if hold is Hold.BREAKER:
            error = self._guard.open_breaker(info.retry_after, str(route), now)
            self._wake_all()
            raise error
        if hold is Hold.BUCKET and bucket.log is not None:
            hold = Hold.VARIANT  # a pinned bucket keeps its log: hold this route and resource
        if hold is Hold.EVERYONE:
            self._global.block(until, now)
        elif hold is Hold.VARIANT:
            self._registry.set_gate(route, until)
        elif bucket.drain(verdict.wait, until, now):
            # Our count said there was room: another sender spent it, and the share we left
            # them was too small. Waiting for the refill is the cure, not a fault.
            permit.drained = True
            self.stats.drained += 1
            foreign = bucket.reserve(now) + 1
            self._contention(bucket.note_contention(foreign, now, permit.taken_at))
        self._check_wait(verdict.wait, route, reaction.scope)
        return True

    def _apply(self, bucket: Bucket, info: RateLimitHeaders, now: float, permit: Permit) -> None:
        probing = self._registry.probing(permit.route.majors)
        self._contention(bucket.apply(info, now, permit.taken_at, probing))

    def _contention(self, began: bool) -> None:
        if began:
            self.stats.contended += 1

    def mark_token_invalid(self) -> None:
        """Fail every queued and later request with :class:`InvalidToken`."""
        self._guard.poison_token()
        self._wake_all()

    # ------------------------------------------------------------------ internals

    def _refusal(self, route: CompiledRoute, now: float) -> Exception | None:
        return self._guard.refusal(route, now)

    def _check_wait(self, wait: float, route: CompiledRoute, scope: str) -> None:
        if wait > self.max_wait:
            raise RateLimited(
                f"rate limited ({scope}) for {wait / self.time_scale:.3f} s",
                status=429,
                retry_after=wait / self.time_scale,
                scope=scope,
                route=str(route),
            )

    def _wake_all(self) -> None:
        for waiter in list(self._waiters):
            waiter.wake()
