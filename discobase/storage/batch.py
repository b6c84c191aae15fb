"""Batches: the groups submitted inside ``engine.batch()``, held until the block ends and
then sent atomically per table (storage layer: pure asyncio bookkeeping; no I/O).

The block is found through a context variable, so only code that runs inside it (not a task
started later) adds to it. Each table's share of a block goes out as one group: all of it or
none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from discobase.errors import DatabaseError
from discobase.storage.state import TableState
from discobase.storage.writer import Group, Writer

__all__ = ["Batch", "batch_block", "current_batch", "open_batch_check"]


class BatchTarget(Protocol):
    """What a batch needs of a table: its writer and its state (for releasing claims)."""

    @property
    def writer(self) -> Writer: ...

    @property
    def state(self) -> TableState: ...


class Batch:
    """Groups submitted inside one ``engine.batch()`` block, by table.

    Args:
        owner: the engine whose block this is (a block of another engine does not hold).
    """

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.closed = False
        self.groups: dict[BatchTarget, list[Group]] = {}

    def add(self, target: BatchTarget, group: Group) -> None:
        """Hold ``group`` of ``target`` until the block ends."""
        self.groups.setdefault(target, []).append(group)

    def commit(self) -> None:
        """Send each table's share as one group.

        Raises:
            DatabaseError: a table's writer is closed (the database closed during the
                block); that table's share failed, with this error, and nothing of it was sent.
        """
        self.closed = True
        refused: DatabaseError | None = None
        for target, groups in self.groups.items():
            merged = Group(
                ops=[op for g in groups for op in g.materialize()],
                tokens=[t for g in groups for t in g.tokens],
                futures=[f for g in groups for f in g.futures],
            )
            try:
                target.writer.enqueue(merged)
            except DatabaseError as exc:
                # Its futures must still settle: awaiting them must not hang, and the unique
                # values they claim must be free again.
                refused = refused or exc
                _fail(target, [merged], exc)
        if refused is not None:
            raise refused

    def abandon(self, exc: BaseException) -> None:
        """Drop every group: the block raised ``exc``."""
        self.closed = True
        error = DatabaseError(f"the batch was abandoned: {type(exc).__name__}")
        error.__cause__ = exc  # what its writes' tasks report, with why
        for target, groups in self.groups.items():
            _fail(target, groups, error)


def _fail(target: BatchTarget, groups: list[Group], error: BaseException) -> None:
    """Release the groups' claims and fail their futures with ``error``."""
    for group in groups:
        for token in group.tokens:
            target.state.release(token, group.ops)
        for future in group.futures:
            if not future.done():
                future.set_exception(error)
                # The block's own exception is what the caller sees; do not let the loop
                # complain about these if nobody awaits them.
                future.exception()


_BATCH: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "discobase_storage_batch", default=None
)


def current_batch(owner: object) -> Batch | None:
    """Return ``owner``'s open block around the calling code, if there is one."""
    batch = _BATCH.get()
    if batch is None or batch.owner is not owner or batch.closed:
        return None
    return batch


def open_batch_check(owner: object) -> Callable[[], bool] | None:
    """Return, when a block of ``owner`` is open here, a check that says whether the code
    calling it runs inside that block still (None outside any block)."""
    batch = current_batch(owner)
    if batch is None:
        return None

    def inside() -> bool:
        return _BATCH.get() is batch and not batch.closed

    return inside


@contextlib.asynccontextmanager
async def batch_block(owner: object) -> AsyncIterator[None]:
    """Hold what is submitted inside the block; send it on exit, atomically per table."""
    if current_batch(owner) is not None:
        yield  # nested: the outer block sends everything
        return
    batch = Batch(owner)
    token = _BATCH.set(batch)
    try:
        yield
    except BaseException as exc:
        batch.abandon(exc)
        # The writes' own bookkeeping (a failed save makes its record unsaved again) runs in
        # their futures' done callbacks, which the loop calls soon, not now: one turn lets them
        # run before the block's exception reaches its handler, which may save the record
        # again at once (else refused as 'already saved'). Not for a coroutine being closed:
        # it may not wait then (and nothing handles its GeneratorExit).
        if not isinstance(exc, GeneratorExit):
            await asyncio.sleep(0)
        raise
    finally:
        _BATCH.reset(token)
    batch.commit()
