"""Which bucket answers a route (http layer, rate-limit core: sans-IO).

The :class:`BucketRegistry` maps each route key to the bucket hash Discord revealed for it,
and each (hash, top-level resource) to its :class:`~discobase.http.ratelimit.bucket.Bucket`.
Before a hash is known a route's bucket lives under ``"?" + route key``. When a hash is learned
or changes, buckets are re-homed under the new key (merging with one already there); a route
whose hash keeps flipping is pinned. It also holds the route variants' gates (sub-limits and
``shared`` limits: one route key and resource waits, the rest of its bucket moves on), counts
the probes in flight per resource, and forgets idle buckets.

Knows routes and buckets; no asyncio, no aiohttp, no clock (``now`` is passed in).
"""

from __future__ import annotations

import logging
from collections import deque

from discobase.http.ratelimit.bucket import Bucket, BucketKey, Majors, Tuning
from discobase.http.ratelimit.headers import RateLimitHeaders
from discobase.http.ratelimit.stats import LimiterStats
from discobase.http.routes import CompiledRoute

__all__ = ["BucketRegistry"]

_log = logging.getLogger("discobase.http")

# Hash changes of one route within ``flip_window`` past which it is pinned.
_MAX_FLIPS = 4


class BucketRegistry:
    """Route keys to hashes, (hash, majors) to buckets, and the route variants' gates.

    Args:
        tuning: the constants every bucket gets.
        stats: the limiter's counters (``hash_changes`` is counted here).
        flip_window: the time over which hash changes are counted before pinning.
    """

    def __init__(self, tuning: Tuning, stats: LimiterStats, flip_window: float) -> None:
        self._tuning = tuning
        self._stats = stats
        self._flip_window = flip_window
        self._hashes: dict[str, str] = {}
        self._hash_flips: dict[str, deque[float]] = {}
        self._pinned: set[str] = set()
        # The terms each hash has shown: (smallest limit, longest Reset-After).
        self._hash_terms: dict[str, tuple[int, float]] = {}
        self._route_hashes: dict[str, set[str]] = {}
        self._buckets: dict[BucketKey, Bucket] = {}
        self._gates: dict[tuple[str, Majors], float] = {}
        # In-flight probes of unlearned routes per resource: they may share a bucket with
        # a hash learned meanwhile, so estimates of that bucket count them as spent.
        self._probing: dict[Majors, int] = {}
        self._gc_at = 1024

    # ------------------------------------------------------------------ looking up

    def hash_of(self, route: CompiledRoute) -> str | None:
        """Return the bucket hash learned for ``route``'s key, if any."""
        return self._hashes.get(route.key)

    def peek(self, route: CompiledRoute) -> Bucket | None:
        """Return the bucket of ``route`` if one exists, creating nothing."""
        return self._buckets.get(self._key(route))

    def bucket_for(self, route: CompiledRoute, now: float) -> Bucket:
        """Return the bucket of ``route``, creating it (and collecting garbage) if needed."""
        key = self._key(route)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._gc_at:
                self._collect(now)
            bucket = self._buckets[key] = Bucket(key, self._tuning)
        return bucket

    def _key(self, route: CompiledRoute) -> BucketKey:
        bucket_hash = self._hashes.get(route.key)
        return (bucket_hash if bucket_hash else "?" + route.key, route.majors)

    def _collect(self, now: float) -> None:
        """Forget idle buckets whose window has passed (deleted channels, old resources)."""
        for key, bucket in list(self._buckets.items()):
            if bucket.forgettable(now):
                del self._buckets[key]
        self._gc_at = max(1024, 2 * len(self._buckets))

    def hides_limit(self, route: CompiledRoute, bucket_hash: str | None) -> bool:
        """Whether a 429 naming ``bucket_hash`` reveals a hidden limit on ``route``.

        A 429 naming another bucket than the route's reveals a hidden limit on this kind of
        request (Discord's channel renames: 2 per 10 minutes under 10-per-15-s headers),
        unless it names a bucket other routes use: then Discord moved this route onto it.
        """
        known_hash = self._hashes.get(route.key)
        return (
            known_hash is not None
            and bucket_hash not in (None, known_hash)
            and bucket_hash not in self._hashes.values()
        )

    # ------------------------------------------------------------------ learning hashes

    def note_terms(self, info: RateLimitHeaders) -> None:
        """Remember the stricter terms a hash has shown (for pinning)."""
        assert info.bucket is not None and info.limit is not None
        assert info.reset_after is not None
        limit, window = self._hash_terms.get(info.bucket, (max(1, info.limit), 0.0))
        self._hash_terms[info.bucket] = (
            min(limit, max(1, info.limit)),
            max(window, info.reset_after),
        )

    def learn(self, route: CompiledRoute, bucket_hash: str, bucket: Bucket, now: float) -> Bucket:
        """Record that ``route`` answered with ``bucket_hash``; return its bucket now.

        Args:
            route: the answered request's route.
            bucket_hash: the ``X-RateLimit-Bucket`` of the answer.
            bucket: the bucket the request was counted in (resolved).
            now: the current time.
        """
        old = self._hashes.get(route.key)
        self._route_hashes.setdefault(route.key, set()).add(bucket_hash)
        if route.key in self._pinned:
            # Every resource's bucket of a pinned route is pinned, new ones included.
            bucket = bucket.resolve()
            if bucket.log is None:
                self._pin(route, bucket, now)
            return bucket
        if old != bucket_hash:
            if old is not None:
                self._stats.hash_changes += 1
                flips = self._hash_flips.setdefault(route.key, deque())
                flips.append(now)
                while flips and flips[0] < now - self._flip_window:
                    flips.popleft()
                if len(flips) > _MAX_FLIPS:
                    # Thrashing between counters we cannot tell apart: stop remapping and
                    # hold the route to the stricter terms of every hash it has shown.
                    self._pinned.add(route.key)
                    for other in list(self._buckets.values()):
                        if other.key[0] == old and other.log is None:
                            self._pin(route, other, now)
                    bucket = bucket.resolve()
                    if bucket.log is None:
                        self._pin(route, bucket, now)
                    _log.warning("bucket hash of %s keeps changing; pinned", route.key)
                    return bucket
                _log.info("bucket hash of %s changed", route.key)
            self._hashes[route.key] = bucket_hash
            sources = ["?" + route.key] + ([old] if old is not None else [])
            for key in [k for k in self._buckets if k[0] in sources]:
                if self._buckets[key].log is None:  # a pinned bucket stays where it is
                    self._rehome(self._buckets[key], (bucket_hash, key[1]))
        bucket = bucket.resolve()  # the loop may have merged it already: never merge twice
        if bucket.key != (bucket_hash, route.majors) and bucket.key[0] in ("?" + route.key, old):
            self._rehome(bucket, (bucket_hash, route.majors))
        return bucket.resolve()

    def _pin(self, route: CompiledRoute, bucket: Bucket, now: float) -> None:
        """Turn ``bucket`` into a sliding log on the stricter terms of the route's hashes."""
        terms = [
            self._hash_terms[h]
            for h in self._route_hashes.get(route.key, ())
            if h in self._hash_terms
        ]
        bucket.pin(terms, now)

    def _rehome(self, bucket: Bucket, key: BucketKey) -> None:
        if bucket.merged_into is not None:
            return  # already part of another bucket; its requests are counted there
        if self._buckets.get(bucket.key) is bucket:
            del self._buckets[bucket.key]
        target = self._buckets.get(key)
        if target is None or target is bucket:
            bucket.key = key
            self._buckets[key] = bucket
            return
        # Two queues for one server bucket: merge into the existing one, conservatively.
        target.absorb(bucket)

    # ------------------------------------------------------------------ gates

    def gate_delay(self, route: CompiledRoute, now: float) -> float:
        """Return seconds until ``route``'s variant may go again (0: no gate)."""
        key = (route.key, route.majors)
        until = self._gates.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._gates[key]
            return 0.0
        return until - now

    def gate_left(self, route: CompiledRoute, now: float) -> float:
        """Return what :meth:`gate_delay` returns, changing nothing."""
        return max(0.0, self._gates.get((route.key, route.majors), 0.0) - now)

    def set_gate(self, route: CompiledRoute, until: float) -> None:
        """Hold ``route``'s variant (its key and resource) until ``until``."""
        key = (route.key, route.majors)
        self._gates[key] = max(self._gates.get(key, 0.0), until)

    # ------------------------------------------------------------------ probes

    def probing(self, majors: Majors) -> int:
        """Return how many probes of unlearned routes are in flight on a resource."""
        return self._probing.get(majors, 0)

    def start_probe(self, majors: Majors) -> None:
        """Count a probe going out on a resource."""
        self._probing[majors] = self._probing.get(majors, 0) + 1

    def end_probe(self, majors: Majors) -> None:
        """Count a probe of a resource as answered (or abandoned)."""
        left = self._probing.get(majors, 1) - 1
        if left > 0:
            self._probing[majors] = left
        else:
            self._probing.pop(majors, None)
