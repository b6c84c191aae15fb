"""The pure parts of schema evolution: type widening, merging, duplicates, keeping fields."""

from __future__ import annotations

from typing import Any

import pytest

from discobase.errors import SchemaMismatch, UniqueConflict, UniqueViolation
from discobase.schema import keep_unknown, rename_fill
from discobase.storage import Put
from discobase.storage.catalog import TableEntry, TableSpec, schema_hash
from discobase.storage.evolution import accepts, plan_open, refuse_duplicates
from discobase.storage.state import TableState

INT = {"type": "integer"}
STR = {"type": "string"}
NULL = {"type": "null"}


@pytest.mark.parametrize(
    ("new", "old"),
    [
        ({"anyOf": [INT, NULL]}, INT),
        ({"type": "number"}, INT),
        ({"anyOf": [STR, NULL]}, STR),
        (STR, {"type": "string", "maxLength": 5}),
        ({"enum": ["a", "b"], "type": "string"}, {"enum": ["a"], "type": "string"}),
        ({"type": "array", "items": {"type": "number"}}, {"type": "array", "items": INT}),
        ({}, INT),
    ],
)
def test_widening_accepts_every_old_value(new: Any, old: Any) -> None:
    assert accepts(new, old)
    assert not accepts(old, new)


@pytest.mark.parametrize(("new", "old"), [(STR, INT), (INT, {"type": "number"}), (INT, STR)])
def test_other_changes_are_not_widening(new: Any, old: Any) -> None:
    assert not accepts(new, old)


def stored(props: dict[str, Any], fields: dict[str, bool], **kw: Any) -> TableEntry:
    schema = {"title": "T", "type": "object", "properties": props}
    return TableEntry("t", 1, schema, schema_hash(schema), fields, kw.get("indexes", {}), 1, 1)


def test_the_catalog_records_the_union() -> None:
    entry = stored({"name": STR, "size": {**INT, "default": 1}}, {"name": False, "size": True})
    older = TableSpec("t", {"properties": {"name": STR}}, {"name": False})
    assert plan_open(entry, older).record is None  # leaves size out: nothing to record
    wider = TableSpec(
        "t",
        {"properties": {"name": {"anyOf": [STR, NULL]}, "tag": {**STR, "default": ""}}},
        {"name": False, "tag": True},
        {"name": True},
    )
    plan = plan_open(entry, wider)
    assert plan.record is not None and plan.new_unique == ("name",)
    props = plan.record.schema["properties"]
    assert set(props) == {"name", "size", "tag"} and props["name"]["anyOf"]
    assert plan.record.fields == {"name": False, "size": True, "tag": True}
    with pytest.raises(SchemaMismatch, match="narrowed"):
        plan_open(stored(props, dict(plan.record.fields)), older)


def test_duplicates_are_named_and_unchanged_keys_stay_writable() -> None:
    records = {1: {"email": "a"}, 2: {"email": "a"}, 3: {"email": "b"}}
    with pytest.raises(UniqueConflict) as caught:
        refuse_duplicates("t", records, ["email"])
    assert caught.value.duplicates == {"email": {'"a"': [1, 2]}}
    state = TableState("t", {"email": True})
    state.load(10, [(i, dict(d)) for i, d in records.items()])
    state.check([Put(1, {"email": "a", "more": 1})])  # its own value, kept: no new duplicate
    with pytest.raises(UniqueViolation):
        state.check([Put(3, {"email": "a"})])


def test_updates_keep_unknown_fields_and_renames_read_old_names() -> None:
    known = frozenset({"name"})
    assert keep_unknown({"name": "b"}, {"name": "a", "size": 3}, known) == {"name": "b", "size": 3}
    assert keep_unknown({"name": "b"}, None, known) == {"name": "b"}
    fill = rename_fill({"title": "name"}, None)
    assert fill([{"name": "Dune"}, {}]) == [{"title": "Dune"}, {}]
