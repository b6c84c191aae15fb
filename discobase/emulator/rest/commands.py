"""Application commands, global and per guild: list, bulk overwrite, create, get, edit, delete.

``/applications/{application_id}/commands[/{command_id}]`` and
``/applications/{application_id}/guilds/{guild_id}/commands[/{command_id}]``.

Layer: the emulator's REST side. discord.py's ``CommandTree.sync()`` (which the original
discobase 1.0.0 calls on every login) is a bulk overwrite: the body is the full list of the
application's global commands, the answer the stored list (200). A command keeps its id when
a later overwrite names it again, as on Discord. Shapes follow the spec's
``ApplicationCommandUpdateRequest`` and ``ApplicationCommandResponse``; lengths are the docs'
(name 1-32, description 1-100 for chat-input commands and empty for user and message ones).
Commands live in memory only (not in ``data_dir``). ``POST`` creates or, for a name already
registered, replaces (201 for a new command, 200 for a replaced one, as Discord does); guild
commands carry ``guild_id``. Members invoke them through ``interactions.py``.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ApiError, form_error, missing_access
from .access import guild_for
from .context import Context, Reply

__all__ = [
    "create_command",
    "delete_command",
    "edit_command",
    "get_command",
    "list_commands",
    "overwrite_commands",
]

CHAT_INPUT = 1
MAX_COMMANDS = 130  # the spec's maxItems for the bulk body
MAX_OPTIONS = 25
# The docs' rule for chat-input command and option names (lower case where a case exists).
_NAME = re.compile(r"^[-_'\w\u0900-\u097f\u0e00-\u0e7f]{1,32}$")


def _application(ctx: Context) -> str:
    application_id = ctx.params["application_id"]
    if application_id != ctx.bot.application_id:
        # Another application's commands: Discord does not publish the answer; Missing Access.
        raise missing_access()
    return application_id


def _text(item: dict[str, Any], index: int, key: str, low: int, high: int) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise form_error([index, key], "BASE_TYPE_STRING", "Must be a string.")
    if not low <= len(value) <= high:
        raise form_error(
            [index, key], "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )
    return value


def _command(
    ctx: Context,
    application_id: str,
    index: int,
    item: Any,
    known: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise form_error([index], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    kind = item.get("type") or CHAT_INPUT
    if kind not in (1, 2, 3, 4):
        raise form_error([index, "type"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4}.")
    name = _text(item, index, "name", 1, 32)
    chat = kind == CHAT_INPUT
    description = _text(item, index, "description", 1 if chat else 0, 100 if chat else 0)
    if chat and (not _NAME.match(name) or name != name.lower()):
        raise form_error(
            [index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    if known is None:
        known = ctx.state.commands.setdefault(application_id, {})
    previous = known.get(name)
    permissions = item.get("default_member_permissions")
    command: dict[str, Any] = {
        "id": previous["id"] if previous else ctx.state.new_id(),
        "application_id": application_id,
        "version": ctx.state.new_id(),
        "default_member_permissions": None if permissions is None else str(permissions),
        "type": kind,
        "name": name,
        "description": description,
        "dm_permission": item.get("dm_permission", True) is not False,
        "contexts": item.get("contexts"),
        "integration_types": item.get("integration_types") or [0],
        "nsfw": bool(item.get("nsfw") or False),
    }
    for key in ("name_localizations", "description_localizations"):
        if item.get(key) is not None:
            command[key] = item[key]
    guild_id = ctx.params.get("guild_id")
    if guild_id is not None:
        command["guild_id"] = guild_id
    if chat:
        command["options"] = _options(index, item.get("options") or [])
    return command


def _options(index: int, options: Any, path: tuple[str | int, ...] = ()) -> list[Any]:
    """Check options the way Discord refuses them: types, names, lengths, required first."""
    where: list[str | int] = [index, *path, "options"]
    if not isinstance(options, list):
        raise form_error(where, "BASE_TYPE_LIST", "Must be a list.")
    if len(options) > MAX_OPTIONS:
        raise form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    optional_seen = False
    names: set[str] = set()
    for i, option in enumerate(options):
        at: list[str | int] = [*where, i]
        if not isinstance(option, dict):
            raise form_error(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        kind = option.get("type")
        if kind not in range(1, 12):
            raise form_error([*at, "type"], "BASE_TYPE_CHOICES", "Value must be 1 to 11.")
        name = _text(option, i, "name", 1, 32)
        if not _NAME.match(name) or name != name.lower() or name in names:
            raise form_error([*at, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Invalid name.")
        names.add(name)
        _text(option, i, "description", 1, 100)
        if kind in (1, 2):
            option["options"] = _options(index, option.get("options") or [], (*path, "options", i))
            continue
        if option.get("required"):
            if optional_seen:
                raise form_error(
                    [*at, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        if option.get("autocomplete") and option.get("choices"):
            raise form_error(
                [*at, "autocomplete"],
                "AUTOCOMPLETE_AND_CHOICES",
                "Autocomplete cannot be set with choices.",
            )
        if len(option.get("choices") or []) > MAX_OPTIONS:
            raise form_error([*at, "choices"], "BASE_TYPE_MAX_LENGTH", "At most 25.")
    return options


def _scope(ctx: Context) -> tuple[str, dict[str, dict[str, Any]]]:
    """Return the application and its command table: global, or the path's guild's."""
    application_id = _application(ctx)
    guild_id = ctx.params.get("guild_id")
    if guild_id is None:
        return application_id, ctx.state.commands.setdefault(application_id, {})
    guild_for(ctx, guild_id)
    store = ctx.interactions.guild_commands
    return application_id, store.setdefault((application_id, guild_id), {})


DAILY_CREATES = 200
DAY = 86_400.0


def _count_creates(ctx: Context, application_id: str, count: int) -> None:
    """Count ``count`` new command names against the daily limit of the path's scope.

    Discord allows 200 command creations a day per guild (and for global commands); a bulk
    overwrite counts the names that did not exist. Over the limit: 400 code 30034, as users
    have observed it (discord-api-docs #6188 and community reports).
    """
    if count <= 0:
        return
    key = f"{application_id}:{ctx.params.get('guild_id') or 'global'}"
    creates = ctx.interactions.command_creates.setdefault(key, [])
    now = ctx.state.clock.now()
    creates[:] = [t for t in creates if now - t < DAY]
    if len(creates) + count > DAILY_CREATES:
        raise ApiError(
            400, 30034, "Max number of daily application command creates has been reached (200)"
        )
    creates.extend([now] * count)


async def overwrite_commands(ctx: Context) -> Reply:
    """``PUT .../commands``: replace them all, 200 and the list."""
    application_id, known = _scope(ctx)
    body = await ctx.json()
    if body is None or body == {}:
        body = []
    if not isinstance(body, list):
        raise form_error([], "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
    if len(body) > MAX_COMMANDS:
        raise form_error([], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS} or fewer in length.")
    commands = [_command(ctx, application_id, i, item, known) for i, item in enumerate(body)]
    _count_creates(ctx, application_id, sum(1 for c in commands if c["name"] not in known))
    known.clear()
    known.update({c["name"]: c for c in commands})
    return Reply(200, commands)


async def list_commands(ctx: Context) -> Reply:
    """``GET .../commands``: the global or the guild's commands, 200."""
    _, known = _scope(ctx)
    return Reply(200, list(known.values()))


async def create_command(ctx: Context) -> Reply:
    """``POST .../commands``: 201 for a new name, 200 when it replaces one."""
    application_id, known = _scope(ctx)
    body = await ctx.json()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    command = _command(ctx, application_id, 0, body, known)
    existed = command["name"] in known
    if not existed and len(known) >= 100:
        raise ApiError(400, 30032, "Maximum number of application commands reached (100)")
    _count_creates(ctx, application_id, 0 if existed else 1)
    known[command["name"]] = command
    return Reply(200 if existed else 201, command)


def _by_id(ctx: Context, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for command in known.values():
        if command["id"] == ctx.params["command_id"]:
            return command
    raise ApiError(404, 10063, "Unknown application command")


async def get_command(ctx: Context) -> Reply:
    """``GET .../commands/{command_id}``."""
    _, known = _scope(ctx)
    return Reply(200, _by_id(ctx, known))


async def edit_command(ctx: Context) -> Reply:
    """``PATCH .../commands/{command_id}``: change some fields, 200 and the command."""
    application_id, known = _scope(ctx)
    current = _by_id(ctx, known)
    body = await ctx.json()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    merged = {**current, **body}
    del known[current["name"]]
    known[merged["name"]] = current  # keeps the id under a new name
    command = _command(ctx, application_id, 0, merged, known)
    command["id"] = current["id"]
    known[command["name"]] = command
    return Reply(200, command)


async def delete_command(ctx: Context) -> Reply:
    """``DELETE .../commands/{command_id}``: 204."""
    _, known = _scope(ctx)
    del known[_by_id(ctx, known)["name"]]
    return Reply(204)
