"""Channel invites: ``POST /channels/{channel_id}/invites``.

Layer: the emulator's REST side. Bots cannot create guilds any more (facts 3.3), so a human
invites them; a bot may still create invites to a guild it is in, and the original discobase
(1.0.0) does so once per login to log an invite link. The invite is answered and announced
(INVITE_CREATE, intent GUILD_INVITES) but not stored: joining through it is a human's act and
is not emulated. Body and answer follow the spec's ``CreateGuildInviteRequest`` and
``GuildInviteResponse``; the ranges are the docs' (max_age 0-604800, max_uses 0-100).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from ..errors import form_error
from ..events import GUILD_INVITES, EmulatorEvent
from ..permissions import CREATE_INSTANT_INVITE
from ..render import iso
from .access import channel_for
from .context import Context, Reply

__all__ = ["create_invite"]

_CODE_ALPHABET = string.ascii_letters + string.digits
_RANGES = {"max_age": (0, 604_800, 86_400), "max_uses": (0, 100, 0)}


def _bounded(body: dict[str, Any], key: str) -> int:
    low, high, default = _RANGES[key]
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise form_error(key, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    if value < low:
        raise form_error(key, "NUMBER_TYPE_MIN", f"int value should be >= {low}.")
    if value > high:
        raise form_error(key, "NUMBER_TYPE_MAX", f"int value should be <= {high}.")
    return value


async def create_invite(ctx: Context) -> Reply:
    """``POST /channels/{channel_id}/invites``: 200 and an invite (CREATE_INSTANT_INVITE)."""
    channel = channel_for(ctx, ctx.params["channel_id"], CREATE_INSTANT_INVITE)
    body = await ctx.json()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    max_age = _bounded(body, "max_age")
    max_uses = _bounded(body, "max_uses")
    temporary = bool(body.get("temporary") or False)
    guild = ctx.state.guilds[channel.guild_id]
    now = ctx.state.clock.now()
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    created_at = iso(now)
    expires_at = iso(now + max_age) if max_age else None
    inviter = ctx.render.user(ctx.bot.id)
    invite = {
        "type": 0,
        "code": code,
        "inviter": inviter,
        "max_age": max_age,
        "created_at": created_at,
        "expires_at": expires_at,
        "flags": 0,
        "guild": {
            "id": guild.id,
            "name": guild.name,
            "splash": None,
            "banner": None,
            "description": None,
            "icon": None,
            "features": [],
            "verification_level": 0,
            "vanity_url_code": None,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_subscription_count": 0,
        },
        "guild_id": guild.id,
        "channel": {"id": channel.id, "type": channel.type, "name": channel.name},
        "uses": 0,
        "max_uses": max_uses,
        "temporary": temporary,
    }
    event = {
        "channel_id": channel.id,
        "code": code,
        "created_at": created_at,
        "expires_at": expires_at,
        "guild_id": guild.id,
        "inviter": inviter,
        "max_age": max_age,
        "max_uses": max_uses,
        "temporary": temporary,
        "uses": 0,
    }
    ctx.state.events.publish(EmulatorEvent("INVITE_CREATE", event, guild.id, GUILD_INVITES))
    return Reply(200, invite)
