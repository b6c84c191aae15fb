"""One server counter and its arithmetic (http layer, rate-limit core: sans-IO).

A :class:`Bucket` is what Discord counts at one (hash, top-level resource): how many requests
its window allows, how many are left, when it refills, and (for a pinned route) a sliding log
instead of a window. It dates windows from answers, refills itself, paces itself while another
sender spends it too, and merges with another bucket that turns out to be the same counter.
The package docstring (``discobase.http.ratelimit``) gives the theory.

It never waits and never reads a clock: every method takes ``now`` (monotonic seconds) and
says how long a request must wait. Whatever queues on it implements :class:`Queued`; waking a
queued request is all a bucket asks of it. No asyncio, no aiohttp, no routes.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from discobase.http.ratelimit.headers import RateLimitHeaders
from discobase.http.ratelimit.stats import BucketView

__all__ = [
    "HEADER_ROUNDING",
    "INF",
    "Bucket",
    "BucketKey",
    "Majors",
    "Queued",
    "Tuning",
]

_log = logging.getLogger("discobase.http")

INF = math.inf
# Discord gives Reset-After in milliseconds; dates derived from it are this uncertain.
HEADER_ROUNDING = 0.001
# Windows it takes a sighting of another sender's requests to shrink by one request.
_SIGHTING_DECAY = 4
Majors = tuple[tuple[str, str], ...]
BucketKey = tuple[str, Majors]


@dataclass(frozen=True, slots=True)
class Tuning:
    """The limiter's constants a bucket needs, in real (time-scaled) seconds.

    Attributes:
        margin: added to every reset, for rounding on the server.
        period: the global window (a second and a millisecond); the shortest step at which a
            sighting of another sender decays.
        contention_memory: how long a bucket stays contended after the last sign of another
            sender.
        max_wait: the longest wait the limiter sleeps through (longer ones raise); a window
            guessed from 429s is never inferred longer than this.
    """

    margin: float
    period: float
    contention_memory: float
    max_wait: float = INF


class Queued(Protocol):
    """A request waiting in a bucket's queue or in the global line."""

    bucket: Bucket | None
    in_line: bool

    def wake(self) -> None:
        """Let the request look again at whether it may go."""


def _decayed(sighting: tuple[float, int], now: float, step: float) -> int:
    """Return what a sighting ``(when, how many)`` still counts for: one less per ``step``."""
    at, amount = sighting
    return amount - int((now - at) / step)


class Bucket:
    """One rate-limit counter: (hash or ``"?" + route key``, majors).

    Args:
        key: the bucket's key in the registry.
        tuning: the limiter's constants.
    """

    __slots__ = (
        "contended_since",
        "contended_until",
        "epoch",
        "guessed",
        "in_flight",
        "key",
        "known",
        "limit",
        "log",
        "merged_into",
        "passed_at",
        "queue",
        "remaining",
        "reset_at",
        "sightings",
        "tuning",
        "window",
        "window_start",
    )

    def __init__(self, key: BucketKey, tuning: Tuning) -> None:
        self.key = key
        self.tuning = tuning
        self.known = False
        self.limit = 1
        self.remaining = 1
        self.reset_at = INF  # when the current window refills; inf: not until an answer says
        self.window = 0.0  # the longest Reset-After seen: a guess at the window's length
        # The server's current window ends somewhere in [window_start, reset_at - margin].
        self.window_start = -INF
        self.in_flight = 0
        self.epoch = 0  # bumped at each local refill; answers from older epochs are stale
        self.queue: deque[Queued] = deque()
        self.merged_into: Bucket | None = None
        # Pinned buckets only: when each answered request was answered (a sliding log).
        self.log: deque[float] | None = None
        # Known only from 429s without headers: one request per ``window``, a guess.
        self.guessed = False
        # When the last request the server let through was sent (see let_through()): dates
        # the window a first 429 without headers refuses us in (see drain()).
        self.passed_at = -INF
        # Someone else (another process of this bot) spends this bucket too: until this time,
        # send one request at a time and leave them as many requests of each window as
        # ``sightings`` (when, how many others' requests fell between two of our answers) show.
        self.contended_since = -INF
        self.contended_until = -INF
        self.sightings: deque[tuple[float, int]] = deque()

    # ------------------------------------------------------------------ reading

    def resolve(self) -> Bucket:
        """Return the bucket this one was merged into (itself if none)."""
        bucket = self
        while bucket.merged_into is not None:
            bucket = bucket.merged_into
        return bucket

    def refills(self, now: float) -> bool:
        """Whether the window has passed, so the next request starts a fresh one."""
        return self.known and now >= self.reset_at

    def contended(self, now: float) -> bool:
        """Whether another sender was seen spending this bucket lately."""
        return now < self.contended_until

    def forgettable(self, now: float) -> bool:
        """Whether nothing waits on the bucket and forgetting it loses nothing."""
        idle = not self.queue and self.in_flight == 0
        return idle and (not self.known or now >= self.reset_at)

    def view(self, now: float, bucket_hash: str | None, gate: float) -> BucketView:
        """Describe the bucket (see :class:`BucketView`)."""
        remaining = self.remaining
        if self.log is not None:
            period = self.prune_log(now)
            remaining = max(0, self.limit - self.in_flight - len(self.log))
            reset_in = max(0.0, self.log[0] + period - now) if self.log else INF
        else:
            if self.refills(now):
                remaining = max(0, self.limit - self.in_flight)
            reset_in = max(0.0, self.reset_at - now) if self.reset_at < INF else INF
        return BucketView(
            self.known,
            bucket_hash,
            self.limit,
            remaining,
            reset_in,
            self.in_flight,
            len(self.queue),
            gate,
            self.window,
            now < self.contended_until,
        )

    # ------------------------------------------------------------------ sending

    def delay(self, now: float) -> float:
        """Return seconds until the bucket lets a request go (``inf``: an answer will tell)."""
        if self.log is not None:
            # A request counts from its answer (``now`` while in flight), as the global log.
            period = self.prune_log(now)
            excess = self.in_flight + len(self.log) - self.limit
            if excess < 0:
                return 0.0
            if excess >= len(self.log):
                return INF  # an answer in flight will tell
            return self.log[excess] + period - now
        if now < self.contended_until:
            return self.contended_delay(now)
        if self.remaining > 0:
            return 0.0
        if self.refills(now):
            return 0.0 if self.limit > self.in_flight else INF
        if self.reset_at == INF:
            return INF  # an answer in flight will tell
        return self.reset_at - now

    def contended_delay(self, now: float) -> float:
        """Pace a bucket another sender spends too (see "Contention" in the package doc)."""
        if self.in_flight > 0:
            return INF  # one at a time: each send is decided on the freshest Remaining
        if self.refills(now) or self.reset_at == INF:
            return 0.0
        if self.remaining > self.reserve(now):
            return 0.0
        return self.reset_at - now

    def take(self, now: float) -> None:
        """Spend one request (refilling first if the window has passed)."""
        if self.log is None and self.refills(now):
            # Requests still in flight from the old window may land in the new one.
            self.remaining = max(0, self.limit - self.in_flight)
            self.reset_at = INF
            self.epoch += 1
        self.remaining -= 1
        self.in_flight += 1

    def give_back(self, sent: bool, now: float) -> None:
        """End a request that got no answer: unsent, it returns its slot."""
        self.in_flight = max(0, self.in_flight - 1)
        if not sent:
            self.remaining = min(self.limit, self.remaining + 1)
        elif self.log is not None:
            self.log.append(now)  # it may have been counted; as late as now
        elif not self.known:
            self.remaining = 1
        else:
            self.unstick(now)

    def let_through(self, sent_at: float) -> None:
        """Note a request, sent at ``sent_at``, that the server counted (or may have counted:
        answered other than with a 429, or sent and never answered)."""
        self.passed_at = max(self.passed_at, sent_at)

    def answered(self, now: float) -> None:
        """End a request that got an answer (after learning from it)."""
        self.in_flight = max(0, self.in_flight - 1)
        if self.log is not None:
            self.log.append(now)
        elif not self.known:
            self.remaining = 1
        self.unstick(now)

    def unstick(self, now: float) -> None:
        """Schedule a refill no answer will date (all answered without headers, or none)."""
        if self.log is not None:
            return
        if self.known and self.remaining <= 0 and self.reset_at == INF:
            if self.in_flight == 0:
                # The last request of the window went out at the latest now.
                self.reset_at = now + self.window + self.tuning.margin
                self.window_start = self.reset_at - self.tuning.margin

    # ------------------------------------------------------------------ queue

    def leave(self, waiter: Queued) -> None:
        """Take ``waiter`` out of the queue; wake the next if it was first."""
        was_head = bool(self.queue) and self.queue[0] is waiter
        try:
            self.queue.remove(waiter)
        except ValueError:
            return
        if was_head:
            self.wake_head()

    def wake_head(self) -> None:
        """Wake the first request queued on this bucket (or the one it merged into)."""
        bucket = self.resolve()
        if bucket.queue:
            bucket.queue[0].wake()

    # ------------------------------------------------------------------ answers

    def apply(self, info: RateLimitHeaders, now: float, sent_at: float, probing: int = 0) -> bool:
        """Learn the window from an answer's headers.

        Args:
            info: the answer's headers.
            now: when the answer arrived.
            sent_at: when its request was let through.
            probing: requests in flight on the same resource whose route's hash is not known
                yet (they may count here).

        Returns:
            Whether this answer made the bucket contended (another sender showed up).
        """
        if not info.complete:
            return False  # no headers: learn nothing (young-message deletes answer like this)
        assert info.limit is not None and info.remaining is not None
        assert info.reset_after is not None
        self.guessed = False
        if self.log is not None:
            # Pinned: keep the stricter terms; the log, not the headers, times the sends.
            self.limit = min(self.limit, max(1, info.limit))
            self.window = max(self.window, info.reset_after)
            return False
        # The request reached the server between its send and its answer, so the end of the
        # window it landed in lies in [sent + Reset-After, received + Reset-After], give or
        # take the header's millisecond rounding.
        earliest = min(sent_at, now) + info.reset_after - HEADER_ROUNDING
        latest = now + info.reset_after + HEADER_ROUNDING
        others = max(0, self.in_flight - 1) + probing
        # The answered request was counted, so a Remaining of Limit or more disagrees with
        # the Limit; believe the stricter of the two.
        estimate = max(0, min(info.remaining, info.limit - 1) - others)
        self.window = max(self.window, info.reset_after)
        self.limit = max(1, info.limit)
        # Never raise ``remaining`` before our own refill: answers overtake each other.
        if not self.known:
            self.known = True
            self.remaining = estimate
            self._date_window(earliest, latest)
            return False
        began = False
        if estimate < self.remaining and not probing:
            # Fewer left than our own sends explain: another sender spends this bucket.
            began = self.note_contention(self.remaining - estimate, now, sent_at)
        self.remaining = min(self.remaining, estimate)
        if self.reset_at == INF:
            # Refilled locally; this answer dates the window we are already spending.
            self._date_window(earliest, latest)
            return began
        current_end = self.reset_at - self.tuning.margin
        if earliest > current_end:
            # Certainly a later server window (a request sent late landed after a reset).
            self._date_window(earliest, latest)
            return began
        # Each interval holds its own window's end, and two windows' ends are at least a
        # window apart, so two intervals narrower than a quarter window overlap only when
        # they date the same window. Only then is it safe to narrow the end.
        narrow = self.window / 4
        if latest - earliest <= narrow and current_end - self.window_start <= narrow:
            if latest < self.window_start:
                return began  # an earlier window: nothing to learn about the reset
            self.window_start = max(self.window_start, earliest)
            self.reset_at = min(self.reset_at, latest + self.tuning.margin)
        else:
            # Too slow an answer to tell windows apart: keep the later end, which is safe.
            self.reset_at = max(self.reset_at, latest + self.tuning.margin)
        return began

    def _first_guess(self, wait: float, now: float) -> float:
        """Return the window a first 429 without headers shows (see :meth:`drain`).

        The window that refused us ends ``wait`` after the refusal. Until the bucket is known
        its requests go one at a time, so if the server let an earlier one through, that one
        opened the window (unless another sender spends it too), and the window is the time
        between the two plus the wait. The wait alone fell short by that time, so the next
        window's second request earned another 429; even a request sent the moment the last
        was answered reaches the server a trip after the last was counted.

        Neither moment is seen, only bracketed: the earlier request was counted after it was
        sent, the refusal made before its answer came. Dated so, the guess is never short
        and long by at most those two trips. Dating both at their answers (trips that should
        cancel) fell short whenever the earlier answer took longer to come back, and a short
        guess is found out only when later trips line up, by a 429 many windows on.
        """
        if self.passed_at == -INF:
            return wait  # nothing of ours opened the window: the wait is all there is
        guess = now - self.passed_at + wait
        if guess > self.tuning.max_wait:
            # So long a window would make the limiter refuse every later request with
            # RateLimited on an inference: more likely that request is stale and another
            # sender spent the window. Trust the wait; later 429s grow it if it is short.
            return wait
        return max(wait, guess)

    def _date_window(self, earliest: float, latest: float) -> None:
        self.window_start = earliest
        self.reset_at = latest + self.tuning.margin

    def drain(self, wait: float, until: float, now: float) -> bool:
        """Empty the bucket after a 429 that said it ran dry (not for a pinned bucket).

        Args:
            wait: the wait the 429 asked for.
            until: when to try again (``now + wait + margin``).
            now: when the 429 arrived.

        Returns:
            Whether our own count said there was room: another sender spent it.
        """
        if not self.known:
            # Refused by a limit that no answer ever described (Discord omits the headers on
            # some routes): assume one request per window, so the route stops earning a 429
            # in every window. Headers, once seen, take over.
            self.known = self.guessed = True
            self.limit = 1
            self.remaining = 0
            self.window = max(self.window, self._first_guess(wait, now))
            self.reset_at = until
            self.window_start = until - self.tuning.margin
            return False
        if self.guessed:
            # Sent at least ``window`` plus the margin after the last success was answered
            # (unstick() dates the refill so), and still ``wait`` short of the end of the
            # window that success opened: the window is at least their sum. Leaving the
            # margin out made the guess fall a margin short every time, so each answer
            # quicker than the one it was learned from earned another 429.
            self.window += wait + self.tuning.margin
        self.remaining = 0
        self.reset_at = until if self.reset_at == INF else max(self.reset_at, until)
        self.window_start = self.reset_at - self.tuning.margin
        # Unless guessed, our count said there was room: another sender spent it.
        return not self.guessed

    # ------------------------------------------------------------------ contention

    def reserve(self, now: float) -> int:
        """Return how many of a window's requests to leave to the bucket's other senders.

        Each sighting counts for its size, less one per ``_SIGHTING_DECAY`` windows of age: a
        sender that goes first in every window sees nobody, so its share must shrink slowly
        enough that the one extra request it then tries meets the others and renews the
        sighting, instead of a burst that earns 429s.
        """
        step = self._sighting_step()
        best = 0
        for sighting in self.sightings:
            best = max(best, _decayed(sighting, now, step))
        return min(best, self.limit - 1)

    def _sighting_step(self) -> float:
        """Return how long a sighting takes to shrink by one request."""
        return _SIGHTING_DECAY * max(self.window, self.tuning.period)

    def note_contention(self, foreign: int, now: float, sent_at: float) -> bool:
        """Record that ``foreign`` requests of another sender were seen in this bucket.

        Args:
            foreign: how many of the window's requests were not ours.
            now: when it was seen.
            sent_at: when the request whose answer showed it was let through.

        Returns:
            Whether the bucket was not contended before (pacing begins now).
        """
        began = now >= self.contended_until
        if began:
            self.sightings.clear()
            self.contended_since = now
            _log.info("bucket %s is spent by another sender too; pacing it", self.key[0])
        if sent_at < self.contended_since:
            # Sent before pacing began: bursts (ours and theirs) say little about their pace.
            foreign = 1
        sightings = self.sightings
        while sightings and sightings[-1][1] <= foreign:
            sightings.pop()  # older and no larger: it decays first, so it never counts again
        sightings.append((now, foreign))
        step = self._sighting_step()
        while sightings and _decayed(sightings[0], now, step) <= 0:
            sightings.popleft()
        # Paced one at a time until every sighting has decayed, and a while after.
        self.contended_until = now + max(self.tuning.contention_memory, (foreign + 1) * step)
        return began

    # ------------------------------------------------------------------ pinning and merging

    def pin(self, terms: list[tuple[int, float]], now: float) -> None:
        """Turn the bucket into a sliding log on the stricter of ``terms`` and its own.

        Args:
            terms: ``(smallest limit, longest Reset-After)`` of every hash its route showed.
            now: the current time.
        """
        terms = list(terms)
        if self.known:
            terms.append((self.limit, self.window))
        if not terms:
            terms.append((1, self.tuning.period))
        self.known = True
        self.limit = min(limit for limit, _ in terms)
        self.window = max(window for _, window in terms)
        self.reset_at = INF
        # What was sent in the last window is not known for sure: start from a full one.
        self.log = deque([now] * self.limit)

    def prune_log(self, now: float) -> float:
        """Drop answers older than a pinned bucket's window; return the window used."""
        assert self.log is not None
        period = self.window + self.tuning.margin
        while self.log and self.log[0] <= now - period:
            self.log.popleft()
        return period

    def absorb(self, other: Bucket) -> None:
        """Merge ``other`` (the same server counter under another key) into this bucket.

        Conservatively: the smaller ``remaining``, the later reset, the stricter limit; one
        FIFO, every waiter woken to look again.
        """
        if other.known and not self.known:
            self.known, self.limit = True, other.limit
            self.remaining, self.reset_at = other.remaining, other.reset_at
            self.window_start = other.window_start
        elif other.known and self.known:
            self.remaining = min(self.remaining, other.remaining)
            self.reset_at = max(self.reset_at, other.reset_at)
            self.window_start = max(self.window_start, other.window_start)
            self.limit = min(self.limit, other.limit)
        elif not other.known and not self.known:
            self.remaining = min(self.remaining, other.remaining)
        if other.log is not None or self.log is not None:
            # A pinned bucket stays pinned, on the stricter terms of both.
            self.limit = min(b.limit for b in (other, self) if b.known or b.log is not None)
            self.known = True
            self.log = deque(sorted([*(other.log or ()), *(self.log or ())]))
        # An unknown bucket joining a known one brings only its in-flight requests.
        self.window = max(self.window, other.window)
        self.passed_at = max(self.passed_at, other.passed_at)
        self.in_flight += other.in_flight
        for waiter in other.queue:
            waiter.bucket = self
        self.queue.extend(other.queue)
        other.queue.clear()
        other.merged_into = self
        for waiter in self.queue:
            waiter.wake()
