"""The global limit: 50 requests a second per bot (http layer, rate-limit core: sans-IO).

A sliding log caps requests at ``limit`` (default 47) in any window of ``period`` (a second).
Each request counts as "now" while in flight and is logged at the time of its *answer*: the
server counted it somewhere between send and answer, so this is the latest it can have, and a
log of send times would let latency jitter squeeze more than the cap into one server window.
Ready requests take their slots in the order of :attr:`GlobalLimit.line`, first come, first
served. A global 429 blocks everyone for its wait and halves the cap, which grows back one
request per period (another process of the bot spends the same 50).

Knows neither buckets nor routes; no asyncio, no aiohttp, no clock (``now`` is passed in).
"""

from __future__ import annotations

import logging
from collections import deque

from discobase.http.ratelimit.bucket import Queued

__all__ = ["GlobalLimit"]

_log = logging.getLogger("discobase.http")


class GlobalLimit:
    """The proactive global limit and the line of requests waiting for it.

    Args:
        limit: requests allowed in any one window.
        period: the window's length in real seconds.
    """

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.in_flight = 0
        self.line: deque[Queued] = deque()
        self.log: deque[float] = deque()
        self.blocked_until = 0.0
        # After a global 429: the reduced cap and when it was set (None: the full limit).
        self._cut = limit
        self._cut_at: float | None = None

    def blocked_for(self, now: float) -> float:
        """Return seconds until a global 429's wait has passed (0 if none)."""
        return max(0.0, self.blocked_until - now)

    def delay(self, exempt: bool, now: float) -> float:
        """Return seconds until a request (``exempt`` from the cap or not) may go."""
        blocked = self.blocked_for(now)
        if exempt:
            return blocked
        log = self.log
        while log and log[0] <= now - self.period:
            log.popleft()
        excess = self.in_flight + len(log) - self.cap(now)
        if excess < 0:
            return blocked
        if excess >= len(log):
            # Everything counted is still in flight: look again once answers can have aged.
            return max(blocked, self.period)
        return max(blocked, log[excess] + self.period - now)

    def used(self) -> int:
        """Return the slots taken or promised: in flight, logged, and waiting in line."""
        return self.in_flight + len(self.log) + len(self.line)

    def cap(self, now: float) -> int:
        """Return the requests allowed in any window now: ``limit``, or less for a while
        after a global 429 (another process of this bot spends the same 50)."""
        if self._cut_at is None:
            return self.limit
        grown = self._cut + int((now - self._cut_at) / self.period)
        if grown >= self.limit:
            self._cut_at = None
            return self.limit
        return grown

    def take(self) -> None:
        """Count a request going out."""
        self.in_flight += 1

    def end(self, sent: bool, now: float) -> None:
        """Count a request as over: logged if it was sent, else its slot is free at once."""
        self.in_flight -= 1
        if sent:
            self.log.append(now)
        elif self.line:
            self.line[0].wake()

    def block(self, until: float, now: float) -> None:
        """Stop every counted request until ``until`` after a global 429, and cut the cap."""
        self.blocked_until = max(self.blocked_until, until)
        # Our own log keeps us under the limit, so a global 429 means someone else spends it
        # too: halve our share, then win it back one request per period (additive increase,
        # multiplicative decrease, so several processes settle on a fair share). Requests
        # already in flight bring back more global 429s from the same second: one cut each.
        if self._cut_at is not None and now - self._cut_at < self.period:
            return
        self._cut = max(1, self.cap(now) // 2)
        self._cut_at = now
        _log.info("global 429: sending at most %d requests a second for now", self._cut)

    # ------------------------------------------------------------------ the line

    def join(self, waiter: Queued) -> None:
        """Put ``waiter`` at the end of the line, unless it is in it already."""
        if not waiter.in_line:
            waiter.in_line = True
            self.line.append(waiter)

    def leave(self, waiter: Queued) -> None:
        """Take ``waiter`` out of the line; wake the next if it was first."""
        if not waiter.in_line:
            return
        waiter.in_line = False
        line = self.line
        was_first = bool(line) and line[0] is waiter
        line.remove(waiter)
        if was_first and line:
            line[0].wake()
