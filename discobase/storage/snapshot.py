"""Snapshots: a table's whole state in one message (storage layer: pure; no I/O, no asyncio).

A snapshot message in the table's channel says ``{"discobase":1,"t":"snap","from":"<id>",
"records":N,"files":k}`` and its attachments hold one zlib stream of put operations, one per
line, exactly as log attachments do. Readers load those records as if written by message
``from`` and replay every log entry after ``from``: ``from`` lies a few Discord seconds before
the last entry the writer had seen (and before the first part of any batch still incomplete),
so an entry that was slow to appear is replayed rather than lost, and replaying an entry the
snapshot already holds changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from discobase import _json
from discobase.errors import StorageCorrupted
from discobase.storage import codec
from discobase.storage.ids import snowflake_at, snowflake_ms

__all__ = [
    "REPLAY_LAG_MS",
    "SnapshotInfo",
    "decode_records",
    "encode_records",
    "header_info",
    "replay_from",
]

#: How far before the last seen entry a snapshot's replay starts (Discord milliseconds).
REPLAY_LAG_MS = 5_000


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """Where a snapshot is and what it covers.

    Attributes:
        message_id: the snapshot message.
        channel_id: the table channel holding it.
        replay_from: entries after this message id are replayed over it.
        records: how many records it holds.
    """

    message_id: int
    channel_id: int
    replay_from: int
    records: int = 0


def replay_from(last_seen: int, incomplete_first: Iterable[int] = ()) -> int:
    """Return the replay position of a snapshot taken after seeing entry ``last_seen``.

    Args:
        last_seen: the largest entry id the writer had applied or skipped.
        incomplete_first: the first part id of every batch still incomplete.
    """
    if last_seen <= 0:
        return 0
    lagged = snowflake_at(snowflake_ms(last_seen) - REPLAY_LAG_MS)
    return max(0, min([lagged, *(first - 1 for first in incomplete_first)]))


def encode_records(records: Mapping[int, dict[str, Any]]) -> bytes:
    """Return the compressed stream of a snapshot of ``records``."""
    dumps = _json.dumps
    lines = [dumps(["p", str(record_id), data]) for record_id, data in records.items()]
    return codec.encode_stream(lines)


def decode_records(stream: bytes) -> list[tuple[int, dict[str, Any]]]:
    """Decode a snapshot's stream into ``(id, data)`` pairs.

    Raises:
        StorageCorrupted: the stream holds anything but put operations.
    """
    out: list[tuple[int, dict[str, Any]]] = []
    for raw in codec.decode_stream(stream):
        op = codec.op_from_wire(raw)
        if not isinstance(op, codec.Put):
            raise StorageCorrupted("a snapshot holds an operation that is not a put")
        out.append((op.id, op.data))
    return out


def header_info(header: codec.Header, channel_id: int) -> SnapshotInfo:
    """Read a snapshot message's header.

    Raises:
        StorageCorrupted: the header lacks its replay position.
    """
    try:
        position = int(header.body["from"])
        count = int(header.body.get("records", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageCorrupted(f"snapshot {header.message_id} has no replay position") from exc
    return SnapshotInfo(header.message_id, channel_id, position, count)
