"""Snowflake ids that encode the emulator's Discord time and never repeat.

Layer: the emulator. Knows nothing of HTTP or the client.

A snowflake holds milliseconds since the Discord epoch in bits 63-22, a worker in 21-17, a
process in 16-12 and an increment in 11-0. Ids are strictly increasing even when many are made
in one millisecond or the clock is behind the last id (after a restart with a faster scale).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["DISCORD_EPOCH_MS", "SnowflakeFactory", "snowflake_for", "snowflake_time"]

DISCORD_EPOCH_MS = 1_420_070_400_000
_WORKER = 1
_PROCESS = 0


def snowflake_for(epoch_seconds: float) -> int:
    """Return the smallest snowflake of the millisecond at ``epoch_seconds``."""
    return max(0, int(epoch_seconds * 1000) - DISCORD_EPOCH_MS) << 22


def snowflake_time(snowflake: int) -> float:
    """Return the Unix time in seconds that ``snowflake`` encodes."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000.0


class SnowflakeFactory:
    """Make strictly increasing snowflakes from a clock.

    Args:
        now: Discord time in epoch seconds.
        last: The largest id already handed out (persisted across restarts).
    """

    def __init__(self, now: Callable[[], float], last: int = 0) -> None:
        self._now = now
        self.last = last

    def next(self) -> int:
        """Return a new id, larger than every id before it."""
        candidate = snowflake_for(self._now()) | (_WORKER << 17) | (_PROCESS << 12)
        self.last = max(candidate, self.last + 1)
        return self.last
