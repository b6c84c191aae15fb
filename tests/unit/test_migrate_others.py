"""db.migrate and the changes other programs make while it rewrites a table.

The table's state is a real ``TableState``; "another program" applies log entries to it
directly, as the gateway would deliver them: during the rewrite (from inside the transform),
or while the rewritten batch is being written (from inside the store's submit).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import discobase
from discobase.storage.codec import Delete, Put
from tests.unit.tablefakes import StateEngine, StateStore

# One log for the program's writes and the other program's: later entries win.
_log_positions = itertools.count(1 << 32)


class LogStore(StateStore):
    """A StateStore whose entries share one log order with the other program's."""

    channel_id = 77
    before_write: Callable[[], None] | None = None

    def submit(self, ops: Sequence[Any]) -> asyncio.Future[None]:
        if self.before_write is not None:
            self.before_write()  # another program's entry lands just before the batch
        self.state.check(ops)
        self.batches.append(list(ops))
        self.state.apply(next(_log_positions), ops)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class MigratingEngine(StateEngine):
    """The storage engine's contract as db.migrate uses it, over one LogStore per table."""

    def __init__(self) -> None:
        super().__init__()
        self.catalog: list[dict[str, Any]] = []
        self.catalog_posted: asyncio.Event | None = None  # set: the post waits for it

    async def open_table(self, spec: Any, *, replace: bool = False) -> StateStore:
        store = self.stores.get(spec.name)
        if store is None:
            store = self.stores[spec.name] = LogStore(spec, self._ids)
        return store

    async def forget_table(self, name: str) -> None:
        pass  # the records stay; the next open_table reads them again

    async def post_catalog(self, kind: str, body: dict[str, Any]) -> None:
        if self.catalog_posted is not None:
            await self.catalog_posted.wait()
        self.catalog.append(body)


def other_program(store: StateStore, *ops: Put | Delete) -> None:
    store.state.apply(next(_log_positions), list(ops))


async def old_table(engine: MigratingEngine) -> StateStore:
    old = discobase.Database("shop")

    @old.table
    class Item(discobase.Table):
        name: str
        price: str

    await old._use_storage(engine)  # type: ignore[arg-type]
    await Item.save_many([Item(name=n, price=p) for n, p in [("a", "1.00"), ("b", "2.00")]])
    await Item(name="c", price="3.00").save()
    await old.close()
    return engine.stores["item"]


def new_database() -> tuple[discobase.Database, Any]:
    db = discobase.Database("shop")

    @db.table
    class Item(discobase.Table):
        name: str
        cents: int

    return db, Item


def to_cents(record: dict[str, Any]) -> dict[str, Any]:
    return {"name": record["name"], "cents": round(float(record["price"]) * 100)}


async def test_changes_made_during_the_rewrite_are_rewritten_as_they_are_then() -> None:
    engine = MigratingEngine()
    store = await old_table(engine)
    a, b, c = sorted(store.records())
    db, Item = new_database()
    await db._use_storage(engine)  # type: ignore[arg-type]
    calls = 0

    def transform(record: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # Meanwhile another program (still on the old class) updates b, deletes c and
            # saves a new record: the rewrite has read all three as they were.
            other_program(
                store,
                Put(b, {"name": "b", "price": "5.00"}),
                Delete(c),
                Put(999, {"name": "new", "price": "1.50"}),
            )
        return to_cents(record)

    assert await db.migrate(Item, transform) == 3
    found = {r.id: (r.name, r.cents) for r in Item.find()}
    # Before: b's update was undone (200), c came back, and 999 stayed in the old shape
    # (unreadable by the new class).
    assert found == {a: ("a", 100), b: ("b", 500), 999: ("new", 150)}
    assert store.get(c) is None
    await db.close()


async def test_a_change_overwritten_by_the_batch_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = MigratingEngine()
    store = await old_table(engine)
    a, b, c = sorted(store.records())
    db, Item = new_database()
    await db._use_storage(engine)  # type: ignore[arg-type]
    assert isinstance(store, LogStore)
    # Another program's update of b is ordered just before the rewritten batch, too late
    # for the rewrite to see it: the batch overwrites it, and says so.
    store.before_write = lambda: other_program(store, Put(b, {"name": "b", "price": "5.00"}))
    with caplog.at_level(logging.WARNING, logger="discobase"):
        assert await db.migrate(Item, to_cents) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"records {b})" in warnings[0] and "overwrote" in warnings[0]
    assert (await Item.get(b)).cents == 200
    await db.close()


async def test_a_quiet_migration_warns_of_nothing(caplog: pytest.LogCaptureFixture) -> None:
    engine = MigratingEngine()
    await old_table(engine)
    db, Item = new_database()
    await db._use_storage(engine)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="discobase"):
        assert await db.migrate(Item, to_cents) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sorted(r.cents for r in Item.find()) == [100, 200, 300]
    await db.close()


async def test_a_migration_that_ends_after_close_leaves_its_table_to_the_next_login() -> None:
    engine = MigratingEngine()
    await old_table(engine)
    db, Item = new_database()
    await db._use_storage(engine)  # type: ignore[arg-type]
    engine.catalog_posted = asyncio.Event()
    migration = asyncio.create_task(db.migrate(Item, to_cents))
    while not engine.stores["item"].batches[-1:] or "cents" not in str(
        engine.stores["item"].batches[-1]
    ):
        await asyncio.sleep(0)  # the rewritten batch is written; the catalog post waits
    await db.close()
    engine.catalog_posted.set()
    assert await migration == 3
    # Before: the class was left on the closed session's store, and the next login, which
    # opens only the tables without one, kept it there.
    with pytest.raises(discobase.NotConnected):
        Item.find()
    # The next login (another engine: the same records, its own store) opens it.
    later = MigratingEngine()
    moved = later.stores["item"] = LogStore(engine.stores["item"].spec, itertools.count(10_000))
    moved.state = engine.stores["item"].state
    await db._use_storage(later)  # type: ignore[arg-type]
    assert sorted(r.cents for r in Item.find()) == [100, 200, 300]
    binding = Item.__discobase_binding__
    assert binding is not None and binding.store is moved
    await db.close()
