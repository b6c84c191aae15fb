"""Guild channels: create, list, get, edit (with the name/topic sub-limit) and delete.

Layer: the emulator's REST side.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ApiError, form_error, missing_permissions
from ..models import Channel, Guild
from ..permissions import ADMINISTRATOR, MANAGE_CHANNELS, MANAGE_ROLES
from .access import channel_for, guild_for
from .context import Context, Reply

__all__ = [
    "create_channel",
    "delete_channel",
    "edit_channel",
    "edit_channel_limits",
    "get_channel",
    "list_channels",
    "trigger_typing",
]

CHANNEL_TYPES = {0, 2, 4, 5, 13, 15, 16}
TEXT_NAMED = {0, 5, 15, 16}  # types whose names Discord normalises like text channels
MAX_GUILD_CHANNELS = 500
MAX_CATEGORY_CHANNELS = 50
_SPACES = re.compile(r"\s+")


def normalise_name(name: str, channel_type: int) -> str:
    """Lower-case a text channel's name and turn whitespace runs into ``-`` (conservative)."""
    if channel_type not in TEXT_NAMED:
        return name.strip()
    return _SPACES.sub("-", name.strip()).lower()


def _string(body: dict[str, Any], key: str, low: int, high: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise form_error(key, "BASE_TYPE_STRING", "Must be a string.")
    if len(value) < low or len(value) > high:
        raise form_error(
            key, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )
    return value


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise form_error(key, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    try:
        number = int(value)
    except ValueError:
        raise form_error(key, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.') from None
    if not low <= number <= high:
        raise form_error(
            key, "NUMBER_TYPE_MAX" if number > high else "NUMBER_TYPE_MIN", "Out of range."
        )
    return number


def _overwrites(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > 100:
        raise form_error("permission_overwrites", "BASE_TYPE_MAX_LENGTH", "At most 100.")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "id" not in item:
            raise form_error(["permission_overwrites", i, "id"], "BASE_TYPE_REQUIRED", "Required")
        kind = item.get("type", 0) or 0
        if kind not in (0, 1, "0", "1"):
            raise form_error(["permission_overwrites", i, "type"], "BASE_TYPE_CHOICES", "0 or 1")
        kind = int(kind)
        bits = {}
        for key in ("allow", "deny"):
            raw = str(item.get(key) or 0)
            if not raw.isdigit():
                raise form_error(
                    ["permission_overwrites", i, key], "NUMBER_TYPE_COERCE", f'"{raw}" is not int.'
                )
            bits[key] = str(int(raw))
        out.append({"id": str(item["id"]), "type": kind, **bits})
    return out


def _bits(overwrite: dict[str, Any]) -> int:
    return int(overwrite.get("allow") or 0) | int(overwrite.get("deny") or 0)


def check_new_overwrites(ctx: Context, guild: Guild, overwrites: list[dict[str, Any]]) -> None:
    """Refuse (403 50013) overwrites a bot may not set on a channel it creates.

    Discord (resources/guild, Create Guild Channel): only permissions the bot has in the
    guild can be allowed or denied, and MANAGE_ROLES only by a guild administrator.
    """
    have = ctx.state.guild_permissions(guild, ctx.bot.id)
    if have & ADMINISTRATOR:
        return
    for overwrite in overwrites:
        bits = _bits(overwrite)
        if bits & MANAGE_ROLES or bits & ~have:
            raise missing_permissions()


def check_changed_overwrites(
    ctx: Context, guild: Guild, channel: Channel, overwrites: list[dict[str, Any]]
) -> None:
    """Refuse (403 50013) an edit of a channel's overwrites the bot may not make.

    Discord (resources/channel, Modify Channel): changing overwrites needs MANAGE_ROLES, and
    only permissions the bot has in the guild, or in the parent category, can be allowed or
    denied, unless an overwrite of this channel grants the bot MANAGE_ROLES. Only the bits
    that change are judged: an overwrite sent back as it was changes nothing.
    """
    state, bot_id = ctx.state, ctx.bot.id
    if not state.permissions_in(channel, bot_id) & MANAGE_ROLES:
        raise missing_permissions()
    if state.guild_permissions(guild, bot_id) & ADMINISTRATOR:
        return
    member = guild.members[bot_id]
    mine = {guild.id, bot_id, *member.role_ids}
    if any(
        str(o["id"]) in mine and int(o.get("allow") or 0) & MANAGE_ROLES
        for o in channel.permission_overwrites
    ):
        return
    parent = state.channels.get(channel.parent_id) if channel.parent_id else None
    have = (
        state.permissions_in(parent, bot_id)
        if parent is not None
        else state.guild_permissions(guild, bot_id)
    )
    old = {str(o["id"]): o for o in channel.permission_overwrites}
    new = {str(o["id"]): o for o in overwrites}
    changed = 0
    for target in old.keys() | new.keys():
        before, after = old.get(target, {}), new.get(target, {})
        for key in ("allow", "deny"):
            changed |= int(before.get(key) or 0) ^ int(after.get(key) or 0)
    if changed & ~have:
        raise missing_permissions()


def channel_fields(
    ctx: Context, guild: Guild, body: Any, *, channel_type: int, own_id: str | None
) -> dict[str, Any]:
    """Validate the writable channel fields of a create or edit body."""
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    out: dict[str, Any] = {}
    if "name" in body:
        name = _string(body, "name", 1, 100)
        if name is None:
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        out["name"] = normalise_name(name, channel_type)
        if not out["name"]:
            raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    if "topic" in body:
        out["topic"] = _string(body, "topic", 0, 4096 if channel_type in (15, 16) else 1024)
    if "nsfw" in body:
        out["nsfw"] = bool(body["nsfw"])
    if "position" in body and body["position"] is not None:
        out["position"] = _int(body, "position", 0, 1 << 31)
    if "rate_limit_per_user" in body:
        out["rate_limit_per_user"] = _int(body, "rate_limit_per_user", 0, 21600) or 0
    if "permission_overwrites" in body and body["permission_overwrites"] is not None:
        out["permission_overwrites"] = _overwrites(body["permission_overwrites"])
    if "flags" in body and body["flags"] is not None:
        out["flags"] = _int(body, "flags", 0, 1 << 31)
    if "parent_id" in body:
        parent_id = body["parent_id"]
        if parent_id is not None:
            parent_id = str(parent_id)
            parent = ctx.state.channels.get(parent_id)
            if parent is None or parent.guild_id != guild.id or parent.type != 4:
                raise form_error("parent_id", "CHANNEL_PARENT_INVALID", "Invalid parent.")
            if channel_type == 4:
                raise form_error("parent_id", "CHANNEL_PARENT_INVALID", "Categories nest not.")
            children = sum(
                1
                for cid in guild.channel_ids
                if cid != own_id and ctx.state.channels[cid].parent_id == parent_id
            )
            if children >= MAX_CATEGORY_CHANNELS:
                raise form_error(
                    "parent_id",
                    "CHANNEL_PARENT_MAX_CHANNELS",
                    f"Maximum number of channels in category reached ({MAX_CATEGORY_CHANNELS})",
                )
        out["parent_id"] = parent_id
    return out


async def list_channels(ctx: Context) -> Reply:
    """``GET /guilds/{guild_id}/channels`` (threads are not included)."""
    guild = guild_for(ctx, ctx.params["guild_id"])
    state = ctx.state
    return Reply(200, [ctx.render.channel(state.channels[c]) for c in guild.channel_ids])


async def create_channel(ctx: Context) -> Reply:
    """``POST /guilds/{guild_id}/channels``: 201 and the channel."""
    guild = guild_for(ctx, ctx.params["guild_id"])
    if not ctx.state.guild_permissions(guild, ctx.bot.id) & MANAGE_CHANNELS:
        raise ApiError(403, 50013, "Missing Permissions")
    body = await ctx.json()
    if not isinstance(body, dict) or body.get("name") is None:
        raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
    channel_type = body.get("type")
    channel_type = 0 if channel_type is None else channel_type
    if not isinstance(channel_type, int) or channel_type not in CHANNEL_TYPES:
        raise form_error(
            "type", "BASE_TYPE_CHOICES", f"Value must be one of {sorted(CHANNEL_TYPES)}."
        )
    fields = channel_fields(ctx, guild, body, channel_type=channel_type, own_id=None)
    check_new_overwrites(ctx, guild, fields.get("permission_overwrites", []))
    if len(guild.channel_ids) >= MAX_GUILD_CHANNELS:
        raise ApiError(
            400, 30013, f"Maximum number of guild channels reached ({MAX_GUILD_CHANNELS})"
        )
    channel = ctx.state.create_channel(guild, type=channel_type, **fields)
    return Reply(201, ctx.render.channel(channel))


async def get_channel(ctx: Context) -> Reply:
    """``GET /channels/{channel_id}``."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    return Reply(200, ctx.render.channel(channel))


async def edit_channel_limits(ctx: Context) -> list[str]:
    """Choose the buckets of a channel edit: name/topic changes have their own sub-limit."""
    try:
        body = await ctx.json()
    except ApiError:
        return ["channel_edit"]  # the handler reports the bad body
    if isinstance(body, dict) and ("name" in body or "topic" in body):
        return ["channel_edit", "channel_name_topic"]
    return ["channel_edit"]


async def edit_channel(ctx: Context) -> Reply:
    """``PATCH /channels/{channel_id}``: 200 and the channel."""
    channel = channel_for(ctx, ctx.params["channel_id"], MANAGE_CHANNELS)
    guild = ctx.state.guilds[channel.guild_id]
    body = await ctx.json()
    fields = channel_fields(ctx, guild, body, channel_type=channel.type, own_id=channel.id)
    if "permission_overwrites" in fields:
        check_changed_overwrites(ctx, guild, channel, fields["permission_overwrites"])
    if isinstance(body, dict) and "type" in body and body["type"] != channel.type:
        if not isinstance(body["type"], int) or {body["type"], channel.type} != {0, 5}:
            raise form_error("type", "BASE_TYPE_CHOICES", "Only text and announcement swap.")
        fields["type"] = body["type"]
    if fields:
        ctx.state.update_channel(channel, fields)
    return Reply(200, ctx.render.channel(channel))


async def delete_channel(ctx: Context) -> Reply:
    """``DELETE /channels/{channel_id}``: 200 and the deleted channel."""
    channel = channel_for(ctx, ctx.params["channel_id"], MANAGE_CHANNELS)
    return Reply(200, ctx.state.delete_channel(channel))


async def trigger_typing(ctx: Context) -> Reply:
    """``POST /channels/{channel_id}/typing``: 204."""
    channel_for(ctx, ctx.params["channel_id"])
    return Reply(204)
