"""The messages storage posts (storage layer: lays bytes out and posts them through the HTTP
client; knows nothing of a table's state, the writer's queue or pydantic models).

`Limits` holds Discord's size limits as this engine knows them. `plan_blob` lays operations
encoded as JSON lines out as the messages that carry them: inline in ``content`` while they
fit, as compressed attachments beyond, as the parts of one batch when even ten attachments
cannot hold them; `plan_stream` cuts any compressed stream into messages of a kind (log
entries, repairs, the catalog, snapshots). Every entry keeps room for the ``prev`` it names
(`PREV_ROOM`, `with_prev`), and `post` posts a message as discobase posts everything. The
table's writer (``storage.writer``), the engine's catalog, repairs and snapshots all post
through here.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from discobase.errors import DatabaseError
from discobase.http import File, HTTPClient
from discobase.storage import codec

__all__ = [
    "PREV_ROOM",
    "Limits",
    "Outgoing",
    "plan_blob",
    "plan_messages",
    "plan_stream",
    "next_part",
    "post",
    "with_prev",
    "with_prior",
]

MiB = 1024 * 1024
_ALLOWED_MENTIONS: dict[str, Any] = {"parse": []}


@dataclass(slots=True)
class Limits:
    """Discord's size limits as this engine knows them (shared by a database's writers).

    Attributes:
        file_limit: the largest attachment, in bytes; lowered when Discord refuses one.
        max_files: attachments per message.
        request_limit: file bytes per message (Discord takes 25 MiB per request in all).
        take_budget: uncompressed bytes the writer packs into one round at most.
        min_file_limit: the floor the file limit is never lowered below.
    """

    file_limit: int = 10 * MiB
    max_files: int = 10
    request_limit: int = 24 * MiB
    take_budget: int = 32 * MiB
    min_file_limit: int = 64 * 1024

    def lower(self, refused: int) -> bool:
        """Learn that a file of ``refused`` bytes was too large; return whether it helps."""
        target = max(self.min_file_limit, min(self.file_limit, refused) // 2)
        if target >= self.file_limit and refused <= self.min_file_limit:
            return False
        self.file_limit = min(self.file_limit, target)
        self.request_limit = min(self.request_limit, self.file_limit * self.max_files)
        return True


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to post: its content and files."""

    content: str
    files: tuple[File, ...] = ()


def plan_messages(lines: Sequence[bytes], size: int, limits: Limits) -> list[Outgoing]:
    """Lay out encoded operations as the messages that carry them.

    Args:
        lines: the operations as JSON lines.
        size: their total length in bytes, newlines included.
        limits: the size limits to respect.

    Returns:
        One inline message, one message with attachments, or the parts of a batch.
    """
    del size  # the joined lines say it
    return plan_blob(b"".join(line + b"\n" for line in lines), limits)


def plan_blob(blob: bytes, limits: Limits) -> list[Outgoing]:
    """Lay out operations encoded as newline-terminated JSON lines (see :func:`plan_messages`)."""
    # Lines are joined by commas inline (one fewer than the newlines), and escaping only
    # lengthens text, so only a batch this small can be inline.
    if len(blob) - 1 + codec.INLINE_OVERHEAD + PREV_ROOM <= codec.CONTENT_LIMIT:
        inline = [codec.escape_json(line.decode()) for line in blob.split(b"\n") if line]
        content = codec.inline_content(inline)
        if len(content) + PREV_ROOM <= codec.CONTENT_LIMIT:
            return [Outgoing(content)]
    stream = codec.compress_lines(blob)
    return plan_stream("log", stream, limits)


def plan_stream(kind: str, stream: bytes, limits: Limits, **fields: Any) -> list[Outgoing]:
    """Cut a compressed stream into messages of ``kind`` (parts of one batch if several)."""
    pieces = codec.split_stream(
        stream,
        file_limit=limits.file_limit,
        max_files=limits.max_files,
        request_limit=limits.request_limit,
    )
    batch = secrets.token_hex(8) if len(pieces) > 1 else None
    out: list[Outgoing] = []
    for part, files in enumerate(pieces):
        header = codec.encode_header(
            kind,
            **fields,
            files=len(files),
            batch=batch,
            part=part if batch else None,
            parts=len(pieces) if batch else None,
        )
        attached = tuple(File(codec.file_name(i), data) for i, data in enumerate(files))
        out.append(Outgoing(header, attached))
    return out


#: Characters kept free in every entry's content for its ``,"prev":"<snowflake>"``.
PREV_ROOM = len(',"prev":""') + 20


def with_prev(message: Outgoing, prev: int) -> Outgoing:
    """Return ``message`` whose header also names ``prev``, the newest entry held."""
    if prev <= 0 or not message.content.endswith("}"):
        return message
    return Outgoing(f'{message.content[:-1]},"prev":"{prev}"}}', message.files)


def next_part(plan: Sequence[Outgoing], posted: Sequence[int]) -> Outgoing:
    """Return the message of ``plan`` to post after the ``posted`` ones: the last part of a
    batch names the parts before it (`with_prior`)."""
    message = plan[len(posted)]
    if posted and len(posted) == len(plan) - 1:
        return with_prior(message, posted)
    return message


def with_prior(message: Outgoing, prior: Sequence[int]) -> Outgoing:
    """Return the last part of a batch naming the parts before it (``prior``, in part order).

    A reader whose read of the log starts after the first parts (a snapshot's replay taken
    when the batch looked abandoned) fetches them by id. Left out when they do not fit: such
    a reader then never applies the batch, as before.
    """
    if not prior or not message.content.endswith("}"):
        return message
    named = ",".join(f'"{m}"' for m in prior)
    content = f'{message.content[:-1]},"prior":[{named}]}}'
    if len(content) + PREV_ROOM > codec.CONTENT_LIMIT:
        return message
    return Outgoing(content, message.files)


async def post(
    http: HTTPClient, channel_id: int, message: Outgoing, nonce: str | None = None
) -> dict[str, Any]:
    """Post one message as discobase posts everything: silent, no mentions, no embeds."""
    result = await http.create_message(
        channel_id,
        content=message.content,
        files=message.files,
        nonce=nonce or str(secrets.randbits(63)),
        flags=codec.MESSAGE_FLAGS,
        allowed_mentions=_ALLOWED_MENTIONS,
    )
    if not isinstance(result, dict) or "id" not in result:
        raise DatabaseError("Discord answered a message create without a message")
    return result
