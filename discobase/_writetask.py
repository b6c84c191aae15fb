"""The task a write returns (public API layer; imports asyncio, so it loads at the first write).

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
from typing import Any

__all__ = ["WriteTask"]

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
            from discobase.errors import UsageError

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
