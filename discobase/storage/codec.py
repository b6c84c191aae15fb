"""Log entries <-> Discord messages (storage layer: pure bytes; knows nothing of HTTP or asyncio).

Theory
------
Every message discobase writes has a ``content`` that is one JSON object whose first key is
the format marker ``"discobase"`` holding the format version. Content is ASCII only: every
non-ASCII and control character is written as a ``\\uXXXX`` escape, so the length Discord
counts (code points) is the length measured here and nothing Discord might strip is sent.

The object's ``t`` says what the message is: ``log`` (a batch of operations on a table),
``snap`` (a table's snapshot), or a catalog entry (``db``, ``table``, ``snapref``). Operations
are JSON arrays: ``["p", "<id>", {record}]`` (put) and ``["d", "<id>"]`` (delete). A log entry
carries them inline in ``ops`` while the whole content fits in 2000 code points; beyond, the
entry says ``"files": k`` and its ``k`` attachments, concatenated in filename order, form one
zlib stream of JSON lines, one operation per line. A batch too large for one message is split
into parts that all carry ``batch`` (an id), ``part`` (0-based) and ``parts`` (the count); the
zlib stream then runs across the parts' files in part order, and readers apply the batch only
when every part is present, at the position of the last one. See ``docs/storage-format.md``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from discobase import _json
from discobase.errors import StorageCorrupted

__all__ = [
    "CONTENT_LIMIT",
    "FORMAT_VERSION",
    "MARKER",
    "MESSAGE_FLAGS",
    "Delete",
    "Header",
    "Put",
    "INLINE_OVERHEAD",
    "Op",
    "Row",
    "check_wire",
    "compress_lines",
    "decode_stream",
    "encode_header",
    "encode_op",
    "encode_stream",
    "entry_name",
    "escape_json",
    "file_name",
    "inline_content",
    "iter_stream",
    "is_entry_message",
    "op_from_wire",
    "parse_header",
    "split_stream",
]

FORMAT_VERSION: Final = 1
MARKER: Final = "discobase"
#: Discord's limit on a bot message's content, in Unicode code points.
CONTENT_LIMIT: Final = 2000
#: SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS: a record that looks like a link or a ping stays quiet.
MESSAGE_FLAGS: Final = 4 | 4096
_PREFIX: Final = '{"' + MARKER + '":'

_UNSAFE = re.compile("[^\x20-\x7e]")
_NO_TEXT: Any = object()


@dataclass(frozen=True, slots=True)
class Put:
    """Store ``data`` (JSON-mode, without the id) as record ``id``."""

    id: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove record ``id``."""

    id: int


Op = Put | Delete


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def escape_json(text: str) -> str:
    """Escape every non-ASCII and control character of JSON text as ``\\uXXXX``.

    Valid JSON only has such characters inside strings, where the escape means the same.
    """
    if text.isascii() and _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_char, text)


def encode_op(op: Op) -> str:
    """Encode one operation as escaped, ASCII-only JSON text."""
    if isinstance(op, Put):
        return escape_json(_json.dumps_str(["p", str(op.id), op.data]))
    return '["d","' + str(op.id) + '"]'


def op_from_wire(raw: Any) -> Op:
    """Turn a decoded operation array back into an operation.

    Raises:
        StorageCorrupted: the array is not an operation of this format.
    """
    try:
        kind = raw[0]
        record_id = int(raw[1])
        if kind == "p" and isinstance(raw[2], dict) and len(raw) == 3:
            return Put(record_id, raw[2])
        if kind == "d" and len(raw) == 2:
            return Delete(record_id)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise StorageCorrupted(f"malformed operation: {str(raw)[:80]}") from exc
    raise StorageCorrupted(f"malformed operation: {str(raw)[:80]}")


#: An operation as a table's state applies it: (version, record id, data or None to delete).
Row = tuple[int, int, dict[str, Any] | None]


def check_wire(version: int, raws: Iterable[Any], *, versioned: bool = False) -> list[Row]:
    """Check decoded operation arrays and return them as ``(version, id, data)`` rows.

    Args:
        version: the message id of the entry.
        raws: the decoded arrays.
        versioned: a snapshot's arrays may end with the message id that last changed the
            record; it is used instead of ``version`` then.

    Raises:
        StorageCorrupted: an array is not an operation.
    """
    checked: list[Row] = []
    append = checked.append
    # A snapshot's records changed by one entry carry the same version text one after the
    # other: they share one int (3.5 MB less for 100,000 records).
    last_text: Any = _NO_TEXT
    last_at = version
    for raw in raws:
        try:
            kind = raw[0]
            record_id = int(raw[1])
            if kind == "p":
                data = raw[2]
                if type(data) is not dict:
                    raise TypeError("data")
                at = version
                if versioned and len(raw) > 3:
                    if raw[3] != last_text:
                        last_at = int(raw[3])
                        last_text = raw[3]
                    at = last_at
            elif kind == "d":
                data = None
                at = int(raw[2]) if versioned and len(raw) > 2 else version
            else:
                raise ValueError(kind)
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise StorageCorrupted(
                f"entry {version} holds a malformed operation: {str(raw)[:80]}"
            ) from exc
        append((at, record_id, data))
    return checked


def encode_stream(lines: Iterable[bytes], *, level: int = 6) -> bytes:
    """Compress JSON lines (UTF-8, no raw newlines inside) into one zlib stream."""
    return zlib.compress(b"\n".join(lines) + b"\n", level)


def compress_lines(blob: bytes, *, level: int = 6) -> bytes:
    """Compress JSON lines already joined, each ending in a newline, into one zlib stream."""
    return zlib.compress(blob, level)


def decode_stream(data: bytes) -> list[Any]:
    """Decompress a zlib stream of JSON lines and return each line decoded.

    Raises:
        StorageCorrupted: the data is not a complete zlib stream of JSON lines.
    """
    return [raw for chunk in iter_stream(data) for raw in chunk]


def iter_stream(data: bytes, *, chunk_bytes: int = 128 * 1024) -> Iterator[list[Any]]:
    """Decompress a zlib stream of JSON lines piece by piece, yielding the decoded lines.

    Pieces keep the memory of a large snapshot's load to a small multiple of ``chunk_bytes``
    instead of the whole decompressed stream. The multiple is large: the JSON parser reserves
    about 16 times its input for its document before building objects, and the allocator
    keeps such a block once freed, so 1 MiB pieces left 17 MB more resident after loading
    100,000 records than 128 KiB pieces do (which parse as fast, 700 records at a time).

    Raises:
        StorageCorrupted: the data is not a complete zlib stream of JSON lines.
    """
    decompressor = zlib.decompressobj()
    pending = b""
    # The compressed input goes in a slice at a time. Handing the whole input over with an
    # output limit would make zlib keep the rest as ``unconsumed_tail``, a fresh copy of what
    # remains after every piece: quadratic in the stream's size (2.4 s of a 1M-record open).
    # A slice's tail is at most the slice, so the copies stay as small as the pieces.
    view = memoryview(data)
    step = max(1, chunk_bytes // 4)
    offset = 0
    source: bytes = b""
    while True:
        if not source and offset < len(view) and not decompressor.eof:
            source = bytes(view[offset : offset + step])
            offset += len(source)
        try:
            piece = decompressor.decompress(source, chunk_bytes)
        except zlib.error as exc:
            raise StorageCorrupted("an attachment is not a valid zlib stream") from exc
        source = decompressor.unconsumed_tail
        done = decompressor.eof or (not source and not piece and offset >= len(view))
        text = pending + piece if pending else piece
        cut = len(text) if done else text.rfind(b"\n") + 1
        pending = text[cut:]
        if cut:
            yield _parse_lines(text[:cut])
        if done:
            break
    if not decompressor.eof:
        raise StorageCorrupted("an attachment's zlib stream is truncated")


def _parse_lines(text: bytes) -> list[Any]:
    # JSON text never holds a raw newline, so lines joined by commas are one JSON array: a
    # single parse is much faster than one per line. The newlines become the commas in one
    # pass (a list of the lines cost a fifth of the parse); a blank line makes the array
    # invalid, and the lines are then parsed without the blank ones.
    body = text.rstrip(b"\n")
    if body:
        try:
            decoded = _json.loads(b"".join((b"[", body.replace(b"\n", b","), b"]")))
        except _json.JSONDecodeError:
            pass
        else:
            assert isinstance(decoded, list)
            return decoded
    lines = [line for line in text.split(b"\n") if line.strip()]
    if not lines:
        return []
    try:
        decoded = _json.loads(b"[" + b",".join(lines) + b"]")
    except _json.JSONDecodeError as exc:
        raise StorageCorrupted("an attachment holds a line that is not JSON") from exc
    assert isinstance(decoded, list)
    return decoded


def split_stream(
    data: bytes, *, file_limit: int, max_files: int, request_limit: int
) -> list[list[bytes]]:
    """Cut a compressed stream into files, and the files into messages.

    Args:
        data: the compressed stream.
        file_limit: the largest file Discord takes.
        max_files: the most files per message.
        request_limit: the most file bytes per message.

    Returns:
        One list of files per message, in order.
    """
    per_file = max(1, min(file_limit, request_limit))
    files = [data[i : i + per_file] for i in range(0, len(data), per_file)] or [b""]
    messages: list[list[bytes]] = [[]]
    size = 0
    for piece in files:
        current = messages[-1]
        if current and (len(current) >= max_files or size + len(piece) > request_limit):
            messages.append([])
            size = 0
            current = messages[-1]
        current.append(piece)
        size += len(piece)
    return messages


def file_name(index: int) -> str:
    """Return the name of a message's ``index``-th attachment (zero-padded: names sort)."""
    return f"ops-{index:02d}.jsonl.z"


def encode_header(kind: str, **fields: Any) -> str:
    """Encode a message's content: the marker and version first, then ``t`` and ``fields``."""
    body: dict[str, Any] = {MARKER: FORMAT_VERSION, "t": kind}
    body.update((k, v) for k, v in fields.items() if v is not None)
    return escape_json(_json.dumps_str(body))


def inline_content(ops_json: Sequence[str]) -> str:
    """Return the content of an inline log entry from already-encoded operations."""
    return _PREFIX + str(FORMAT_VERSION) + ',"t":"log","ops":[' + ",".join(ops_json) + "]}"


#: The length of an inline log entry's content without its operations and their commas.
INLINE_OVERHEAD: Final = len(inline_content([]))


@dataclass(frozen=True, slots=True)
class Header:
    """What a discobase message says about itself (its content, decoded).

    Attributes:
        kind: ``log``, ``snap``, ``db``, ``table`` or ``snapref``.
        version: the format version that wrote it.
        message_id: the message's id.
        ops: inline operations of a log entry (``None`` when they are in attachments).
        files: how many attachments hold the entry's stream.
        batch: the multi-part batch id, if the entry is a part.
        part: the part's index.
        parts: the batch's part count.
        attachments: ``(filename, url)`` of the message's attachments, sorted by filename.
        body: the whole decoded content object.
    """

    kind: str
    version: int
    message_id: int
    ops: list[Op] | None = None
    files: int = 0
    batch: str | None = None
    part: int = 0
    parts: int = 1
    attachments: tuple[tuple[str, str], ...] = ()
    body: dict[str, Any] = field(default_factory=dict)


def is_entry_message(message: dict[str, Any], bot_id: int) -> bool:
    """Tell whether a message may be a discobase entry written by this bot.

    Keeps only default messages (type 0) authored by the bot whose content starts with the
    marker: people chatting, system messages and other bots are ignored.
    """
    if message.get("type", 0) != 0:
        return False
    author = message.get("author")
    if not isinstance(author, dict) or str(author.get("id")) != str(bot_id):
        return False
    content = message.get("content")
    return isinstance(content, str) and content.startswith(_PREFIX)


def entry_name(message: dict[str, Any]) -> str:
    """Name a message in errors: ``entry 123 in channel 456`` (the channel when known)."""
    channel = message.get("channel_id")
    where = f" in channel {channel}" if channel is not None else ""
    return f"entry {message.get('id')}{where}"


def parse_header(message: dict[str, Any], bot_id: int) -> Header | None:
    """Decode a message's header, or return ``None`` for a message that is not an entry.

    A message written by the bot with the marker but unreadable content (a newer format
    version, malformed JSON) is not silently taken for data.

    Raises:
        StorageCorrupted: the bot's own marked message is malformed or of a newer version.
    """
    if not is_entry_message(message, bot_id):
        return None
    try:
        body = _json.loads(message["content"])
    except _json.JSONDecodeError as exc:
        raise StorageCorrupted(f"{entry_name(message)} is not valid JSON") from exc
    if not isinstance(body, dict):
        raise StorageCorrupted(f"{entry_name(message)} is not a JSON object")
    version = body.get(MARKER)
    if not isinstance(version, int) or version < 1:
        raise StorageCorrupted(f"{entry_name(message)} has no format version")
    if version > FORMAT_VERSION:
        raise StorageCorrupted(
            f"{entry_name(message)} was written by format version {version}; "
            f"this discobase reads up to {FORMAT_VERSION}: upgrade discobase"
        )
    try:
        kind = str(body["t"])
        message_id = int(message["id"])
        raw_ops = body.get("ops")
        ops = [op_from_wire(raw) for raw in raw_ops] if raw_ops is not None else None
        attachments = tuple(
            sorted(
                (str(a["filename"]), str(a["url"]))
                for a in message.get("attachments") or ()
                if isinstance(a, dict)
            )
        )
        files = int(body.get("files", 0))
        batch = body.get("batch")
        header = Header(
            kind=kind,
            version=version,
            message_id=message_id,
            ops=ops,
            files=files,
            batch=str(batch) if batch is not None else None,
            part=int(body.get("part", 0)),
            parts=int(body.get("parts", 1)),
            attachments=attachments,
            body=body,
        )
    except StorageCorrupted as exc:  # an operation: say which entry holds it
        raise StorageCorrupted(f"{entry_name(message)}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageCorrupted(f"{entry_name(message)} is malformed") from exc
    if len(attachments) < files:
        raise StorageCorrupted(
            f"{entry_name(message)} names {files} attachments but carries {len(attachments)}"
        )
    if header.parts < 1 or not 0 <= header.part < header.parts:
        raise StorageCorrupted(f"{entry_name(message)} has a bad part number")
    return header
