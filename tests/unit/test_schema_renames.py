"""Renames, pure parts: several former names, chains of renames, a rename back."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
import pytest

import discobase
from discobase.errors import SchemaMismatch, TableRegistrationError
from discobase.schema import declared_renames, keep_unknown, known_names, rename_fill
from discobase.storage.catalog import TableSpec, table_entry_body
from discobase.storage.evolution import FormerNames, plan_open, rename_chains
from tests.unit.tablefakes import catalog_entry, string_schema


def spec(field: str, renames: dict[str, str] | None = None) -> TableSpec:
    return TableSpec("t", string_schema({field: False}), {field: False}, {}, renames or {})


def fields_of(**annotations: Any) -> dict[str, Any]:
    model = pydantic.create_model("M", **{k: (v, ...) for k, v in annotations.items()})
    return dict(model.model_fields)


def test_renamed_takes_several_former_names_latest_first() -> None:
    renamed = discobase.Renamed("title", "name")
    assert renamed.names == ("title", "name") and renamed.old == "title"
    assert repr(renamed) == "Renamed('title', 'name')"
    assert renamed == discobase.Renamed("title", "name") != discobase.Renamed("title")
    assert discobase.Renamed("name").old == "name"  # one name, as before
    for bad in ((), ("",), ("a", "a"), (1,)):
        with pytest.raises(TypeError):
            discobase.Renamed(*bad)


def test_declared_renames_are_links_the_catalog_follows() -> None:
    fields = fields_of(heading=Annotated[str, discobase.Renamed("title", "name")])
    links = declared_renames(fields)
    assert links == {"heading": "title", "title": "name"}
    assert rename_chains(links, ["heading"]) == {"heading": ("title", "name")}
    assert known_names(fields, frozenset()) == {"heading", "title", "name"}
    with pytest.raises(TableRegistrationError, match="two fields"):
        declared_renames(
            fields_of(
                a=Annotated[str, discobase.Renamed("x")],
                b=Annotated[str, discobase.Renamed("y", "x")],
            )
        )
    with pytest.raises(TableRegistrationError, match="names its former name 'x' twice"):
        declared_renames(
            fields_of(a=Annotated[str, discobase.Renamed("x"), discobase.Renamed("y", "x")])
        )
    with pytest.raises(TableRegistrationError, match="still a field"):
        declared_renames(fields_of(a=Annotated[str, discobase.Renamed("b")], b=str))


def test_chains_stop_at_a_rename_back() -> None:
    # `a` became `b`, then `a` again: each name has the other as its former name.
    links = {"b": "a", "a": "b"}
    assert rename_chains(links) == {"b": ("a",), "a": ("b",)}
    former = FormerNames({"heading": ("title", "name"), "plain": ()})
    assert dict(former) == {"heading": "title"} and former.chains == {"heading": ("title", "name")}
    assert former.links() == {"heading": "title", "title": "name"}
    # What the catalog records is the links, not the dict's view of one name a field.
    assert table_entry_body(spec("heading", former), 5)["renames"] == former.links()


def test_a_fill_reads_the_latest_former_name_a_record_holds() -> None:
    fill = rename_fill(FormerNames({"heading": ("title", "name")}), None)
    records = [{"name": "v1"}, {"title": "v2", "name": "stale"}, {"heading": "v3"}, {}]
    assert fill(records) == [{"heading": "v1"}, {"heading": "v2"}, {}, {}]
    # Links work too: followed back for every name.
    assert rename_fill({"heading": "title", "title": "name"}, None)([{"name": 1}]) == [
        {"heading": 1, "title": 1}
    ]
    # An update drops every former name of the chain, not only the latest.
    stored = {"heading": "v1", "name": "v1", "size": 3}
    chains = FormerNames({"heading": ("title", "name")})
    assert keep_unknown({"heading": "x"}, stored, frozenset({"heading"}), chains) == {
        "heading": "x",
        "size": 3,
    }


def test_a_field_renamed_twice_opens_over_either_former_name() -> None:
    # Version 2 recorded name -> title; version 3 declares only title -> heading.
    after_v2 = catalog_entry({"title": False}, {"title": "name"})
    plan = plan_open(after_v2, spec("heading", {"heading": "title"}))
    assert isinstance(plan.spec.renames, FormerNames)
    assert plan.spec.renames.chains == {"heading": ("title", "name")}
    assert plan.record is not None
    assert plan.record.renames == {"title": "name", "heading": "title"}
    assert set(plan.record.fields) == {"heading"}
    assert plan.record.schema["required"] == ["heading"]
    # Version 1's table, opened by a class that declares both former names at once.
    plan = plan_open(
        catalog_entry({"name": False}), spec("heading", {"heading": "title", "title": "name"})
    )
    assert plan.record is not None and set(plan.record.fields) == {"heading"}
    assert plan.spec.renames.chains == {"heading": ("title", "name")}  # type: ignore[attr-defined]
    # Opening again changes nothing, and the spec still carries the chain.
    again = catalog_entry({"heading": False}, {"heading": "title", "title": "name"})
    plan = plan_open(again, spec("heading"))
    assert plan.record is None
    assert plan.spec.renames.chains == {"heading": ("title", "name")}  # type: ignore[attr-defined]
    # Versions 1 and 2 are refused, told every later name.
    with pytest.raises(SchemaMismatch, match="'name' was renamed to 'title', then to 'heading'"):
        plan_open(again, spec("name"))
    with pytest.raises(SchemaMismatch, match="'title' was renamed to 'heading'"):
        plan_open(again, spec("title", {"title": "name"}))


def test_a_rename_back_opens() -> None:
    after_v2 = catalog_entry({"b": False}, {"b": "a"})
    plan = plan_open(after_v2, spec("a", {"a": "b"}))
    assert plan.record is not None and set(plan.record.fields) == {"a"}
    assert plan.spec.renames.chains == {"a": ("b",)}  # type: ignore[attr-defined]
