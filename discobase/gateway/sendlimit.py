"""The gateway's send limit (gateway layer: pure, the caller passes the time).

Discord disconnects (4008) a connection that sends more than 120 payloads in 60 s. A sliding
log of send times counts every payload. Ordinary commands may only fill the log up to
``limit - reserve``; the reserve is kept for heartbeats, IDENTIFY and RESUME, so a burst of
commands can never starve a heartbeat. A requested heartbeat (op 1 from Discord) is sent even
when the log is full, because Discord asked for it. Make a new limiter for every connection.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["GATEWAY_SEND_LIMIT", "GATEWAY_SEND_WINDOW", "SendLimiter", "heartbeat_reserve"]

#: Payloads a client may send per connection per window.
GATEWAY_SEND_LIMIT = 120
#: The window, in Discord seconds.
GATEWAY_SEND_WINDOW = 60.0


def heartbeat_reserve(window: float, interval: float) -> int:
    """Return the slots to keep for priority payloads: one per beat in a window, plus two.

    The two extra cover IDENTIFY/RESUME and one heartbeat Discord asks for.
    """
    return math.ceil(window / interval) + 2 if interval > 0 else 2


class SendLimiter:
    """A sliding log of send times with a reserve for priority payloads.

    Args:
        window: the window length, in real seconds.
        limit: payloads allowed per window.
        reserve: slots ordinary commands may not use.
    """

    def __init__(self, window: float, limit: int = GATEWAY_SEND_LIMIT, reserve: int = 2) -> None:
        self.window = window
        self.limit = limit
        self.reserve = min(reserve, limit - 1)
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] + self.window <= now:
            self._sent.popleft()

    def count(self, now: float) -> int:
        """Return how many payloads were sent in the window ending at ``now``."""
        self._expire(now)
        return len(self._sent)

    def can_send(self, now: float, *, priority: bool = False) -> bool:
        """Return whether a payload may go out at ``now``."""
        cap = self.limit if priority else self.limit - self.reserve
        return self.count(now) < cap

    def next_slot(self, now: float, *, priority: bool = False) -> float:
        """Return the earliest time (at or after ``now``) a payload may go out."""
        cap = self.limit if priority else self.limit - self.reserve
        used = self.count(now)
        if used < cap:
            return now
        # The slot frees when the entry that keeps the log at the cap leaves the window.
        return self._sent[used - cap] + self.window

    def record(self, now: float) -> None:
        """Count a payload sent at ``now``."""
        self._expire(now)
        self._sent.append(now)
