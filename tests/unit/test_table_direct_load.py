"""Records a query returns are built from stored dicts without validating them again, only
where that gives exactly what validation gives: valid instances, independent of the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

import discobase
from discobase import _json
from discobase._plain_records import direct_loader as _direct_loader
from tests.unit.tablefakes import FakeEngine, FakeStore

database = discobase.Database("direct")


@database.table
class Flat(discobase.Table):
    name: Annotated[str, discobase.Index()]
    age: int
    score: float
    ok: bool
    note: str | None = None


@database.table
class Cached(discobase.Table):
    value: int
    _seen: list[int] = PrivateAttr(default_factory=list)


@database.table
class Stripped(discobase.Table):
    model_config = ConfigDict(str_strip_whitespace=True)
    name: str


@database.table
class Bounded(discobase.Table):
    name: str = Field(max_length=3)


@database.table
class Checked(discobase.Table):
    name: str

    @field_validator("name")
    @classmethod
    def upper(cls, value: str) -> str:
        return value.upper()


@database.table
class Nested(discobase.Table):
    tags: list[str]


@pytest.fixture
async def stores() -> AsyncIterator[dict[str, FakeStore]]:
    engine = FakeEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine.stores
    await database.close()


def validated(model: type[discobase.Table], record_id: int, data: dict[str, Any]) -> Any:
    binding = model.__discobase_binding__
    assert binding is not None
    record = binding._validate(data)
    record.__pydantic_private__["_id"] = record_id  # type: ignore[index]
    return record


def same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a.__dict__ == b.__dict__ and list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert a.__pydantic_private__ == b.__pydantic_private__
    assert a.__pydantic_extra__ == b.__pydantic_extra__
    assert a == b and a.id == b.id


async def test_a_flat_record_is_built_directly_and_equals_the_validated_one(
    stores: dict[str, FakeStore],
) -> None:
    assert _direct_loader(Flat) is not None
    data = Flat(name="Peter", age=3, score=1.5, ok=True)._dump()
    stores["flat"].put_now(1, data)
    [found] = Flat.find(name="Peter")
    same(found, validated(Flat, 1, data))
    assert found.model_dump() == {"name": "Peter", "age": 3, "score": 1.5, "ok": True, "note": None}


async def test_changing_a_found_record_leaves_the_stored_one_alone(
    stores: dict[str, FakeStore],
) -> None:
    data = Flat(name="Peter", age=3, score=1.5, ok=True, note="x")._dump()
    stores["flat"].put_now(1, data)
    found = await Flat.get(1)
    found.age = 4
    found.note = None
    assert stores["flat"].get(1) == {
        "name": "Peter",
        "age": 3,
        "score": 1.5,
        "ok": True,
        "note": "x",
    }
    again = await Flat.get(1)
    assert again.age == 3 and again.note == "x" and again is not found
    assert again.model_fields_set == set(Flat.model_fields)
    again.model_fields_set.discard("age")  # each record has its own set
    assert (await Flat.get(1)).model_fields_set == set(Flat.model_fields)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "P", "age": 3, "score": 2, "ok": True, "note": None},  # an int for a float
        {"age": 3, "name": "P", "score": 2.0, "ok": True, "note": None},  # another order
        {"name": "P", "age": 3, "score": 2.0, "ok": True},  # a field missing (its default)
        {"name": "P", "age": 3, "score": 2.0, "ok": True, "note": None, "old": 1},  # extra
        {"name": "P", "age": "3", "score": 2.0, "ok": True, "note": None},  # a str for an int
        {"name": "P", "age": True, "score": 2.0, "ok": True, "note": None},  # a bool for an int
        {"name": "P", "age": 3, "score": "Infinity", "ok": True, "note": None},
    ],
)
async def test_a_stored_dict_of_other_types_is_validated(
    stores: dict[str, FakeStore], data: dict[str, Any]
) -> None:
    stores["flat"].put_now(1, data)
    found = Flat.find(name="P")
    try:
        expected = validated(Flat, 1, data)
    except Exception:
        assert found == []  # unreadable: skipped, as before
        return
    [record] = found
    same(record, expected)
    assert type(record.score) is float


async def test_private_attributes_made_by_a_factory_are_made_per_record(
    stores: dict[str, FakeStore],
) -> None:
    stores["cached"].put_now(1, {"value": 1})
    stores["cached"].put_now(2, {"value": 2})
    first, second = Cached.find()
    assert first._seen == [] and first._seen is not second._seen
    assert (first.id, second.id) == (1, 2)


@pytest.mark.parametrize("model", [Stripped, Bounded, Checked, Nested])
def test_models_whose_validation_changes_or_refuses_values_always_validate(
    model: type[discobase.Table],
) -> None:
    assert _direct_loader(model) is None


async def test_validation_still_applies_where_it_must(stores: dict[str, FakeStore]) -> None:
    stores["stripped"].put_now(1, {"name": "  x  "})
    stores["bounded"].put_now(1, {"name": "long"})
    stores["checked"].put_now(1, {"name": "abc"})
    stores["nested"].put_now(1, {"tags": ["a"]})
    assert (await Stripped.get(1)).name == "x"
    assert Bounded.find() == []  # does not fit: skipped and reported
    assert (await Checked.get(1)).name == "ABC"
    nested = await Nested.get(1)
    nested.tags.append("b")
    assert stores["nested"].get(1) == {"tags": ["a"]}


async def test_save_many_of_plain_records_stores_what_pydantic_would(
    stores: dict[str, FakeStore],
) -> None:
    # Large batches of plain records are encoded from the records' own dicts; the ones
    # holding a non-finite float or a lone surrogate go the pydantic way (and say so).
    records = [Flat(name=f"n{i}", age=i, score=i / 3, ok=i % 2 == 0) for i in range(100)]
    binding = Flat.__discobase_binding__
    assert binding is not None
    assert binding.encoder._plain_slices(records) is not None
    await Flat.save_many(records)
    for record in records:
        assert stores["flat"].get(record.id) == record._dump()
    odd = [
        Flat(name=f"m{i}", age=i, score=float("inf") if i == 5 else 1.0, ok=True) for i in range(80)
    ]
    assert binding.encoder._plain_slices(odd) is None
    await Flat.save_many(odd)
    assert stores["flat"].get(odd[5].id)["score"] == "Infinity"
    bad = [Flat(name="x", age=1, score=1.0, ok=True) for _ in range(70)]
    bad[3].name = "\ud800"
    assert binding.encoder._plain_slices(bad) is None
    with pytest.raises(discobase.UnstorableRecord):
        Flat.save_many(bad)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"note": "x"},
        {"name": "é😀 and @everyone"},
        {"score": float("nan")},
        {"score": float("-inf")},
        {"age": 10**30},
        {"age": -(2**63)},
        {"name": "\ud800"},
        {"age": 10**5000},
    ],
)
async def test_a_plain_record_is_stored_as_pydantic_stores_it(
    stores: dict[str, FakeStore], change: dict[str, Any]
) -> None:
    # Plain records are stored from their own dict: exactly what pydantic writes, and the
    # same refusals (the slow way names them).
    binding = Flat.__discobase_binding__
    assert binding is not None
    record = Flat(name="P", age=3, score=1.5, ok=True)
    for key, value in change.items():
        setattr(record, key, value)
    try:
        slow = _json.loads(record.model_dump_json(by_alias=False))
    except Exception:  # noqa: BLE001 - pydantic's own refusal
        slow = None
    if slow is None or change == {"age": 10**5000}:
        with pytest.raises(discobase.UnstorableRecord):
            binding.storable(record)
        return
    got = binding.storable(record)
    assert got == slow and list(got) == list(slow)
    assert [type(v) for v in got.values()] == [type(v) for v in slow.values()]
    assert got is not record.__dict__


async def test_save_many_of_plain_records_with_a_huge_integer_goes_the_checked_way(
    stores: dict[str, FakeStore],
) -> None:
    # Slices of plain records skip the digit scan only when they hold no integer beyond 64
    # bits; one that does goes pydantic's way, and its digits are checked.
    binding = Flat.__discobase_binding__
    assert binding is not None
    big = [Flat(name=f"b{i}", age=10**30 if i == 7 else i, score=1.0, ok=True) for i in range(70)]
    assert binding.encoder._plain_slices(big) is None
    await Flat.save_many(big)
    assert stores["flat"].get(big[7].id)["age"] == 10**30
    huge = [
        Flat(name=f"h{i}", age=10**5000 if i == 3 else i, score=1.0, ok=True) for i in range(70)
    ]
    with pytest.raises(discobase.UnstorableRecord):
        Flat.save_many(huge)
