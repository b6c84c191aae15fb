"""The REST rate limiter (http layer: a sans-IO core, one module that waits; clock injected).

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
  so that it stops earning a 429 per window: the first guess is the wait plus the time since
  our last request the server let through was sent, which opened the window that refused us
  (never short, at most a round trip long; the wait alone if there is none, or if that would
  pass ``max_wait``), and each later refusal lengthens it by its wait);
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
emulator scales them itself); ``time_scale`` scales only this package's own constants.

Layout
------
The core decides and never waits: it imports neither asyncio nor aiohttp (a test checks) and
is handed the time:

- ``headers``: :class:`RateLimitHeaders`, one response's headers read into numbers;
- ``bucket``: :class:`~discobase.http.ratelimit.bucket.Bucket`, one server counter and all
  its arithmetic (windows, refills, the pinned log, contention, merging);
- ``registry``: route keys to hashes to buckets, re-homing, pinning, the variants' gates,
  forgetting idle buckets;
- ``global_limit``: the sliding global log, its line, the cap cut after a global 429;
- ``guard``: the 401 poison, the Cloudflare breaker, the invalid-request counter;
- ``classify``: what a 429 means (``classify_429``) and what to do per kind (``REACTIONS``);
- ``stats``: :class:`BucketView` and :class:`LimiterStats`.

``waiting`` holds the waiting (futures, wake-ups, :class:`Permit`) and is the only module here
that imports asyncio; ``limiter`` wires the parts into :class:`RateLimiter`.
"""

from __future__ import annotations

from discobase.http.ratelimit.headers import RateLimitHeaders
from discobase.http.ratelimit.limiter import RateLimiter
from discobase.http.ratelimit.stats import BucketView, LimiterStats
from discobase.http.ratelimit.waiting import Permit

__all__ = ["BucketView", "LimiterStats", "Permit", "RateLimitHeaders", "RateLimiter"]
