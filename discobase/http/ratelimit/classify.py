"""What a 429 means, and what to do about each kind (http layer, rate-limit core: sans-IO).

:func:`classify_429` reads one 429 (headers and body) and returns a :class:`Verdict`: which
:class:`Kind` of refusal it is and how long to wait. :data:`REACTIONS` says, per kind, what the
limiter does: which counter it adds to, whether the headers still teach the bucket something,
what waits (:class:`Hold`), and which scope a wait longer than ``max_wait`` is reported under.
Every rule lives in these two places, in the order the function tries them.

No asyncio, no aiohttp, no buckets: plain values in, plain values out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from discobase.http.errors import SUBLIMIT_CODES
from discobase.http.ratelimit.headers import RateLimitHeaders, parse_seconds

__all__ = ["REACTIONS", "Hold", "Kind", "Reaction", "Verdict", "classify_429"]


class Kind(enum.Enum):
    """The kinds of 429, in the order they are told apart."""

    CLOUDFLARE = "cloudflare"
    """Not Discord's: the body is not a JSON object, or ``Via`` and ``retry_after`` are both
    missing (a proxy can strip ``Via``, so Discord's body shape alone is enough)."""
    GLOBAL = "global"
    """The bot's 50 per second (``X-RateLimit-Global``, scope ``global`` or ``"global": true``)."""
    SHARED = "shared"
    """Someone else's use of the resource (scope ``shared``); not counted as invalid."""
    HIDDEN = "hidden"
    """Names a bucket no route is known to use: a hidden limit on this kind of request."""
    SUBLIMIT = "sublimit"
    """``Remaining`` above 0, or code 20028/30046/40062: a limit on this variant only."""
    DRAINED = "drained"
    """Anything else: the bucket ran dry (someone else spent it, or the window came early)."""


class Hold(enum.Enum):
    """What waits after a 429."""

    BREAKER = "every request, until the Cloudflare ban passes"
    EVERYONE = "every counted request, for the wait (and the global cap is cut)"
    VARIANT = "this route key and resource only, for the wait"
    BUCKET = "the bucket: emptied until the wait has passed"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One 429, classified.

    Attributes:
        kind: what kind of refusal it is.
        wait: real seconds to wait before trying again.
    """

    kind: Kind
    wait: float


@dataclass(frozen=True, slots=True)
class Reaction:
    """What the limiter does about one kind of 429.

    Attributes:
        counter: the :class:`~discobase.http.ratelimit.stats.LimiterStats` field to add one
            to (besides ``ratelimited``), if any.
        learn: whether the 429's window headers are applied to the bucket.
        hold: what waits.
        scope: the scope of the :class:`~discobase.http.errors.RateLimited` raised when the
            wait is longer than ``max_wait``.
        note: a log line (formatted with the route and the wait), if any.
    """

    counter: str | None
    learn: bool
    hold: Hold
    scope: str
    note: str | None = None


REACTIONS: dict[Kind, Reaction] = {
    Kind.CLOUDFLARE: Reaction("cloudflare", learn=False, hold=Hold.BREAKER, scope="cloudflare"),
    Kind.GLOBAL: Reaction("global_ratelimited", learn=False, hold=Hold.EVERYONE, scope="global"),
    Kind.SHARED: Reaction("shared_ratelimited", learn=True, hold=Hold.VARIANT, scope="shared"),
    Kind.HIDDEN: Reaction(
        "sublimited", False, Hold.VARIANT, "sublimit", note="hidden limit on %s for %.3f s"
    ),
    Kind.SUBLIMIT: Reaction(
        "sublimited", True, Hold.VARIANT, "sublimit", note="sub-limit on %s for %.3f s"
    ),
    Kind.DRAINED: Reaction(None, learn=True, hold=Hold.BUCKET, scope="user"),
}


def classify_429(
    info: RateLimitHeaders,
    payload: dict[str, Any] | None,
    *,
    hidden: bool,
    require_via: bool,
    no_wait: float,
    time_scale: float,
) -> Verdict:
    """Tell what a 429 means and how long to wait.

    Args:
        info: the response's rate-limit headers.
        payload: the body if it was a JSON object, else ``None``.
        hidden: whether it names a bucket no route uses while the route's own is known.
        require_via: treat a 429 without ``Via`` as Cloudflare's unless its body is Discord's.
        no_wait: the least wait for a 429 that names none (real seconds).
        time_scale: real seconds per Discord second (to recognise whole Discord seconds).
    """
    body_wait = parse_seconds(str(payload.get("retry_after"))) if payload else None
    wait = max(info.retry_after or 0.0, body_wait or 0.0)
    if info.retry_after is None and body_wait is None:
        # A 429 that names no wait: never retry at once (a client that read the missing
        # value as 0 s spun into a ban); wait out the window, or a second at least.
        wait = max(info.reset_after or 0.0, no_wait)
    # Discord's own 429s carry ``Via`` and a JSON object with ``retry_after``. Cloudflare's
    # are HTML (or JSON of another shape). A proxy can strip ``Via``, and a false breaker
    # halts everything for up to an hour, so Discord's body shape alone is enough.
    discord_shaped = payload is not None and body_wait is not None
    if payload is None or (require_via and not info.via and not discord_shaped):
        return Verdict(Kind.CLOUDFLARE, wait)
    if info.is_global or info.scope == "global" or payload.get("global") is True:
        return Verdict(Kind.GLOBAL, wait)
    if info.scope == "shared":
        return Verdict(Kind.SHARED, wait)
    if hidden:
        return Verdict(Kind.HIDDEN, wait)
    if (info.remaining is not None and info.remaining > 0) or payload.get("code") in SUBLIMIT_CODES:
        return Verdict(Kind.SUBLIMIT, wait)
    if body_wait is not None and info.retry_after is not None and info.complete:
        # Whole Discord seconds (a time-scaled server says them in real ones).
        whole = info.retry_after / time_scale
        rounded = abs(whole - round(whole)) < 1e-6 and body_wait <= info.retry_after
        if rounded and info.retry_after < body_wait + time_scale:
            # A drained bucket whose header wait is only the body's exact one rounded up to
            # whole seconds: waiting out the rounding would lose the refill to every sender
            # that did not have to wait (another process), window after window.
            wait = body_wait
    return Verdict(Kind.DRAINED, wait)
