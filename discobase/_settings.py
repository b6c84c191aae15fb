"""A database's settings: its arguments checked, with their defaults from the environment
(public API layer: pure, no I/O; loaded by the first ``Database``).

``Database(...)`` refuses a bad argument when it is made (`UsageError`), not at login: a
guild id that cannot be a snowflake, a time scale that is not a positive number, a token
the HTTP client would refuse. ``DISCOBASE_API_URL`` and ``DISCOBASE_TIME_SCALE`` give the
defaults of ``api_url`` and ``time_scale`` (a local Discord run faster than real time).
"""

from __future__ import annotations

import os

from discobase.errors import UsageError

__all__ = [
    "DEFAULT_API_URL",
    "api_url_of",
    "check_token",
    "gap_check_interval_of",
    "guild_id_of",
    "live_of",
    "name_of",
    "start_timeout_of",
    "time_scale_of",
]

DEFAULT_API_URL = "https://discord.com"


def name_of(value: object) -> str:
    """Check a ``name`` argument: the guild's name, a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError("a Database needs the name of its guild, a non-empty string")
    return value


def api_url_of(value: str | None) -> str:
    """Return the server to use: ``value``, else ``$DISCOBASE_API_URL``, else Discord."""
    return (value or os.environ.get("DISCOBASE_API_URL") or DEFAULT_API_URL).rstrip("/")


def check_token(token: object) -> None:
    """Refuse a token that no login could use, before the login starts.

    Raises:
        UsageError: not a non-empty string, or whitespace around or inside it.
    """
    if not isinstance(token, str) or not token:
        raise UsageError("login needs a bot token, a non-empty string")
    # The HTTP client's own check (whitespace around or inside it), before the login starts.
    from discobase.http.client import check_token as check_header

    check_header(token)


def guild_id_of(value: object) -> int | None:
    """Check a ``guild_id`` argument: a snowflake, as an int or a string of digits."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text is not None and text.isascii() and text.isdigit():
        number = int(text)
    else:
        raise UsageError(f"guild_id must be a guild's id (a snowflake: digits), not {value!r}")
    if not 0 < number < 1 << 64:
        raise UsageError(
            f"guild_id must be a guild's id (a positive 64-bit snowflake), not {value!r}"
        )
    return number


def time_scale_of(value: float | None) -> float:
    """Check a ``time_scale`` argument; ``None`` reads ``$DISCOBASE_TIME_SCALE``, else 1.0."""
    if value is None:
        raw = os.environ.get("DISCOBASE_TIME_SCALE")
        try:
            value = float(raw) if raw else 1.0
        except ValueError:
            raise UsageError(f"DISCOBASE_TIME_SCALE must be a number, not {raw!r}") from None
    if not value > 0:
        raise UsageError(f"time_scale must be a positive number of seconds, not {value!r}")
    return float(value)


def start_timeout_of(value: float) -> float:
    """Check a ``start_timeout`` argument: positive real seconds."""
    if not value > 0:
        raise UsageError(f"start_timeout must be positive, not {value!r}")
    return float(value)


def gap_check_interval_of(value: float) -> float:
    """Check a ``gap_check_interval`` argument: positive Discord seconds."""
    if not (isinstance(value, int | float) and value > 0):
        raise UsageError(f"gap_check_interval must be positive, not {value!r}")
    return float(value)


def live_of(value: bool) -> bool:
    """Check a ``live`` argument: a bool."""
    if not isinstance(value, bool):
        raise UsageError(f"live must be True or False, not {value!r}")
    return value
