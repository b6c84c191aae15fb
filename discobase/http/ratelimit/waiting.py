"""The waiting: futures, wake-ups and permits (http layer; the rate limiter's only asyncio).

A request that may not go yet is a :class:`Waiter`: it sits in its bucket's queue or in the
global line and sleeps on a future until a timer or an answer wakes it, then looks again. A
wake that comes while it is not asleep is remembered, so none is lost between two looks. A
request that may go gets a :class:`Permit`, which it hands back through the limiter with its
answer (or without one).

The decisions (who may go, and when) are the core's: ``bucket``, ``registry``,
``global_limit``, ``guard`` and ``classify`` import no asyncio; ``limiter`` wires them to this.
"""

from __future__ import annotations

import asyncio

from discobase.http.clock import Clock, TimerHandle
from discobase.http.ratelimit.bucket import INF, Bucket
from discobase.http.routes import CompiledRoute

__all__ = ["Permit", "Waiter"]


class Waiter:
    """One request waiting in :meth:`RateLimiter.acquire`.

    Attributes:
        route: the request's route.
        bucket: the bucket whose queue it is in (``None``: in none).
        in_line: whether it is in the global line.
    """

    __slots__ = ("bucket", "future", "in_line", "poked", "route")

    def __init__(self, route: CompiledRoute) -> None:
        self.route = route
        self.bucket: Bucket | None = None
        self.future: asyncio.Future[None] | None = None
        self.poked = False
        self.in_line = False

    def wake(self) -> None:
        """Make the request look again (now if asleep, else at its next sleep)."""
        if self.future is not None and not self.future.done():
            self.future.set_result(None)
        else:
            self.poked = True

    async def sleep(self, clock: Clock, delay: float | None) -> None:
        """Sleep until woken, or ``delay`` seconds at most (``None``/``inf``: until woken)."""
        if self.poked:
            self.poked = False
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.future = future
        handle: TimerHandle | None = None
        if delay is not None and delay < INF:
            handle = clock.call_later(delay, self.wake)
        try:
            await future
        finally:
            self.future = None
            self.poked = False
            if handle is not None:
                handle.cancel()

    def leave_queue(self) -> None:
        """Leave the bucket queue it is in, if any (waking the next if it was first)."""
        bucket = self.bucket
        if bucket is None:
            return
        self.bucket = None
        bucket.leave(self)


class Permit:
    """The right to send one request; hand it back through the limiter.

    Attributes:
        route: the request's route.
        sent: whether the request went on the wire (set by :meth:`mark_sent`).
        drained: whether its answer was a 429 saying the bucket ran dry (someone else spent
            it, or the window came early): waiting for the refill is the whole cure, so the
            client need not count it as a sign that something is wrong.
        done: whether the limiter has had it back.
        bucket, epoch, probe, counted, taken_at: the limiter's bookkeeping (the bucket it was
            counted in and that bucket's refill count then, whether it probed an unknown
            bucket, whether it holds a global slot, when it was let through).
    """

    __slots__ = (
        "bucket",
        "counted",
        "done",
        "drained",
        "epoch",
        "probe",
        "route",
        "sent",
        "taken_at",
    )

    def __init__(
        self, route: CompiledRoute, bucket: Bucket, counted: bool, taken_at: float
    ) -> None:
        self.route = route
        self.bucket = bucket
        self.taken_at = taken_at
        self.epoch = bucket.epoch
        self.probe = not bucket.known
        self.counted = counted
        self.sent = False
        self.done = False
        self.drained = False

    def mark_sent(self) -> None:
        """Record that the request is about to hit the wire (its slot is spent for good)."""
        self.sent = True
