"""A failed write is reported once, and only when nobody retrieved its failure.

Layer: integration tests (the public API against the local Discord). docs/guide/logging.md
promises that an ERROR line is written for a failed write you did not await, and only then:
a caller who awaits (or gathers) the task owns the failure, and asyncio must not report the
same failure a second time ("Task exception was never retrieved").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import discobase
from tests.conftest import TIME_SCALE
from tests.helpers import WAIT

POST = r"/channels/\d+/messages"


def orders(emulator: Any) -> tuple[discobase.Database, type[Any], str]:
    """Return a database on a fresh guild, its ``order`` table and the bot's token."""
    bot = emulator.create_bot("db")
    emulator.create_guild("db", bots=[bot])
    db = discobase.Database("db", api_url=emulator.url, time_scale=TIME_SCALE)

    @db.table
    class Order(discobase.Table):
        item: str

    return db, Order, bot.token


@contextlib.asynccontextmanager
async def next_write_refused(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[discobase.Database, type[Any]]]:
    """Connect a database whose next write Discord refuses (403), capturing the logs; after
    the block, collect garbage so that unretrieved failures are reported."""
    db, order, token = orders(emulator)
    with caplog.at_level(logging.DEBUG):
        async with asyncio.timeout(WAIT), db.conn(token):
            emulator.fail_next("POST", POST, 403)
            yield db, order
        gc.collect()
        await asyncio.sleep(0)


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_awaited_failure_the_caller_catches_is_not_logged(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with next_write_refused(emulator, caplog) as (_, order):
        with pytest.raises(discobase.Forbidden):
            await order(item="book").save()
        emulator.fail_next("POST", POST, 403)
        results = await asyncio.gather(order(item="pen").save(), return_exceptions=True)
        assert isinstance(results[0], discobase.Forbidden)
        emulator.fail_next("POST", POST, 403)
        task = order(item="ink").save()
        await asyncio.wait({task})
        assert isinstance(task.exception(), discobase.Forbidden)
        del task
    assert errors(caplog) == []


async def test_an_unawaited_failure_is_reported_exactly_once(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with next_write_refused(emulator, caplog) as (_, order):
        order(item="book").save()  # fire and forget
        while not errors(caplog):
            await asyncio.sleep(0.01)
            gc.collect()
    (record,) = errors(caplog)
    assert record.name == "discobase"
    assert "save of order" in record.getMessage() and "Forbidden" in record.getMessage()
    assert isinstance(record.exc_info and record.exc_info[1], discobase.Forbidden)


async def test_a_failure_retrieved_after_the_task_ended_is_not_logged(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with next_write_refused(emulator, caplog) as (db, order):
        task = order(item="book").save()
        await db.close()  # the write ends long before anyone looks at it
        gc.collect()
        with pytest.raises(discobase.Forbidden):
            await task
        del task
    assert errors(caplog) == []
