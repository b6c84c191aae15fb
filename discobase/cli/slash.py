"""``discobase commands [--global] list | remove``: the slash commands of the bot.

cli layer. Only the HTTP client is used: no gateway, no storage. ``remove`` overwrites the
app's guild commands with an empty list, which takes away every command ``AdminCommands``
registered (and any other guild command of the same app in that guild). With ``--global``
it lists or empties the app's global commands instead: the original discobase 1.0.0 synced
its ten commands (``/insert`` to ``/schema``, and ``/hello``) globally at every login, and
Discord keeps them after a program moves to this one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from discobase.cli.env import Settings, read_settings
from discobase.cli.errors import CommandError

__all__ = ["run_slash"]


def run_slash(
    action: str, database: str | None, guild_id: str | None, *, global_commands: bool = False
) -> int:
    """Run ``commands list`` or ``commands remove`` and return the exit status.

    Args:
        action: ``"list"`` or ``"remove"``.
        database: the ``--database`` option, if given.
        guild_id: the ``--guild-id`` option, if given.
        global_commands: act on the app's global commands, not the guild's (``--global``).

    Raises:
        CommandError: the command failed; its message is for the user.
    """
    settings = read_settings(database, guild_id, need_database=not global_commands)
    from discobase.errors import DiscobaseError

    try:
        asyncio.run(_run_global(settings, action) if global_commands else _run(settings, action))
    except DiscobaseError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from None
    return 0


async def _guild(http: Any, settings: Settings) -> str:
    guilds = await http.fetch_my_guilds()
    if settings.guild_id is not None:
        if not any(str(g["id"]) == settings.guild_id for g in guilds):
            raise CommandError(f"the bot is not in guild {settings.guild_id}")
        return settings.guild_id
    named = [g for g in guilds if g.get("name") == settings.database]
    if len(named) != 1:
        raise CommandError(
            f"the bot is in {len(named)} guilds named {settings.database!r}; "
            "pass --guild-id to pick one"
        )
    return str(named[0]["id"])


async def _run(settings: Settings, action: str) -> None:
    from discobase.http import HTTPClient

    async with HTTPClient(
        settings.token, api_url=settings.api_url, time_scale=settings.time_scale
    ) as http:
        guild_id = await _guild(http, settings)
        application_id = str((await http.fetch_current_application())["id"])
        if action == "remove":
            await http.bulk_overwrite_guild_application_commands(application_id, guild_id, [])
            print(f"removed the bot's slash commands from guild {guild_id}")
            return
        commands = await http.fetch_guild_application_commands(application_id, guild_id)
        for command in commands:
            print(f"/{command['name']}: {command.get('description', '')}")
        if not commands:
            print(f"no slash commands of the bot in guild {guild_id}")


async def _run_global(settings: Settings, action: str) -> None:
    from discobase.http import HTTPClient

    async with HTTPClient(
        settings.token, api_url=settings.api_url, time_scale=settings.time_scale
    ) as http:
        application_id = str((await http.fetch_current_application())["id"])
        if action == "remove":
            await http.bulk_overwrite_global_application_commands(application_id, [])
            print("removed the bot's global slash commands")
            return
        commands = await http.fetch_global_application_commands(application_id)
        for command in commands:
            print(f"/{command['name']}: {command.get('description', '')}")
        if not commands:
            print("no global slash commands of the bot")
