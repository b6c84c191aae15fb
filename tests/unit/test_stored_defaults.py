"""A field's default is compared in the form records store it (infinities as strings)."""

from __future__ import annotations

import math
import warnings
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from discobase.storage.catalog import TableSpec
from tests.unit.tablefakes import StateEngine, put

database = discobase.Database("stored defaults")


class Size(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(ser_json_inf_nan="strings")
    width: float = math.inf


@database.table
class Item(discobase.Table):
    name: str
    score: float = math.inf
    ranked: Annotated[float, discobase.Index()] = math.inf
    floor: float | None = -math.inf
    size: Size = Size()


@pytest.fixture
async def db() -> AsyncIterator[discobase.Database]:
    await database._use_storage(StateEngine())  # type: ignore[arg-type]
    store = Item.__discobase_binding__.require_store()  # type: ignore[union-attr]
    # "new" holds the defaults as a record written now stores them; "old" predates them.
    await Item(name="new").save()
    await Item(name="finite", score=1.0, ranked=1.0, floor=0.0).save()
    put(store, {99: {"name": "old"}})  # last: another process's entry is later in the log
    yield database
    await database.close()


def names(records: list[Any]) -> list[str]:
    return sorted(record.name for record in records)


@pytest.mark.parametrize("field", ["score", "ranked"])
async def test_a_record_lacking_an_infinite_default_matches_it(
    db: discobase.Database, field: str
) -> None:
    assert names(await Item.find(**{field: math.inf})) == ["new", "old"]
    assert names(await Item.find(**{field: discobase.one_of(math.inf)})) == ["new", "old"]
    assert names(await Item.find(**{field: discobase.gt(5.0)})) == ["new", "old"]
    assert names(await Item.find(**{field: discobase.lt(5.0)})) == ["finite"]
    assert await Item.count(**{field: math.inf}) == 2
    ordered = await Item.find(order_by=f"-{field}", limit=2)
    assert names(ordered) == ["new", "old"]


async def test_a_negative_infinity_default_under_an_optional_type(db: discobase.Database) -> None:
    assert names(await Item.find(floor=-math.inf)) == ["new", "old"]
    assert names(await Item.find(floor=discobase.lt(0.0))) == ["new", "old"]


async def test_a_nested_model_default_is_stored_by_its_own_settings(
    db: discobase.Database,
) -> None:
    # A model's own config decides its dump (an adapter of it takes no config of ours).
    assert names(await Item.find(size=Size())) == ["finite", "new", "old"]


def test_the_schema_records_defaults_as_records_store_them() -> None:
    binding = Item.__discobase_binding__
    assert binding is not None
    schema = binding.schema()
    properties = schema["properties"]
    assert properties["score"]["default"] == "Infinity"
    assert properties["floor"]["default"] == "-Infinity"
    assert properties["size"]["default"] == {"width": "Infinity"}  # nested
    # What a table's store keys older records by (its indexes) is then what records hold.
    spec = TableSpec("item", schema, binding.has_default(), binding.indexes)
    assert spec.defaults()["ranked"] == "Infinity"


encoded = discobase.Database("stored defaults, json_encoders")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", pydantic.warnings.PydanticDeprecatedSince20)

    @encoded.table
    class Account(discobase.Table):
        # Deprecated, yet pydantic still dumps records with it: so must a default be.
        model_config = pydantic.ConfigDict(json_encoders={Decimal: float})
        name: str
        balance: Decimal = Decimal("2.5")
        credit: Decimal = pydantic.Field(default_factory=lambda: Decimal("0.5"))


@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
async def test_defaults_are_dumped_with_the_models_json_encoders() -> None:
    await encoded._use_storage(StateEngine())  # type: ignore[arg-type]
    try:
        store = Account.__discobase_binding__.require_store()  # type: ignore[union-attr]
        await Account(name="new").save()
        put(store, {99: {"name": "old"}})  # predates both fields: filled or read by default
        assert names(await Account.find(balance=Decimal("2.5"))) == ["new", "old"]
        assert names(await Account.find(credit=Decimal("0.5"))) == ["new", "old"]
    finally:
        await encoded.close()
