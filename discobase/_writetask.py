"""The task a write returns, and the writes a database waits for (public API layer; imports
asyncio, so it loads at the first write).

Every write (``save()``, ``update()``, ``save_many()``, ...) hands storage its operations and
gets a future back; `WriteTracker.track` turns it into the task the caller gets, and keeps the
task until it finishes, so that an unawaited write still runs and ``Database.close()`` can wait
for every pending one (`WriteTracker.wait`).

A failed write whose task nobody awaits must still be seen, once. asyncio's own rule is the
right one: a task's exception is reported if nobody retrieved it by the time the task is
garbage-collected ("Task exception was never retrieved"). :class:`WriteTask` keeps that rule
but reports through the ``discobase`` logger, with what failed, and silences asyncio's second
report of the same failure. It knows the exception was retrieved by overriding the public ways
to retrieve it, with no private asyncio attribute: ``await`` (also through ``wait_for``),
``result()`` and ``exception()`` (which ``gather``, ``shield``, ``as_completed`` and
``asyncio.wait``'s callers use).

A burst of writes (``gather(*(r.save() for r in records))``) makes thousands of these in one
turn of the event loop, and what each leaves alive until its write is stored is walked by
every collection of the cyclic garbage collector meanwhile. So a write costs few objects: the
task, its coroutine, and one `Relay`, which is at once the future the task waits on, the
storage future's only done callback and the holder of the write's own bookkeeping (a table's
``on_done``); no closure, no ``functools.partial``, and no copy of the caller's context (a
task and its callbacks share one empty `contextvars.Context`: nothing they run reads a
context variable).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Generator
from typing import Any

from discobase.errors import NotConnected, UsageError

__all__ = ["Relay", "WriteTask", "WriteTracker"]

_log = logging.getLogger("discobase")

# The context every write task runs in and every callback of a write runs in: the coroutine
# (`_write_task`), `Relay.__call__` and the tracker's bookkeeping read no context variable, so
# one empty context serves them all instead of a copy of the caller's per task and callback.
# Tasks enter it one step at a time, never inside each other.
_CONTEXT = contextvars.Context()

#: What a `Relay` runs when its write is done: ``on_done(records, ids, failed)``.
OnDone = Callable[[Any, Any, bool], None]


class Relay(asyncio.Future[None]):
    """What a write's task waits for: done (with ``None``) once the write is done.

    The task waits on a relay, not on the write's own future: cancelling the caller's task
    cancels the relay, never a write already handed to storage (``asyncio.shield`` does this
    too, with two closures, another future and another loop turn per write). A relay is the
    write future's done callback: made with `Relay.after`, it runs the write's ``on_done``
    first (a table's bookkeeping: unsave the records of a failed insert, say), then wakes the
    task. It is never given an exception, so none can go unretrieved.

    Attributes:
        write: the write's future, from the table store's ``submit``.
    """

    __slots__ = ("_ids", "_on_done", "_records", "write")

    write: asyncio.Future[Any]
    _on_done: OnDone | None
    _records: Any
    _ids: Any

    @classmethod
    def after(
        cls,
        write: asyncio.Future[Any],
        on_done: OnDone | None = None,
        records: Any = None,
        ids: Any = None,
    ) -> Relay:
        """Return a relay done once ``write`` is, after ``on_done(records, ids, failed)``.

        ``failed`` says whether the write failed or storage gave it up. ``on_done`` should be
        a module-level function and ``records`` and ``ids`` what it needs, as they are: no
        closure or list has to be made per write.
        """
        relay = cls(loop=write.get_loop())
        relay.write = write
        relay._on_done = on_done
        relay._records = records
        relay._ids = ids
        write.add_done_callback(relay, context=_CONTEXT)
        return relay

    def __call__(self, write: asyncio.Future[Any]) -> None:
        """Run the write's ``on_done`` and wake the task (the write's done callback)."""
        on_done = self._on_done
        try:
            if on_done is not None:
                failed = write.cancelled() or write.exception() is not None
                on_done(self._records, self._ids, failed)
        finally:
            # Woken even if on_done failed (the loop reports that): a task must not hang.
            if not self.done():  # the caller's task may have given up (cancelled it)
                self.set_result(None)


class WriteTask(asyncio.Task[Any]):
    """A task that logs its failure when it is collected unless someone retrieved it.

    Made by `WriteTracker.track` (not by calling the class: it sets no attributes of its own
    when made, so that a burst of writes runs no Python ``__init__`` per task).

    Attributes:
        _what: the write, for the log line (``"save of user 123"``).
        _inside_batch: for a write made in a ``db.batch()`` block, whether the awaiting code
            runs inside that block still (awaiting there would never return); else ``None``.
        _retrieved: whether someone retrieved the outcome.
        _told: the UsageError its awaiter got inside its batch, if any: a failure caused by it
            (the batch abandoned) is not logged when the task is collected.
    """

    __slots__ = ("_inside_batch", "_retrieved", "_told", "_what")

    _what: str
    _inside_batch: Callable[[], bool] | None
    _retrieved: bool
    _told: UsageError | None

    def __await__(self) -> Generator[Any, None, Any]:
        if self._inside_batch is not None and not self.done() and self._inside_batch():
            # The write is held until the block ends, and the block cannot end while its
            # own code waits here: say so instead of hanging. If this error leaves the block,
            # the batch is abandoned (its error caused by this one) and the write fails with
            # it: its awaiter was told, so that failure is not logged again (see __del__).
            told = self._told = UsageError(
                f"the {self._what} is sent when `async with db.batch():` ends; awaiting it "
                "inside the block would wait forever. Keep the task and await it after the block"
            )
            raise told
        try:
            return (yield from super().__await__())
        except BaseException:
            # Raised from the task (its failure, now the awaiter's), not a cancelled awaiter.
            if self.done():
                self._retrieved = True
            raise

    def result(self) -> Any:
        try:
            return super().result()
        finally:
            if self.done():
                self._retrieved = True

    def exception(self) -> BaseException | None:
        exc = super().exception()  # raises while pending: not retrieved then
        self._retrieved = True
        return exc

    def __del__(self) -> None:
        # getattr: a task whose making failed half-way has no attributes of its own.
        if self.done() and not self.cancelled() and not getattr(self, "_retrieved", True):
            # super().exception() marks it retrieved, so asyncio does not report it again.
            exc = super().exception()
            told = getattr(self, "_told", None)
            if exc is not None and (told is None or exc.__cause__ is not told):
                _log.error("%s failed and nobody awaited it: %s", self._what, exc, exc_info=exc)
        super().__del__()


class WriteTracker:
    """The writes of one database that storage has and that have not finished."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()
        # One bound method for every task's done callback, not one made per task.
        self._discard = self._pending.discard

    def track(
        self,
        future: asyncio.Future[Any],
        what: str,
        result: Any,
        inside_batch: Callable[[], bool] | None = None,
    ) -> asyncio.Task[Any]:
        """Return a task that completes with ``result`` once ``future`` (a write) does.

        The tracker keeps the task until it finishes, so an unawaited write still runs;
        `wait()` waits for every pending write. A failure is the caller's when they retrieve
        it (await, gather, ``result()``); one nobody retrieved is logged once, when the task
        is collected (see `WriteTask`). Storage abandoning the write (its future cancelled,
        the database closed) fails the task with `NotConnected`; cancelling the task cancels
        only the wait.

        Args:
            future: the write's future, from the table store's ``submit``, or a `Relay`
                made after it (which carries the write's own bookkeeping).
            what: the write, for messages (``"save of user 123"``).
            result: what the task completes with.
            inside_batch: see `WriteTask`.
        """
        relay = future if type(future) is Relay else Relay.after(future)
        task = WriteTask(
            _write_task(relay, what, result),
            loop=relay.get_loop(),
            name=f"discobase {what}",
            context=_CONTEXT,
        )
        task._what = what
        task._inside_batch = inside_batch
        task._retrieved = False
        task._told = None
        self._pending.add(task)
        task.add_done_callback(self._discard, context=_CONTEXT)
        return task

    async def wait(self) -> None:
        """Return once every write tracked so far has finished (failed ones too)."""
        if self._pending:
            await asyncio.wait(set(self._pending))


async def _write_task(relay: Relay, what: str, result: Any) -> Any:
    """Wait for a write (see `WriteTracker.track`) and raise its failure."""
    await relay
    future = relay.write
    if future.cancelled():
        # Storage gave the write up (it was closed): that is a failure, not a cancel.
        raise NotConnected(f"{what} was abandoned: the database closed first")
    exc = future.exception()
    if exc is not None:
        raise exc
    return result
