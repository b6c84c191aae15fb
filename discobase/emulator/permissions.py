"""Discord permission bits and how a member's permissions in a channel are computed.

Layer: the emulator. Pure; knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ADMINISTRATOR",
    "ALL",
    "ATTACH_FILES",
    "BOT_DEFAULT",
    "CREATE_INSTANT_INVITE",
    "EMBED_LINKS",
    "MANAGE_CHANNELS",
    "MANAGE_MESSAGES",
    "MANAGE_ROLES",
    "PIN_MESSAGES",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "SEND_TTS_MESSAGES",
    "VIEW_CHANNEL",
    "channel_permissions",
]

CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28
PIN_MESSAGES = 1 << 51
ALL = (1 << 53) - 1

# What the docs tell a database bot to be invited with (facts 3.3), plus the harmless extras a
# bot invite usually carries. Not ADMINISTRATOR, so tests can take single bits away.
BOT_DEFAULT = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | MANAGE_CHANNELS
    | MANAGE_MESSAGES
    | ATTACH_FILES
    | EMBED_LINKS
    | ADD_REACTIONS
    | PIN_MESSAGES
)


def channel_permissions(
    *,
    base: int,
    everyone_id: str,
    role_ids: Iterable[str],
    member_id: str,
    overwrites: Iterable[Mapping[str, Any]],
) -> int:
    """Apply a channel's overwrites to guild-level permissions, in Discord's order.

    Args:
        base: The member's guild permissions (everyone role OR their roles).
        everyone_id: The @everyone role id (the guild id).
        role_ids: The member's role ids.
        member_id: The member's user id.
        overwrites: The channel's ``permission_overwrites``.

    Returns:
        The permission bits in the channel.
    """
    if base & ADMINISTRATOR:
        return ALL
    perms = base
    by_id = {str(o["id"]): o for o in overwrites}
    everyone = by_id.get(everyone_id)
    if everyone is not None:
        perms = (perms & ~int(everyone.get("deny") or 0)) | int(everyone.get("allow") or 0)
    allow = deny = 0
    for role_id in role_ids:
        o = by_id.get(role_id)
        if o is not None and int(o.get("type", 0)) == 0:
            allow |= int(o.get("allow") or 0)
            deny |= int(o.get("deny") or 0)
    perms = (perms & ~deny) | allow
    member = by_id.get(member_id)
    if member is not None and int(member.get("type", 0)) == 1:
        perms = (perms & ~int(member.get("deny") or 0)) | int(member.get("allow") or 0)
    return perms
