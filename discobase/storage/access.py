"""What the bot may do in the database's guild (storage layer: pure; the HTTP reads that feed
it are the engine's).

Discord answers a read without Read Message History with an empty list, which would pass for
an empty database; so the engine computes the bot's effective permissions (owner,
ADMINISTRATOR, roles, then each channel's overwrites in Discord's order, see
``discobase._permissions``) and refuses, naming what is missing and where, before it reads or
writes anything the check concerns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from discobase import _permissions as perms
from discobase.errors import MissingPermissions

__all__ = ["Access"]


class Access:
    """The bot's permissions in one guild, and the guild's channels as last listed.

    Args:
        guild_id: the guild.
        bot_id: the bot's user id.
    """

    def __init__(self, guild_id: int, bot_id: int) -> None:
        self.guild_id = guild_id
        self.bot_id = bot_id
        #: The guild's channels by id (with their permission overwrites).
        self.channels: dict[int, Mapping[str, Any]] = {}
        # The bot's guild-level permissions and role ids; None until learn() (unchecked).
        self._base: int | None = None
        self._role_ids: list[str] = []

    @property
    def checked(self) -> bool:
        """Return whether the bot's permissions are known (``learn`` was called)."""
        return self._base is not None

    def learn(self, channels: Any, guild: Any, member: Any) -> None:
        """Take the guild's channels, the guild (roles, owner) and the bot's member."""
        self.learn_channels(channels)
        self._role_ids = [str(r) for r in (member or {}).get("roles") or ()]
        self._base = perms.guild_permissions(
            guild_id=str(self.guild_id),
            owner_id=(guild or {}).get("owner_id"),
            user_id=str(self.bot_id),
            roles=[r for r in (guild or {}).get("roles") or () if isinstance(r, dict)],
            member_roles=self._role_ids,
        )

    def learn_channels(self, channels: Any) -> None:
        """Take the guild's channels as listed anew."""
        self.channels = {
            int(c["id"]): c for c in channels or () if isinstance(c, dict) and "id" in c
        }

    def text_channels(self, name: str, *, named: bool) -> list[int]:
        """Return the ids of the text channels called ``name`` (or of all others), sorted."""
        return sorted(
            cid
            for cid, c in self.channels.items()
            if c.get("type") == 0 and (c.get("name") == name) == named
        )

    def needs(self, channel_id: int, need: int, what: str) -> dict[str, int]:
        """Return ``{place: bits}`` for what the bot lacks of ``need`` in a channel."""
        base = self._base
        channel = self.channels.get(channel_id)
        if base is None or channel is None:
            return {}  # not checked (open() not called) or gone: Discord's error will say
        have = perms.channel_permissions(
            base,
            guild_id=str(self.guild_id),
            user_id=str(self.bot_id),
            member_roles=self._role_ids,
            overwrites=[
                o for o in channel.get("permission_overwrites") or () if isinstance(o, dict)
            ],
        )
        return {f"#{channel.get('name', channel_id)} ({what})": need & ~have}

    def server_needs(self, need: int, what: str, tables: Collection[str]) -> dict[str, int]:
        """Return ``{place: bits}`` for what the bot lacks of ``need`` at the server level,
        to create ``what`` and the channels of ``tables`` (Manage Channels, and what a new
        channel, which starts with no overwrites, inherits)."""
        base = self._base
        if base is None:
            return {}
        if tables:
            names = ", ".join(repr(name) for name in tables)
            what = f"{what} and the channels of tables {names}" if what else f"tables {names}"
        return {f"the server (to create {what})": need & ~base}

    def require(self, places: Mapping[str, int]) -> None:
        """Raise ``MissingPermissions`` if any place of ``{place: missing bits}`` lacks some."""
        lacking = {place: bits for place, bits in places.items() if bits}
        if not lacking:
            return
        every = 0
        for bits in lacking.values():
            every |= bits
        missing_names = perms.names(every)
        where = "; ".join(f"{', '.join(perms.names(b))} in {p}" for p, b in lacking.items())
        why = (
            " (without Read Message History, Discord answers every read with nothing, as if "
            "the database were empty)"
            if every & perms.READ_MESSAGE_HISTORY
            else ""
        )
        raise MissingPermissions(
            f"the bot lacks permissions discobase needs in guild {self.guild_id}: {where}. "
            f"discobase stopped before reading or writing any table{why}. Give the bot's role "
            "these permissions in Server Settings > Roles and check the permission overwrites "
            "of the channels named (Edit Channel > Permissions), or add the bot again with an "
            f"invite link carrying permissions={perms.INVITE}",
            missing=missing_names,
            places={p: perms.names(b) for p, b in lacking.items()},
        )

    def read_only_overwrites(self) -> list[dict[str, Any]]:
        """Return overwrites that keep members from posting in a channel discobase makes.

        Chat in a table channel would cost every later open a history read per 100 messages.
        @everyone (whose role id is the guild's id) may read but not send; a member overwrite
        gives the bot back the right to send, and nothing more (its other rights stay its
        roles'). Server owners and administrators are not bound by overwrites, so this stops
        chat, not deliberate damage.
        """
        send = str(perms.SEND_MESSAGES)
        return [
            {"id": str(self.guild_id), "type": 0, "allow": "0", "deny": send},
            {"id": str(self.bot_id), "type": 1, "allow": send, "deny": "0"},
        ]
