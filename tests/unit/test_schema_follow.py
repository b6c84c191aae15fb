"""Renames followed forward: a program on a field's former name reads and writes beside the
renamed one (pure parts: the names, the fill, what an update keeps, the state's index)."""

from __future__ import annotations

import dataclasses

from discobase.schema import keep_unknown, rename_fill, renamed_fields
from discobase.storage import Put
from discobase.storage.catalog import TableSpec, table_entry_body
from discobase.storage.evolution import FormerNames, follow_renames, former_names, plan_open
from discobase.storage.state import TableState
from tests.unit.tablefakes import catalog_entry, string_schema


def spec(fields: dict[str, bool], renames: dict[str, str] | None = None) -> TableSpec:
    return TableSpec("t", string_schema(fields), fields, {}, renames or {})


def test_a_field_has_its_later_names_and_its_former_ones() -> None:
    # `name`, then `title`, then `heading`: a program on `title` knows one of each.
    names = former_names({"heading": "title", "title": "name"}, ["title", "pages"])
    assert names.chains == {"title": ("name",)} and names.later == {"title": ("heading",)}
    assert names.sources == {"title": ("heading", "name")}  # the latest name first
    assert names.others == {"heading", "name"}
    assert dict(names) == {"title": "name"}
    assert names.links() == {"heading": "title", "title": "name"}
    # A program on `name` reads `heading` before `title`.
    on_name = former_names({"heading": "title", "title": "name"}, ["name"])
    assert on_name.sources == {"name": ("heading", "title")}
    # Only later names: an empty dict, but renames all the same (and recorded as such).
    only_later = former_names({"heading": "title"}, ["title"])
    assert dict(only_later) == {} and only_later and renamed_fields(only_later) == {"title"}
    assert not former_names({}, ["title"]) and not FormerNames()
    assert table_entry_body(spec({"title": False}, only_later), 5)["renames"] == {
        "heading": "title"
    }
    # A later name that is a field of the class too is not read for another field.
    assert former_names({"heading": "title"}, ["title", "heading"]).later == {}


def test_the_fill_reads_the_latest_name_a_record_holds() -> None:
    fill = rename_fill(former_names({"heading": "title", "title": "name"}, ["title"]), None)
    records = [{"heading": "v3"}, {"name": "v1"}, {"heading": "v3", "name": "v1"}, {}]
    assert fill(records) == [{"title": "v3"}, {"title": "v1"}, {"title": "v3"}, {}]
    assert fill([{"title": "own", "heading": "other"}]) == [{}]  # a record's own name wins
    on_name = rename_fill(former_names({"heading": "title", "title": "name"}, ["name"]), None)
    assert on_name([{"title": "v2", "heading": "v3"}, {"title": "v2"}]) == [
        {"name": "v3"},
        {"name": "v2"},
    ]
    # With the default factories' fill, which sees the renamed value.
    made = rename_fill(
        former_names({"heading": "title"}, ["title", "slug"]),
        lambda rows: [{"slug": row.get("title", "?").lower()} for row in rows],
    )
    assert made([{"heading": "Emma"}]) == [{"title": "Emma", "slug": "emma"}]


def test_an_update_writes_a_field_under_its_own_name_only() -> None:
    names = former_names({"heading": "title"}, ["title", "pages"])
    known = frozenset({"title", "pages"})
    # A record the renamed program wrote, as the older one holds it (`title` filled in).
    stored = {"heading": "Emma", "pages": 3, "isbn": "x", "title": "Emma"}
    data = {"title": "Emma 2", "pages": 3}
    assert keep_unknown(data, stored, known, names) == {**data, "isbn": "x"}
    # Before the rename is known, the later name is kept: the window the guide describes.
    assert keep_unknown(data, stored, known)["heading"] == "Emma"
    # Renames of names this class does not have are another program's fields: kept.
    others = former_names({"heading": "title", "b": "a"}, ["title"])
    assert keep_unknown({"title": "t"}, {"a": 1, "b": 2}, frozenset({"title"}), others) == {
        "title": "t",
        "a": 1,
        "b": 2,
    }


def test_an_open_table_follows_a_rename_recorded_later() -> None:
    opened = plan_open(catalog_entry({"title": False}), spec({"title": False})).spec
    assert isinstance(opened.renames, FormerNames) and not opened.renames
    assert follow_renames(opened, {}) is None
    names = follow_renames(opened, {"heading": "title"})
    assert names is not None and names.later == {"title": ("heading",)}
    followed = dataclasses.replace(opened, renames=names)
    assert follow_renames(followed, {"heading": "title"}) is None  # nothing new
    # A further rename is followed too, and the table's own former names stay.
    renamed = plan_open(
        catalog_entry({"name": False}), spec({"title": False}, {"title": "name"})
    ).spec
    names = follow_renames(renamed, {"heading": "title", "title": "name"})
    assert names is not None and names.sources == {"title": ("heading", "name")}
    # A table open for a migration keeps the renames it declared.
    assert follow_renames(spec({"title": False}), {"heading": "title"}) is None
    # A program that opens after the rename with the old field (both have defaults) reads
    # the new name as well.
    plan = plan_open(catalog_entry({"heading": True}, {"heading": "title"}), spec({"title": True}))
    assert plan.spec.renames.later == {"title": ("heading",)}  # type: ignore[attr-defined]


def test_an_index_holds_the_filled_values() -> None:
    state = TableState("t", {"title": False})
    state.load(10, [(1, {"heading": "Emma"}), (2, {"title": "Dune"})])
    assert list(state.lookup("title", "Emma") or ()) == []
    names = former_names({"heading": "title"}, ["title"])
    assert state.fill_missing(renamed_fields(names), rename_fill(names, None)) == 1
    assert list(state.lookup("title", "Emma") or ()) == [1]
    assert list(state.lookup("title", "Dune") or ()) == [2]
    # A record applied later is filled (and indexed) as it comes.
    state.apply(11, [Put(3, {"heading": "Walden"}), Put(1, {"heading": "Emma 2"})])
    assert list(state.lookup("title", "Walden") or ()) == [3]
    assert list(state.lookup("title", "Emma 2") or ()) == [1]
    assert list(state.lookup("title", "Emma") or ()) == []
