"""Global application commands: ``GET``/``PUT /applications/{application_id}/commands``.

Layer: the emulator's REST side. discord.py's ``CommandTree.sync()`` (which the original
discobase 1.0.0 calls on every login) is a bulk overwrite: the body is the full list of the
application's global commands, the answer the stored list (200). A command keeps its id when
a later overwrite names it again, as on Discord. Shapes follow the spec's
``ApplicationCommandUpdateRequest`` and ``ApplicationCommandResponse``; lengths are the docs'
(name 1-32, description 1-100 for chat-input commands and empty for user and message ones).
Commands live in memory only (not in ``data_dir``); interactions are not emulated.
"""

from __future__ import annotations

from typing import Any

from ..errors import form_error, missing_access
from .context import Context, Reply

__all__ = ["list_commands", "overwrite_commands"]

CHAT_INPUT = 1
MAX_COMMANDS = 130  # the spec's maxItems for the bulk body


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


def _command(ctx: Context, application_id: str, index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise form_error([index], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    kind = item.get("type") or CHAT_INPUT
    if kind not in (1, 2, 3, 4):
        raise form_error([index, "type"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4}.")
    name = _text(item, index, "name", 1, 32)
    chat = kind == CHAT_INPUT
    description = _text(item, index, "description", 1 if chat else 0, 100 if chat else 0)
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
    if chat:
        command["options"] = item.get("options") or []
    return command


async def overwrite_commands(ctx: Context) -> Reply:
    """``PUT /applications/{application_id}/commands``: replace them all, 200 and the list."""
    application_id = _application(ctx)
    body = await ctx.json()
    if body is None or body == {}:
        body = []
    if not isinstance(body, list):
        raise form_error([], "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
    if len(body) > MAX_COMMANDS:
        raise form_error([], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS} or fewer in length.")
    commands = [_command(ctx, application_id, i, item) for i, item in enumerate(body)]
    ctx.state.commands[application_id] = {c["name"]: c for c in commands}
    return Reply(200, commands)


async def list_commands(ctx: Context) -> Reply:
    """``GET /applications/{application_id}/commands``: the global commands, 200."""
    application_id = _application(ctx)
    return Reply(200, list(ctx.state.commands.get(application_id, {}).values()))
