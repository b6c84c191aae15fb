"""The emulator's world: bots, guilds, channels, messages and files, and how they change.

Layer: the emulator. Knows nothing of HTTP requests or the client; the REST handlers validate
requests and call these methods, which change the state, write it through to a store (when
one is attached, ``persistence.py``) and publish the gateway-visible change on the event bus.
The wire JSON of those changes comes from ``render.py`` (``State.render``), which reads the
same tables.

Messages of a channel are kept as a list of int ids sorted ascending, so that creating is an
append, and every page is two bisects and a slice.
"""

from __future__ import annotations

import base64
import secrets
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import Any, Protocol

from .clock import Clock
from .events import GUILD_MESSAGES, GUILDS, EmulatorEvent, EventBus
from .models import Attachment, Bot, Channel, Guild, Member, Message, Role
from .permissions import ADMINISTRATOR, ALL, BOT_DEFAULT, channel_permissions
from .render import AttachmentSigner, Renderer, iso
from .snowflakes import SnowflakeFactory

# AttachmentSigner and iso live in render.py; they stay importable from here.
__all__ = ["AttachmentSigner", "State", "Store", "iso"]

DAILY_IDENTIFIES = 1000
DAY = 86_400.0


class Store(Protocol):
    """Where state changes are written through (see ``persistence.SqliteStore``)."""

    def save(self, kind: str, key: str, record: Any) -> None: ...

    def delete(self, kind: str, key: str) -> None: ...

    def save_blob(self, key: str, data: bytes) -> None: ...

    def delete_blob(self, key: str) -> None: ...


class State:
    """Everything the emulated Discord knows, and every change to it.

    Args:
        clock: The Discord clock (timestamps, snowflakes).
        events: The bus on which changes are published.

    Attributes:
        render: Renders these records as Discord's wire JSON; it reads the tables and never
            changes them.
    """

    def __init__(self, clock: Clock, events: EventBus) -> None:
        self.clock = clock
        self.events = events
        self.snowflakes = SnowflakeFactory(clock.now)
        self.bots: dict[str, Bot] = {}
        self.humans: dict[str, str] = {}
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.blobs: dict[str, bytes] = {}
        self.blob_types: dict[str, str | None] = {}
        self.store: Store | None = None
        self._tokens: dict[str, Bot] = {}
        # (author id, nonce) -> (message id, Discord time); enforce_nonce dedupe.
        self._nonces: dict[tuple[str, str], tuple[int, float]] = {}
        self.nonce_window = 300.0
        # application id -> command name -> command; in memory only (not in data_dir).
        self.commands: dict[str, dict[str, dict[str, Any]]] = {}
        self.render = Renderer(
            bots=self.bots,
            humans=self.humans,
            guilds=self.guilds,
            channels=self.channels,
            messages=self.messages,
            clock=clock,
        )

    def reset_indexes(self) -> None:
        """Forget the token and nonce indexes and the commands (after the tables were cleared)."""
        self._tokens = {bot.token: bot for bot in self.bots.values()}
        self._nonces.clear()
        self.commands.clear()

    # -- ids, persistence -------------------------------------------------------------------

    def new_id(self) -> str:
        """Return a fresh snowflake as a string."""
        return str(self.snowflakes.next())

    def _save(self, kind: str, key: str, record: Any) -> None:
        if self.store is not None:
            self.store.save(kind, key, record)

    def _forget(self, kind: str, key: str) -> None:
        if self.store is not None:
            self.store.delete(kind, key)

    def _publish(
        self,
        name: str,
        data: Any,
        guild_id: str | None,
        intent: int,
        target_bot_id: str | None = None,
    ) -> None:
        self.events.publish(EmulatorEvent(name, data, guild_id, intent, target_bot_id))

    # -- bots ------------------------------------------------------------------------------

    def create_bot(self, username: str) -> Bot:
        """Register a bot with a Discord-shaped token."""
        bot_id = self.new_id()
        bot = Bot(id=bot_id, token=make_token(bot_id), username=username, application_id=bot_id)
        self.add_bot(bot)
        return bot

    def add_bot(self, bot: Bot) -> None:
        """Register an existing bot record (also used when loading a store)."""
        self.bots[bot.id] = bot
        self._tokens[bot.token] = bot
        self._save("bot", bot.id, bot)

    def bot_by_token(self, token: str) -> Bot | None:
        """Return the bot whose token is ``token``, or None."""
        return self._tokens.get(token)

    def session_start_limit(self, bot: Bot) -> dict[str, Any]:
        """Return the daily identify budget as ``GET /gateway/bot`` reports it (scaled ms)."""
        now = self.clock.now()
        used = [t for t in bot.identifies if now - t < DAY]
        bot.identifies[:] = used
        reset_after = (used[0] + DAY - now) if used else DAY
        return {
            "total": DAILY_IDENTIFIES,
            "remaining": max(0, DAILY_IDENTIFIES - len(used)),
            "reset_after": int(self.clock.to_real(reset_after) * 1000),
            "max_concurrency": bot.max_concurrency,
        }

    def record_identify(self, bot: Bot) -> None:
        """Count one identify against the bot's daily budget."""
        bot.identifies.append(self.clock.now())
        self._save("bot", bot.id, bot)

    # -- guilds ----------------------------------------------------------------------------

    def create_guild(
        self,
        name: str,
        bots: Iterable[Bot] = (),
        *,
        permissions: int | None = None,
        everyone_permissions: int = 0,
        owner: str | None = None,
    ) -> Guild:
        """Create a guild owned by a (synthetic) human, with a #general channel.

        Args:
            name: The guild's name.
            bots: Bots that join it, each with a role holding ``permissions``.
            permissions: The bots' role permissions (default: what a database bot needs).
            everyone_permissions: The @everyone role's permissions (default none, so that a
                bot's role alone decides what it may do).
            owner: The owner's user id (default: a new synthetic human).
        """
        guild_id = self.new_id()
        owner_id = owner or self.new_id()
        if owner is None:
            self.humans[owner_id] = f"owner-{name}"
            self._save("human", owner_id, self.humans[owner_id])
        guild = Guild(id=guild_id, name=name, owner_id=owner_id)
        guild.roles[guild_id] = Role(guild_id, "@everyone", everyone_permissions, 0)
        guild.members[owner_id] = Member(owner_id, [], self.clock.now())
        self.guilds[guild_id] = guild
        self._save("guild", guild_id, guild)
        self.create_channel(guild, name="general", type=0)
        for bot in bots:
            self.add_member(guild, bot, permissions)
        return guild

    def add_member(self, guild: Guild, bot: Bot, permissions: int | None = None) -> None:
        """Add ``bot`` to ``guild`` with its own managed role; send it GUILD_CREATE."""
        role_id = self.new_id()
        perms = BOT_DEFAULT if permissions is None else permissions
        guild.roles[role_id] = Role(role_id, bot.username, perms, len(guild.roles), True)
        guild.members[bot.id] = Member(bot.id, [role_id], self.clock.now())
        self._save("guild", guild.id, guild)
        payload = self.render.guild_create(guild.id, bot.id)
        self._publish("GUILD_CREATE", payload, guild.id, GUILDS, target_bot_id=bot.id)

    def set_permissions(self, guild: Guild, bot: Bot, permissions: int) -> None:
        """Replace the permissions of the bot's own role in ``guild``."""
        member = guild.members[bot.id]
        for role_id in member.role_ids:
            role = guild.roles[role_id]
            if role.managed:
                role.permissions = permissions
        self._save("guild", guild.id, guild)

    def remove_member(self, guild: Guild, user_id: str) -> None:
        """Remove a member; a bot gets GUILD_DELETE (without ``unavailable``)."""
        member = guild.members.pop(user_id, None)
        if member is None:
            return
        for role_id in member.role_ids:
            role = guild.roles.get(role_id)
            if role is not None and role.managed:
                del guild.roles[role_id]
        self._save("guild", guild.id, guild)
        if user_id in self.bots:
            self._publish("GUILD_DELETE", {"id": guild.id}, guild.id, GUILDS, user_id)

    def add_human(self, guild: Guild, name: str, permissions: int) -> str:
        """Add a new human user to ``guild`` with its own role holding ``permissions``.

        No event is published (Discord's GUILD_MEMBER_ADD needs an intent nobody asks for).

        Returns:
            The user's id.
        """
        user_id = self.new_id()
        self.humans[user_id] = name
        role_id = self.new_id()
        guild.roles[role_id] = Role(role_id, f"{name}'s role", permissions, len(guild.roles))
        guild.members[user_id] = Member(user_id, [role_id], self.clock.now())
        self._save("human", user_id, name)
        self._save("guild", guild.id, guild)
        return user_id

    def guilds_for_bot(self, bot_id: str) -> list[Guild]:
        """Return the guilds ``bot_id`` is a member of, by ascending id."""
        found = [g for g in self.guilds.values() if bot_id in g.members]
        found.sort(key=lambda g: int(g.id))
        return found

    def guild_permissions(self, guild: Guild, user_id: str) -> int:
        """Return a member's guild-level permissions (0 for a non-member)."""
        if user_id == guild.owner_id:
            return ALL
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.roles[guild.id].permissions
        for role_id in member.role_ids:
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        # ADMINISTRATOR "allows all permissions" at the guild level too, not only in channels.
        return ALL if perms & ADMINISTRATOR else perms

    def permissions_in(self, channel: Channel, user_id: str) -> int:
        """Return a member's permissions in ``channel`` (0 for a non-member)."""
        guild = self.guilds[channel.guild_id]
        member = guild.members.get(user_id)
        if member is None:
            return 0
        return channel_permissions(
            base=self.guild_permissions(guild, user_id),
            everyone_id=guild.id,
            role_ids=member.role_ids,
            member_id=user_id,
            overwrites=channel.permission_overwrites,
        )

    # -- channels --------------------------------------------------------------------------

    def create_channel(self, guild: Guild, **fields: Any) -> Channel:
        """Create a channel in ``guild`` (fields already validated); publish CHANNEL_CREATE."""
        channel = Channel(id=self.new_id(), guild_id=guild.id, **fields)
        if "position" not in fields:
            channel.position = sum(
                1 for cid in guild.channel_ids if self.channels[cid].type == channel.type
            )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self._save("guild", guild.id, guild)
        self._save("channel", channel.id, channel)
        self._publish("CHANNEL_CREATE", self.render.channel(channel), guild.id, GUILDS)
        return channel

    def update_channel(self, channel: Channel, changes: dict[str, Any]) -> None:
        """Apply validated ``changes``; publish CHANNEL_UPDATE."""
        for name, value in changes.items():
            setattr(channel, name, value)
        self._save("channel", channel.id, channel)
        self._publish("CHANNEL_UPDATE", self.render.channel(channel), channel.guild_id, GUILDS)

    def delete_channel(self, channel: Channel) -> dict[str, Any]:
        """Delete a channel and its messages; orphaned children lose their parent."""
        payload = self.render.channel(channel)
        guild = self.guilds[channel.guild_id]
        guild.channel_ids.remove(channel.id)
        del self.channels[channel.id]
        for message_id in channel.message_ids:
            message = self.messages.pop(message_id, None)
            if message is not None:
                self._drop_files(message.attachments)
                self._forget("message", str(message_id))
        self._save("guild", guild.id, guild)
        self._forget("channel", channel.id)
        self._publish("CHANNEL_DELETE", payload, guild.id, GUILDS)
        for cid in list(guild.channel_ids):
            child = self.channels[cid]
            if child.parent_id == channel.id:
                self.update_channel(child, {"parent_id": None})
        return payload

    # -- messages --------------------------------------------------------------------------

    def find_nonce(self, author_id: str, nonce: str) -> Message | None:
        """Return the live message ``author_id`` recently created with ``nonce``."""
        message_id = self.nonce_message_id(author_id, nonce)
        return None if message_id is None else self.messages.get(message_id)

    def nonce_message_id(self, author_id: str, nonce: str) -> int | None:
        """Return the id of the message ``author_id`` created with ``nonce`` within the window.

        The message may have been deleted since: Discord then refuses the nonce (10008)
        instead of creating the message again.
        """
        found = self._nonces.get((author_id, nonce))
        if found is None:
            return None
        message_id, at = found
        if self.clock.now() - at > self.nonce_window:
            del self._nonces[(author_id, nonce)]
            return None
        return message_id

    def remember_nonce(self, author_id: str, nonce: str, message: Message) -> None:
        """Record a nonce for ``enforce_nonce`` dedupe (kept in memory only, like Discord)."""
        if len(self._nonces) > 100_000:
            horizon = self.clock.now() - self.nonce_window
            self._nonces = {k: v for k, v in self._nonces.items() if v[1] >= horizon}
        self._nonces[(author_id, nonce)] = (message.id, self.clock.now())

    def create_message(
        self,
        channel: Channel,
        author_id: str,
        *,
        files: Iterable[tuple[Attachment, bytes]] = (),
        nonce: Any = None,
        **fields: Any,
    ) -> Message:
        """Store a message (fields validated); publish MESSAGE_CREATE."""
        message_id = self.snowflakes.next()
        attachments = []
        for attachment, data in files:
            self.store_file(attachment, data)
            attachments.append(attachment)
        message = Message(
            id=message_id,
            channel_id=channel.id,
            author_id=author_id,
            timestamp=self.clock.now(),
            attachments=attachments,
            **fields,
        )
        self.messages[message_id] = message
        ids = channel.message_ids
        if not ids or ids[-1] < message_id:
            ids.append(message_id)
        else:  # only after a restart with an odd clock; keep the list sorted
            ids.insert(bisect_left(ids, message_id), message_id)
        channel.last_message_id = str(message_id)
        # The channel row is not rewritten: loading derives last_message_id from the messages.
        self._save("message", str(message_id), message)
        payload = self.render.message_event(message, channel)
        if nonce is not None:
            payload["nonce"] = nonce
        self._publish("MESSAGE_CREATE", payload, channel.guild_id, GUILD_MESSAGES)
        return message

    def edit_message(self, message: Message, changes: dict[str, Any]) -> None:
        """Apply validated ``changes``; drop removed files; publish MESSAGE_UPDATE."""
        if "attachments" in changes:
            kept = {a.id for a in changes["attachments"]}
            self._drop_files([a for a in message.attachments if a.id not in kept])
        for name, value in changes.items():
            setattr(message, name, value)
        self._save("message", str(message.id), message)
        channel = self.channels[message.channel_id]
        self._publish(
            "MESSAGE_UPDATE",
            self.render.message_event(message, channel),
            channel.guild_id,
            GUILD_MESSAGES,
        )

    def _unlink(self, channel: Channel, message: Message) -> None:
        ids = channel.message_ids
        index = bisect_left(ids, message.id)
        if index < len(ids) and ids[index] == message.id:
            del ids[index]
        if message.pinned:
            channel.pins = [p for p in channel.pins if p[1] != message.id]
        del self.messages[message.id]
        self._drop_files(message.attachments)
        self._forget("message", str(message.id))

    def delete_message(self, message: Message) -> None:
        """Delete one message; publish MESSAGE_DELETE."""
        channel = self.channels[message.channel_id]
        self._unlink(channel, message)
        self._save("channel", channel.id, channel)
        data = {"id": str(message.id), "channel_id": channel.id, "guild_id": channel.guild_id}
        self._publish("MESSAGE_DELETE", data, channel.guild_id, GUILD_MESSAGES)

    def bulk_delete(self, channel: Channel, message_ids: list[int]) -> None:
        """Delete the existing messages among ``message_ids``; publish MESSAGE_DELETE_BULK."""
        deleted = []
        for message_id in message_ids:
            message = self.messages.get(message_id)
            if message is not None and message.channel_id == channel.id:
                self._unlink(channel, message)
                deleted.append(str(message_id))
        self._save("channel", channel.id, channel)
        data = {"ids": deleted, "channel_id": channel.id, "guild_id": channel.guild_id}
        self._publish("MESSAGE_DELETE_BULK", data, channel.guild_id, GUILD_MESSAGES)

    def store_file(self, attachment: Attachment, data: bytes) -> None:
        """Keep an uploaded file's bytes (the CDN serves them)."""
        self.blobs[attachment.id] = data
        self.blob_types[attachment.id] = attachment.content_type
        if self.store is not None:
            self.store.save_blob(attachment.id, data)

    def _drop_files(self, attachments: Iterable[Attachment]) -> None:
        for attachment in attachments:
            self.blobs.pop(attachment.id, None)
            self.blob_types.pop(attachment.id, None)
            if self.store is not None:
                self.store.delete_blob(attachment.id)

    def list_messages(
        self,
        channel: Channel,
        *,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Return a page of messages, newest first (also with ``after``)."""
        ids = channel.message_ids
        if around is not None:
            # Half before (and including) the id, half after, like discord.py expects.
            centre = bisect_left(ids, around)
            newer = limit // 2
            start = max(0, centre - (limit - newer))
            hit = centre < len(ids) and ids[centre] == around
            end = min(len(ids), centre + newer + (1 if hit else 0))
            # Near either end, the page fills up from the other side (limit stays the size).
            start = max(0, min(start, end - limit))
            end = min(len(ids), max(end, start + limit))
            window = ids[start:end][-limit:]
        elif after is not None:
            start = bisect_right(ids, after)
            window = ids[start : start + limit]
        else:
            end = len(ids) if before is None else bisect_left(ids, before)
            window = ids[max(0, end - limit) : end]
        return [self.messages[i] for i in reversed(window)]

    # -- pins ------------------------------------------------------------------------------

    def pin(self, channel: Channel, message: Message, by: str) -> None:
        """Pin a message; post the type-6 system message; publish the events."""
        now = self.clock.now()
        message.pinned = True
        channel.pins.append((now, message.id))
        channel.last_pin_timestamp = now
        self._save("message", str(message.id), message)
        self._after_pin_change(channel, message)
        self.create_message(
            channel,
            by,
            content="",
            type=6,
            message_reference={
                "type": 0,
                "channel_id": channel.id,
                "message_id": str(message.id),
                "guild_id": channel.guild_id,
            },
        )

    def unpin(self, channel: Channel, message: Message) -> None:
        """Unpin a message; publish the events."""
        message.pinned = False
        channel.pins = [p for p in channel.pins if p[1] != message.id]
        self._save("message", str(message.id), message)
        self._after_pin_change(channel, message)

    def _after_pin_change(self, channel: Channel, message: Message) -> None:
        self._save("channel", channel.id, channel)
        self._publish(
            "MESSAGE_UPDATE",
            self.render.message_event(message, channel),
            channel.guild_id,
            GUILD_MESSAGES,
        )
        self._publish(
            "CHANNEL_PINS_UPDATE", self.render.pins_update(channel), channel.guild_id, GUILDS
        )

    # -- the gateway's contract -----------------------------------------------------------

    def guild_create_payload(self, guild_id: str, bot_id: str) -> dict[str, Any]:
        """Return the full GUILD_CREATE object for ``bot_id`` (``render.guild_create``)."""
        return self.render.guild_create(guild_id, bot_id)


def make_token(user_id: str) -> str:
    """Return a token in Discord's shape: ``base64(user id).base64(time).signature``."""
    first = base64.b64encode(user_id.encode()).decode().rstrip("=")
    second = base64.urlsafe_b64encode(secrets.token_bytes(4)).decode().rstrip("=")
    third = base64.urlsafe_b64encode(secrets.token_bytes(27)).decode().rstrip("=")
    return f"{first}.{second}.{third}"
