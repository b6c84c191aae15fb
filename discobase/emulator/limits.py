"""Rate limits as Discord applies them: one table of numbers and the engine that enforces it.

Layer: the emulator. Pure (time is passed in, in Discord seconds); knows nothing of HTTP.

Theory. Discord keys a route limit by its bucket hash *and* the request's top-level resource
(channel, guild or webhook id): the same bucket counts separately per channel. Each key is a
fixed window that opens with its first request and allows ``limit`` requests until it resets.
On top sit the global limit (50 requests per second per bot, a sliding second here) and, per
client address, the invalid-request limit: 10,000 responses with status 401, 403 or a
non-``shared`` 429 in 10 minutes earn a temporary ban that Cloudflare answers with HTML.

Discord publishes only the global and invalid-request numbers; the per-route numbers below are
what users observe (facts sheet section 1.5) or, where nobody reported one, a conservative
emulator default. ``source`` says which; ``docs/emulator.md`` prints this table.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = [
    "DEFAULT_LIMITS",
    "Decision",
    "LimitConfig",
    "RateLimiter",
    "RouteLimit",
    "SlidingWindow",
]


def _bucket_hash(name: str) -> str:
    # Opaque, stable, Discord-looking (32 hex digits); never includes the resource id.
    return hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """One route bucket: ``limit`` requests per ``window`` Discord seconds per resource.

    Attributes:
        limit: Requests allowed per window.
        window: Window length in Discord seconds.
        source: Where the number comes from.
        bucket: The ``X-RateLimit-Bucket`` hash (routes sharing a limit share it).
    """

    limit: int
    window: float
    source: str
    bucket: str = ""


def _limit(name: str, limit: int, window: float, source: str) -> tuple[str, RouteLimit]:
    return name, RouteLimit(limit, window, source, _bucket_hash(name))


_OBSERVED_CREATE = "observed: 5 per 5 s per channel (facts 1.5; 'Limit: 5', retry ~4.4 s)"
_DEFAULT = "emulator default; Discord publishes none and no observation was found"

DEFAULT_LIMITS: Mapping[str, RouteLimit] = MappingProxyType(
    dict(
        [
            _limit("message_create", 5, 5.0, _OBSERVED_CREATE),
            _limit(
                "message_list",
                5,
                5.0,
                "observed: ~5 per 5 s per channel for history pages (purple-discord #378, 2021); "
                "stricter of two observations (facts 1.5)",
            ),
            _limit("message_get", 5, 5.0, _DEFAULT + " (same as history reads)"),
            _limit("message_edit", 5, 5.0, _DEFAULT + " (same as creates)"),
            _limit(
                "message_delete",
                3,
                1 / 3,
                "observed: messages older than 10 s, 3 per 0.333 s (discord-api-docs #8330, 2026)",
            ),
            _limit(
                "message_delete_old",
                30,
                4.0,
                "observed: messages older than 14 days, 30 per 4 s, own bucket hash (#8330)",
            ),
            _limit("bulk_delete", 1, 1.0, "observed: 1 per second (discord-api-docs #40, 2016)"),
            _limit("pin", 5, 5.0, _DEFAULT),
            _limit("pins_list", 5, 5.0, _DEFAULT),
            _limit("typing", 5, 5.0, _DEFAULT),
            _limit("channel_get", 5, 5.0, _DEFAULT),
            _limit(
                "channel_edit",
                10,
                15.0,
                "observed: channel edits other than name/topic ~10 per 15 s (facts 1.5)",
            ),
            _limit(
                "channel_name_topic",
                2,
                600.0,
                "announced May 2020: name/topic changes 2 per 10 minutes per channel "
                "(discord-api-docs #2190, #2208); hidden: answers and the 429 carry the main "
                "edit bucket's headers (#1900, #2761)",
            ),
            _limit("channel_delete", 5, 5.0, _DEFAULT),
            _limit("guild_channel_create", 5, 5.0, _DEFAULT),
            _limit("guild_channels", 5, 5.0, _DEFAULT),
            _limit("guild_get", 5, 5.0, _DEFAULT),
            _limit("guild_member", 5, 5.0, _DEFAULT),
            _limit("user_me", 5, 5.0, _DEFAULT),
            _limit("my_guilds", 5, 5.0, _DEFAULT),
            _limit("leave_guild", 1, 1.0, _DEFAULT),
            _limit("application_me", 5, 5.0, _DEFAULT),
            _limit("gateway_bot", 2, 5.0, _DEFAULT),
            _limit("invite_create", 5, 5.0, _DEFAULT),
            _limit("application_commands", 5, 5.0, _DEFAULT),
        ]
    )
)


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """Every number the rate-limit engine enforces (Discord seconds).

    Attributes:
        routes: The per-route table (see ``DEFAULT_LIMITS``).
        global_limit: Requests per ``global_window`` per bot (docs: 50 per second).
        global_window: The global window (docs: 1 s).
        invalid_limit: Invalid responses per ``invalid_window`` per address (docs: 10,000).
        invalid_window: The invalid-request window (docs: 10 minutes).
        ban_duration: How long a banned address is refused (Discord: unpublished; 1 hour).
        young_delete_age: Messages younger than this are deleted without a route limit and
            without rate-limit headers (issue #1092 observed no headers).
    """

    routes: Mapping[str, RouteLimit] = field(default_factory=lambda: DEFAULT_LIMITS)
    global_limit: int = 50
    global_window: float = 1.0
    invalid_limit: int = 10_000
    invalid_window: float = 600.0
    ban_duration: float = 3600.0
    young_delete_age: float = 10.0

    def with_overrides(self, overrides: Mapping[str, object] | None) -> LimitConfig:
        """Return a copy with some numbers replaced.

        Args:
            overrides: Keys are route-limit names (value a ``RouteLimit`` or a
                ``(limit, window)`` pair) or field names of this class (value a number).

        Raises:
            KeyError: For a name that is neither.
        """
        if not overrides:
            return self
        routes = dict(self.routes)
        fields: dict[str, float | int] = {}
        for name, value in overrides.items():
            if name in routes:
                if isinstance(value, RouteLimit):
                    routes[name] = replace(value, bucket=value.bucket or routes[name].bucket)
                else:
                    pair: tuple[int, float] = value  # type: ignore[assignment]
                    routes[name] = replace(
                        routes[name],
                        limit=int(pair[0]),
                        window=float(pair[1]),
                        source="configured",
                    )
            elif name in LimitConfig.__dataclass_fields__ and name != "routes":
                fields[name] = value  # type: ignore[assignment]
            else:
                raise KeyError(f"unknown limit {name!r}")
        return replace(self, routes=MappingProxyType(routes), **fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check of a route bucket.

    Attributes:
        allowed: Whether the request may proceed.
        limit: The bucket's limit.
        remaining: Requests left in the window after this one.
        reset_after: Discord seconds until the window resets.
        bucket: The bucket hash.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    bucket: str


class _Window:
    __slots__ = ("remaining", "reset_at")

    def __init__(self, remaining: int, reset_at: float) -> None:
        self.remaining = remaining
        self.reset_at = reset_at


class SlidingWindow:
    """Count events in the last ``window`` seconds (a log of times, oldest first)."""

    __slots__ = ("limit", "log", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.log: deque[float] = deque()

    def _forget(self, now: float) -> None:
        log = self.log
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()

    def count(self, now: float) -> int:
        """Return how many events happened in the window ending at ``now``."""
        self._forget(now)
        return len(self.log)

    def try_take(self, now: float) -> float:
        """Record an event if the window has room; else return seconds until it has (> 0)."""
        self._forget(now)
        if len(self.log) < self.limit:
            self.log.append(now)
            return 0.0
        return max(self.log[0] + self.window - now, 1e-6)

    def add(self, now: float) -> int:
        """Record an event unconditionally; return the count in the window."""
        self._forget(now)
        self.log.append(now)
        return len(self.log)


class RateLimiter:
    """Enforce a ``LimitConfig``: route buckets, the global limit and invalid-request bans.

    Args:
        config: The numbers to enforce.
    """

    _SWEEP_EVERY = 4096

    def __init__(self, config: LimitConfig | None = None) -> None:
        self.config = config or LimitConfig()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._globals: dict[str, SlidingWindow] = {}
        self._invalid: dict[str, SlidingWindow] = {}
        self._banned_until: dict[str, float] = {}
        self._created = 0

    def reset(self) -> None:
        """Forget every window, count and ban."""
        self._windows.clear()
        self._globals.clear()
        self._invalid.clear()
        self._banned_until.clear()

    def route(self, name: str) -> RouteLimit:
        """Return the route limit called ``name``."""
        return self.config.routes[name]

    def check(self, name: str, resource: str, now: float) -> Decision:
        """Take one request from bucket ``name`` for ``resource``, or refuse it.

        Args:
            name: A key of the route table.
            resource: The top-level resource id (or "" for routes without one) plus, for
                per-bot limits, the bot id: callers pass whatever the key must separate.
            now: Discord seconds (monotonic).
        """
        spec = self.config.routes[name]
        key = (spec.bucket, resource)
        window = self._windows.get(key)
        if window is None or now >= window.reset_at:
            if window is None:
                self._created += 1
                if self._created % self._SWEEP_EVERY == 0:
                    self._sweep(now)
            window = self._windows[key] = _Window(spec.limit, now + spec.window)
        reset_after = max(window.reset_at - now, 0.0)
        if window.remaining <= 0:
            return Decision(False, spec.limit, 0, reset_after, spec.bucket)
        window.remaining -= 1
        return Decision(True, spec.limit, window.remaining, reset_after, spec.bucket)

    def peek(self, name: str, resource: str, now: float) -> Decision:
        """Return the bucket's state without taking a request (for headers on refusals)."""
        spec = self.config.routes[name]
        window = self._windows.get((spec.bucket, resource))
        if window is None or now >= window.reset_at:
            return Decision(True, spec.limit, spec.limit, spec.window, spec.bucket)
        return Decision(
            window.remaining > 0,
            spec.limit,
            window.remaining,
            max(window.reset_at - now, 0.0),
            spec.bucket,
        )

    def _sweep(self, now: float) -> None:
        # Expired windows carry no information; dropping them keeps memory bounded by traffic.
        stale = [key for key, w in self._windows.items() if now >= w.reset_at]
        for key in stale:
            del self._windows[key]

    def check_global(self, bot_id: str, now: float) -> float:
        """Count a request against the bot's global limit; return 0 or the retry delay."""
        window = self._globals.get(bot_id)
        if window is None:
            window = self._globals[bot_id] = SlidingWindow(
                self.config.global_limit, self.config.global_window
            )
        return window.try_take(now)

    def banned_for(self, address: str, now: float) -> float:
        """Return how long ``address`` stays banned (0 when it is not)."""
        until = self._banned_until.get(address)
        if until is None:
            return 0.0
        if now >= until:
            del self._banned_until[address]
            return 0.0
        return until - now

    def record_invalid(self, address: str, now: float) -> bool:
        """Count an invalid response for ``address``; return True if this starts a ban."""
        window = self._invalid.get(address)
        if window is None:
            window = self._invalid[address] = SlidingWindow(
                self.config.invalid_limit, self.config.invalid_window
            )
        if window.add(now) >= self.config.invalid_limit:
            self._banned_until[address] = now + self.config.ban_duration
            window.log.clear()
            return True
        return False
