"""Opcodes, close codes and intents of Discord's gateway (gateway layer: pure constants).

Knows nothing of sockets, asyncio or the HTTP client. The close-code enum knows which codes may
reconnect and which ones end the session, so the protocol's table stays free of number lists.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "Intents", "Opcode"]


class Opcode(enum.IntEnum):
    """Gateway opcodes (``op``) of API v10."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway client sends or must understand."""

    NORMAL = 1000
    GOING_AWAY = 1001
    ABNORMAL = 1006
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014

    @property
    def may_reconnect(self) -> bool:
        """Return whether Discord allows connecting again after this code."""
        return self not in _FATAL

    @property
    def ends_session(self) -> bool:
        """Return whether the session is gone, so the next connection must identify."""
        return self in _NEW_SESSION

    @classmethod
    def fatal(cls, code: int | None) -> bool:
        """Return whether ``code`` (possibly unknown or absent) forbids reconnecting."""
        return code in _FATAL

    @classmethod
    def needs_new_session(cls, code: int | None) -> bool:
        """Return whether ``code`` (possibly unknown or absent) invalidated the session."""
        return code in _NEW_SESSION


_FATAL = frozenset(
    {
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.INVALID_SHARD,
        CloseCode.SHARDING_REQUIRED,
        CloseCode.INVALID_API_VERSION,
        CloseCode.INVALID_INTENTS,
        CloseCode.DISALLOWED_INTENTS,
    }
)
_NEW_SESSION = frozenset({CloseCode.INVALID_SEQ, CloseCode.SESSION_TIMED_OUT})


class Intents(enum.IntFlag):
    """Gateway intent bits; discobase needs only ``GUILDS | GUILD_MESSAGES`` (513).

    ``GUILD_MEMBERS``, ``GUILD_PRESENCES`` and ``MESSAGE_CONTENT`` are privileged. A bot reads
    the content of its own messages without ``MESSAGE_CONTENT``.
    """

    NONE = 0
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25
