"""Applying many rows to a table's state without stalling the event loop (storage layer:
asyncio only, no I/O): a large batch read from the log, and a snapshot loaded at open."""

from __future__ import annotations

import asyncio
import gc

from discobase._collector import gc_paused, pause_gc, resume_gc
from discobase.storage.codec import Row
from discobase.storage.snapshot import decode_records, version_floor
from discobase.storage.state import TableState

__all__ = ["apply_rows", "load_snapshot"]

# Rows of a large batch read from the log applied per slice (see apply_rows).
_APPLY_SLICE = 4096
# Applying a row costs about four times what forking costs per live record.
_FORK_RATIO = 4


async def apply_rows(state: TableState, rows: list[Row], *, opening: bool) -> None:
    """Apply a checked batch so that readers see all of it or none of it.

    A large batch (a million records take about a second) is applied a slice at a time,
    yielding to the event loop in between: while the table opens (``opening``), to the state
    itself (nobody sees it yet); once it is open, to a fork of the state that is adopted in
    one step, as the writer applies a large acknowledged entry (see ``Writer._apply``). A
    batch much smaller than its table is applied at once: forking would cost more.
    """
    if len(rows) <= _APPLY_SLICE or (not opening and len(rows) * _FORK_RATIO < state.count()):
        with gc_paused():
            state.apply_checked(rows)
        return
    target = state if opening else state.fork()
    pause_gc()
    try:
        for start in range(0, len(rows), _APPLY_SLICE):
            target.apply_checked(rows[start : start + _APPLY_SLICE])
            await asyncio.sleep(0)
    finally:
        resume_gc()
    if target is not state and not state.adopt(target):
        # The state changed meanwhile (the writer applied an entry): apply it there.
        with gc_paused():
            state.apply_checked(rows)


async def load_snapshot(state: TableState, stream: bytes, replay_from: int) -> None:
    """Load a snapshot's records into a state nobody sees yet, a piece at a time.

    A million-record snapshot takes a second or two to load, and the gateway's heartbeat
    must still go out, so this yields between pieces. The cyclic collector stays off across
    the yields (as while a large write is encoded): collections triggered by the pieces'
    allocations would walk everything loaded so far, again and again. Whatever runs in
    between only keeps its cyclic garbage a little longer.

    Raises:
        StorageCorrupted: the stream is not a snapshot.
    """
    chunks = decode_records(stream)
    floor = version_floor(replay_from)
    pause_gc()
    try:
        first = True
        while True:
            chunk = next(chunks, None)
            if chunk is None:
                break
            # Dicts about to grow grow first, each in a turn of its own (20 ms apiece past
            # 700,000 records).
            for _ in state.grow_steps(len(chunk)):
                await asyncio.sleep(0)
            state.load_snapshot(floor, chunk)
            if first:
                # The records' dict joined the collector's youngest generation with its
                # first record; collections of the young generations are frequent, and each
                # walks every entry of the containers in them (45 ms for a million records,
                # once the load is done). Made old now, while it is small.
                gc.collect(1)
                first = False
            await asyncio.sleep(0)
    finally:
        resume_gc()
