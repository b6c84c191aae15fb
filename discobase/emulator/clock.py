"""The emulator's Discord clock, which runs ``1/time_scale`` times as fast as the wall clock.

Layer: the emulator. Knows nothing of HTTP, the gateway or the client.

``time_scale`` is *real seconds per Discord second*: at 0.01 a 5-second window lasts 50 ms of
real time. Snowflakes, timestamps, rate-limit windows and expiries all read this clock, so their
ratios stay Discord's while the test runs fast. ``advance`` jumps it forward (for 14-day rules).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock"]


class Clock:
    """Tell Discord time: epoch seconds that run ``1/time_scale`` times as fast as real time.

    Args:
        time_scale: Real seconds per Discord second (> 0).
        wall: Real wall clock (epoch seconds); injected by unit tests.
        monotonic: Real monotonic clock (seconds); injected by unit tests.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be a positive number of real seconds")
        self.time_scale = float(time_scale)
        self._wall = wall
        self._monotonic = monotonic
        self._wall0 = wall()
        self._mono0 = monotonic()
        self._offset = 0.0

    def now(self) -> float:
        """Return the Discord time as Unix epoch seconds."""
        return self._wall0 + self.elapsed()

    def elapsed(self) -> float:
        """Return Discord seconds since the clock started, advances included (monotonic)."""
        return (self._monotonic() - self._mono0) / self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Move the Discord clock forward by ``seconds`` Discord seconds."""
        if seconds < 0:
            raise ValueError("the Discord clock only moves forward")
        self._offset += float(seconds)

    def not_before(self, epoch_seconds: float) -> None:
        """Move the clock forward so that ``now()`` is at least ``epoch_seconds`` (restarts)."""
        gap = epoch_seconds - self.now()
        if gap > 0:
            self._offset += gap

    def to_real(self, discord_seconds: float) -> float:
        """Convert a Discord duration into real seconds (what the wire reports)."""
        return discord_seconds * self.time_scale

    def wall(self) -> float:
        """Return the real wall clock (epoch seconds), for ``X-RateLimit-Reset``."""
        return self._wall()
