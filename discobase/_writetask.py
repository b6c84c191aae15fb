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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Generator
from functools import partial
from typing import Any

from discobase.errors import NotConnected, UsageError

__all__ = ["WriteTask", "WriteTracker"]

_log = logging.getLogger("discobase")


class WriteTask(asyncio.Task[Any]):
    """A task that logs its failure when it is collected unless someone retrieved it.

    Args:
        coro: the coroutine that waits for the write.
        loop: the running loop.
        what: the write, for the log line (``"save of user 123"``).
        inside_batch: for a write made in a ``db.batch()`` block, whether the awaiting code
            runs inside that block still (awaiting there would never return).
    """

    __slots__ = ("_inside_batch", "_retrieved", "_what")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        loop: asyncio.AbstractEventLoop,
        what: str,
        inside_batch: Callable[[], bool] | None = None,
    ) -> None:
        self._retrieved = False
        self._what = what
        self._inside_batch = inside_batch
        super().__init__(coro, loop=loop, name=f"discobase {what}")

    def __await__(self) -> Generator[Any, None, Any]:
        if self._inside_batch is not None and not self.done() and self._inside_batch():
            # The write is held until the block ends, and the block cannot end while its
            # own code waits here: say so instead of hanging.
            raise UsageError(
                f"the {self._what} is sent when `async with db.batch():` ends; awaiting it "
                "inside the block would wait forever. Keep the task and await it after the block"
            )
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
        if self.done() and not self.cancelled() and not self._retrieved:
            # super().exception() marks it retrieved, so asyncio does not report it again.
            exc = super().exception()
            if exc is not None:
                _log.error("%s failed and nobody awaited it: %s", self._what, exc, exc_info=exc)
        super().__del__()


class WriteTracker:
    """The writes of one database that storage has and that have not finished."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()

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
        is collected (see `WriteTask`). A burst of 10,000 saves makes 10,000 of these in one
        go, so the bookkeeping is kept small: one relay future, one callback on the write, no
        closures.

        Args:
            future: the write's future, from the table store's ``submit``.
            what: the write, for messages (``"save of user 123"``).
            result: what the task completes with.
            inside_batch: see `WriteTask`.
        """
        loop = asyncio.get_running_loop()
        # The task waits on a relay, not on the write's own future: cancelling the caller's
        # task must not cancel a write already handed to storage (asyncio.shield does this
        # too, with two closures, another future and another loop turn per write).
        relay: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(partial(_relay_done, relay))
        task = WriteTask(
            _write_task(future, relay, what, result),
            loop=loop,
            what=what,
            inside_batch=inside_batch,
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def wait(self) -> None:
        """Return once every write tracked so far has finished (failed ones too)."""
        if self._pending:
            await asyncio.wait(set(self._pending))


def _relay_done(relay: asyncio.Future[None], future: asyncio.Future[Any]) -> None:
    """Wake the task waiting on ``relay`` now that ``future`` is done (unless it gave up)."""
    if not relay.done():
        relay.set_result(None)


async def _write_task(
    future: asyncio.Future[Any], relay: asyncio.Future[None], what: str, result: Any
) -> Any:
    """Wait for a write (see `WriteTracker.track`) and raise its failure."""
    await relay
    if future.cancelled():
        # Storage gave the write up (it was closed): that is a failure, not a cancel.
        raise NotConnected(f"{what} was abandoned: the database closed first")
    exc = future.exception()
    if exc is not None:
        raise exc
    return result
