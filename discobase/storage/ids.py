"""Record ids and snowflake arithmetic (storage layer: pure; knows nothing of HTTP or Discord I/O).

A record id is a positive 63-bit integer known before the write is sent, so ``save()`` can
hand it back at once. Its shape follows Discord's snowflakes: milliseconds since the Discord
epoch in the high bits, then 22 bits that start at a random value per generator and count up.
Two processes collide only if they draw the same 22-bit start within the same millisecond
*and* their counters meet, which is vanishingly rare; within one process ids strictly increase
(a burst of more than 4 million ids in one millisecond borrows from the next millisecond).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

__all__ = ["DISCORD_EPOCH_MS", "IdGenerator", "snowflake_at", "snowflake_ms"]

#: 2015-01-01T00:00:00Z, the zero of Discord's snowflakes, in Unix milliseconds.
DISCORD_EPOCH_MS = 1_420_070_400_000

_LOW_BITS = 22
_LOW_MASK = (1 << _LOW_BITS) - 1


def snowflake_ms(snowflake: int) -> int:
    """Return the Unix time in milliseconds encoded in a snowflake."""
    return (snowflake >> _LOW_BITS) + DISCORD_EPOCH_MS


def snowflake_at(unix_ms: int) -> int:
    """Return the smallest snowflake of a Unix millisecond (0 before the Discord epoch)."""
    return max(0, unix_ms - DISCORD_EPOCH_MS) << _LOW_BITS


class IdGenerator:
    """Hand out strictly increasing 63-bit record ids, unique across processes.

    Args:
        clock_ms: the Unix time in milliseconds (injected in tests).
        seed: the 22-bit start of the counter (random when omitted).
    """

    __slots__ = ("_clock_ms", "_last")

    def __init__(
        self, *, clock_ms: Callable[[], int] | None = None, seed: int | None = None
    ) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        start = secrets.randbits(_LOW_BITS) if seed is None else seed & _LOW_MASK
        self._last = snowflake_at(self._clock_ms()) | start

    def new_id(self) -> int:
        """Return an id larger than every id this generator returned before."""
        now = snowflake_at(self._clock_ms())
        last = self._last
        # Keep the random low bits of the previous id when the millisecond moves on, so two
        # generators started in the same millisecond stay apart.
        candidate = now | (last & _LOW_MASK)
        self._last = candidate if candidate > last else last + 1
        return self._last

    def new_ids(self, count: int) -> list[int]:
        """Return ``count`` consecutive ids, as ``count`` calls of :meth:`new_id` in one
        millisecond would (a large ``save_many`` needs them at once)."""
        if count <= 0:
            return []
        first = self.new_id()
        self._last = first + count - 1
        return list(range(first, first + count))
