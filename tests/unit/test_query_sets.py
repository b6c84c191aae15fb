"""Set fields in queries and change feeds: a set is stored as a list in the order it iterated
when saved (for strings, an order each process draws anew), so equality, ``ne`` and
``one_of`` compare its list in any order.

The table runs over a store that keeps its records in a real ``TableState``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import discobase
from discobase import ne, one_of
from discobase.storage.codec import Put
from tests.unit.tablefakes import StateEngine, StateStore

database = discobase.Database("sets")


@database.table
class Tagged(discobase.Table):
    name: str
    tags: set[str] = set()
    codes: frozenset[int] | None = None


@pytest.fixture
async def store() -> AsyncIterator[StateStore]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine.stores["tagged"]
    await database.close()


def stored_as(store: StateStore, record_id: int, **data: Any) -> None:
    # As another process stored it: the same sets, their lists in another order.
    store.state.apply(1 << 40 | record_id, [Put(record_id, {"name": "x", **data})])


async def test_equality_ne_and_one_of_compare_a_set_in_any_order(store: StateStore) -> None:
    stored_as(store, 1, tags=["b", "a", "c"], codes=[3, 1, 2])
    stored_as(store, 2, tags=["d"], codes=None)
    # Before: each compared the stored list with the query's list in its own order.
    assert [r.id for r in Tagged.find(tags={"a", "b", "c"})] == [1]
    assert [r.id for r in Tagged.find(codes=frozenset({1, 2, 3}))] == [1]
    assert [r.id for r in Tagged.find(name="x", tags={"c", "b", "a"})] == [1]
    assert Tagged.count(tags={"c", "a", "b"}) == 1
    assert [r.id for r in Tagged.find(tags=ne({"c", "a", "b"}))] == [2]
    assert [r.id for r in Tagged.find(tags=one_of({"a", "c", "b"}, {"d"}))] == [1, 2]
    assert [r.id for r in Tagged.find(tags={"a", "b"})] == []
    assert [r.id for r in Tagged.find(codes=None)] == [2]
    unique = await Tagged.find_unique(tags={"b", "c", "a"})
    assert unique.id == 1


async def test_a_watch_filter_compares_a_set_in_any_order(store: StateStore) -> None:
    watch = Tagged.watch(tags={"a", "b"})
    stored_as(store, 1, tags=["b", "a"])
    stored_as(store, 2, tags=["a"])
    watch.close()
    assert [change.record.id async for change in watch] == [1]
