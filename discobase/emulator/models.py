"""The emulator's records: bots, guilds, roles, members, channels, messages, attachments.

Layer: the emulator. Plain data; knows nothing of HTTP, JSON payload shapes or the client.
Ids are strings on the wire; messages keep an ``int`` id too, for ordering and paging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attachment", "Bot", "Channel", "Guild", "Member", "Message", "Role"]

# Privileged intents approved by default: since 2026-06-10 an app under 10,000 users switches
# them on without review (facts 2.10), which is every bot an emulator holds.
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
MESSAGE_CONTENT = 1 << 15
PRIVILEGED_DEFAULT = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


@dataclass(slots=True)
class Bot:
    """A bot user and its application.

    Attributes:
        id: The bot's user id.
        token: ``base64(id).<timestamp>.<hmac>``, Discord's shape.
        username: The bot's name.
        application_id: Its application's id (Discord makes it equal to the user id).
        approved_intents: Privileged intent bits the bot may use.
        max_concurrency: Identifies allowed per 5 s.
        identifies: Discord times of identifies in the last 24 h.
    """

    id: str
    token: str = field(repr=False)
    username: str = ""
    application_id: str = ""
    approved_intents: int = PRIVILEGED_DEFAULT
    max_concurrency: int = 1
    identifies: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Role:
    """A guild role (the @everyone role has the guild's id)."""

    id: str
    name: str
    permissions: int
    position: int = 0
    managed: bool = False


@dataclass(slots=True)
class Member:
    """A user's membership in a guild."""

    user_id: str
    role_ids: list[str]
    joined_at: float


@dataclass(slots=True)
class Guild:
    """A guild: its roles, members and channel ids (in creation order)."""

    id: str
    name: str
    owner_id: str
    roles: dict[str, Role] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    channel_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Attachment:
    """A stored file; its bytes live in ``State.blobs`` under the same id."""

    id: str
    filename: str
    size: int
    content_type: str | None = None
    description: str | None = None
    title: str | None = None
    flags: int = 0
    width: int | None = None
    height: int | None = None


@dataclass(slots=True)
class Message:
    """A message; ``id`` is an int for ordering (``str(id)`` on the wire)."""

    id: int
    channel_id: str
    author_id: str
    content: str
    timestamp: float
    type: int = 0
    flags: int = 0
    tts: bool = False
    edited_timestamp: float | None = None
    attachments: list[Attachment] = field(default_factory=list)
    embeds: list[Any] = field(default_factory=list)
    components: list[Any] = field(default_factory=list)
    pinned: bool = False
    mention_everyone: bool = False
    mentions: list[str] = field(default_factory=list)
    mention_roles: list[str] = field(default_factory=list)
    message_reference: dict[str, Any] | None = None


@dataclass(slots=True)
class Channel:
    """A guild channel and the ordered ids of its messages and pins."""

    id: str
    guild_id: str
    type: int
    name: str
    position: int = 0
    topic: str | None = None
    nsfw: bool = False
    parent_id: str | None = None
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_per_user: int = 0
    last_message_id: str | None = None
    last_pin_timestamp: float | None = None
    flags: int = 0
    bitrate: int = 64000
    user_limit: int = 0
    message_ids: list[int] = field(default_factory=list)
    pins: list[tuple[float, int]] = field(default_factory=list)
