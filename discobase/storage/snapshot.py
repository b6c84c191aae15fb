"""Snapshots: a table's whole state as of a point in its log (storage layer: pure; no I/O,
no asyncio).

A snapshot message in the table's channel says ``{"discobase":1,"t":"snap","from":"<id>",
"records":N,"files":k}`` and its attachments hold one zlib stream of put operations, one per
line, exactly as log attachments do (a snapshot too large for one message is several, see
``snapshots.py``). Readers load those records as if written by message
``from`` and replay every log entry after ``from``: ``from`` lies a few Discord seconds before
the last entry the writer had seen (and before the first part of any batch still incomplete),
so an entry that was slow to appear is replayed rather than lost, and replaying an entry the
snapshot already holds changes nothing. Records changed after ``from`` carry the id of the
message that last changed them (and deletes after ``from`` are listed), so an older entry
replayed over the snapshot cannot undo a newer change; ``skip`` lists entries after ``from``
the snapshot already holds, which a reader need not fetch again (an optimisation only).

Records changed in the ``VERSION_HORIZON_MS`` before ``from`` carry their version too, and a
reader takes the others as last changed at ``version_floor(from)``, not at ``from``. Why: an
entry deleted before the snapshot's writer read it is missing from the snapshot, and a repair
entry written later (by a process that held it) carries its records at the deleted entry's
version, which lies before ``from``. The reader must tell whether the snapshot's record is
older than that version (the repair applies) or newer (it does not); without versions it
could not, and the repair was skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from discobase import _json
from discobase.errors import StorageCorrupted
from discobase.storage import codec
from discobase.storage.ids import snowflake_at, snowflake_ms

__all__ = [
    "BATCH_WINDOW_MS",
    "REPLAY_LAG_MS",
    "SnapshotInfo",
    "decode_records",
    "encode_records",
    "header_info",
    "replay_from",
    "version_floor",
]

# Lines encoded per slice of a snapshot.
_SLICE = 2048
#: How far before the last seen entry a snapshot's replay starts (Discord milliseconds).
REPLAY_LAG_MS = 5_000
#: How long before a snapshot's replay position its records keep their versions (Discord
#: milliseconds): longer than an entry deleted before others read it can wait for its repair
#: (the repair jitter, the wait of a process that never saw it, two audits at the default gap
#: check interval), with a wide margin.
VERSION_HORIZON_MS = 600_000
#: A multi-part batch whose first part is older than this (Discord milliseconds) behind the
#: last seen entry is abandoned: its parts must all be written within this window.
BATCH_WINDOW_MS = 600_000


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
    skip: frozenset[int] = frozenset()


def replay_from(last_seen: int, incomplete_first: Iterable[int] = ()) -> int:
    """Return the replay position of a snapshot taken after seeing entry ``last_seen``.

    Args:
        last_seen: the largest entry id the writer had applied or skipped.
        incomplete_first: the first part id of every batch still incomplete. Batches begun
            more than ``BATCH_WINDOW_MS`` before ``last_seen`` are taken for abandoned (their
            writer died) and no longer hold the position back.
    """
    if last_seen <= 0:
        return 0
    seen_ms = snowflake_ms(last_seen)
    lagged = snowflake_at(seen_ms - REPLAY_LAG_MS)
    oldest = snowflake_at(seen_ms - BATCH_WINDOW_MS)
    held = [first - 1 for first in incomplete_first if first > oldest]
    return max(0, min([lagged, *held]))


def version_floor(replay_position: int) -> int:
    """Return the version a snapshot's records without one are taken to have (at most)."""
    if replay_position <= 0:
        return 0
    return max(0, snowflake_at(snowflake_ms(replay_position) - VERSION_HORIZON_MS))


def encode_records(records: Mapping[int, dict[str, Any]], recent: Mapping[int, int]) -> bytes:
    """Return the compressed stream of a snapshot.

    Args:
        records: the live records.
        recent: record id -> message id of its last change, for changes after the
            snapshot's ``version_floor`` (deletes included). Those lines carry the message
            id, so an older entry replayed over the snapshot cannot undo a newer change it
            already holds.
    """
    dumps = _json.dumps
    # Lines are joined a slice at a time: 100,000 live small bytes objects cost several times
    # as much to allocate as the same lines joined and freed as they come.
    slices: list[bytes] = []
    lines: list[bytes] = []
    for record_id, data in records.items():
        version = recent.get(record_id)
        if version is None:
            lines.append(dumps(["p", str(record_id), data]))
        else:
            lines.append(dumps(["p", str(record_id), data, str(version)]))
        if len(lines) >= _SLICE:
            slices.append(b"\n".join(lines) + b"\n")
            lines = []
    for record_id, version in recent.items():
        if record_id not in records:
            lines.append(dumps(["d", str(record_id), str(version)]))
    if lines or not slices:
        slices.append(b"\n".join(lines) + b"\n")
    return codec.compress_lines(b"".join(slices))


def decode_records(stream: bytes) -> Iterator[list[Any]]:
    """Decode a snapshot's stream into chunks of operation arrays (apply with ``versioned``).

    Raises:
        StorageCorrupted: the stream is not a snapshot.
    """
    for chunk in codec.iter_stream(stream):
        for raw in chunk:
            if not isinstance(raw, list) or not raw or raw[0] not in ("p", "d"):
                raise StorageCorrupted("a snapshot holds a line that is not an operation")
        yield chunk


def header_info(header: codec.Header, channel_id: int) -> SnapshotInfo:
    """Read a snapshot message's header.

    Raises:
        StorageCorrupted: the header lacks its replay position.
    """
    try:
        position = int(header.body["from"])
        count = int(header.body.get("records", 0))
        skip = frozenset(int(m) for m in header.body.get("skip") or ())
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageCorrupted(f"snapshot {header.message_id} has no replay position") from exc
    return SnapshotInfo(header.message_id, channel_id, position, count, skip)
