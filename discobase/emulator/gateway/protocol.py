"""What the gateway decides about a payload, without a socket (emulator layer, gateway side).

Layer: the emulator's gateway. Pure functions over decoded JSON and plain values: decoding a
client frame, validating IDENTIFY and RESUME, choosing which bots see an event and stripping
message content. No asyncio, no aiohttp, no emulator state objects beyond what is passed in.

Each refusal is a :class:`Violation` carrying the close code Discord would send, so the
connection only has to close with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from discobase import _json

from .codes import (
    CLIENT_OPCODES,
    KNOWN_INTENTS,
    MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    CloseCode,
    Opcode,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SUPPORTED_VERSIONS",
    "Identify",
    "Resume",
    "Violation",
    "check_intents",
    "decode_payload",
    "in_shard",
    "members_chunk",
    "parse_identify",
    "parse_resume",
    "strip_message_content",
]

MAX_PAYLOAD_BYTES = 4096
SUPPORTED_VERSIONS = frozenset({"9", "10"})
# Fields Discord empties in a message the bot may not read (docs: message content intent).
_LIST_CONTENT_FIELDS = ("embeds", "attachments", "components")
_MESSAGE_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE"})


class Violation(Exception):
    """The client broke the protocol; the connection closes with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(f"{int(code)} {reason}")
        self.code = code
        self.reason = reason


def decode_payload(raw: str | bytes) -> tuple[Opcode, Any]:
    """Decode one client frame into its opcode and ``d``.

    Raises:
        Violation: 4002 for a frame over 4096 bytes or one that is not a JSON object, 4001
            for a missing or unknown opcode.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_PAYLOAD_BYTES:
        raise Violation(CloseCode.DECODE_ERROR, "payload over 4096 bytes")
    try:
        payload = _json.loads(data)
    except _json.JSONDecodeError:
        raise Violation(CloseCode.DECODE_ERROR, "payload is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Violation(CloseCode.DECODE_ERROR, "payload is not a JSON object")
    op = payload.get("op")
    if type(op) is not int or op not in CLIENT_OPCODES:
        raise Violation(CloseCode.UNKNOWN_OPCODE, f"unknown opcode {op!r}")
    return Opcode(op), payload.get("d")


@dataclass(frozen=True)
class Identify:
    """A well-formed IDENTIFY; the token is not yet checked against the bots."""

    token: str
    intents: int
    shard: tuple[int, int]
    shard_sent: bool = False

    def __repr__(self) -> str:
        # Never let a token reach a log line or a traceback.
        return f"Identify(intents={self.intents}, shard={self.shard})"


@dataclass(frozen=True)
class Resume:
    """A well-formed RESUME."""

    token: str
    session_id: str
    seq: int | None

    def __repr__(self) -> str:
        return f"Resume(session_id={self.session_id!r}, seq={self.seq})"


def parse_identify(d: Any) -> Identify:
    """Validate the shape of IDENTIFY's ``d`` (token, properties, intents, shard).

    Raises:
        Violation: 4001 for a malformed payload, 4013 for missing or invalid intents, 4010
            for an invalid shard.
    """
    if not isinstance(d, dict) or not isinstance(d.get("token"), str):
        raise Violation(CloseCode.UNKNOWN_OPCODE, "IDENTIFY needs a token")
    if not isinstance(d.get("properties"), dict):
        raise Violation(CloseCode.UNKNOWN_OPCODE, "IDENTIFY needs properties")
    intents = d.get("intents")
    if type(intents) is not int:
        raise Violation(CloseCode.INVALID_INTENTS, "intents are required (v8 and later)")
    check_intents(intents, approved=None)
    shard = d.get("shard", [0, 1])
    if (
        not isinstance(shard, list)
        or len(shard) != 2
        or not all(type(n) is int for n in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise Violation(CloseCode.INVALID_SHARD, "invalid shard")
    return Identify(
        token=d["token"], intents=intents, shard=(shard[0], shard[1]), shard_sent="shard" in d
    )


def check_intents(intents: int, approved: int | None) -> None:
    """Refuse intents Discord would refuse.

    Args:
        intents: The bit set the client asked for.
        approved: The privileged bits the bot may use, or None to check only validity.

    Raises:
        Violation: 4013 for bits that are not intents, 4014 for an unapproved privileged one.
    """
    if intents < 0 or intents & ~KNOWN_INTENTS:
        raise Violation(CloseCode.INVALID_INTENTS, "invalid intent(s)")
    if approved is not None and intents & PRIVILEGED_INTENTS & ~approved:
        raise Violation(CloseCode.DISALLOWED_INTENTS, "disallowed intent(s)")


def parse_resume(d: Any) -> Resume:
    """Validate the shape of RESUME's ``d``.

    Raises:
        Violation: 4001 for a malformed payload.
    """
    if (
        not isinstance(d, dict)
        or not isinstance(d.get("token"), str)
        or not isinstance(d.get("session_id"), str)
    ):
        raise Violation(CloseCode.UNKNOWN_OPCODE, "RESUME needs token and session_id")
    seq = d.get("seq")
    if seq is not None and type(seq) is not int:
        raise Violation(CloseCode.UNKNOWN_OPCODE, "RESUME seq must be an integer or null")
    return Resume(token=d["token"], session_id=d["session_id"], seq=seq)


def in_shard(guild_id: str | int | None, shard: tuple[int, int]) -> bool:
    """Return whether events of ``guild_id`` go to ``shard`` (guildless events go to shard 0)."""
    shard_id, num_shards = shard
    if guild_id is None:
        return shard_id == 0
    return (int(guild_id) >> 22) % num_shards == shard_id


def _may_read(message: Mapping[str, Any], bot_id: str, intents: int) -> bool:
    if intents & MESSAGE_CONTENT:
        return True
    author = message.get("author")
    if isinstance(author, dict) and str(author.get("id")) == bot_id:
        return True
    mentions = message.get("mentions")
    if isinstance(mentions, list):
        return any(isinstance(u, dict) and str(u.get("id")) == bot_id for u in mentions)
    return False


def _stripped(message: dict[str, Any], bot_id: str, intents: int) -> dict[str, Any]:
    if _may_read(message, bot_id, intents):
        return message
    out = {k: v for k, v in message.items() if k != "poll"}
    if "content" in out:
        out["content"] = ""
    for field in _LIST_CONTENT_FIELDS:
        if field in out:
            out[field] = []
    return out


def strip_message_content(name: str, data: Any, bot_id: str, intents: int) -> Any:
    """Apply the MESSAGE_CONTENT rules to a dispatch for one bot.

    A bot without intent ``1 << 15`` gets empty ``content``, ``embeds``, ``attachments`` and
    ``components`` (and no ``poll``), except in messages it wrote or that mention it. The
    referenced message of a reply follows the same rule on its own.

    Returns:
        ``data`` itself when nothing changes, else a stripped copy (the bus's copy is shared
        by every bot and must not be mutated).
    """
    if name not in _MESSAGE_EVENTS or not isinstance(data, dict):
        return data
    out = _stripped(data, bot_id, intents)
    referenced = out.get("referenced_message")
    if isinstance(referenced, dict):
        stripped_ref = _stripped(referenced, bot_id, intents)
        if stripped_ref is not referenced:
            out = dict(out) if out is data else out
            out["referenced_message"] = stripped_ref
    return out


def members_chunk(
    members: list[dict[str, Any]], guild_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Build the one GUILD_MEMBERS_CHUNK that answers a member request (op 8).

    Applies ``user_ids`` (reporting the ``not_found`` ones), or ``query`` (a username prefix,
    case-insensitive) with ``limit`` (0 = no limit); echoes ``nonce``; ``presences`` asked for
    are empty (the emulator tracks none).
    """
    user_ids = request.get("user_ids")
    not_found: list[str] = []
    if user_ids is not None:
        wanted = [str(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])]
        by_id = {str(m["user"]["id"]): m for m in members}
        chosen = [by_id[u] for u in wanted if u in by_id]
        not_found = [u for u in wanted if u not in by_id]
    else:
        query = str(request.get("query") or "").lower()
        chosen = [
            m for m in members if str(m["user"].get("username", "")).lower().startswith(query)
        ]
        limit = request.get("limit")
        if type(limit) is int and limit > 0:
            chosen = chosen[:limit]
    chunk: dict[str, Any] = {
        "guild_id": guild_id,
        "members": chosen,
        "chunk_index": 0,
        "chunk_count": 1,
        "not_found": not_found,
    }
    if request.get("presences"):
        chunk["presences"] = []
    if "nonce" in request:
        chunk["nonce"] = request["nonce"]
    return chunk
