"""Found by a property-based hunt on the public API: bad input raises a typed error and what
is saved reads back exactly, or is refused before anything is written."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest

import discobase
from discobase.errors import InvalidQuery, UnstorableRecord, UsageError
from tests.unit.tablefakes import FakeEngine

database = discobase.Database("hunt api")


class Reading(pydantic.BaseModel):
    values: list[float] = []
    spare: float | None = None


@database.table
class Sample(discobase.Table):
    data: Any = None
    reading: Reading = Reading()
    label: str = ""


@database.table
class Loose(discobase.Table):  # no nested model: a null in its batch is no reason to look
    data: Any = None
    label: str = ""


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await database._use_storage(fake)  # type: ignore[arg-type]
    yield fake
    await database.close()


async def test_save_many_of_something_not_iterable_is_a_usage_error(engine: FakeEngine) -> None:
    for junk in (None, 5):
        with pytest.raises(UsageError, match=r"takes a list of Sample records, not"):
            Sample.save_many(junk)  # type: ignore[arg-type]
    assert Sample.count() == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"data": math.nan},  # an Any field would read back the str "NaN"
        {"data": {"a": [1, -math.inf]}},
        {"reading": Reading(spare=math.inf)},  # a nested model writes it as null: None
    ],
    ids=["any-nan", "any-nested-inf", "nested-optional-inf"],
)
async def test_a_non_finite_float_that_would_not_read_back_is_refused(
    engine: FakeEngine, fields: dict[str, Any]
) -> None:
    with pytest.raises(UnstorableRecord, match="NaN or an infinity") as caught:
        Sample(**fields).save()
    assert caught.value.field == next(iter(fields))
    big = [Sample(label=str(i)) for i in range(70)] + [Sample(**fields)]
    with pytest.raises(UnstorableRecord, match="NaN or an infinity"):
        Sample.save_many(big)  # the large batch path, checked a slice at a time
    saved = await Sample(label="kept").save()
    with pytest.raises(UnstorableRecord):
        await Sample.find(id=saved.id).update_many(**fields)
    assert [(s.label, s.data) for s in Sample.find()] == [("kept", None)]


async def test_a_large_save_many_refuses_a_nested_nan_as_save_does(engine: FakeEngine) -> None:
    # A nested model writes NaN as null, which its float list refuses on reading: save()
    # refused it, and a batch of 64 or more was stored and then skipped by every query.
    with pytest.raises(UnstorableRecord, match="would not read back"):
        Sample(reading=Reading(values=[math.nan])).save()
    big = [Sample(reading=Reading(values=[math.nan])) for _ in range(70)]
    with pytest.raises(UnstorableRecord, match="would not read back"):
        Sample.save_many(big)
    assert Sample.count() == 0
    assert all(s.id is None for s in big)


async def test_non_finite_floats_that_read_back_are_still_stored(engine: FakeEngine) -> None:
    saved = await Sample(data="NaN", label="Infinity", reading=Reading(values=[1.5])).save()
    (again,) = Sample.find(id=saved.id)
    assert (again.data, again.label, again.reading.values) == ("NaN", "Infinity", [1.5])


@pytest.mark.parametrize("order_by", ["--label", "-", ["label", "--data"]])
async def test_order_by_takes_one_minus_at_most(engine: FakeEngine, order_by: Any) -> None:
    # "--label" was read as "-label": a misspelling ordered the records instead of failing.
    await Sample(label="a").save()
    with pytest.raises(InvalidQuery, match="optionally prefixed with '-'"):
        Sample.find(order_by=order_by)
    assert [s.label for s in Sample.find(order_by="-label")] == ["a"]


async def test_a_query_value_with_no_json_form_is_an_invalid_query(engine: FakeEngine) -> None:
    # An Any field validates any object; serialising it raised pydantic's bare error.
    await Sample(data=1).save()
    for query in ({"data": object()}, {"data": {"a": object()}}):
        with pytest.raises(InvalidQuery, match="no JSON form"):
            Sample.find(**query)
        with pytest.raises(InvalidQuery, match="no JSON form"):
            Sample.count(**query)


async def test_a_large_save_many_writes_an_any_fields_infinity_as_save_does(
    engine: FakeEngine,
) -> None:
    # The batch's list adapter wrote -inf in an Any field as null: stored, read back as None.
    big = [Loose(label=str(i)) for i in range(70)] + [Loose(data={"a": [-math.inf]})]
    with pytest.raises(UnstorableRecord, match="NaN or an infinity"):
        Loose.save_many(big)
    assert Loose.count() == 0
