"""Where the command line finds its connection settings (cli layer): the environment only.

The token is never taken from a flag, where it would land in shell history and ``ps``. This
module must not import the library's network layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from discobase.cli.errors import CommandError

__all__ = [
    "API_URL_VAR",
    "DATABASE_VAR",
    "GUILD_ID_VAR",
    "TIME_SCALE_VAR",
    "TOKEN_VAR",
    "Settings",
    "read_settings",
]

TOKEN_VAR = "DISCOBASE_TOKEN"
API_URL_VAR = "DISCOBASE_API_URL"
DATABASE_VAR = "DISCOBASE_DATABASE"
GUILD_ID_VAR = "DISCOBASE_GUILD_ID"
TIME_SCALE_VAR = "DISCOBASE_TIME_SCALE"


@dataclass(frozen=True)
class Settings:
    """What a command needs to open a database.

    Attributes:
        token: the bot token (excluded from the repr).
        api_url: the server's origin, or None for Discord itself.
        database: the database's (guild's) name.
        guild_id: the guild's id, when given.
        time_scale: real seconds per Discord second (a fast local Discord); 1.0 by default.
    """

    token: str = field(repr=False)
    api_url: str | None
    database: str
    guild_id: str | None
    time_scale: float = 1.0


def read_settings(
    database: str | None,
    guild_id: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    need_database: bool = True,
) -> Settings:
    """Combine the command's options with the environment.

    Args:
        database: the ``--database`` option, if given.
        guild_id: the ``--guild-id`` option, if given; else ``$DISCOBASE_GUILD_ID`` unless
            ``--database`` was given.
        environ: the environment to read; ``os.environ`` when omitted.
        need_database: whether a missing database name (and guild id) is an error; a
            command about the bot alone (its global commands) needs neither.

    Returns:
        The settings.

    Raises:
        CommandError: the token or the database's name is missing.
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_VAR, "").strip()
    if not token:
        raise CommandError(
            f"set {TOKEN_VAR} to the bot token (the local Discord prints one when it starts)",
            status=2,
        )
    if database is None and guild_id is None:
        # `discobase emulator` prints both; the id is the more precise of the two.
        guild_id = env.get(GUILD_ID_VAR, "").strip() or None
    name = database or env.get(DATABASE_VAR, "").strip()
    if not name and not guild_id and need_database:
        raise CommandError(f"name the database with --database NAME or {DATABASE_VAR}", status=2)
    api_url = env.get(API_URL_VAR, "").strip() or None
    raw_scale = env.get(TIME_SCALE_VAR, "").strip()
    try:
        time_scale = float(raw_scale) if raw_scale else 1.0
    except ValueError:
        raise CommandError(
            f"{TIME_SCALE_VAR} must be a number, not {raw_scale!r}", status=2
        ) from None
    if not time_scale > 0:
        raise CommandError(f"{TIME_SCALE_VAR} must be positive", status=2)
    return Settings(
        token=token, api_url=api_url, database=name, guild_id=guild_id, time_scale=time_scale
    )
