"""Gateway opcodes, close codes and intent bits (emulator layer, gateway side).

Layer: the emulator's gateway. It restates Discord's numbers on its own and must not import
them from the client (``discobase.gateway``): the client and the local Discord must not share
one misunderstanding.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CLIENT_OPCODES",
    "GUILD_MEMBERS",
    "GUILD_PRESENCES",
    "KNOWN_INTENTS",
    "MESSAGE_CONTENT",
    "PRIVILEGED_INTENTS",
    "CloseCode",
    "Opcode",
]


class Opcode(IntEnum):
    """The ``op`` field of a gateway payload."""

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
    REQUEST_SOUNDBOARD_SOUNDS = 31
    REQUEST_CHANNEL_INFO = 43


# Opcodes a client may send; anything else closes with 4001.
CLIENT_OPCODES = frozenset(
    {
        Opcode.HEARTBEAT,
        Opcode.IDENTIFY,
        Opcode.PRESENCE_UPDATE,
        Opcode.VOICE_STATE_UPDATE,
        Opcode.RESUME,
        Opcode.REQUEST_GUILD_MEMBERS,
        Opcode.REQUEST_SOUNDBOARD_SOUNDS,
        Opcode.REQUEST_CHANNEL_INFO,
    }
)


class CloseCode(IntEnum):
    """Close codes the gateway sends (4006 is a voice code and does not exist here)."""

    NORMAL = 1000
    GOING_AWAY = 1001
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


GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

# Every documented intent bit: 0-16, 20, 21, 24, 25. A bit outside this mask closes with 4013.
KNOWN_INTENTS = (1 << 17) - 1 | 1 << 20 | 1 << 21 | 1 << 24 | 1 << 25
