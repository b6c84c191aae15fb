"""The task a write returns (discobase._writetask): a relay per write, over a bare future."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from discobase._writetask import Relay, WriteTask, WriteTracker
from discobase.errors import DatabaseError, NotConnected


class Bookkeeping:
    """An ``on_done`` that notes what it was called with and what the task was then."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, bool]] = []
        self.task: asyncio.Task[Any] | None = None
        self.task_done_then: list[bool] = []

    def __call__(self, records: Any, ids: Any, failed: bool) -> None:
        self.calls.append((records, ids, failed))
        assert self.task is not None
        self.task_done_then.append(self.task.done())


def write() -> asyncio.Future[None]:
    """A write's future, as a table store's ``submit`` returns it."""
    return asyncio.get_running_loop().create_future()


async def test_the_task_completes_with_its_result_after_the_writes_bookkeeping() -> None:
    tracker = WriteTracker()
    future = write()
    notes = Bookkeeping()
    records = {"_id": 7}
    task = tracker.track(Relay.after(future, notes, records, 7), "save of user 7", "record")
    notes.task = task
    assert isinstance(task, WriteTask) and task.get_name() == "discobase save of user 7"
    await asyncio.sleep(0)
    assert not task.done()
    future.set_result(None)
    assert await task == "record"
    assert notes.calls == [(records, 7, False)] and notes.task_done_then == [False]


async def test_a_failed_write_fails_its_task_with_the_writes_own_error() -> None:
    tracker = WriteTracker()
    future = write()
    notes = Bookkeeping()
    task = tracker.track(Relay.after(future, notes, "r", "i"), "save of user 1", None)
    notes.task = task
    error = DatabaseError("refused")
    future.set_exception(error)
    with pytest.raises(DatabaseError) as raised:
        await task
    assert raised.value is error
    assert notes.calls == [("r", "i", True)]


async def test_a_write_storage_gave_up_fails_its_task_with_not_connected() -> None:
    tracker = WriteTracker()
    future = write()
    notes = Bookkeeping()
    task = tracker.track(Relay.after(future, notes), "delete of user 3", None)
    notes.task = task
    future.cancel()
    with pytest.raises(NotConnected, match="delete of user 3 was abandoned"):
        await task
    assert notes.calls == [(None, None, True)]


async def test_cancelling_the_task_cancels_the_wait_not_the_write_nor_its_bookkeeping() -> None:
    tracker = WriteTracker()
    future = write()
    notes = Bookkeeping()
    task = tracker.track(Relay.after(future, notes, "r", 1), "save of user 1", None)
    notes.task = task
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not future.cancelled() and notes.calls == []
    future.set_result(None)
    await asyncio.sleep(0)
    assert notes.calls == [("r", 1, False)]
    await tracker.wait()  # the cancelled task counts as finished


async def test_the_task_is_woken_even_if_the_bookkeeping_fails() -> None:
    loop = asyncio.get_running_loop()
    reported: list[BaseException | None] = []
    loop.set_exception_handler(lambda _, context: reported.append(context.get("exception")))
    try:
        tracker = WriteTracker()
        future = write()

        def broken(records: Any, ids: Any, failed: bool) -> None:
            raise RuntimeError("a bug")

        task = tracker.track(Relay.after(future, broken), "save of user 2", "done")
        future.set_result(None)
        assert await asyncio.wait_for(task, 5) == "done"
        assert [type(e) for e in reported] == [RuntimeError]
    finally:
        loop.set_exception_handler(None)


async def test_a_bare_write_future_is_relayed_too() -> None:
    # update(), delete_id() and the bulk writes hand over storage's future as it is.
    tracker = WriteTracker()
    future = write()
    task = tracker.track(future, "update of user 1", 5)
    future.set_result(None)
    assert await task == 5


async def test_wait_returns_once_every_tracked_write_finished() -> None:
    tracker = WriteTracker()
    futures = [write() for _ in range(3)]
    tasks = [tracker.track(Relay.after(f), f"save of user {i}", i) for i, f in enumerate(futures)]
    waiting = asyncio.ensure_future(tracker.wait())
    futures[0].set_result(None)
    futures[1].set_exception(DatabaseError("no"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    futures[2].set_result(None)
    await waiting
    assert all(t.done() for t in tasks)
    assert isinstance(tasks[1].exception(), DatabaseError)


async def test_a_failure_nobody_retrieved_is_logged_once_and_a_retrieved_one_never(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = WriteTracker()
    with caplog.at_level(logging.ERROR):
        future = write()
        tracker.track(Relay.after(future), "save of user 9", None)
        future.set_exception(DatabaseError("lost"))
        await tracker.wait()
        gc.collect()
        retrieved = write()
        task = tracker.track(Relay.after(retrieved), "save of user 10", None)
        retrieved.set_exception(DatabaseError("seen"))
        await asyncio.wait({task})
        assert isinstance(task.exception(), DatabaseError)
        del task
        gc.collect()
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "save of user 9" in m] == [
        "save of user 9 failed and nobody awaited it: lost"
    ]
    assert not [m for m in messages if "user 10" in m or "never retrieved" in m]
