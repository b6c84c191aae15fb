"""Pages of records a query returns: built without validating again only where that is exact.

A query returning several records of a plain-scalar model builds them a page at a time
(``_plain_records.direct_page_loader``); one returning a single record, or records of any
other model, builds each as before. Whatever the path, a record found equals what
``Model.model_validate(stored)`` gives, field for field, and changing it leaves the stored
record (and the other records) alone. The tables run over a real ``TableState`` (its
compact rows, hash and sorted indexes), with records written as another process would.
"""

from __future__ import annotations

import gc
import random
from array import array
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from pydantic import ConfigDict, PrivateAttr, field_validator

import discobase
from discobase import ge, gt, lt, one_of, startswith
from discobase._binding import binding_of
from discobase._plain_records import direct_page_loader
from discobase.storage.sorted_index import SortedIndex
from tests.unit.tablefakes import StateEngine, StateStore, delete, put

database = discobase.Database("pages")


@database.table
class Reading(discobase.Table):
    sensor: Annotated[int, discobase.Index()]
    label: Annotated[str, discobase.Index()]
    value: float
    ok: bool = True
    note: str | None = None


@database.table
class Unchecked(discobase.Table):
    # Assignments write into the record's own dict (no validation makes a new one).
    model_config = ConfigDict(validate_assignment=False)
    n: Annotated[int, discobase.Index()]
    word: str = ""


@database.table
class Loose(discobase.Table):
    model_config = ConfigDict(extra="allow")
    n: Annotated[int, discobase.Index()]


@database.table
class Seen(discobase.Table):
    n: Annotated[int, discobase.Index()]
    _seen: list[int] = PrivateAttr(default_factory=list)


@database.table
class Single(discobase.Table):
    # One field, and a private attribute of its own with a default every record shares.
    n: Annotated[int, discobase.Index()]
    _tag: str = PrivateAttr(default="t")


@database.table
class Shouted(discobase.Table):
    n: Annotated[int, discobase.Index()]
    word: str

    @field_validator("word")
    @classmethod
    def upper(cls, value: str) -> str:
        return value.upper()


@database.table
class Bag(discobase.Table):
    n: Annotated[int, discobase.Index()]
    tags: list[str]
    counts: dict[str, list[int]] = {}


@pytest.fixture
async def stores() -> AsyncIterator[dict[str, StateStore]]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine.stores
    await database.close()


def same_as_validated(record: discobase.Table, stored: dict[str, Any]) -> None:
    """Check ``record`` is what validating ``stored`` gives, field for field."""
    expected = type(record).model_validate(stored)
    assert record.__dict__ == expected.__dict__
    assert list(record.__dict__) == list(expected.__dict__)
    assert [type(v) for v in record.__dict__.values()] == [
        type(v) for v in expected.__dict__.values()
    ]
    assert record.model_fields_set == expected.model_fields_set
    assert record.__pydantic_extra__ == expected.__pydantic_extra__
    assert record.model_dump() == expected.model_dump()


def readings(count: int) -> dict[int, dict[str, Any]]:
    return {
        100 + i: {
            "sensor": i,
            "label": f"L{i:03d}",
            "value": i / 4,
            "ok": i % 2 == 0,
            "note": None if i % 3 else f"n{i}",
        }
        for i in range(count)
    }


async def test_a_page_of_plain_records_is_what_validation_gives(
    stores: dict[str, StateStore],
) -> None:
    assert direct_page_loader(Reading) is not None
    stored = readings(40)
    put(stores["reading"], stored)
    found = Reading.find(sensor=ge(5) & lt(35))
    assert [r.id for r in found] == list(range(105, 135))
    for record in found:
        same_as_validated(record, stored[record.id])
        assert record.__pydantic_private__ == {"_id": record.id, "_retry_id": None}
    # Each record has its own dict, set of fields and private attributes.
    assert len({id(r.__dict__) for r in found}) == len(found)
    assert len({id(r.model_fields_set) for r in found}) == len(found)
    assert len({id(r.__pydantic_private__) for r in found}) == len(found)
    first, second = found[0], found[1]
    first.value = 99.0
    first.note = "changed"
    first.model_fields_set.discard("ok")
    assert stores["reading"].get(first.id) == stored[first.id]
    assert second.value == stored[second.id]["value"] and "ok" in second.model_fields_set
    again = Reading.find(sensor=ge(5) & lt(35))
    assert again[0] is not first and again[0].value == stored[first.id]["value"]
    assert Reading.find(label=startswith("L01")) == [r for r in again if r.label[:3] == "L01"]


async def test_a_page_holding_records_that_do_not_fit_reads_each_as_validation_would(
    stores: dict[str, StateStore],
) -> None:
    stored = readings(12)
    stored[103]["value"] = 3  # an int where a float is held: validation makes it 3.0
    del stored[104]["note"]  # written before the field: its default
    stored[105]["old"] = "x"  # a field of another version of the program
    stored[106] = {"ok": True, **{k: v for k, v in stored[106].items() if k != "ok"}}
    stored[107]["sensor"] = "7"  # a str for an int (lax validation takes it)
    stored[108]["sensor"] = 8.5  # not an int: unreadable, skipped and reported
    put(stores["reading"], stored)
    found = Reading.find()
    assert [r.id for r in found] == [i for i in stored if i != 108]
    for record in found:
        data = {k: v for k, v in stored[record.id].items() if k != "old"}
        same_as_validated(record, data)
    assert type(found[3].value) is float and found[3].value == 3.0
    assert found[4].note is None and "note" not in stores["reading"].get(104)  # type: ignore[operator]
    # Windows of the same answer, the unreadable record left out of each.
    everything = [r.id for r in found]
    for offset in range(0, 12):
        for limit in (1, 2, 5, 20):
            window = Reading.find(limit=limit, offset=offset)
            assert [r.id for r in window] == everything[offset : offset + limit]
    ordered = Reading.find(order_by="-value", limit=3)
    assert [r.id for r in ordered] == [103, 111, 110]  # 103 holds 3, the others i / 4


async def test_a_page_differing_only_in_types_or_names_is_read_as_validation_would(
    stores: dict[str, StateStore],
) -> None:
    stored = readings(6)
    stored[102]["value"] = 2  # an int where a float is held, every key in place
    put(stores["reading"], stored)
    found = Reading.find(sensor=ge(0))
    assert type(found[2].value) is float and found[2].value == 2.0
    for record in found:
        same_as_validated(record, stored[record.id])
    renamed = {k if k != "label" else "title": v for k, v in readings(1)[100].items()}
    put(stores["reading"], {200: renamed | {"sensor": 50}, 201: readings(1)[100] | {"sensor": 51}})
    assert [r.id for r in Reading.find(sensor=ge(50))] == [201]  # 200 lacks label: unreadable


async def test_changing_a_record_of_a_page_in_place_leaves_the_store_alone(
    stores: dict[str, StateStore],
) -> None:
    put(stores["unchecked"], {1: {"n": 1, "word": "a"}, 2: {"n": 2, "word": "b"}})
    first, second = Unchecked.find(n=ge(1))
    first.word = "changed"
    assert stores["unchecked"].get(1) == {"n": 1, "word": "a"} and second.word == "b"
    put(stores["reading"], readings(3))
    found = Reading.find(sensor=ge(0))
    found[0].__dict__["label"] = "changed"
    assert stores["reading"].get(100)["label"] == "L000"  # type: ignore[index]
    assert Reading.find(sensor=ge(0))[0].label == "L000"


async def test_none_values_and_equalities_in_pages(stores: dict[str, StateStore]) -> None:
    stored = readings(9)
    put(stores["reading"], stored)
    notes = Reading.find(note=None)
    assert [r.id for r in notes] == [i for i, d in stored.items() if d["note"] is None]
    for record in notes:
        same_as_validated(record, stored[record.id])
    assert [r.id for r in Reading.find(ok=True)] == [100, 102, 104, 106, 108]
    assert [r.id for r in Reading.find(label="L004")] == [104]
    assert [r.id for r in Reading.find(sensor=one_of(1, 7, 70))] == [101, 107]
    assert Reading.find(label="nothing") == [] and Reading.find(id=99) == []
    assert [r.id for r in Reading.find(id=103)] == [103]
    assert [r.id for r in Reading.find(id="105", sensor=5)] == [105]
    assert Reading.count(sensor=gt(2)) == 6 and Reading.count(label="L001") == 1


async def test_one_equality_on_an_index_as_the_planned_query_answers_it(
    stores: dict[str, StateStore], caplog: pytest.LogCaptureFixture
) -> None:
    # find(field=value) of a str or an int on an indexed field goes straight to the index;
    # what it returns is what the planned query returns (find(..., limit=None) plans it).
    stored = readings(5)
    stored[103]["label"] = "L001"  # two records share a label
    stored[104]["sensor"] = "four"  # unreadable: skipped and reported, once
    put(stores["reading"], stored)
    cases: list[dict[str, Any]] = [
        {"label": "L001"},
        {"label": "L002"},
        {"label": "x"},
        {"sensor": 4},
    ]
    for query in cases:
        fast = Reading.find(**query)
        planned = Reading.find(order_by="id", **query)
        assert [r.id for r in fast] == [r.id for r in planned]
        for record in fast:
            same_as_validated(record, stored[record.id])
    assert [r.id for r in Reading.find(label="L001")] == [101, 103]
    assert Reading.find(label="L004") == [] and Reading.find(label="L004") == []
    assert len([r for r in caplog.records if "record 104" in r.getMessage()]) == 1
    with pytest.raises(discobase.InvalidQuery):
        Reading.find(nope="x")
    with pytest.raises(discobase.InvalidQuery):
        Reading.find(label="L001", offset=False)


async def test_extra_fields_and_private_factories_stay_per_record(
    stores: dict[str, StateStore],
) -> None:
    put(stores["loose"], {1: {"n": 1}, 2: {"n": 2}, 3: {"n": 3, "more": [1]}})
    found = Loose.find(n=ge(1))
    assert [r.n for r in found] == [1, 2, 3]
    assert found[0].__pydantic_extra__ == {} and found[2].__pydantic_extra__ == {"more": [1]}
    assert found[0].__pydantic_extra__ is not found[1].__pydantic_extra__
    found[0].added = 5  # type: ignore[attr-defined]  # an extra attribute of one record only
    assert found[1].__pydantic_extra__ == {} and stores["loose"].get(1) == {"n": 1}
    found[2].more.append(2)  # type: ignore[attr-defined]
    assert stores["loose"].get(3) == {"n": 3, "more": [1]}
    assert direct_page_loader(Seen) is None  # a factory: pydantic's own initialiser runs
    put(stores["seen"], {1: {"n": 1}, 2: {"n": 2}})
    first, second = Seen.find(n=ge(0))
    first._seen.append(1)
    assert second._seen == [] and (first.id, second.id) == (1, 2)


async def test_a_page_of_a_one_field_model_has_every_private_attribute(
    stores: dict[str, StateStore],
) -> None:
    # A page's dicts are made by code compiled for the model (_plain_records._page_makers).
    assert direct_page_loader(Single) is not None
    put(stores["single"], {7: {"n": 1}, 5: {"n": 2}, 9: {"n": 3}})
    found = Single.find(n=ge(1))
    assert [(r.id, r.n) for r in found] == [(5, 2), (7, 1), (9, 3)]
    for record in found:
        same_as_validated(record, {"n": record.n})
        validated = Single.model_validate({"n": record.n})
        assert record.__pydantic_private__ == {**validated.__pydantic_private__, "_id": record.id}
        assert list(record.__pydantic_private__) == list(validated.__pydantic_private__)
    found[0]._tag = "mine"
    assert found[1]._tag == "t"


async def test_validated_models_apply_validators_and_copy_nested_values(
    stores: dict[str, StateStore],
) -> None:
    assert direct_page_loader(Shouted) is None and direct_page_loader(Bag) is None
    put(stores["shouted"], {1: {"n": 1, "word": "a"}, 2: {"n": 2, "word": "b"}})
    assert [r.word for r in Shouted.find(n=ge(1))] == ["A", "B"]
    stored = {
        1: {"n": 1, "tags": ["x"], "counts": {"a": [1, 2]}},
        2: {"n": 2, "tags": []},  # counts: its default
        3: {"n": 3, "tags": ["y", "z"], "counts": {}},
    }
    put(stores["bag"], stored)
    found = Bag.find(n=ge(1))
    for record in found:
        same_as_validated(record, stored[record.id])
    found[0].tags.append("changed")
    found[0].counts["a"].append(3)
    found[1].counts["new"] = [1]
    assert stores["bag"].get(1) == {"n": 1, "tags": ["x"], "counts": {"a": [1, 2]}}
    assert stores["bag"].get(2) == {"n": 2, "tags": []}
    again = Bag.find(n=ge(1))
    assert again[0].tags == ["x"] and again[0].counts == {"a": [1, 2]} and again[1].counts == {}
    assert again[1].counts is not Bag.model_fields["counts"].default


async def test_ranges_agree_with_a_scan_through_writes(stores: dict[str, StateStore]) -> None:
    # The ids a sorted index gives are taken as live without a check against the records:
    # writes, deletions and rebuilds must keep them so.
    rng = random.Random(7)
    store = stores["reading"]
    put(store, readings(300))
    for step in range(400):
        low = rng.randrange(-10, 320)
        high = low + rng.randrange(0, 60)
        expected = sorted(i for i, d in store.records().items() if low <= d["sensor"] < high)
        assert [r.id for r in Reading.find(sensor=ge(low) & lt(high))] == expected
        assert Reading.count(sensor=ge(low) & lt(high)) == len(expected)
        record_id = rng.randrange(100, 420)
        if step % 3 == 0 and record_id in store.records():
            delete(store, record_id)
        else:
            data = readings(1)[100] | {"sensor": rng.randrange(0, 320)}
            put(store, {record_id: data})


def test_a_sorted_index_holds_integer_keys_and_ids_in_arrays() -> None:
    def key(value: Any) -> Any:
        return value if type(value) in (int, float, str, bool) else None

    records: dict[int, dict[str, Any]] = {i: {"n": (i * 7) % 50} for i in range(1, 200)}
    index = SortedIndex("n", None, key)
    assert index.build(records)
    assert isinstance(index._keys, array) and isinstance(index._ids, array)
    found = index.range(10, True, 12, False)
    assert type(found) is list and all(type(i) is int for i in found or [])
    assert sorted(found or []) == sorted(i for i, d in records.items() if 10 <= d["n"] < 12)
    assert index.range(10.5, True, 11.5, True) == [i for i in found or [] if records[i]["n"] == 11]
    assert index.range("a", True, None, True) is None  # a bound that does not compare: scan
    records[5] = {"n": 10}
    index.touch(5, records[5])
    index.touch(6, None)
    del records[6]
    assert sorted(index.range(10, True, 12, False) or []) == sorted(
        i for i, d in records.items() if 10 <= d["n"] < 12
    )
    # Keys that are not all 64-bit ints stay in a list.
    for values in ([1, 2**64, 3], [1, 2.5, 3], ["a", "b", "c"]):
        mixed = SortedIndex("n", None, key)
        assert mixed.build({i: {"n": v} for i, v in enumerate(values)})
        assert type(mixed._keys) is list
        assert sorted(mixed.range(None, True, None, True) or []) == [0, 1, 2]
    flags = SortedIndex("n", None, key)  # a bool key is held as the int it compares as
    assert flags.build({1: {"n": 2}, 2: {"n": True}, 3: {"n": 0}})
    assert flags.range(1, True, 1, True) == [2] and flags.range(True, False, None, True) == [1]
    huge = SortedIndex("n", None, key)
    assert huge.build({2**64 + 1: {"n": 1}, 2: {"n": 2}})
    assert type(huge._ids) is list and huge.range(1, True, 1, True) == [2**64 + 1]


async def test_a_subclass_of_a_registered_table_is_not_that_table(
    stores: dict[str, StateStore],
) -> None:
    class Derived(Reading):
        pass

    assert binding_of(Reading).model is Reading
    with pytest.raises(discobase.TableNotRegistered):
        Derived.find()


@pytest.mark.parametrize("plain", [True, False])
async def test_a_large_page_is_made_with_the_collector_held_off(
    stores: dict[str, StateStore], plain: bool
) -> None:
    # Thousands of new records hold no cycle: a collection meanwhile would only walk them.
    # Without the hold, making 5000 records runs about 8 collections; with it, one as each
    # hold ends (the page's rows are decoded in one, its records made in another) walks the
    # new objects once.
    count = 5000
    if plain:
        put(stores["reading"], readings(count))
    else:
        put(stores["shouted"], {1 + i: {"n": i, "word": "W"} for i in range(count)})
    collections = 0

    def counted(phase: str, info: dict[str, Any]) -> None:
        nonlocal collections
        collections += phase == "start"

    gc.callbacks.append(counted)
    try:
        found = Reading.find(sensor=ge(0)) if plain else Shouted.find(n=ge(0))
        made = collections
        assert gc.isenabled()
        gc.disable()  # the caller's choice stays theirs
        again = Reading.find(sensor=ge(0)) if plain else Shouted.find(n=ge(0))
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.remove(counted)
    assert made <= 2
    assert len(found) == len(again) == count
