"""Read a response's rate-limit headers (http layer, rate-limit core: sans-IO).

Knows nothing of asyncio, aiohttp, buckets or routes: it turns header strings into numbers,
and anything absent, malformed, negative or not finite into ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RateLimitHeaders", "parse_seconds"]


def parse_seconds(value: str | None) -> float | None:
    """Return ``value`` as a finite, non-negative number, or ``None``."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _parse_count(value: str | None) -> int | None:
    number = parse_seconds(value)
    return int(number) if number is not None else None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit headers of one response; ``None`` where absent or malformed."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    bucket: str | None = None
    is_global: bool = False
    scope: str | None = None
    retry_after: float | None = None
    via: bool = False

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        """Read the headers (keys in lower case)."""
        return cls(
            limit=_parse_count(headers.get("x-ratelimit-limit")),
            remaining=_parse_count(headers.get("x-ratelimit-remaining")),
            reset_after=parse_seconds(headers.get("x-ratelimit-reset-after")),
            bucket=headers.get("x-ratelimit-bucket") or None,
            is_global=headers.get("x-ratelimit-global", "").lower() == "true",
            scope=headers.get("x-ratelimit-scope") or None,
            retry_after=parse_seconds(headers.get("retry-after")),
            via="via" in headers,
        )

    @property
    def complete(self) -> bool:
        """Whether the bucket's state can be learned from these headers."""
        return None not in (self.limit, self.remaining, self.reset_after)

    def without_window(self) -> RateLimitHeaders:
        """Return these headers less the window (limit, remaining, reset), which went stale."""
        return RateLimitHeaders(
            bucket=self.bucket,
            is_global=self.is_global,
            scope=self.scope,
            retry_after=self.retry_after,
            via=self.via,
        )
