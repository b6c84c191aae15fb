"""What the public API gives back from a real TableState, whose records are held compactly
(storage/rows.py): valid instances of the model, independent of what is stored, and a record
that does not fit reported once however often it is read."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import pytest

import discobase
from discobase.storage.codec import Put
from tests.unit.tablefakes import StateEngine as Engine

database = discobase.Database("compact records")


@database.table
class Flat(discobase.Table):
    """Plain scalars: found records are built without validation (see _plain_records)."""

    name: Annotated[str, discobase.Index()]
    age: int
    score: float
    ok: bool
    note: str | None = None


@database.table
class Nested(discobase.Table):
    """Lists and dicts: found records are validated."""

    name: Annotated[str, discobase.Index()]
    tags: list[str] = []
    meta: dict[str, list[int]] = {}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    made = Engine()
    await database._use_storage(made)  # type: ignore[arg-type]
    yield made
    await database.close()


async def test_found_records_are_valid_and_changing_them_changes_nothing_stored(
    engine: Engine,
) -> None:
    await Flat.save_many([Flat(name=f"f{i}", age=i, score=i / 2, ok=i % 2 == 0) for i in range(50)])
    await Nested.save_many(
        [Nested(name=f"n{i}", tags=["a", str(i)], meta={"k": [i, -i]}) for i in range(50)]
    )
    for store in engine.stores.values():
        store.reload()
    [flat] = Flat.find(name="f7")
    [nested] = Nested.find(name="n7")
    for found, model in ((flat, Flat), (nested, Nested)):
        assert type(found) is model
        assert model.model_validate(found.model_dump()).model_dump() == found.model_dump()
    assert (flat.age, flat.score, flat.ok, flat.note) == (7, 3.5, False, None)
    assert (nested.tags, nested.meta) == (["a", "7"], {"k": [7, -7]})
    flat_stored = dict(engine.stores["flat"].get(flat.id) or {})
    nested_stored = engine.stores["nested"].get(nested.id)
    flat.age, flat.note = 70, "changed"
    nested.tags.append("changed")
    nested.meta["k"].append(0)
    nested.meta["new"] = []
    assert engine.stores["flat"].get(flat.id) == flat_stored
    assert nested_stored == {"name": "n7", "tags": ["a", "7"], "meta": {"k": [7, -7]}}
    assert engine.stores["nested"].get(nested.id) == nested_stored
    [again] = Flat.find(name="f7")
    [nested_again] = Nested.find(name="n7")
    assert again.age == 7 and again.note is None and again is not flat
    assert nested_again.tags == ["a", "7"] and nested_again.meta == {"k": [7, -7]}
    await flat.update()
    assert Flat.find(name="f7")[0].age == 70  # saved: now it is stored


async def test_a_stored_record_that_does_not_fit_is_reported_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await Flat(name="fits", age=1, score=1.0, ok=True).save()
    store = engine.stores["flat"]
    store.state.apply(10**9, [Put(4242, {"name": "bad", "age": "many"})])
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        for _ in range(3):
            assert [r.name for r in Flat.find()] == ["fits"]
            assert Flat.find(name="bad") == []
    reports = [r for r in caplog.records if "4242" in r.getMessage()]
    assert len(reports) == 1
    store.state.apply(10**9 + 1, [Put(4242, {"name": "bad", "age": "still many"})])
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        assert [r.name for r in Flat.find()] == ["fits"]
    assert len([r for r in caplog.records if "4242" in r.getMessage()]) == 2  # rewritten
