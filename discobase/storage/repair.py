"""Repair entries: a deleted log entry written again by a process that still holds its records
(storage layer: uses the HTTP client; what to repair is decided in ``store.py``).

A repair entry carries the records (and deletes) whose last change was the deleted entry, as
they stand in this process, and says ``"at": <deleted entry's version>`` and ``"gone":
[<deleted message id>]``. Readers apply its operations as if written by the deleted entry,
so a newer change made meanwhile, by this process or another, is never undone.

Each log entry also names, as ``prev``, the newest entry its writer held. A process that opens
a table uses it to tell when an entry was deleted while no process held it (``Chain``).

A process that sees an entry deleted before it read it holds nothing to write again; but a
snapshot written meanwhile by a process that held it may (``from_snapshot``): what the
snapshot says that entry last changed is what a repair entry writes again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from discobase.http import HTTPClient
from discobase.storage import codec
from discobase.storage.codec import Delete, Op, Put
from discobase.storage.outgoing import Limits, next_part, plan_stream, post
from discobase.storage.own import OwnWrites
from discobase.storage.reader import fetch_stream
from discobase.storage.snapshot import decode_records, version_floor
from discobase.storage.snapshots import Candidate, Snapshots
from discobase.storage.state import TableState, check_wire
from discobase.storage.writer import encode_blob

__all__ = ["Chain", "from_snapshot", "int_field", "post_repair", "prev_of", "records_as_of"]


def records_as_of(state: TableState, version: int) -> list[Op]:
    """Return the operations that restore what the entry ``version`` last changed."""
    ops: list[Op] = []
    for record_id, at in state.versions_after(version - 1).items():
        if at != version:
            continue
        data = state.get(record_id)
        ops.append(Put(record_id, data) if data is not None else Delete(record_id))
    return ops


async def from_snapshot(
    http: HTTPClient, channel_id: int, snapshots: Snapshots, snapshot: Candidate, entry: int
) -> list[Op] | None:
    """Return what ``snapshot`` holds of the changes the log entry ``entry`` made last.

    A snapshot's records changed after its ``version_floor`` carry the entry that changed
    them, so those at ``entry`` are the entry's records as the snapshot's writer held them.
    Its ``skip`` names the entries after its replay position that its writer had applied:
    for one of those, no record at ``entry`` means every change it made was superseded (an
    empty list). For any other entry, none means the snapshot cannot say whether its writer
    ever held it (``None``), as for an entry older than the floor, where records carry no
    version.

    Raises:
        HTTPException: a part or an attachment could not be downloaded.
        StorageCorrupted: the snapshot is unreadable.
    """
    header, info = snapshot
    held = entry in info.skip
    if not held and entry <= version_floor(info.replay_from):
        return None
    parts = await snapshots.parts(header)
    stream = await fetch_stream(http, channel_id, parts)
    ops: list[Op] = []
    for chunk in decode_records(stream):
        for at, record_id, data in check_wire(info.replay_from, chunk, versioned=True):
            if at == entry:
                ops.append(Put(record_id, data) if data is not None else Delete(record_id))
        await asyncio.sleep(0)  # a large snapshot decodes a piece per turn
    return ops if ops or held else None


async def post_repair(
    http: HTTPClient,
    channel_id: int,
    *,
    limits: Limits,
    own: OwnWrites,
    gone: list[int],
    version: int,
    ops: list[Op],
) -> int:
    """Post the repair entry standing for the deleted messages ``gone``; return its id.

    Raises:
        HTTPException: Discord refused it.
    """
    stream = codec.compress_lines(encode_blob(ops))
    plan = plan_stream("log", stream, limits, at=str(version), gone=[str(m) for m in gone])
    posted: list[int] = []
    while len(posted) < len(plan):
        message = await post(http, channel_id, next_part(plan, posted))
        posted.append(int(message["id"]))
        own.remember(posted[-1])
    return posted[-1] if posted else 0


def int_field(body: Mapping[str, Any], key: str) -> int:
    """Return ``body[key]`` as a snowflake, or 0 when absent or not one."""
    value = body.get(key)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def prev_of(header: codec.Header | None) -> int:
    """Return the entry a log entry names as its writer's newest when it was written."""
    if header is None or header.kind != "log":
        return 0
    return int_field(header.body, "prev")


class Chain:
    """The messages a table's open read, and the entry each names as its ``prev``."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._prevs: list[tuple[int, int]] = []

    def note(self, message_id: int, prev: int) -> None:
        """Record a message read (``prev``: the entry it names, 0 if none)."""
        self._ids.add(message_id)
        if prev:
            self._prevs.append((prev, message_id))

    def missing(self, start: int, restored: set[int]) -> list[tuple[int, int]]:
        """Return ``(entry, the entry naming it)`` for entries after ``start`` that are gone.

        One missing from the log with no repair entry standing for it was deleted by someone:
        what it held may be lost, and every process that opens the table says so.
        """
        return [
            (prev, follower)
            for prev, follower in self._prevs
            if prev > start and prev not in self._ids and prev not in restored
        ]
