"""Render the emulator's records as Discord's wire JSON: users, roles, members, guilds,
channels, attachments and messages.

Layer: the emulator. Reads the state's tables and never changes them; knows nothing of HTTP,
of the event bus or of the client. The REST handlers answer with these objects and the state
publishes them on the event bus, so a payload has one shape whichever way it travels.

Key order is part of the contract: clients and tests compare the JSON these dicts become, so
a field keeps its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from .clock import Clock
from .models import MESSAGE_CONTENT, Attachment, Bot, Channel, Guild, Message, Role

__all__ = ["AttachmentSigner", "Renderer", "iso"]


def iso(epoch_seconds: float) -> str:
    """Format epoch seconds as Discord's ISO 8601 timestamp (microseconds, +00:00)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="microseconds")


class AttachmentSigner(Protocol):
    """Make a fresh signed CDN URL for an attachment."""

    def __call__(self, channel_id: str, attachment_id: str, filename: str) -> str: ...


def _unsigned(channel_id: str, attachment_id: str, filename: str) -> str:
    """Return an attachment's path without a signature (a state without a CDN)."""
    return f"/attachments/{channel_id}/{attachment_id}/{filename}"


class Renderer:
    """Turn records into the objects Discord sends.

    Args:
        bots: The state's bots by id.
        humans: The state's human users' names by id.
        guilds: The state's guilds by id.
        channels: The state's channels by id.
        messages: The state's messages by id (a reply carries the message it answers).
        clock: The Discord clock (the ``joined_at`` of a bot not yet in a guild).

    Attributes:
        sign_url: Makes an attachment's URL; the emulator sets its CDN's signer.
    """

    def __init__(
        self,
        *,
        bots: Mapping[str, Bot],
        humans: Mapping[str, str],
        guilds: Mapping[str, Guild],
        channels: Mapping[str, Channel],
        messages: Mapping[int, Message],
        clock: Clock,
    ) -> None:
        self._bots = bots
        self._humans = humans
        self._guilds = guilds
        self._channels = channels
        self._messages = messages
        self._clock = clock
        self.sign_url: AttachmentSigner = _unsigned

    # -- users, roles, members ----------------------------------------------------------

    def current_user(self, bot: Bot) -> dict[str, Any]:
        """Return the bot's user object as ``GET /users/@me`` sends it."""
        user = self.user(bot.id)
        user.update({"mfa_enabled": False, "locale": "en-US", "verified": True, "email": None})
        return user

    def user(self, user_id: str) -> dict[str, Any]:
        """Return a user object as it appears in messages and member lists."""
        bot = self._bots.get(user_id)
        name = bot.username if bot is not None else self._humans.get(user_id, "unknown")
        return {
            "id": user_id,
            "username": name,
            # Bots keep a four-digit discriminator; migrated users have "0".
            "discriminator": "0" if bot is None else str(1000 + int(user_id) % 9000),
            "global_name": None,
            "avatar": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
            "banner": None,
            "accent_color": None,
            "bot": bot is not None,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }

    def role(self, role: Role) -> dict[str, Any]:
        """Return a role object."""
        return {
            "id": role.id,
            "name": role.name,
            "permissions": str(role.permissions),
            "position": role.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": role.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    def member(self, guild: Guild, user_id: str, *, with_user: bool) -> dict[str, Any]:
        """Return a guild member object (partial without ``user``, as in messages)."""
        member = guild.members[user_id]
        payload: dict[str, Any] = {
            "roles": list(member.role_ids),
            "joined_at": iso(member.joined_at),
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = self.user(user_id)
        return payload

    # -- guilds and channels ------------------------------------------------------------

    def guild(self, guild: Guild) -> dict[str, Any]:
        """Return a guild object as ``GET /guilds/{id}`` sends it."""
        channels = self._channels
        system = next((cid for cid in guild.channel_ids if channels[cid].type == 0), None)
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "description": None,
            "home_header": None,
            "splash": None,
            "discovery_splash": None,
            "features": [],
            "banner": None,
            "owner_id": guild.owner_id,
            "application_id": None,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": system,
            "system_channel_flags": 0,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "roles": [self.role(r) for r in guild.roles.values()],
            "default_message_notifications": 0,
            "mfa_level": 0,
            "explicit_content_filter": 0,
            "max_presences": None,
            "max_members": 500000,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "rules_channel_id": None,
            "safety_alerts_channel_id": None,
            "public_updates_channel_id": None,
            "premium_progress_bar_enabled": False,
            "nsfw": False,
            "nsfw_level": 0,
            "emojis": [],
            "stickers": [],
            "incidents_data": None,
        }

    def guild_create(self, guild_id: str, bot_id: str) -> dict[str, Any]:
        """Return the full GUILD_CREATE object for ``bot_id`` (roles, channels, members, ...)."""
        guild = self._guilds[guild_id]
        payload = self.guild(guild)
        members = [uid for uid in (guild.owner_id, bot_id) if uid in guild.members]
        payload.update(
            {
                "joined_at": iso(guild.members[bot_id].joined_at)
                if bot_id in guild.members
                else iso(self._clock.now()),
                "large": False,
                "unavailable": False,
                "member_count": len(guild.members),
                "voice_states": [],
                "members": [self.member(guild, uid, with_user=True) for uid in members],
                "channels": [self.channel(self._channels[c]) for c in guild.channel_ids],
                "threads": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
                "lazy": True,
            }
        )
        return payload

    def channel(self, channel: Channel) -> dict[str, Any]:
        """Return a guild channel object."""
        payload: dict[str, Any] = {
            "id": channel.id,
            "type": channel.type,
            "guild_id": channel.guild_id,
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": [dict(o) for o in channel.permission_overwrites],
            "parent_id": channel.parent_id,
            "flags": channel.flags,
            "nsfw": channel.nsfw,
        }
        if channel.type in (2, 13):
            payload.update(
                {
                    "bitrate": channel.bitrate,
                    "user_limit": channel.user_limit,
                    "rtc_region": None,
                    "last_message_id": channel.last_message_id,
                    "rate_limit_per_user": channel.rate_limit_per_user,
                }
            )
        elif channel.type != 4:
            payload.update(
                {
                    "topic": channel.topic,
                    "last_message_id": channel.last_message_id,
                    "rate_limit_per_user": channel.rate_limit_per_user,
                    "last_pin_timestamp": iso(channel.last_pin_timestamp)
                    if channel.last_pin_timestamp
                    else None,
                }
            )
        return payload

    def pins_update(self, channel: Channel) -> dict[str, Any]:
        """Return the CHANNEL_PINS_UPDATE payload of ``channel``."""
        last = iso(channel.last_pin_timestamp) if channel.last_pin_timestamp else None
        return {"guild_id": channel.guild_id, "channel_id": channel.id, "last_pin_timestamp": last}

    # -- messages -----------------------------------------------------------------------

    def attachment(self, channel_id: str, attachment: Attachment) -> dict[str, Any]:
        """Return an attachment object with a freshly signed URL."""
        url = self.sign_url(channel_id, attachment.id, attachment.filename)
        payload: dict[str, Any] = {
            "id": attachment.id,
            "filename": attachment.filename,
            "size": attachment.size,
            "url": url,
            "proxy_url": url,
            "flags": attachment.flags,
        }
        if attachment.content_type is not None:
            payload["content_type"] = attachment.content_type
        if attachment.description is not None:
            payload["description"] = attachment.description
        if attachment.title is not None:
            payload["title"] = attachment.title
        if attachment.width is not None:
            payload["width"] = attachment.width
            payload["height"] = attachment.height
        return payload

    def message(
        self, message: Message, viewer: Bot | None = None, *, nested: bool = True
    ) -> dict[str, Any]:
        """Return a message object as the REST API sends it.

        Args:
            message: The message.
            viewer: The bot reading it. Without the MESSAGE_CONTENT intent a bot sees empty
                content, embeds, attachments and components, except in its own messages and
                in messages that mention it (facts 2.10).
            nested: Include ``referenced_message`` of a reply (one level deep, as Discord).
        """
        payload: dict[str, Any] = {
            "type": message.type,
            "content": message.content,
            "mentions": [self.user(u) for u in message.mentions],
            "mention_roles": list(message.mention_roles),
            "attachments": [self.attachment(message.channel_id, a) for a in message.attachments],
            "embeds": list(message.embeds),
            "timestamp": iso(message.timestamp),
            "edited_timestamp": iso(message.edited_timestamp) if message.edited_timestamp else None,
            "flags": message.flags,
            "components": list(message.components),
            "id": str(message.id),
            "channel_id": message.channel_id,
            "author": self.user(message.author_id),
            "pinned": message.pinned,
            "mention_everyone": message.mention_everyone,
            "tts": message.tts,
        }
        if (
            viewer is not None
            and not viewer.approved_intents & MESSAGE_CONTENT
            and message.author_id != viewer.id
            and viewer.id not in message.mentions
        ):
            payload.update({"content": "", "embeds": [], "attachments": [], "components": []})
        if message.message_reference is not None:
            payload["message_reference"] = dict(message.message_reference)
            if message.type == 19 and nested:
                # A reply carries the message it answers, one level deep (null once deleted).
                target = self._messages.get(int(message.message_reference["message_id"]))
                payload["referenced_message"] = (
                    None if target is None else self.message(target, viewer, nested=False)
                )
        return payload

    def message_event(self, message: Message, channel: Channel) -> dict[str, Any]:
        """Return the MESSAGE_CREATE/UPDATE payload: the message, guild_id, member, type."""
        payload = self.message(message)
        payload["guild_id"] = channel.guild_id
        payload["channel_type"] = channel.type
        guild = self._guilds.get(channel.guild_id)
        if guild is not None and message.author_id in guild.members:
            payload["member"] = self.member(guild, message.author_id, with_user=False)
        if guild is not None:
            # In the events, each mentioned user carries its partial member (gateway-events,
            # Message Create: "array of user objects, with an additional partial member").
            for user in payload["mentions"]:
                if user["id"] in guild.members:
                    user["member"] = self.member(guild, user["id"], with_user=False)
        return payload
