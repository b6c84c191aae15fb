"""Queries answered from memory: find, find_unique, get, count, ordering, indexes."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest

import discobase
from discobase.errors import InvalidQuery, MultipleRecordsFound, RecordNotFound
from tests.unit.tablefakes import FakeEngine

database = discobase.Database("queries")


@database.table
class User(discobase.Table):
    name: Annotated[str, discobase.Index()]
    password: str
    age: int | None = None
    joined: datetime.datetime | None = None


@database.table
class Loose(discobase.Table):
    value: Any = None


@pytest.fixture
async def db() -> AsyncIterator[discobase.Database]:
    engine = FakeEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    store = engine.stores["user"]
    rows = [
        ("Peter", "foobar", 30, None),
        ("Paul", "hunter2", 25, datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)),
        ("Peter", "other", None, datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)),
        ("Mary", "x", 41, None),
    ]
    for i, (name, password, age, joined) in enumerate(rows, start=1):
        data = User(name=name, password=password, age=age, joined=joined)._dump()
        store.put_now(i, data)
    yield database
    await database.close()


async def test_find_without_await_iterates_records(db: discobase.Database) -> None:
    users = User.find(name="Peter")
    assert [(u.id, u.password) for u in users] == [(1, "foobar"), (3, "other")]


async def test_find_with_await_returns_the_same_list(db: discobase.Database) -> None:
    users = await User.find(name="Peter")
    assert isinstance(users, list)
    assert [u.id for u in users] == [1, 3]


async def test_find_is_a_conjunction(db: discobase.Database) -> None:
    assert [u.id for u in User.find(name="Peter", password="other")] == [3]
    assert User.find(name="Peter", password="hunter2") == []


async def test_find_without_arguments_returns_every_record_in_id_order(
    db: discobase.Database,
) -> None:
    assert [u.id for u in User.find()] == [1, 2, 3, 4]


async def test_find_on_an_indexed_field_uses_the_index(db: discobase.Database) -> None:
    store = db._engine.stores["user"]  # type: ignore[union-attr]
    User.find(name="Mary")
    assert store.lookups == [("name", "Mary")]
    User.find(password="x")
    assert store.lookups == [("name", "Mary")]


async def test_find_none_matches_missing_values(db: discobase.Database) -> None:
    assert [u.id for u in User.find(age=None)] == [3]


async def test_find_converts_query_values_like_records(db: discobase.Database) -> None:
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    assert [u.id for u in User.find(joined=when)] == [2]
    # A string is validated into the field's type first, like an assignment would be.
    assert User.count(joined="2024-01-01T00:00:00Z") == 1


async def test_unknown_field_is_an_error_naming_the_fields(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match="no field 'nme'.*age, joined, name, password"):
        User.find(nme="Peter")


async def test_a_value_the_field_cannot_hold_is_an_error(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match="age"):
        User.find(age="old")


async def test_find_by_id(db: discobase.Database) -> None:
    assert [u.name for u in User.find(id=2)] == ["Paul"]
    assert User.find(id=99) == []
    assert [u.name for u in User.find(id="2")] == ["Paul"]
    assert (await User.get("2")).name == "Paul"


async def test_order_limit_offset(db: discobase.Database) -> None:
    assert [u.name for u in User.find(order_by="name")] == ["Mary", "Paul", "Peter", "Peter"]
    assert [u.id for u in User.find(order_by=["-name", "-id"])] == [3, 1, 2, 4]
    assert [u.id for u in User.find(order_by="age")] == [2, 1, 4, 3]  # None last
    assert [u.id for u in User.find(order_by="-age")] == [4, 1, 2, 3]
    assert [u.id for u in User.find(order_by="joined")] == [3, 2, 1, 4]
    assert [u.id for u in User.find(limit=2, offset=1)] == [2, 3]
    assert [u.id for u in User.find(name="Peter", limit=1)] == [1]
    with pytest.raises(InvalidQuery):
        User.find(order_by="nope")
    with pytest.raises(InvalidQuery):
        User.find(limit=-1)


async def test_find_unique_strict(db: discobase.Database) -> None:
    mary = await User.find_unique(name="Mary")
    assert mary.id == 4 and mary.age == 41
    with pytest.raises(RecordNotFound):
        await User.find_unique(name="Nobody")
    with pytest.raises(MultipleRecordsFound, match="2 user records"):
        await User.find_unique(name="Peter")


async def test_find_unique_not_strict(db: discobase.Database) -> None:
    first = await User.find_unique(name="Peter", strict=False)
    assert first is not None and first.id == 1
    assert await User.find_unique(name="Nobody", strict=False) is None


async def test_find_unique_needs_a_query(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match="at least one field"):
        await User.find_unique()


async def test_get_and_count(db: discobase.Database) -> None:
    paul = await User.get(2)
    assert paul.name == "Paul"
    with pytest.raises(RecordNotFound):
        await User.get(77)
    assert User.count() == 4
    assert await User.count(name="Peter") == 2


async def test_found_records_equal_each_other_but_are_fresh_objects(
    db: discobase.Database,
) -> None:
    a, b = User.find(id=1)[0], User.find(id=1)[0]
    assert a == b and a is not b
    assert "id=1" in repr(a)


async def test_a_record_missing_a_newer_field_reads_its_default(
    db: discobase.Database,
) -> None:
    store = db._engine.stores["user"]  # type: ignore[union-attr]
    store.put_now(10, {"name": "Old", "password": "p"})
    assert [u.id for u in User.find(age=None, name="Old")] == [10]
    assert [u.id for u in User.find(age=None)] == [3, 10]  # a full scan, one field
    assert [u.id for u in User.find(password="p")] == [10]
    assert (await User.get(10)).joined is None


async def test_true_is_not_one_in_a_scan(db: discobase.Database) -> None:
    store = db._engine.stores["loose"]  # type: ignore[union-attr]
    for record_id, value in [(1, True), (2, 1), (3, 1.0), (4, "1"), (5, None)]:
        store.put_now(record_id, {"value": value})
    for _ in range(2):  # the first scan of a field reads the records, the next its column
        assert [r.id for r in Loose.find(value=1)] == [2, 3]
        assert [r.id for r in Loose.find(value=True)] == [1]
        assert [r.id for r in Loose.find(value="1")] == [4]
        assert [r.id for r in Loose.find(value=None)] == [5]
        assert [r.id for r in Loose.find(value=1, id=3)] == [3]
        assert [r.id for r in Loose.find(value=2)] == []


async def test_a_scan_reads_records_lacking_the_field_with_its_default(
    db: discobase.Database,
) -> None:
    store = db._engine.stores["user"]  # type: ignore[union-attr]
    store.put_now(10, {"name": "Old", "password": "p"})
    for _ in range(3):  # records, then a column that lacks record 10
        assert [u.id for u in User.find(age=None)] == [3, 10]
        assert [u.id for u in User.find(age=30)] == [1]
        assert [u.id for u in User.find(password="p")] == [10]
