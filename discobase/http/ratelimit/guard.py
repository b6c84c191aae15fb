"""The guard against bans (http layer, rate-limit core: sans-IO).

Discord bans an IP for 10,000 responses with status 401, 403 or 429 in 10 minutes, and a token
it refused stays refused. The :class:`BanGuard` keeps the three reasons to send nothing at all:

- a 401 poisons the token: every queued and later request fails with :class:`InvalidToken`;
- a Cloudflare 429 opens a breaker (for its ``Retry-After``, else an hour): every request fails
  with :class:`CloudflareBanned` until it closes;
- 401/403/429 (not ``shared``) feed a 10-minute sliding counter that warns, then refuses to
  send (:class:`InvalidRequestLimit`), far below Discord's 10,000.

No asyncio, no aiohttp, no clock (``now`` is passed in); it says what to raise, it does not wait.
"""

from __future__ import annotations

import logging
from collections import deque

from discobase.http.errors import CloudflareBanned, InvalidRequestLimit, InvalidToken
from discobase.http.ratelimit.stats import LimiterStats

__all__ = ["BanGuard"]

_log = logging.getLogger("discobase.http")


class BanGuard:
    """The token, the Cloudflare breaker and the invalid-request counter.

    Args:
        stats: the limiter's counters (``invalid_requests`` is counted here).
        time_scale: real seconds per Discord second.
        invalid_warn: invalid responses per 10 minutes at which to log a warning.
        invalid_refuse: invalid responses per 10 minutes at which to refuse to send.
    """

    def __init__(
        self, stats: LimiterStats, *, time_scale: float, invalid_warn: int, invalid_refuse: int
    ) -> None:
        self._stats = stats
        self.time_scale = time_scale
        self.invalid_warn = invalid_warn
        self.invalid_refuse = invalid_refuse
        self.invalid_window = 600.0 * time_scale
        self.breaker_default = 3600.0 * time_scale
        self.token_invalid = False
        self._breaker_until = 0.0
        self._invalid: deque[float] = deque()
        self._warned = False

    def refusal(self, route: object, now: float) -> Exception | None:
        """Return the error to raise instead of sending on ``route`` now, or ``None``."""
        if self.token_invalid:
            return InvalidToken("the token was refused (401)", status=401, route=str(route))
        if now < self._breaker_until:
            left = self._breaker_until - now
            return CloudflareBanned(
                "the Cloudflare breaker is open",
                status=429,
                retry_after=left / self.time_scale,
                route=str(route),
            )
        count = self.invalid_count(now)
        if count >= self.invalid_refuse:
            return InvalidRequestLimit(
                f"{count} invalid responses in 10 minutes; refusing to send", route=str(route)
            )
        return None

    def poison_token(self) -> None:
        """Record a 401: the token is refused for good."""
        self.token_invalid = True

    def open_breaker(self, retry_after: float | None, route: str, now: float) -> Exception:
        """Open the Cloudflare breaker; return the error to raise for the request refused.

        Args:
            retry_after: the 429's ``Retry-After`` (``None``: an hour).
            route: the refused request's route.
            now: the current time.
        """
        until = retry_after if retry_after is not None else self.breaker_default
        self._breaker_until = max(self._breaker_until, now + until)
        return CloudflareBanned(
            "Cloudflare refused the request; sending stops until the ban passes",
            status=429,
            retry_after=until / self.time_scale,
            route=route,
        )

    def count_invalid(self, now: float) -> None:
        """Count one 401/403/429 response; warn when they pile up."""
        self._invalid.append(now)
        self._stats.invalid_requests += 1
        count = self.invalid_count(now)
        if count >= self.invalid_warn and not self._warned:
            self._warned = True
            _log.warning(
                "%d invalid (401/403/429) responses in 10 minutes; Discord bans at 10,000", count
            )
        elif count < self.invalid_warn // 2:
            self._warned = False

    def invalid_count(self, now: float) -> int:
        """Return how many invalid responses fell in the last 10 (scaled) minutes."""
        while self._invalid and self._invalid[0] <= now - self.invalid_window:
            self._invalid.popleft()
        return len(self._invalid)
