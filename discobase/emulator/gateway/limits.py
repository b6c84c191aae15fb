"""Sliding-window counters for the gateway's limits (emulator layer, gateway side).

Layer: the emulator's gateway. Pure: times are passed in (real monotonic seconds), so the
limits are tested without a clock or a socket.

The send limit (120 payloads per 60 s per connection) and the identify limit
(``max_concurrency`` per 5 s per bot) are both enforced as a sliding log: a request is refused
when ``limit`` earlier ones happened within the last ``window``. A sliding log is the strictest
reading of "N per window", so a client that passes here passes any fixed-window server.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingLog"]


class SlidingLog:
    """Remember when events happened and refuse more than ``limit`` within ``window``."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def count(self, now: float) -> int:
        """Return how many events fall within the window ending at ``now``."""
        self._forget(now)
        return len(self._times)

    def allows(self, now: float) -> bool:
        """Return whether one more event at ``now`` stays within the limit."""
        return self.count(now) < self.limit

    def record(self, now: float) -> bool:
        """Count an event at ``now``; return False if it broke the limit (it is still counted)."""
        allowed = self.allows(now)
        self._times.append(now)
        return allowed
