"""Query operators (gt, one_of, contains, ...), sorted indexes and the query-result conveniences.

The tables run over a store that keeps its records in a real ``TableState`` (hash and sorted
indexes included), so every query here takes the path a connected database takes; writes
resolve on the next loop turn.
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import pydantic
import pytest

import discobase
from discobase import contains, ge, gt, le, lt, ne, one_of, startswith
from discobase.errors import InvalidQuery, RecordStateError, UniqueViolation
from discobase.storage.codec import Delete, Put
from discobase.storage.sorted_index import SortedIndex
from discobase.storage.state import TableState
from tests.unit.tablefakes import StateEngine


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


database = discobase.Database("operators")


@database.table
class Person(discobase.Table):
    name: Annotated[str, discobase.Index()]
    age: Annotated[int | None, discobase.Index()] = None
    score: float = 0.0
    email: Annotated[str, discobase.Index(unique=True)] = ""
    tags: list[str] = []
    active: bool = True
    colour: Colour = Colour.RED
    born: datetime.datetime | None = None
    day: Annotated[datetime.date | None, discobase.Index()] = None
    price: decimal.Decimal = decimal.Decimal("0")
    wait: datetime.timedelta = datetime.timedelta(0)
    grade: Literal["a", "b", "c"] = "a"
    extra: Any = None


PEOPLE = [
    dict(name="Peter", age=30, score=1.5, tags=["admin", "dev"], born="2020-01-01T10:00:00Z"),
    dict(name="Paul", age=25, score=2.5, tags=["dev"], active=False, colour=Colour.BLUE),
    dict(name="Petra", age=None, score=-1.0, tags=[], born="2020-01-01T11:00:00+02:00"),
    dict(name="Mary", age=41, score=float("inf"), tags=["ops"], day="2024-05-01"),
    dict(name="Ann", age=18, score=3.0, extra="text", day="2023-01-01", price="10.5"),
    dict(name="Zed", age=65, extra=[1, "x"], wait=datetime.timedelta(hours=2), grade="c"),
]


@pytest.fixture
async def db() -> AsyncIterator[discobase.Database]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    for number, fields in enumerate(PEOPLE):
        await Person(email=f"p{number}@x", **fields).save()  # type: ignore[arg-type]
    yield database
    await database.close()


def names(records: Sequence[Person]) -> list[str]:
    return [r.name for r in records]


async def test_comparisons_on_an_indexed_int(db: discobase.Database) -> None:
    assert names(await Person.find(age=gt(25))) == ["Peter", "Mary", "Zed"]
    assert names(await Person.find(age=ge(25))) == ["Peter", "Paul", "Mary", "Zed"]
    assert names(await Person.find(age=lt(25))) == ["Ann"]
    assert names(await Person.find(age=le(25))) == ["Paul", "Ann"]
    assert names(await Person.find(age=ge(18) & lt(41))) == ["Peter", "Paul", "Ann"]
    assert names(await Person.find(age=gt(18) & gt(25) & le(41))) == ["Peter", "Mary"]
    assert names(await Person.find(age=gt(40) & lt(20))) == []


async def test_none_is_in_no_range_but_matches_ne(db: discobase.Database) -> None:
    assert "Petra" not in names(await Person.find(age=gt(-1000)))
    assert "Petra" in names(await Person.find(age=ne(30)))
    assert "Petra" not in names(await Person.find(age=ne(None)))


async def test_comparisons_on_floats_with_infinity(db: discobase.Database) -> None:
    assert names(await Person.find(score=gt(2))) == ["Paul", "Mary", "Ann"]
    assert names(await Person.find(score=gt(1e308))) == ["Mary"]
    assert names(await Person.find(score=lt(0))) == ["Petra"]


async def test_comparisons_on_strings_and_prefixes(db: discobase.Database) -> None:
    assert names(await Person.find(name=startswith("Pe"))) == ["Peter", "Petra"]
    assert names(await Person.find(name=startswith("Pe") & lt("Petr"))) == ["Peter"]
    assert names(await Person.find(name=ge("P") & lt("Q"))) == ["Peter", "Paul", "Petra"]
    assert names(await Person.find(name=startswith(""))) == names(await Person.find())
    assert names(await Person.find(name=contains("et"))) == ["Peter", "Petra"]
    assert names(await Person.find(grade=gt("a"))) == ["Zed"]


async def test_datetimes_compare_by_instant(db: discobase.Database) -> None:
    # 11:00+02:00 is 09:00Z: before Peter's 10:00Z, although its text sorts after.
    utc = datetime.UTC
    at = datetime.datetime(2020, 1, 1, 9, 30, tzinfo=utc)
    assert names(await Person.find(born=lt(at))) == ["Petra"]
    assert names(await Person.find(born=gt(at))) == ["Peter"]
    assert names(await Person.find(day=ge(datetime.date(2024, 1, 1)))) == ["Mary"]
    assert names(await Person.find(day=lt("2024-01-01"))) == ["Ann"]


async def test_decimals_and_timedeltas_compare_as_values(db: discobase.Database) -> None:
    assert names(await Person.find(price=gt(9))) == ["Ann"]
    assert names(await Person.find(wait=ge(datetime.timedelta(minutes=90)))) == ["Zed"]


async def test_one_of_ne_and_contains(db: discobase.Database) -> None:
    assert names(await Person.find(name=one_of("Paul", "Mary", "Nobody"))) == ["Paul", "Mary"]
    assert names(await Person.find(name=one_of())) == []
    assert names(await Person.find(colour=one_of(Colour.BLUE))) == ["Paul"]
    assert names(await Person.find(active=ne(True))) == ["Paul"]
    assert names(await Person.find(tags=contains("dev"))) == ["Peter", "Paul"]
    assert names(await Person.find(tags=contains("dev"), active=True)) == ["Peter"]
    assert names(await Person.find(extra=contains("x"))) == ["Ann", "Zed"]
    assert names(await Person.find(extra=contains(1))) == ["Zed"]


async def test_operators_combine_with_equality_order_limit_offset(db: discobase.Database) -> None:
    found = await Person.find(age=ge(18), active=True, order_by="-age", limit=2, offset=1)
    assert names(found) == ["Mary", "Peter"]
    assert Person.count(age=ge(18)) == 5
    assert (await Person.find_unique(name=startswith("Ma"))).name == "Mary"
    assert names(await Person.find(id=one_of(1, 2, 999))) == ["Peter", "Paul"]
    assert names(await Person.find(id=gt(4))) == ["Ann", "Zed"]


async def test_any_number_bounds_a_number_field(db: discobase.Database) -> None:
    assert names(await Person.find(age=gt(29.5) & lt(30.5))) == ["Peter"]
    assert names(await Person.find(score=ge(2))) == ["Paul", "Mary", "Ann"]


async def test_one_of_given_a_list_says_how_to_spell_it(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match=r"one_of\(\*values\)"):
        Person.find(age=one_of([18, 30]))


async def test_misspelt_field_names_field_and_operator(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match=r"no field 'agee'.*agee=gt\(18\)"):
        Person.find(agee=gt(18))


@pytest.mark.parametrize(
    ("field", "operator", "words"),
    [
        ("active", gt(True), "gt().*Person.active"),
        ("colour", lt(Colour.RED), "lt().*Person.colour"),
        ("tags", gt(["a"]), "gt().*Person.tags"),
        ("age", startswith("3"), "startswith().*Person.age"),
        ("age", contains(3), "contains().*Person.age"),
        ("age", gt("old"), "gt().*Person.age"),
        ("tags", contains(["nested"]), "contains().*Person.tags"),
        ("name", contains(3), "contains().*Person.name"),
    ],
)
async def test_an_operator_that_does_not_fit_the_type_names_both(
    db: discobase.Database, field: str, operator: discobase.Operator[Any], words: str
) -> None:
    with pytest.raises(InvalidQuery, match=words):
        Person.find(**{field: operator})


async def test_operators_are_values_with_a_readable_repr() -> None:
    assert repr(ge(18) & lt(65)) == "ge(18) & lt(65)"
    assert repr(one_of("a", "b")) == "one_of('a', 'b')"
    assert ge(1) == ge(1) and ge(1) != gt(1)
    assert hash(contains([1])) == hash(contains([1]))
    with pytest.raises(AttributeError):
        ge(1).parts = ()  # type: ignore[misc]


async def test_sorted_index_follows_writes(db: discobase.Database) -> None:
    assert names(await Person.find(age=ge(40))) == ["Mary", "Zed"]  # builds the index
    store = database._tables["person"].store  # type: ignore[attr-defined]
    assert store.state._sorted["age"].built
    paul = await Person.find_unique(name="Paul")
    paul.age = 50
    await paul.update()
    await Person(name="Neo", age=45, email="neo").save()
    mary = await Person.find_unique(name="Mary")
    await mary.delete()
    assert names(await Person.find(age=ge(40))) == ["Paul", "Zed", "Neo"]
    assert names(await Person.find(age=lt(45) & gt(20))) == ["Peter"]


def test_sorted_index_rebuilds_after_many_changes() -> None:
    index = SortedIndex("n", None, lambda v: v if type(v) is int else None)
    records = {i: {"n": i % 100} for i in range(1000)}
    assert index.build(records)
    for i in range(1000, 6000):
        records[i] = {"n": 7}
        index.touch(i, records[i])
    assert not index.built  # too many changes: sorted again on the next query
    assert index.build(records)
    assert sorted(index.range(7, True, 7, True) or []) == sorted(
        i for i, d in records.items() if d["n"] == 7
    )


def test_sorted_index_refuses_keys_that_do_not_compare() -> None:
    index = SortedIndex("n", None, lambda v: v)
    assert not index.build({1: {"n": 1}, 2: {"n": "x"}})


def test_state_sorted_index_only_for_indexed_fields() -> None:
    state = TableState("t", {"n": False})
    state.apply(1, [Put(1, {"n": 3, "m": 1}), Put(2, {"n": 1, "m": 2})])
    assert state.sorted_index("m", lambda v: v) is None
    index = state.sorted_index("n", lambda v: v)
    assert index is not None and index.range(2, True, None, True) == [1]
    state.apply(2, [Delete(1)])
    assert index.range(2, True, None, True) == []
    twin = state.fork()
    twin.apply(3, [Put(3, {"n": 5})])
    assert state.adopt(twin)
    index = state.sorted_index("n", lambda v: v)
    assert index is not None and index.range(2, True, None, True) == [3]


async def test_first_exists_and_async_iteration(db: discobase.Database) -> None:
    first = Person.find(age=gt(20), order_by="-age").first()
    assert first is not None and first.name == "Zed"
    assert Person.find(name="Nobody").first() is None
    assert Person.find(name=startswith("P")).exists()
    assert not Person.find(name="Nobody").exists()
    seen = [person.name async for person in Person.find(age=lt(26))]
    assert seen == ["Paul", "Ann"]


async def test_delete_many_is_one_batch(db: discobase.Database) -> None:
    store = database._tables["person"].store  # type: ignore[attr-defined]
    found = Person.find(age=lt(30))
    before = len(store.batches)
    deleted = await found.delete_many()
    assert deleted == 2 and len(store.batches) == before + 1
    assert all(person.id is None for person in found)
    assert Person.count(age=lt(30)) == 0
    assert await Person.find(name="Nobody").delete_many() == 0
    with pytest.raises(RecordStateError):
        found.delete_many()


async def test_update_many_is_one_batch_and_all_or_nothing(db: discobase.Database) -> None:
    store = database._tables["person"].store  # type: ignore[attr-defined]
    found = Person.find(tags=contains("dev"))
    before = len(store.batches)
    updated = await found.update_many(active=False, score=9.0)
    assert [p.name for p in updated] == ["Peter", "Paul"] and len(store.batches) == before + 1
    assert names(await Person.find(active=False, score=9.0)) == ["Peter", "Paul"]
    with pytest.raises(pydantic.ValidationError):
        found.update_many(age="not a number")
    assert [p.age for p in found] == [30, 25]
    with pytest.raises(UniqueViolation):
        found.update_many(email="same@x")
    assert [p.email for p in found] == ["p0@x", "p1@x"]
    with pytest.raises(InvalidQuery, match="nope"):
        found.update_many(nope=1)
    assert len(store.batches) == before + 1


async def test_update_many_of_an_empty_answer_still_checks_the_names(
    db: discobase.Database,
) -> None:
    nothing = Person.find(name="Nobody")
    assert nothing.table is Person
    with pytest.raises(InvalidQuery, match="nope"):
        nothing.update_many(nope=1)
    for empty in (Person.find(name=startswith("Zz")), Person.find(age=gt(1000), limit=1)):
        with pytest.raises(InvalidQuery, match="nope"):
            empty.update_many(nope=1)
    assert await nothing.update_many(active=False) == []
    # A list made by hand knows no table: there is nothing to check an empty one against.
    assert await discobase.Records().update_many(nope=1) == []


async def test_batch_is_typed_none(db: discobase.Database) -> None:
    async with db.batch() as nothing:
        assert nothing is None
