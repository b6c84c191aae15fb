"""The REST rate limiter (http layer: pure logic; no aiohttp, no sockets, the clock injected).

Theory
------
Discord limits a bot in three ways at once, and a 429 costs more than waiting (10,000 401/403/429
responses in 10 minutes ban the IP), so this limiter aims never to earn one:

1. **Route buckets.** Each route key (method + path template + variant, see ``routes``) maps to
   an opaque bucket hash that Discord reveals only in responses (``X-RateLimit-Bucket``). The
   counter lives at (hash, top-level resource): the same hash counts separately per channel.
   Until a route's hash is learned, its bucket per resource allows **one request in flight**:
   nothing is known, so the first answer must come back before a second request goes out.
   Resources are probed independently, so writing to 40 new channels starts 40 probes at once.
   When a hash is learned (or changes), the live bucket object, with its queued waiters, is
   re-homed under the new key; if one already lives there the two merge (the smaller
   ``remaining``, the later reset, one FIFO), so two client queues never spend one server bucket.
   A route whose hash keeps flipping (more than 4 changes a minute) is answered by several
   counters whose windows we cannot line up, so it is **pinned**: its bucket stops following
   hashes and becomes a sliding log holding the stricter terms of every counter seen (the
   smallest limit per the longest window), which no fixed window of any of them can exceed.
2. **Windows.** ``X-RateLimit-Reset`` (wall clock) is ignored: clocks skew. The request reached
   the server somewhere between our send and its answer, so ``X-RateLimit-Reset-After``
   (fractional seconds, kept) dates the end of the window it landed in to the interval
   [sent + Reset-After, received + Reset-After] on the monotonic clock. The bucket refills at
   the interval's end plus a small margin, always at or after the server's own reset, to
   ``limit`` minus the requests still in flight (they may land in the new window); windows are
   fixed (Reset-After counts to a full reset), so this is safe. Answers overtake each other and
   a request sent late can land in the next window, so between refills ``remaining`` only goes
   down (``header remaining - other requests in flight``, which may not be counted yet), an
   answer dated certainly later moves the refill later, and the refill is brought earlier only
   by intervals too narrow (under a quarter window) to straddle two windows. Answers to
   requests sent before the last refill describe a window already over and are ignored.
3. **The global limit** (50 per second per bot) is enforced before it bites: a sliding log
   caps requests at ``global_limit`` (default 47) in any window of one second. Each request is
   logged at the time of its *answer* (and counts as "now" while in flight): the server counted
   it somewhere between send and answer, so a log of send times would let latency jitter squeeze
   more than the cap into one server window (Discord's issue #5144). A request takes its global
   slot last, only once its bucket is ready, so requests parked on a drained bucket never hold
   global capacity; ready requests line up for global slots first come, first served.

And when the server says no anyway:

- a **global** 429 blocks every sender until it passes; the request is re-queued at the head.
  The proactive log should make one impossible, so it means another process of the bot spends
  the same 50: the cap is halved and grows back by one request per second (additive increase,
  multiplicative decrease, on which several processes settle to a fair share);
- a 429 with ``scope: shared`` (someone else's use of the resource) waits on a gate for that route
  key and resource only, and is not counted as invalid;
- a 429 while ``remaining > 0``, with code 20028/30046/40062, or naming a bucket no route is
  known to use is a **sub-limit**: only that variant (e.g. channel renames, edits of old
  messages) waits; the rest of the bucket moves on (a 429 naming a bucket another route uses
  means the route moved onto it: the buckets merge);
- any other 429 means the bucket is drained: the headers are applied and the request re-queued
  (a route refused without ever sending headers is assumed to allow one request per window,
  the window growing by each wait it is told, so that it stops earning a 429 per window);
- the wait is the larger of ``Retry-After`` and the body's ``retry_after`` (a 429 with neither
  waits out the window, or a second), except on a drained bucket, where a header that is only the
  body's value rounded up to whole seconds gives way to the exact body; a wait over
  ``max_wait`` (or a bucket window longer than it) raises :class:`RateLimited` instead of
  sleeping;
- a 429 whose body is not a JSON object, or that has neither ``Via`` nor Discord's
  ``retry_after``, is Cloudflare's: a breaker opens (for ``Retry-After``, else an hour) and
  every request fails with :class:`CloudflareBanned` until it closes;
- 401/403/429 (not ``shared``) feed a 10-minute sliding counter that warns, then refuses to
  send, far below Discord's 10,000;
- a 401 poisons the token: every queued and later request fails with :class:`InvalidToken`.

Contention
----------
Several processes of one bot (or a proxy-less fleet) spend the same server buckets, and no
process sees the others' requests. They show up in answers: a ``Remaining`` lower than our own
sends explain, or a 429 that drains a bucket our count said had room. Such a bucket is
**contended** for a while (until every sighting has decayed, and at least 30 s after the last
sign): it lets one request out at a time, so every send is decided on the ``Remaining`` of the
answer just received, and it leaves to the others as many requests of each window as they were
seen to take between two of our answers (shrinking by one request per four windows without a
new sighting, never the whole window). A drained 429 is marked on its permit: the wait until
the refill is the cure, so the client does not count it among the retries that end in
:class:`RateLimited`.

A cancelled waiter leaves its queue and wakes the next; a permit released without being sent
gives back its bucket slot and its global slot.

Times are in real seconds. Values read from the wire are used as they are (a time-scaled
emulator scales them itself); ``time_scale`` scales only this module's own constants.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from discobase.http.clock import Clock, LoopClock, TimerHandle
from discobase.http.errors import (
    SUBLIMIT_CODES,
    CloudflareBanned,
    InvalidRequestLimit,
    InvalidToken,
    RateLimited,
)
from discobase.http.routes import CompiledRoute

__all__ = ["BucketView", "LimiterStats", "Permit", "RateLimitHeaders", "RateLimiter"]

_log = logging.getLogger("discobase.http")

_INF = math.inf
# Discord gives Reset-After in milliseconds; dates derived from it are this uncertain.
_HEADER_ROUNDING = 0.001
# Windows it takes a sighting of another sender's requests to shrink by one request.
_SIGHTING_DECAY = 4
Majors = tuple[tuple[str, str], ...]
BucketKey = tuple[str, Majors]


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _decayed(sighting: tuple[float, int], now: float, step: float) -> int:
    """Return what a sighting ``(when, how many)`` still counts for: one less per ``step``."""
    at, amount = sighting
    return amount - int((now - at) / step)


def _without_window(info: RateLimitHeaders) -> RateLimitHeaders:
    return RateLimitHeaders(
        bucket=info.bucket,
        is_global=info.is_global,
        scope=info.scope,
        retry_after=info.retry_after,
        via=info.via,
    )


def _int(value: str | None) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit headers of one response; ``None`` where absent or malformed."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    bucket: str | None = None
    is_global: bool = False
    scope: str | None = None
    retry_after: float | None = None
    via: bool = False

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        """Read the headers (keys in lower case)."""
        return cls(
            limit=_int(headers.get("x-ratelimit-limit")),
            remaining=_int(headers.get("x-ratelimit-remaining")),
            reset_after=_float(headers.get("x-ratelimit-reset-after")),
            bucket=headers.get("x-ratelimit-bucket") or None,
            is_global=headers.get("x-ratelimit-global", "").lower() == "true",
            scope=headers.get("x-ratelimit-scope") or None,
            retry_after=_float(headers.get("retry-after")),
            via="via" in headers,
        )

    @property
    def complete(self) -> bool:
        """Whether the bucket's state can be learned from these headers."""
        return None not in (self.limit, self.remaining, self.reset_after)


@dataclass(frozen=True, slots=True)
class BucketView:
    """What the limiter knows about a route's bucket, for batch writers.

    Attributes:
        known: whether the bucket's limits have been learned from a response.
        bucket_hash: Discord's hash for the route, if learned.
        limit: requests per window (1 while unknown).
        remaining: requests that may still start in this window.
        reset_in: seconds until the window refills (``inf`` when no refill is scheduled).
        in_flight: requests sent and not yet answered.
        queued: requests waiting for this bucket.
        sublimited_in: seconds until this route variant's sub-limit (or shared limit) lifts.
        window: the longest ``Reset-After`` seen, a lower bound on the window's length (0 while
            unknown).
        contended: whether another sender (another process of this bot) was seen spending the
            bucket lately, so it is paced one request at a time.
    """

    known: bool
    bucket_hash: str | None
    limit: int
    remaining: int
    reset_in: float
    in_flight: int
    queued: int
    sublimited_in: float
    window: float = 0.0
    contended: bool = False


@dataclass(slots=True)
class LimiterStats:
    """Counters of the limiter's life."""

    acquired: int = 0
    ratelimited: int = 0
    global_ratelimited: int = 0
    shared_ratelimited: int = 0
    sublimited: int = 0
    cloudflare: int = 0
    hash_changes: int = 0
    invalid_requests: int = 0
    contended: int = 0


class _Bucket:
    __slots__ = (
        "contended_since",
        "contended_until",
        "in_flight",
        "key",
        "known",
        "limit",
        "merged_into",
        "epoch",
        "guessed",
        "log",
        "queue",
        "remaining",
        "reset_at",
        "sightings",
        "window",
        "window_start",
    )

    def __init__(self, key: BucketKey) -> None:
        self.key = key
        self.known = False
        self.limit = 1
        self.remaining = 1
        self.reset_at = _INF  # when the current window refills; inf: not until an answer says
        self.window = 0.0  # the longest Reset-After seen: a guess at the window's length
        # The server's current window ends somewhere in [window_start, reset_at - margin].
        self.window_start = -_INF
        self.in_flight = 0
        self.epoch = 0  # bumped at each local refill; answers from older epochs are stale
        self.queue: deque[_Waiter] = deque()
        self.merged_into: _Bucket | None = None
        # Pinned buckets only: when each answered request was answered (a sliding log).
        self.log: deque[float] | None = None
        # Known only from 429s without headers: one request per ``window``, a guess.
        self.guessed = False
        # Someone else (another process of this bot) spends this bucket too: until this time,
        # send one request at a time and leave them as many requests of each window as
        # ``sightings`` (when, how many others' requests fell between two of our answers) show.
        self.contended_since = -_INF
        self.contended_until = -_INF
        self.sightings: deque[tuple[float, int]] = deque()

    def resolve(self) -> _Bucket:
        bucket = self
        while bucket.merged_into is not None:
            bucket = bucket.merged_into
        return bucket


class _Waiter:
    __slots__ = ("bucket", "future", "in_line", "poked", "route")

    def __init__(self, route: CompiledRoute) -> None:
        self.route = route
        self.bucket: _Bucket | None = None
        self.future: asyncio.Future[None] | None = None
        self.poked = False
        self.in_line = False  # waiting in the global line

    def wake(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)
        else:
            self.poked = True


class Permit:
    """The right to send one request; hand it back through the limiter.

    Attributes:
        route: the request's route.
        sent: whether the request went on the wire (set by :meth:`mark_sent`).
        drained: whether its answer was a 429 saying the bucket ran dry (someone else spent
            it, or the window came early): waiting for the refill is the whole cure, so the
            client need not count it as a sign that something is wrong.
    """

    __slots__ = (
        "_bucket",
        "_epoch",
        "_global",
        "_probe",
        "_taken_at",
        "done",
        "drained",
        "route",
        "sent",
    )

    def __init__(
        self, route: CompiledRoute, bucket: _Bucket, counted: bool, taken_at: float
    ) -> None:
        self.route = route
        self._bucket = bucket
        self._taken_at = taken_at
        self._epoch = bucket.epoch
        self._probe = not bucket.known
        self._global = counted
        self.sent = False
        self.done = False
        self.drained = False

    def mark_sent(self) -> None:
        """Record that the request is about to hit the wire (its slot is spent for good)."""
        self.sent = True


class RateLimiter:
    """Decide when each request may be sent; see the module docstring for the theory.

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
        self.global_period = (1.0 + _HEADER_ROUNDING) * time_scale
        self.max_wait = max_wait * time_scale
        self.margin = margin * time_scale
        self.invalid_warn = invalid_warn
        self.invalid_refuse = invalid_refuse
        self.invalid_window = 600.0 * time_scale
        self.breaker_default = 3600.0 * time_scale
        # How long a bucket stays contended after the last sign of another sender.
        self.contention_memory = 30.0 * time_scale
        self.require_via = require_via
        self.stats = LimiterStats()
        self._hashes: dict[str, str] = {}
        self._hash_flips: dict[str, deque[float]] = {}
        self._pinned: set[str] = set()
        # The terms each hash has shown: (smallest limit, longest Reset-After).
        self._hash_terms: dict[str, tuple[int, float]] = {}
        self._route_hashes: dict[str, set[str]] = {}
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._gates: dict[tuple[str, Majors], float] = {}
        # The global window: requests in flight count as sent "now" until answered, then as
        # sent at the moment of the answer. The server saw each one somewhere between our
        # send and its answer, so this is the latest time it can have counted it; a
        # send-time log lets latency jitter squeeze more than the cap into a server window.
        self._global_in_flight = 0
        self._global_line: deque[_Waiter] = deque()
        self._global_log: deque[float] = deque()
        self._global_blocked_until = 0.0
        # After a global 429: the reduced cap and when it was set (None: the full limit).
        self._global_cut = global_limit
        self._global_cut_at: float | None = None
        self._breaker_until = 0.0
        self._invalid: deque[float] = deque()
        self._warned = False
        self._token_invalid = False
        self._waiters: set[_Waiter] = set()
        # In-flight probes of unlearned routes per resource: they may share a bucket with
        # a hash learned meanwhile, so estimates of that bucket count them as spent.
        self._probing: dict[Majors, int] = {}
        self._gc_at = 1024
        self._sent_at = 0.0  # when the request being answered was let through

    # ------------------------------------------------------------------ queries

    def view(self, route: CompiledRoute) -> BucketView:
        """Describe the bucket of ``route`` without changing anything."""
        now = self._clock.now()
        bucket = self._peek(route)
        gate = max(0.0, self._gates.get((route.key, route.majors), 0.0) - now)
        bucket_hash = self._hashes.get(route.key)
        if bucket is None:
            return BucketView(False, bucket_hash, 1, 1, _INF, 0, 0, gate, 0.0)
        remaining = bucket.remaining
        if bucket.log is not None:
            period = self._prune_log(bucket, now)
            remaining = max(0, bucket.limit - bucket.in_flight - len(bucket.log))
            reset_in = max(0.0, bucket.log[0] + period - now) if bucket.log else _INF
        else:
            if self._refills(bucket, now):
                remaining = max(0, bucket.limit - bucket.in_flight)
            reset_in = max(0.0, bucket.reset_at - now) if bucket.reset_at < _INF else _INF
        return BucketView(
            bucket.known,
            bucket_hash,
            bucket.limit,
            remaining,
            reset_in,
            bucket.in_flight,
            len(bucket.queue),
            gate,
            bucket.window,
            now < bucket.contended_until,
        )

    def capacity(self, route: CompiledRoute) -> int:
        """Return how many requests on ``route`` could start right now."""
        now = self._clock.now()
        if self._fatal(route, now) is not None or self._gate_delay(route, now) > 0:
            return 0
        if self._global_delay(route, now) > 0:
            return 0
        view = self.view(route)
        bucket_free = max(0, view.remaining - view.queued)
        bucket = self._peek(route)
        if bucket is not None and bucket.log is None and now < bucket.contended_until:
            paced = view.queued or self._contended_delay(bucket, now) > 0
            bucket_free = 0 if paced else 1
        if route.route.global_exempt:
            return bucket_free
        used = self._global_in_flight + len(self._global_log) + len(self._global_line)
        return max(0, min(bucket_free, self._global_cap(now) - used))

    def next_slot(self, route: CompiledRoute) -> float:
        """Return seconds until a request on ``route`` could start (0 if now)."""
        now = self._clock.now()
        bucket = self._peek(route)
        delay = max(self._gate_delay(route, now), self._global_delay(route, now))
        if bucket is not None:
            delay = max(delay, self._bucket_delay(bucket, now))
        return delay

    @property
    def invalid_count(self) -> int:
        """Return how many 401/403/429 responses fell in the last 10 (scaled) minutes."""
        self._prune_invalid(self._clock.now())
        return len(self._invalid)

    @property
    def token_invalid(self) -> bool:
        """Whether a 401 has poisoned the token."""
        return self._token_invalid

    # ------------------------------------------------------------------ acquiring

    def try_acquire(self, route: CompiledRoute) -> Permit | None:
        """Take a permit if one is free right now and nobody is queued; never wait."""
        now = self._clock.now()
        error = self._fatal(route, now)
        if error is not None:
            raise error
        if self._gate_delay(route, now) > 0:
            return None
        bucket = self._bucket_for(route)
        if bucket.queue or (self._global_line and not route.route.global_exempt):
            return None
        if max(self._bucket_delay(bucket, now), self._global_delay(route, now)) > 0:
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
        waiter = _Waiter(route)
        self._waiters.add(waiter)
        try:
            while True:
                now = self._clock.now()
                error = self._fatal(route, now)
                if error is not None:
                    raise error
                gate = self._gate_delay(route, now)
                if gate > 0:
                    self._leave_queue(waiter)
                    self._leave_global(waiter)
                    self._check_wait(gate, route, "sublimit")
                    await self._sleep(waiter, gate)
                    continue
                if waiter.bucket is None:
                    bucket = self._bucket_for(route)
                    waiter.bucket = bucket
                    if front:
                        bucket.queue.appendleft(waiter)
                    else:
                        bucket.queue.append(waiter)
                bucket = waiter.bucket
                if bucket.queue[0] is not waiter:
                    self._leave_global(waiter)  # a retry went ahead of us in the bucket
                    await self._sleep(waiter, None)
                    continue
                blocked = max(0.0, self._global_blocked_until - now)
                if blocked > 0:
                    self._check_wait(blocked, route, "global")
                delay = self._bucket_delay(bucket, now)
                if delay > 0:
                    if delay < _INF:
                        # A window longer than max_wait: say so rather than sleep through it.
                        self._check_wait(delay, route, "user")
                    self._leave_global(waiter)  # parked on its bucket: hold no global place
                    await self._sleep(waiter, delay)
                    continue
                if not route.route.global_exempt:
                    # Ready buckets take global slots in FIFO order; only the first sleeps on
                    # a timer, the rest are woken one by one as slots are taken.
                    line = self._global_line
                    if not waiter.in_line:
                        waiter.in_line = True
                        line.append(waiter)
                    if line[0] is not waiter:
                        await self._sleep(waiter, None)
                        continue
                delay = self._global_delay(route, now)
                if delay > 0:
                    await self._sleep(waiter, delay)
                    continue
                self._leave_global(waiter)
                bucket.queue.popleft()
                waiter.bucket = None
                permit = self._take(bucket, route, now)
                self._wake_head(bucket)
                return permit
        finally:
            self._leave_queue(waiter)
            self._leave_global(waiter)
            self._waiters.discard(waiter)

    def _leave_global(self, waiter: _Waiter) -> None:
        if not waiter.in_line:
            return
        waiter.in_line = False
        line = self._global_line
        was_first = bool(line) and line[0] is waiter
        line.remove(waiter)
        if was_first and line:
            line[0].wake()

    def _take(self, bucket: _Bucket, route: CompiledRoute, now: float) -> Permit:
        if bucket.log is None and self._refills(bucket, now):
            # Requests still in flight from the old window may land in the new one.
            bucket.remaining = max(0, bucket.limit - bucket.in_flight)
            bucket.reset_at = _INF
            bucket.epoch += 1
        bucket.remaining -= 1
        bucket.in_flight += 1
        counted = not route.route.global_exempt
        if counted:
            self._global_in_flight += 1
        self.stats.acquired += 1
        permit = Permit(route, bucket, counted, now)
        if permit._probe:
            self._probing[route.majors] = self._probing.get(route.majors, 0) + 1
        return permit

    def _end_global(self, permit: Permit, now: float) -> None:
        if permit._global:
            permit._global = False
            self._global_in_flight -= 1
            if permit.sent:
                self._global_log.append(now)
            elif self._global_line:
                self._global_line[0].wake()  # the slot is free again at once

    def _end_probe(self, permit: Permit) -> None:
        if permit._probe:
            permit._probe = False
            left = self._probing.get(permit.route.majors, 1) - 1
            if left > 0:
                self._probing[permit.route.majors] = left
            else:
                self._probing.pop(permit.route.majors, None)

    # ------------------------------------------------------------------ answers

    def release(self, permit: Permit) -> None:
        """Hand back a permit whose request got no answer (cancelled, failed, timed out)."""
        if permit.done:
            return
        permit.done = True
        self._end_probe(permit)
        now = self._clock.now()
        self._end_global(permit, now)
        bucket = permit._bucket.resolve()
        bucket.in_flight = max(0, bucket.in_flight - 1)
        if not permit.sent:
            bucket.remaining = min(bucket.limit, bucket.remaining + 1)
        elif bucket.log is not None:
            bucket.log.append(now)  # it may have been counted; as late as now
        elif not bucket.known:
            bucket.remaining = 1
        else:
            self._unstick(bucket, now)
        self._wake_head(bucket)

    def _unstick(self, bucket: _Bucket, now: float) -> None:
        """Schedule a refill no answer will date (all answered without headers, or none)."""
        if bucket.log is not None:
            return
        if bucket.known and bucket.remaining <= 0 and bucket.reset_at == _INF:
            if bucket.in_flight == 0:
                # The last request of the window went out at the latest now.
                bucket.reset_at = now + bucket.window + self.margin
                bucket.window_start = bucket.reset_at - self.margin

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
        permit.done = True
        self._end_probe(permit)
        now = self._clock.now()
        self._end_global(permit, now)
        route = permit.route
        info = RateLimitHeaders.parse(headers)
        bucket = permit._bucket.resolve()
        payload = body if isinstance(body, dict) else None
        shared = status == 429 and info.scope == "shared"
        if info.bucket is not None and info.complete and status != 429:
            self._note_terms(info)
        if status in (401, 403) or (status == 429 and not shared):
            self._count_invalid(now)
        if status == 401:
            self.mark_token_invalid()
        known_hash = self._hashes.get(route.key)
        # A 429 naming another bucket than the route's reveals a hidden limit on this kind of
        # request (Discord's channel renames: 2 per 10 minutes under 10-per-15-s headers),
        # unless it names a bucket other routes use: then Discord moved this route onto it.
        hidden = (
            status == 429
            and known_hash is not None
            and info.bucket not in (None, known_hash)
            and info.bucket not in self._hashes.values()
        )
        if info.bucket is not None and not hidden:
            bucket = self._learn(route, info.bucket, bucket, now)
        try:
            if permit._bucket is bucket and permit._epoch != bucket.epoch:
                info = _without_window(info)  # it describes a window already refilled past
            self._sent_at = permit._taken_at
            if status != 429:
                self._apply(bucket, info, now, route.majors)
                return False
            return self._on_429(permit, bucket, info, payload, now, hidden)
        finally:
            bucket.in_flight = max(0, bucket.in_flight - 1)
            if bucket.log is not None:
                bucket.log.append(now)
            elif not bucket.known:
                bucket.remaining = 1
            self._unstick(bucket, now)
            self._wake_head(bucket)

    def _on_429(
        self,
        permit: Permit,
        bucket: _Bucket,
        info: RateLimitHeaders,
        payload: dict[str, Any] | None,
        now: float,
        hidden: bool,
    ) -> bool:
        self.stats.ratelimited += 1
        route = permit.route
        body_wait = _float(str(payload.get("retry_after"))) if payload else None
        wait = max(info.retry_after or 0.0, body_wait or 0.0)
        if info.retry_after is None and body_wait is None:
            # A 429 that names no wait: never retry at once (a client that read the missing
            # value as 0 s spun into a ban); wait out the window, or a second at least.
            wait = max(info.reset_after or 0.0, self.global_period)
        # Discord's own 429s carry ``Via`` and a JSON object with ``retry_after``. Cloudflare's
        # are HTML (or JSON of another shape). A proxy can strip ``Via``, and a false breaker
        # halts everything for up to an hour, so Discord's body shape alone is enough.
        discord_shaped = payload is not None and body_wait is not None
        if payload is None or (self.require_via and not info.via and not discord_shaped):
            self.stats.cloudflare += 1
            until = info.retry_after if info.retry_after is not None else self.breaker_default
            self._breaker_until = max(self._breaker_until, now + until)
            self._wake_all()
            raise CloudflareBanned(
                "Cloudflare refused the request; sending stops until the ban passes",
                status=429,
                retry_after=until / self.time_scale,
                route=str(route),
            )
        code = payload.get("code")
        if info.is_global or info.scope == "global" or payload.get("global") is True:
            self.stats.global_ratelimited += 1
            self._global_blocked_until = max(self._global_blocked_until, now + wait + self.margin)
            self._cut_global_cap(now)
            self._check_wait(wait, route, "global")
            return True
        if info.scope == "shared":
            self.stats.shared_ratelimited += 1
            self._apply(bucket, info, now, route.majors)
            self._set_gate(route, now + wait + self.margin)
            self._check_wait(wait, route, "shared")
            return True
        if hidden:
            self.stats.sublimited += 1
            _log.info("hidden limit on %s for %.3f s", route, wait)
            self._set_gate(route, now + wait + self.margin)
            self._check_wait(wait, route, "sublimit")
            return True
        if (info.remaining is not None and info.remaining > 0) or code in SUBLIMIT_CODES:
            self.stats.sublimited += 1
            _log.info("sub-limit on %s for %.3f s", route, wait)
            self._apply(bucket, info, now, route.majors)
            self._set_gate(route, now + wait + self.margin)
            self._check_wait(wait, route, "sublimit")
            return True
        self._apply(bucket, info, now, route.majors)
        if body_wait is not None and info.retry_after is not None and info.complete:
            # Whole Discord seconds (a time-scaled server says them in real ones).
            whole = info.retry_after / self.time_scale
            rounded = abs(whole - round(whole)) < 1e-6 and body_wait <= info.retry_after
            if rounded and info.retry_after < body_wait + self.time_scale:
                # A drained bucket whose header wait is only the body's exact one rounded up
                # to whole seconds: waiting out the rounding would lose the refill to every
                # sender that did not have to wait (another process), window after window.
                wait = body_wait
        until = now + wait + self.margin
        if bucket.log is not None:
            self._set_gate(route, until)  # a pinned bucket: hold this route and resource
        elif bucket.known:
            if bucket.guessed:
                # Sent at least ``window`` after the last success was answered, and still
                # ``wait`` short of the end of the window that success opened: the window is
                # at least their sum.
                bucket.window += wait
            else:
                # Our count said there was room: another sender spent it, and the share we
                # left them was too small.
                permit.drained = True
                self._note_contention(bucket, self._reserve(bucket, now) + 1, now)
            bucket.remaining = 0
            bucket.reset_at = until if bucket.reset_at == _INF else max(bucket.reset_at, until)
            bucket.window_start = bucket.reset_at - self.margin
        else:
            # Refused by a limit that no answer ever described (Discord omits the headers on
            # some routes): assume one request per window, the window at least the wait it
            # asked for, so the route stops earning a 429 in every window. Headers, once
            # seen, take over.
            bucket.known = bucket.guessed = True
            bucket.limit = 1
            bucket.remaining = 0
            bucket.window = max(bucket.window, wait)
            bucket.reset_at = until
            bucket.window_start = until - self.margin
        self._check_wait(wait, route, "user")
        return True

    def mark_token_invalid(self) -> None:
        """Fail every queued and later request with :class:`InvalidToken`."""
        self._token_invalid = True
        self._wake_all()

    def _apply(
        self, bucket: _Bucket, info: RateLimitHeaders, now: float, majors: Majors = ()
    ) -> None:
        if not info.complete:
            return  # no headers: learn nothing (young-message deletes answer like this)
        assert info.limit is not None and info.remaining is not None
        assert info.reset_after is not None
        bucket.guessed = False
        if bucket.log is not None:
            # Pinned: keep the stricter terms; the log, not the headers, times the sends.
            bucket.limit = min(bucket.limit, max(1, info.limit))
            bucket.window = max(bucket.window, info.reset_after)
            return
        # The request reached the server between its send and its answer, so the end of the
        # window it landed in lies in [sent + Reset-After, received + Reset-After], give or
        # take the header's millisecond rounding.
        earliest = min(self._sent_at, now) + info.reset_after - _HEADER_ROUNDING
        latest = now + info.reset_after + _HEADER_ROUNDING
        others = max(0, bucket.in_flight - 1) + self._probing.get(majors, 0)
        # The answered request was counted, so a Remaining of Limit or more disagrees with
        # the Limit; believe the stricter of the two.
        estimate = max(0, min(info.remaining, info.limit - 1) - others)
        bucket.window = max(bucket.window, info.reset_after)
        bucket.limit = max(1, info.limit)
        # Never raise ``remaining`` before our own refill: answers overtake each other.
        if not bucket.known:
            bucket.known = True
            bucket.remaining = estimate
            self._date_window(bucket, earliest, latest)
            return
        if estimate < bucket.remaining and not self._probing.get(majors):
            # Fewer left than our own sends explain: another sender spends this bucket.
            self._note_contention(bucket, bucket.remaining - estimate, now)
        bucket.remaining = min(bucket.remaining, estimate)
        if bucket.reset_at == _INF:
            # Refilled locally; this answer dates the window we are already spending.
            self._date_window(bucket, earliest, latest)
            return
        current_end = bucket.reset_at - self.margin
        if earliest > current_end:
            # Certainly a later server window (a request sent late landed after a reset).
            self._date_window(bucket, earliest, latest)
            return
        # Each interval holds its own window's end, and two windows' ends are at least a
        # window apart, so two intervals narrower than a quarter window overlap only when
        # they date the same window. Only then is it safe to narrow the end.
        narrow = bucket.window / 4
        if latest - earliest <= narrow and current_end - bucket.window_start <= narrow:
            if latest < bucket.window_start:
                return  # an earlier window: nothing to learn about the reset
            bucket.window_start = max(bucket.window_start, earliest)
            bucket.reset_at = min(bucket.reset_at, latest + self.margin)
        else:
            # Too slow an answer to tell windows apart: keep the later end, which is safe.
            bucket.reset_at = max(bucket.reset_at, latest + self.margin)

    def _date_window(self, bucket: _Bucket, earliest: float, latest: float) -> None:
        bucket.window_start = earliest
        bucket.reset_at = latest + self.margin

    def _note_terms(self, info: RateLimitHeaders) -> None:
        assert info.bucket is not None and info.limit is not None
        assert info.reset_after is not None
        limit, window = self._hash_terms.get(info.bucket, (max(1, info.limit), 0.0))
        self._hash_terms[info.bucket] = (
            min(limit, max(1, info.limit)),
            max(window, info.reset_after),
        )

    def _pin(self, route: CompiledRoute, bucket: _Bucket, now: float) -> None:
        """Turn ``bucket`` into a sliding log on the stricter terms of the route's hashes."""
        terms = [
            self._hash_terms[h]
            for h in self._route_hashes.get(route.key, ())
            if h in self._hash_terms
        ]
        if bucket.known:
            terms.append((bucket.limit, bucket.window))
        if not terms:
            terms.append((1, self.global_period))
        bucket.known = True
        bucket.limit = min(limit for limit, _ in terms)
        bucket.window = max(window for _, window in terms)
        bucket.reset_at = _INF
        # What was sent in the last window is not known for sure: start from a full one.
        bucket.log = deque([now] * bucket.limit)

    def _prune_log(self, bucket: _Bucket, now: float) -> float:
        """Drop answers older than a pinned bucket's window; return the window used."""
        assert bucket.log is not None
        period = bucket.window + self.margin
        while bucket.log and bucket.log[0] <= now - period:
            bucket.log.popleft()
        return period

    # ------------------------------------------------------------------ hashes

    def _learn(
        self, route: CompiledRoute, bucket_hash: str, bucket: _Bucket, now: float
    ) -> _Bucket:
        old = self._hashes.get(route.key)
        self._route_hashes.setdefault(route.key, set()).add(bucket_hash)
        if route.key in self._pinned:
            # Every resource's bucket of a pinned route is pinned, new ones included.
            bucket = bucket.resolve()
            if bucket.log is None:
                self._pin(route, bucket, now)
            return bucket
        if old != bucket_hash:
            if old is not None:
                self.stats.hash_changes += 1
                flips = self._hash_flips.setdefault(route.key, deque())
                flips.append(now)
                while flips and flips[0] < now - 60.0 * self.time_scale:
                    flips.popleft()
                if len(flips) > 4:
                    # Thrashing between counters we cannot tell apart: stop remapping and
                    # hold the route to the stricter terms of every hash it has shown.
                    self._pinned.add(route.key)
                    for other in list(self._buckets.values()):
                        if other.key[0] == old and other.log is None:
                            self._pin(route, other, now)
                    bucket = bucket.resolve()
                    if bucket.log is None:
                        self._pin(route, bucket, now)
                    _log.warning("bucket hash of %s keeps changing; pinned", route.key)
                    return bucket
                _log.info("bucket hash of %s changed", route.key)
            self._hashes[route.key] = bucket_hash
            sources = ["?" + route.key] + ([old] if old is not None else [])
            for key in [k for k in self._buckets if k[0] in sources]:
                if self._buckets[key].log is None:  # a pinned bucket stays where it is
                    self._rehome(self._buckets[key], (bucket_hash, key[1]))
        bucket = bucket.resolve()  # the loop may have merged it already: never merge twice
        if bucket.key != (bucket_hash, route.majors) and bucket.key[0] in ("?" + route.key, old):
            self._rehome(bucket, (bucket_hash, route.majors))
        return bucket.resolve()

    def _rehome(self, bucket: _Bucket, key: BucketKey) -> None:
        if bucket.merged_into is not None:
            return  # already part of another bucket; its requests are counted there
        if self._buckets.get(bucket.key) is bucket:
            del self._buckets[bucket.key]
        target = self._buckets.get(key)
        if target is None or target is bucket:
            bucket.key = key
            self._buckets[key] = bucket
            return
        # Two queues for one server bucket: merge into the existing one, conservatively.
        if bucket.known and not target.known:
            target.known, target.limit = True, bucket.limit
            target.remaining, target.reset_at = bucket.remaining, bucket.reset_at
            target.window_start = bucket.window_start
        elif bucket.known and target.known:
            target.remaining = min(target.remaining, bucket.remaining)
            later = max(target.reset_at, bucket.reset_at)
            target.reset_at = later
            target.window_start = max(target.window_start, bucket.window_start)
            target.limit = min(target.limit, bucket.limit)
        elif not bucket.known and not target.known:
            target.remaining = min(target.remaining, bucket.remaining)
        if bucket.log is not None or target.log is not None:
            # A pinned bucket stays pinned, on the stricter terms of both.
            target.limit = min(b.limit for b in (bucket, target) if b.known or b.log is not None)
            target.known = True
            target.log = deque(sorted([*(bucket.log or ()), *(target.log or ())]))
        # An unknown bucket joining a known one brings only its in-flight requests.
        target.window = max(target.window, bucket.window)
        target.in_flight += bucket.in_flight
        for waiter in bucket.queue:
            waiter.bucket = target
        target.queue.extend(bucket.queue)
        bucket.queue.clear()
        bucket.merged_into = target
        for waiter in target.queue:
            waiter.wake()

    # ------------------------------------------------------------------ internals

    def _peek(self, route: CompiledRoute) -> _Bucket | None:
        bucket_hash = self._hashes.get(route.key)
        key = (bucket_hash if bucket_hash else "?" + route.key, route.majors)
        return self._buckets.get(key)

    def _bucket_for(self, route: CompiledRoute) -> _Bucket:
        bucket_hash = self._hashes.get(route.key)
        key = (bucket_hash if bucket_hash else "?" + route.key, route.majors)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._gc_at:
                self._collect(self._clock.now())
            bucket = self._buckets[key] = _Bucket(key)
        return bucket

    def _collect(self, now: float) -> None:
        """Forget idle buckets whose window has passed (deleted channels, old resources)."""
        for key, bucket in list(self._buckets.items()):
            idle = not bucket.queue and bucket.in_flight == 0
            if idle and (not bucket.known or now >= bucket.reset_at):
                del self._buckets[key]
        self._gc_at = max(1024, 2 * len(self._buckets))

    def _refills(self, bucket: _Bucket, now: float) -> bool:
        return bucket.known and now >= bucket.reset_at

    def _bucket_delay(self, bucket: _Bucket, now: float) -> float:
        if bucket.log is not None:
            # A request counts from its answer (``now`` while in flight), as the global log.
            period = self._prune_log(bucket, now)
            excess = bucket.in_flight + len(bucket.log) - bucket.limit
            if excess < 0:
                return 0.0
            if excess >= len(bucket.log):
                return _INF  # an answer in flight will tell
            return bucket.log[excess] + period - now
        if now < bucket.contended_until:
            return self._contended_delay(bucket, now)
        if bucket.remaining > 0:
            return 0.0
        if self._refills(bucket, now):
            return 0.0 if bucket.limit > bucket.in_flight else _INF
        if bucket.reset_at == _INF:
            return _INF  # an answer in flight will tell
        return bucket.reset_at - now

    def _contended_delay(self, bucket: _Bucket, now: float) -> float:
        """Pace a bucket another sender spends too (see "Contention" in the module doc)."""
        if bucket.in_flight > 0:
            return _INF  # one at a time: each send is decided on the freshest Remaining
        if self._refills(bucket, now) or bucket.reset_at == _INF:
            return 0.0
        if bucket.remaining > self._reserve(bucket, now):
            return 0.0
        return bucket.reset_at - now

    def _reserve(self, bucket: _Bucket, now: float) -> int:
        """Return how many of a window's requests to leave to the bucket's other senders.

        Each sighting counts for its size, less one per ``_SIGHTING_DECAY`` windows of age: a
        sender that goes first in every window sees nobody, so its share must shrink slowly
        enough that the one extra request it then tries meets the others and renews the
        sighting, instead of a burst that earns 429s.
        """
        step = self._sighting_step(bucket)
        best = 0
        for sighting in bucket.sightings:
            best = max(best, _decayed(sighting, now, step))
        return min(best, bucket.limit - 1)

    def _sighting_step(self, bucket: _Bucket) -> float:
        """Return how long a sighting takes to shrink by one request."""
        return _SIGHTING_DECAY * max(bucket.window, self.global_period)

    def _note_contention(self, bucket: _Bucket, foreign: int, now: float) -> None:
        if now >= bucket.contended_until:
            bucket.sightings.clear()
            bucket.contended_since = now
            self.stats.contended += 1
            _log.info("bucket %s is spent by another sender too; pacing it", bucket.key[0])
        if self._sent_at < bucket.contended_since:
            # Sent before pacing began: bursts (ours and theirs) say little about their pace.
            foreign = 1
        sightings = bucket.sightings
        while sightings and sightings[-1][1] <= foreign:
            sightings.pop()  # older and no larger: it decays first, so it never counts again
        sightings.append((now, foreign))
        step = self._sighting_step(bucket)
        while sightings and _decayed(sightings[0], now, step) <= 0:
            sightings.popleft()
        # Paced one at a time until every sighting has decayed, and a while after.
        bucket.contended_until = now + max(self.contention_memory, (foreign + 1) * step)

    def _global_delay(self, route: CompiledRoute, now: float) -> float:
        blocked = max(0.0, self._global_blocked_until - now)
        if route.route.global_exempt:
            return blocked
        log = self._global_log
        while log and log[0] <= now - self.global_period:
            log.popleft()
        excess = self._global_in_flight + len(log) - self._global_cap(now)
        if excess < 0:
            return blocked
        if excess >= len(log):
            # Everything counted is still in flight: look again once answers can have aged.
            return max(blocked, self.global_period)
        return max(blocked, log[excess] + self.global_period - now)

    def _global_cap(self, now: float) -> int:
        """Return the requests allowed in any second now: ``global_limit``, or less for a
        while after a global 429 (another process of this bot spends the same 50)."""
        if self._global_cut_at is None:
            return self.global_limit
        grown = self._global_cut + int((now - self._global_cut_at) / self.global_period)
        if grown >= self.global_limit:
            self._global_cut_at = None
            return self.global_limit
        return grown

    def _cut_global_cap(self, now: float) -> None:
        # Our own log keeps us under the limit, so a global 429 means someone else spends it
        # too: halve our share, then win it back one request per second (additive increase,
        # multiplicative decrease, so several processes settle on a fair share). Requests
        # already in flight bring back more global 429s from the same second: one cut each.
        if self._global_cut_at is not None and now - self._global_cut_at < self.global_period:
            return
        self._global_cut = max(1, self._global_cap(now) // 2)
        self._global_cut_at = now
        _log.info("global 429: sending at most %d requests a second for now", self._global_cut)

    def _gate_delay(self, route: CompiledRoute, now: float) -> float:
        key = (route.key, route.majors)
        until = self._gates.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._gates[key]
            return 0.0
        return until - now

    def _set_gate(self, route: CompiledRoute, until: float) -> None:
        key = (route.key, route.majors)
        self._gates[key] = max(self._gates.get(key, 0.0), until)

    def _fatal(self, route: CompiledRoute, now: float) -> Exception | None:
        if self._token_invalid:
            return InvalidToken("the token was refused (401)", status=401, route=str(route))
        if now < self._breaker_until:
            left = self._breaker_until - now
            return CloudflareBanned(
                "the Cloudflare breaker is open",
                status=429,
                retry_after=left / self.time_scale,
                route=str(route),
            )
        self._prune_invalid(now)
        if len(self._invalid) >= self.invalid_refuse:
            return InvalidRequestLimit(
                f"{len(self._invalid)} invalid responses in 10 minutes; refusing to send",
                route=str(route),
            )
        return None

    def _check_wait(self, wait: float, route: CompiledRoute, scope: str) -> None:
        if wait > self.max_wait:
            raise RateLimited(
                f"rate limited ({scope}) for {wait / self.time_scale:.3f} s",
                status=429,
                retry_after=wait / self.time_scale,
                scope=scope,
                route=str(route),
            )

    def _count_invalid(self, now: float) -> None:
        self._invalid.append(now)
        self.stats.invalid_requests += 1
        self._prune_invalid(now)
        if len(self._invalid) >= self.invalid_warn and not self._warned:
            self._warned = True
            _log.warning(
                "%d invalid (401/403/429) responses in 10 minutes; Discord bans at 10,000",
                len(self._invalid),
            )
        elif len(self._invalid) < self.invalid_warn // 2:
            self._warned = False

    def _prune_invalid(self, now: float) -> None:
        while self._invalid and self._invalid[0] <= now - self.invalid_window:
            self._invalid.popleft()

    async def _sleep(self, waiter: _Waiter, delay: float | None) -> None:
        if waiter.poked:
            waiter.poked = False
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.future = future
        handle: TimerHandle | None = None
        if delay is not None and delay < _INF:
            handle = self._clock.call_later(delay, waiter.wake)
        try:
            await future
        finally:
            waiter.future = None
            waiter.poked = False
            if handle is not None:
                handle.cancel()

    def _leave_queue(self, waiter: _Waiter) -> None:
        bucket = waiter.bucket
        if bucket is None:
            return
        waiter.bucket = None
        was_head = bool(bucket.queue) and bucket.queue[0] is waiter
        try:
            bucket.queue.remove(waiter)
        except ValueError:
            return
        if was_head:
            self._wake_head(bucket)

    def _wake_head(self, bucket: _Bucket) -> None:
        bucket = bucket.resolve()
        if bucket.queue:
            bucket.queue[0].wake()

    def _wake_all(self) -> None:
        for waiter in list(self._waiters):
            waiter.wake()
