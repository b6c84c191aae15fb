"""Aliased fields are stored and queried by field name; older alias-keyed records still read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pydantic
import pytest
from pydantic.alias_generators import to_camel

import discobase
from tests.unit.tablefakes import FakeEngine

database = discobase.Database("aliases")


@database.table
class Person(discobase.Table):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, serialize_by_alias=True)
    full_name: str
    age: int = 0


@pytest.fixture
async def db() -> AsyncIterator[discobase.Database]:
    engine = FakeEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield database
    await database.close()


async def test_records_are_stored_by_field_name_even_with_serialize_by_alias(
    db: discobase.Database,
) -> None:
    await Person(fullName="Ann", age=3).save()
    store = Person.__discobase_binding__.require_store()  # type: ignore[union-attr]
    assert list(store.records().values()) == [{"full_name": "Ann", "age": 3}]
    assert [p.full_name for p in Person.find(full_name="Ann", age=3)] == ["Ann"]


async def test_a_record_stored_under_aliases_by_an_older_version_still_reads(
    db: discobase.Database,
) -> None:
    db._engine.stores["person"].put_now(7, {"fullName": "Old", "age": 1})  # type: ignore[union-attr]
    assert [(p.id, p.full_name) for p in Person.find()] == [(7, "Old")]
