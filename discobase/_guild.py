"""Which guild a database is (public API layer: asks the HTTP client at login).

A ``Database`` names its guild (or gives its id); at login `find_guild` looks it up among the
bot's guilds, creates it where Discord still lets a bot do so, and otherwise says how to
invite the bot, with the permissions it needs (`PERMISSIONS`, `invite_url`, which
``discobase.database`` exports too). This module must not know storage, the gateway or tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discobase._logging import log as _log
from discobase._permissions import INVITE
from discobase.errors import AmbiguousGuild, GuildNotFound

if TYPE_CHECKING:
    from discobase.http import HTTPClient

__all__ = ["PERMISSIONS", "find_guild", "invite_url"]

#: The permissions discobase needs in its guild: VIEW_CHANNEL, SEND_MESSAGES,
#: READ_MESSAGE_HISTORY, MANAGE_CHANNELS, MANAGE_MESSAGES (bulk delete of old log entries),
#: ATTACH_FILES (large batches and snapshots) and PIN_MESSAGES (snapshots are pinned):
#: 2251799813794832. Start-up checks all but MANAGE_MESSAGES (and MANAGE_CHANNELS only when
#: it must create a channel).
PERMISSIONS = INVITE


def invite_url(application_id: int | str, permissions: int = PERMISSIONS) -> str:
    """Return the OAuth2 link that adds the bot to a server with the permissions it needs."""
    return (
        "https://discord.com/oauth2/authorize"
        f"?client_id={application_id}&scope=bot&permissions={permissions}"
    )


async def find_guild(http: HTTPClient, bot_id: int, name: str, guild_id: int | None) -> int:
    """Return the id of the database's guild: ``guild_id`` if given, else the one named ``name``.

    Raises:
        GuildNotFound: the bot is not in that guild (and could not create it); the message
            holds the link that invites it.
        AmbiguousGuild: the bot is in several guilds of that name.
    """
    from discobase.http.errors import HTTPException

    guilds = await http.fetch_my_guilds()
    if guild_id is not None:
        if any(int(g["id"]) == guild_id for g in guilds):
            return guild_id
        link = await _invite_link(http, bot_id)
        raise GuildNotFound(f"the bot is not a member of guild {guild_id}; invite it with {link}")
    named = [g for g in guilds if g.get("name") == name]
    if len(named) > 1:
        ids = ", ".join(str(g["id"]) for g in named)
        raise AmbiguousGuild(
            f"the bot is in {len(named)} guilds named {name!r} (ids {ids}); "
            f"pass guild_id= to Database to pick one"
        )
    if named:
        return int(named[0]["id"])
    try:
        created = await http.create_guild(name)
    except HTTPException as exc:
        if exc.status is None or exc.status >= 500 or exc.status in (401, 429):
            raise
        _log().debug("creating guild %r was refused: %s", name, exc)
    else:
        _log().info("created guild %r", name)
        return int(created["id"])
    link = await _invite_link(http, bot_id)
    raise GuildNotFound(
        f"the bot is in no guild named {name!r} ({_member_of(guilds)}). Discord no longer "
        "lets bots create servers (since July 2025): create the server in Discord yourself, "
        f"then add the bot with {link}{_local_hint(http)}"
    )


def _member_of(guilds: list[dict[str, Any]]) -> str:
    # A misspelt name, or the emulator's default guild, is then plain to see.
    names = sorted(str(g.get("name")) for g in guilds)
    if not names:
        return "it is in no guild"
    shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    return f"it is in {len(names)} guild{'s' if len(names) > 1 else ''}: {shown}"


def _local_hint(http: HTTPClient) -> str:
    from discobase.http.client import DEFAULT_API_URL

    if getattr(http, "api_url", DEFAULT_API_URL) == DEFAULT_API_URL:
        return ""
    # The invite link cannot help on a local Discord: there the guild is made by its seeding.
    return (
        ". On a local Discord, start it with `discobase emulator --guild NAME`, or call "
        "`emu.create_guild(NAME, bots=[bot])`"
    )


async def _invite_link(http: HTTPClient, bot_id: int) -> str:
    from discobase.http.errors import HTTPException

    try:
        application = await http.fetch_current_application()
        application_id = application["id"]
    except (HTTPException, KeyError, TypeError):
        # A bot's user id is its application's id for every application made since 2019.
        application_id = bot_id
    return invite_url(application_id)
