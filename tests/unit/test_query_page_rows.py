"""A query's page of records decoded from compact rows at once (``Records.page``) and built
into models from the decoded values (``_plain_records``): what comes out is what reading
each record by id and validating it gives, and nothing of it is shared with the store."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest

import discobase
from discobase import ge, lt
from discobase.storage.codec import Put
from discobase.storage.rows import Records, RecordsView
from tests.unit.tablefakes import StateEngine, StateStore


class Text(str):
    """A subclass of a JSON type: marshal cannot hold it, so its record stays a dict."""


def stored(*records: dict[str, Any]) -> Records:
    held = Records()
    for record_id, data in enumerate(records, 1):
        held.put(record_id, data)
    return held


def test_a_page_is_the_values_each_read_would_give_in_the_shape_order() -> None:
    records = [{"name": f"n{i}", "age": i, "score": i / 2, "ok": i % 2 == 0} for i in range(6)]
    records[3]["age"] = 2**70  # beyond 64 bits
    records[4]["name"] = None
    held = stored(*records)
    page = RecordsView(held).page([5, 1, 4])
    assert page is not None
    shape, values = page
    assert shape == ("name", "age", "score", "ok")
    assert values == [tuple(held.peek(i).values()) for i in (5, 1, 4)]  # type: ignore[union-attr]
    assert [list(map(type, v)) for v in values] == [
        [type(x) for x in records[i - 1].values()] for i in (5, 1, 4)
    ]
    assert not held.handed  # a page keeps nothing: its reader owns every value
    assert held.page([]) == (shape, [])
    with pytest.raises(KeyError):
        held.page([1, 99])


def test_a_page_holding_a_record_of_another_shape_is_none() -> None:
    held = stored(
        {"name": "a", "age": 1},
        {"age": 2, "name": "b"},  # the same keys in another order
        {"name": "c"},  # a field missing
        {"name": Text("d"), "age": 4},  # kept as the dict itself
        {"name": "e", "age": 5},
    )
    assert held.page([1, 5]) == (("name", "age"), [("a", 1), ("e", 5)])
    for odd in (2, 3, 4):
        assert held.page([1, odd, 5]) is None
    held.clear()
    assert held.page([]) == ((), [])


database = discobase.Database("page rows")


@database.table
class Item(discobase.Table):
    n: Annotated[int, discobase.Index()]
    name: str
    price: float
    note: str | None = None


@pytest.fixture
async def stores() -> AsyncIterator[dict[str, StateStore]]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine.stores
    await database.close()


_versions = itertools.count(1 << 30)


def put(store: StateStore, records: dict[int, dict[str, Any]]) -> None:
    """Apply records as another process's log entry would (no validation on the way)."""
    store.state.apply(next(_versions), [Put(i, data) for i, data in records.items()])


async def test_records_built_from_a_page_are_their_own(stores: dict[str, StateStore]) -> None:
    store = stores["item"]
    stored_items = {
        10 + i: {"n": i, "name": f"item {i}", "price": i * 1.5, "note": None if i % 2 else "x"}
        for i in range(20)
    }
    put(store, stored_items)
    assert store.records().page([11, 10]) is not None  # rows of the model's fields, in order
    held = store.get(12)  # a dict the store hands out, and keeps while it is held
    found = Item.find(n=ge(0) & lt(20))
    assert [r.id for r in found] == list(range(10, 30))
    for record in found:
        expected = Item.model_validate(stored_items[record.id])
        assert record.__dict__ == expected.__dict__
        assert [type(v) for v in record.__dict__.values()] == [
            type(v) for v in expected.__dict__.values()
        ]
        assert record.model_fields_set == expected.model_fields_set
        assert record.__pydantic_extra__ is None
        assert record.__pydantic_private__ == {"_id": record.id, "_retry_id": None}
    assert found[2].__dict__ is not held and len({id(r.__dict__) for r in found}) == 20
    found[2].__dict__["name"] = "changed"
    found[2].model_fields_set.clear()
    assert held == stored_items[12] and store.get(12) is held
    assert Item.find(n=2)[0].name == "item 2" and found[3].model_fields_set == {
        "n",
        "name",
        "price",
        "note",
    }


async def test_a_table_held_in_another_field_order_reads_as_validation_would(
    stores: dict[str, StateStore],
) -> None:
    # The first record a table holds sets the order its rows keep (another program's, say):
    # a page of rows in that order is read record by record, each as validation reads it.
    store = stores["item"]
    put(store, {1: {"name": "first", "n": 1, "price": 1.0, "note": None}})
    put(store, {2: {"name": "second", "n": 2, "price": 2, "note": "b"}})
    found = Item.find(n=ge(1))
    assert [(r.id, r.name, r.price, type(r.price)) for r in found] == [
        (1, "first", 1.0, float),
        (2, "second", 2.0, float),
    ]
    assert list(found[0].__dict__) == ["n", "name", "price", "note"]
