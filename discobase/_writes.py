"""What a record's own writes do around the store's ``submit`` (public API layer, beside
``_bulk`` and ``_writetask``: bookkeeping over records' private dicts, no I/O).

`Table.save`, `Table.update`, `Table.delete` and `Table.save_many` (``discobase.table``) hand
their operations to the table's store and their bookkeeping to the write's `Relay`
(``discobase._writetask``), which runs it once the write is stored or failed: a failed insert
makes its records unsaved again, keeping the id a retry reuses (`unsave_if_failed`,
`unsave_all_if_failed`), and a stored delete makes its record unsaved (`forget_if_deleted`);
while a delete is being written, its records are marked so that no update slips in behind it
(`deleting`).
A burst of writes holds the cyclic collector off until the event loop has turned twice
(`collector_off_this_turn`), a write from another event loop than the database's is refused
(`check_loop`), and a large ``save_many`` hands its records over as JSON slices
that become put operations a slice at a time, when the writer asks (`puts`). This module must
not know the database, the HTTP client or how the store keeps its records; it loads asyncio
and storage's modules only when first called (defining a table loads neither).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from functools import partial
from itertools import repeat
from operator import setitem
from typing import TYPE_CHECKING, Any

from discobase import _json
from discobase._event_loop import check_loop as in_loop

if TYPE_CHECKING:
    from discobase import _binding

__all__ = [
    "check_loop",
    "collector_off_this_turn",
    "deleting",
    "forget_if_deleted",
    "puts",
    "unsave_all_if_failed",
    "unsave_if_failed",
]


def puts(ids: list[int], slices: list[bytes]) -> Iterator[list[Any]]:
    """Decode JSON slices of records into put operations under ``ids``, a slice at a time."""
    from discobase.storage.codec import Put

    start = 0
    for piece in slices:
        datas: list[dict[str, Any]] = _json.loads(piece)
        end = start + len(datas)
        yield [Put(i, data) for i, data in zip(ids[start:end], datas, strict=True)]
        start = end


# Whether the cyclic collector is held off until the event loop's next turn (see below).
_collector_held = False


def collector_off_this_turn(binding: _binding.TableBinding[Any]) -> None:
    """Hold the cyclic collector off until the event loop has turned twice.

    A burst of writes (``gather(*(r.save() for r in records))``) runs in one go, and each
    write leaves a task, its coroutine and a relay behind: their allocations trigger
    collections that walk every one made before, again and again. Held off for the burst, the
    collector walks them once, later. Not in the next turn: that one runs the first step of
    every task the burst made (scheduled before any timer), and a collection there would
    lengthen it; by the turn after, the table's writer holds the collector off for a large
    round itself (``storage.writer``). Code that runs meanwhile only keeps its cyclic
    garbage that long.
    """
    global _collector_held
    if _collector_held:
        return
    import asyncio

    from discobase._collector import pause_gc

    loop = binding.loop or asyncio.get_running_loop()
    pause_gc()
    _collector_held = True
    loop.call_soon(loop.call_soon, _collector_on)


def _collector_on() -> None:
    global _collector_held
    from discobase._collector import resume_gc

    _collector_held = False
    resume_gc()


def unsave_if_failed(private: dict[str, Any], record_id: int, failed: bool) -> None:
    """Make the record of a failed insert unsaved again, so that it can simply be retried
    (under the same id, see ``Table._retry_id``); a `Relay`'s ``on_done``.

    A record whose id changed meanwhile (deleted and saved anew) is left alone.
    """
    if private.get("_id") == record_id:
        if failed:
            private["_id"] = None
        private["_retry_id"] = record_id if failed else None


def unsave_all_if_failed(privates: list[dict[str, Any]], ids: list[int], failed: bool) -> None:
    """`unsave_if_failed` for each record of a ``save_many``.

    In C loops when every record still has the id it was saved under, as they have unless
    the program deleted or saved some again meanwhile: this runs in one turn of the event
    loop, and a Python loop over 100,000 records takes 20 ms.
    """
    if list(map(dict.get, privates, repeat("_id"))) != ids:
        for private, record_id in zip(privates, ids, strict=True):
            unsave_if_failed(private, record_id, failed)
    elif failed:
        deque(map(setitem, privates, repeat("_id"), repeat(None)), maxlen=0)
        deque(map(setitem, privates, repeat("_retry_id"), ids), maxlen=0)
    elif any(map(dict.get, privates, repeat("_retry_id"))):
        deque(map(setitem, privates, repeat("_retry_id"), repeat(None)), maxlen=0)


def deleting(binding: _binding.TableBinding[Any], ids: list[int], write: Any) -> None:
    """Mark ``ids`` as being deleted by ``write`` (the store's future) until it is done."""
    marks = binding.deleting
    for record_id in ids:
        marks[record_id] = marks.get(record_id, 0) + 1
    write.add_done_callback(partial(_deleted, marks, ids))


def _deleted(marks: dict[int, int], ids: list[int], write: Any) -> None:
    for record_id in ids:
        left = marks.pop(record_id) - 1
        if left:
            marks[record_id] = left  # another deletion of it is still being written


def forget_if_deleted(private: dict[str, Any], record_id: int, failed: bool) -> None:
    """Make a deleted record unsaved, unless it was saved anew meanwhile (a `Relay`'s
    ``on_done``)."""
    if not failed and private.get("_id") == record_id:
        private["_id"] = None


def check_loop(binding: _binding.TableBinding[Any], call: str, *, writes: bool = True) -> None:
    """Refuse a call made outside the event loop the table's database runs in
    (`_event_loop.check_loop`). ``writes``: whether the call writes (its refusal then says
    nothing was written).

    Raises:
        UsageError: no running loop, or another one than the database's.
    """
    undone = ". Nothing was written" if writes else ""  # a read has nothing to say
    in_loop(f"{binding.model.__name__}.{call}", binding.database, binding.loop, undone)
