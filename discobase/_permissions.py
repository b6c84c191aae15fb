"""Discord permission bits and a member's permissions in a channel (shared leaf: pure, imports
nothing from discobase, and nothing heavy: ``import discobase`` loads it).

Theory, from Discord's documentation ("Permissions", "Permission Overwrites"):

1. Guild level: the guild's owner holds every permission. Otherwise OR the ``@everyone``
   role (its id is the guild's id) with every role of the member; ``ADMINISTRATOR`` there
   grants every permission and no channel overwrite can take one away.
2. Channel level, starting from the guild level: apply the ``@everyone`` overwrite (deny,
   then allow), then the member's role overwrites *combined* (deny every role's denies, then
   allow every role's allows), then the member's own overwrite.

The storage engine checks the result at start-up, because Discord answers a message read
without ``READ_MESSAGE_HISTORY`` with an empty list, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ADMINISTRATOR",
    "ALL",
    "ATTACH_FILES",
    "CATALOG_NEEDS",
    "INVITE",
    "MANAGE_CHANNELS",
    "MANAGE_MESSAGES",
    "PIN_MESSAGES",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "TABLE_NEEDS",
    "VIEW_CHANNEL",
    "channel_permissions",
    "guild_permissions",
    "names",
]

ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
#: Split from MANAGE_MESSAGES on 2025-08-20; since 2026-02-23 the only bit that allows pinning.
PIN_MESSAGES = 1 << 51
#: Every bit Discord defines today and then some: what an owner or administrator holds.
ALL = (1 << 64) - 1

#: What the bot needs in the catalog channel: see it, write entries (a long one as a file),
#: and read them back.
CATALOG_NEEDS = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ATTACH_FILES
#: What the bot needs in a table's channel: the catalog's needs, and pinning snapshots.
TABLE_NEEDS = CATALOG_NEEDS | PIN_MESSAGES
#: What the invite link asks for: every need, creating channels, and MANAGE_MESSAGES (bulk
#: delete of old log entries, reserved: this version keeps them as history).
INVITE = TABLE_NEEDS | MANAGE_CHANNELS | MANAGE_MESSAGES

# Discord's own names, as its client shows them, in bit order.
_NAMES = {
    ADMINISTRATOR: "Administrator",
    MANAGE_CHANNELS: "Manage Channels",
    VIEW_CHANNEL: "View Channel",
    SEND_MESSAGES: "Send Messages",
    MANAGE_MESSAGES: "Manage Messages",
    ATTACH_FILES: "Attach Files",
    READ_MESSAGE_HISTORY: "Read Message History",
    PIN_MESSAGES: "Pin Messages",
}


def names(bits: int) -> list[str]:
    """Return the names of the set ``bits``, lowest bit first (unnamed bits as ``1 << n``)."""
    out = []
    for n in range(bits.bit_length()):
        bit = 1 << n
        if bits & bit:
            out.append(_NAMES.get(bit, f"1 << {n}"))
    return out


def _bits(value: Any) -> int:
    """Read a permission field (Discord sends them as decimal strings); junk counts as 0."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def guild_permissions(
    *,
    guild_id: str,
    owner_id: str | None,
    user_id: str,
    roles: Iterable[Mapping[str, Any]],
    member_roles: Iterable[str],
) -> int:
    """Return a member's guild-level permissions.

    Args:
        guild_id: the guild's id, which is also the ``@everyone`` role's id.
        owner_id: the guild's ``owner_id``.
        user_id: the member's user id.
        roles: the guild's role objects (``id``, ``permissions``).
        member_roles: the member's role ids (``@everyone`` is implied).

    Returns:
        The permission bits; :data:`ALL` for the owner or an administrator.
    """
    if owner_id is not None and str(owner_id) == str(user_id):
        return ALL
    by_id = {str(role.get("id")): _bits(role.get("permissions")) for role in roles}
    perms = by_id.get(str(guild_id), 0)
    for role_id in member_roles:
        perms |= by_id.get(str(role_id), 0)
    return ALL if perms & ADMINISTRATOR else perms


def channel_permissions(
    base: int,
    *,
    guild_id: str,
    user_id: str,
    member_roles: Iterable[str],
    overwrites: Iterable[Mapping[str, Any]],
) -> int:
    """Apply a channel's permission overwrites to guild-level permissions, in Discord's order.

    Args:
        base: the member's guild-level permissions (:func:`guild_permissions`).
        guild_id: the guild's id (the ``@everyone`` overwrite has it).
        user_id: the member's user id (a member overwrite, ``type`` 1, has it).
        member_roles: the member's role ids (role overwrites, ``type`` 0).
        overwrites: the channel's ``permission_overwrites``.

    Returns:
        The permission bits in the channel.
    """
    if base & ADMINISTRATOR:  # an owner's ALL has it too
        return ALL
    roles = {str(r) for r in member_roles}
    everyone: Mapping[str, Any] | None = None
    member: Mapping[str, Any] | None = None
    allow = deny = 0
    for overwrite in overwrites:
        target = str(overwrite.get("id"))
        kind = _bits(overwrite.get("type"))
        if kind == 0 and target == str(guild_id):
            everyone = overwrite
        elif kind == 0 and target in roles:
            allow |= _bits(overwrite.get("allow"))
            deny |= _bits(overwrite.get("deny"))
        elif kind == 1 and target == str(user_id):
            member = overwrite
    perms = base
    if everyone is not None:
        perms = (perms & ~_bits(everyone.get("deny"))) | _bits(everyone.get("allow"))
    perms = (perms & ~deny) | allow
    if member is not None:
        perms = (perms & ~_bits(member.get("deny"))) | _bits(member.get("allow"))
    return perms
