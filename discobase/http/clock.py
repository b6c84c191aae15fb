"""Clocks for the rate limiter (http layer: knows nothing of aiohttp or routes).

The limiter reads time and schedules wake-ups only through a :class:`Clock`, so tests drive
it with a :class:`ManualClock` and never sleep for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "LoopClock", "ManualClock", "TimerHandle"]


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Stop the callback from running."""


class Clock(Protocol):
    """A monotonic clock that can call back later."""

    def now(self) -> float:
        """Return monotonic seconds."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds."""


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        """Return the loop's monotonic time."""
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Schedule ``callback`` on the running loop."""
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to; for tests of anything that waits.

    Args:
        start: the initial reading.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Return the current reading."""
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Schedule ``callback`` for when the clock has advanced by ``delay``."""
        timer = _ManualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    @property
    def next_deadline(self) -> float | None:
        """Return when the earliest pending timer fires, or ``None``."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def settle(self) -> None:
        """Let every task that can run without time passing run."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order and letting woken tasks run."""
        target = self._now + seconds
        await self.settle()
        while True:
            deadline = self.next_deadline
            if deadline is None or deadline > target:
                break
            self._now = max(self._now, deadline)
            # Fire every timer due at this instant before letting tasks run.
            while self._timers and self._timers[0][0] <= deadline:
                _, _, timer = heapq.heappop(self._timers)
                if not timer.cancelled:
                    timer.callback()
            await self.settle()
        self._now = target
        await self.settle()
