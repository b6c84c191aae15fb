"""A query's page of records decoded from compact rows at once (``Records.page``) and built
into models from the decoded values (``_plain_records``): what comes out is what reading
each record by id and validating it gives, and nothing of it is shared with the store."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest

import discobase
from discobase import ge, gt, lt, startswith
from discobase.storage.codec import Delete, Put
from discobase.storage.rows import RecordsView
from discobase.storage.sorted_index import SortedIndex
from discobase.storage.state import TableState
from tests.unit.tablefakes import StateEngine, StateStore, Text, put, stored


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


def number(value: Any) -> Any:
    return value if type(value) in (int, float) else None


def in_range(state: TableState, low: int, high: int) -> tuple[list[int], list[dict[str, Any]]]:
    """What a range query reads from the sorted index of ``n``: ids, and their records."""
    index = state.sorted_index("n", number)
    assert index is not None
    found = index.range_page(low, True, high, False)
    assert found is not None
    ids, (shape, values) = found
    return ids, [dict(zip(shape, v, strict=True)) for v in values]


def scanned(state: TableState, low: int, high: int) -> tuple[list[int], list[dict[str, Any]]]:
    ids = sorted(i for i, d in state.records.items() if low <= d["n"] < high)
    return ids, [state.records[i] for i in ids]


def test_the_rows_a_sorted_index_holds_follow_every_write() -> None:
    rng = random.Random(3)
    state = TableState("t", {"n": False})
    state.apply(1, [Put(i, {"n": rng.randrange(100), "w": f"w{i}"}) for i in range(1, 300)])
    assert in_range(state, 10, 20) == scanned(state, 10, 20)
    for version in range(2, 400):
        record_id = rng.randrange(1, 320)
        if version % 4 == 0 and record_id in state.records:
            state.apply(version, [Delete(record_id)])
        else:
            state.apply(version, [Put(record_id, {"n": rng.randrange(100), "w": f"v{version}"})])
        low = rng.randrange(100)
        high = low + rng.randrange(30)
        assert in_range(state, low, high) == scanned(state, low, high)


def test_rows_made_again_by_a_fill_are_read_in_their_new_shape() -> None:
    # A fill puts every record lacking a field again, in a new shape: the rows the sorted
    # index held are then of the old one, so it sorts again.
    state = TableState("t", {"n": False})
    state.apply(1, [Put(i, {"n": i, "w": f"w{i}"}) for i in range(1, 50)])
    before = in_range(state, 5, 15)
    assert before[1][0] == {"n": 5, "w": "w5"}
    state.fill_missing(["code"], lambda lacking: [{"code": d["n"] * 2} for d in lacking])
    assert in_range(state, 5, 15) == scanned(state, 5, 15)
    assert in_range(state, 5, 15)[1][0] == {"n": 5, "w": "w5", "code": 10}


def test_a_sorted_index_of_plain_dicts_holds_no_rows() -> None:
    index = SortedIndex("n", None, number)
    assert index.build({1: {"n": 2}, 2: {"n": 1}})
    assert index.range_page(0, True, 5, True) is None and index.range(0, True, 5, True) == [2, 1]


def test_a_range_of_rows_of_another_shape_is_read_by_id() -> None:
    state = TableState("t", {"n": False})
    state.apply(1, [Put(1, {"n": 1, "w": "a"}), Put(2, {"w": "b", "n": 2})])
    index = state.sorted_index("n", number)
    assert index is not None
    assert index.range_page(1, True, 1, True) == ([1], (("n", "w"), [(1, "a")]))
    assert index.range_page(0, True, 5, True) is None  # record 2's row holds its keys
    assert index.range_page("a", True, None, True) is None  # a bound that does not compare


async def test_an_unreadable_record_in_a_range_is_skipped_and_reported_once(
    stores: dict[str, StateStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = stores["item"]
    stored_items = {i: {"n": i, "name": f"i{i}", "price": 1.0, "note": None} for i in range(1, 9)}
    stored_items[4]["price"] = 2  # an int where a float is held: validation makes it 2.0
    stored_items[5]["name"] = 5  # not a str: unreadable (every key in place, in order)
    put(store, stored_items)
    for _ in range(3):
        found = Item.find(n=ge(2) & lt(8))
        assert [r.id for r in found] == [2, 3, 4, 6, 7]
        assert type(found[2].price) is float and found[2].price == 2.0
        for record in found:
            expected = Item.model_validate(stored_items[record.id])
            assert record.__dict__ == expected.__dict__
            assert record.model_fields_set == expected.model_fields_set
    assert len([r for r in caplog.records if "record 5" in r.getMessage()]) == 1
    put(store, {5: {"n": 5, "name": "fixed", "price": 1.5, "note": None}})
    assert [r.id for r in Item.find(n=ge(2) & lt(8))] == [2, 3, 4, 5, 6, 7]


async def test_ordering_by_values_read_from_a_page_agrees_with_the_records(
    stores: dict[str, StateStore],
) -> None:
    rng = random.Random(5)
    store = stores["item"]
    stored_items = {
        i: {
            "n": rng.randrange(10),
            "name": rng.choice("abc"),
            "price": rng.choice([0.5, 1.5, 2.5]),
            "note": rng.choice([None, "x", "y"]),
        }
        for i in range(1, 60)
    }
    put(store, stored_items)
    assert store.records().page([1, 2]) is not None  # rows of the model's fields

    def expected(field: str, descending: bool, then: str) -> list[int]:
        ids = sorted(stored_items)
        ids.sort(key=lambda i: stored_items[i][then])
        present = [i for i in ids if stored_items[i][field] is not None]
        present.sort(key=lambda i: stored_items[i][field], reverse=descending)
        return present + [i for i in ids if stored_items[i][field] is None]

    for field in ("name", "price", "note"):
        for descending in (False, True):
            order = [f"-{field}" if descending else field, "n"]
            found = Item.find(n=ge(2), order_by=order, limit=200)
            assert [r.id for r in found] == [
                i for i in expected(field, descending, "n") if stored_items[i]["n"] >= 2
            ]
    assert [r.id for r in Item.find(order_by="-id", limit=3)] == [59, 58, 57]


async def test_counting_a_range_from_its_index_agrees_with_finding_it(
    stores: dict[str, StateStore],
) -> None:
    rng = random.Random(9)
    store = stores["item"]
    put(store, {i: {"n": i % 40, "name": f"w{i % 7}x", "price": 1.0} for i in range(1, 200)})
    for _ in range(60):
        low = rng.randrange(-5, 45)
        high = low + rng.randrange(0, 20)
        queries: list[dict[str, Any]] = [
            {"n": ge(low) & lt(high)},
            {"n": gt(low)},
            {"name": startswith(f"w{low % 8}")},
            {"name": startswith("w") & ge(f"w{low % 8}")},  # a prefix and a range: planned
            {"price": ge(1.0)},  # not indexed: a scan
            {"n": ge(low), "price": lt(2.0)},
        ]
        for query in queries:
            assert Item.count(**query) == len(Item.find(**query))
        put(store, {rng.randrange(1, 250): {"n": rng.randrange(40), "name": "w1y", "price": 2.0}})


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_a_sorted_index_built_from_rows_holds_every_keyed_record_in_order(count: int) -> None:
    def key(value: Any) -> Any:
        return value if type(value) is int else None

    # Every third record has no key: None, or a value of another kind (noted as unkeyed).
    records = [
        {"n": (None if i % 6 == 2 else "x") if i % 3 == 2 else (i * 5) % 7} for i in range(count)
    ]
    held = stored(*records)
    index = SortedIndex("n", None, key)
    assert index.build(RecordsView(held), held)
    expected = sorted((d["n"], i) for i, d in enumerate(records, 1) if type(d["n"]) is int)
    assert list(zip(index._keys, index._ids, strict=True)) == expected
    assert index._rows == [held.rows[i] for _, i in expected]
    assert index._unkeyed == {i for i, d in enumerate(records, 1) if d["n"] == "x"}
    found = index.range_page(None, True, None, True)
    assert found is not None and found[0] == sorted(i for _, i in expected)
