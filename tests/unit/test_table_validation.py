"""What the public API refuses up front, with a typed error that names the mistake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pydantic
import pytest

import discobase
from discobase.errors import InvalidQuery, TableRegistrationError
from tests.unit.tablefakes import FakeEngine

database = discobase.Database("validation")


@database.table
class Item(discobase.Table):
    name: str


@pytest.fixture
async def db() -> AsyncIterator[discobase.Database]:
    engine = FakeEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    engine.stores["item"].put_now(1, {"name": "a"})
    yield database
    await database.close()


@pytest.mark.parametrize(
    ("field", "method"),
    [("limit", "find"), ("offset", "find"), ("order_by", "find"), ("strict", "find_unique")],
)
def test_a_field_named_like_a_query_keyword_is_refused(field: str, method: str) -> None:
    db = discobase.Database("reserved")
    model = pydantic.create_model("Plan", __base__=discobase.Table, **{field: (int, 0)})
    with pytest.raises(TableRegistrationError, match=rf"'{field}'.*{method}\(\)"):
        db.table(model)
    assert db.tables == {}


def test_an_alias_lets_records_keep_the_keyword_as_a_constructor_name() -> None:
    db = discobase.Database("reserved")

    @db.table
    class Plan(discobase.Table):
        limit_: int = pydantic.Field(alias="limit")

    assert Plan(limit=2).limit_ == 2


def test_a_table_name_longer_than_a_channel_name_is_refused() -> None:
    db = discobase.Database("names")
    db.table(pydantic.create_model("T" * 100, __base__=discobase.Table))
    with pytest.raises(TableRegistrationError, match="101 characters.*at most 100"):
        db.table(pydantic.create_model("T" * 101, __base__=discobase.Table))
    assert list(db.tables) == ["t" * 100]


@pytest.mark.parametrize(
    "query",
    [
        {"order_by": 5},
        {"order_by": [5]},
        {"limit": True},
        {"limit": -1},
        {"limit": 1.5},
        {"offset": True},
        {"offset": "1"},
    ],
)
async def test_find_refuses_bad_paging_and_ordering(
    db: discobase.Database, query: dict[str, object]
) -> None:
    with pytest.raises(InvalidQuery, match=next(iter(query))):
        Item.find(**query)  # type: ignore[arg-type]


async def test_find_takes_any_iterable_of_field_names(db: discobase.Database) -> None:
    assert [i.name for i in Item.find(order_by=("-name", "id"), limit=1, offset=0)] == ["a"]
    assert [i.name for i in Item.find(order_by=iter(["name"]))] == ["a"]  # type: ignore[arg-type]


async def test_find_unique_refuses_a_strict_that_is_not_a_bool(db: discobase.Database) -> None:
    with pytest.raises(InvalidQuery, match="strict must be True or False, not 'no'"):
        await Item.find_unique(strict="no", name="a")  # type: ignore[call-overload]
    assert await Item.find_unique(strict=False, name="b") is None
