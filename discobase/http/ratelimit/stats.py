"""What the rate limiter reports to its callers (http layer, rate-limit core: sans-IO).

Plain values: a bucket as batch writers see it, and the limiter's life counters.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BucketView", "LimiterStats"]


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
    """Counters of the limiter's life.

    ``drained`` counts the 429s of a route bucket our own count said had room: another
    sender (another process of the bot) spent it, which no limiter can foresee. Every other
    429 of a route bucket means the limiter sent what it knew would be refused.
    """

    acquired: int = 0
    ratelimited: int = 0
    global_ratelimited: int = 0
    shared_ratelimited: int = 0
    sublimited: int = 0
    cloudflare: int = 0
    hash_changes: int = 0
    invalid_requests: int = 0
    contended: int = 0
    drained: int = 0

    def add(self, counter: str) -> None:
        """Add one to the counter named ``counter``."""
        setattr(self, counter, getattr(self, counter) + 1)
