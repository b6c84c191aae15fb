"""Schema evolution: whether a class may open a table another program version described, and
what the catalog records next (storage layer: pure; no I/O).

Schemas that several versions of a program share: the recorded schema is the union of what
the programs that opened the table declared. A program may lack a field the record says
records may lack (``fields[name]`` true: it had a default when it was added), add a field
with a default, widen a field's type (`accepts`), declare a rename and add indexes; every
such change is folded into the recorded schema, never taken out of it. Only a migration
(``replace=True``) records a schema as it is.

Renames are recorded as links, ``{"title": "name", "heading": "title"}``: each says what a
name was called before. A field renamed twice follows its links back (`rename_chains`), so
records stored under any of its former names are read under its name today. A program that
opened the table before a rename was recorded follows the links forward once the catalog
entry reaches it (`follow_renames`): it reads its field from the records the renamed
program writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from discobase.errors import SchemaMismatch, UniqueConflict
from discobase.storage.catalog import TableEntry, TableSpec, rename_links, schema_hash

__all__ = [
    "FormerNames",
    "OpenPlan",
    "accepts",
    "check_schema",
    "follow_renames",
    "former_names",
    "plan_open",
    "refuse_duplicates",
    "rename_chains",
]

_COSMETIC = frozenset({"title", "description", "default", "examples"})
_NO_VALUE = object()


class FormerNames(dict[str, str]):
    """The renamed fields of an open table: ``{field: its latest former name}``.

    As a dict it holds one former name a field; `chains` holds every one, the latest first
    (``{"heading": ("title", "name")}`` for a field called ``name``, then ``title``), which
    is what reading older records needs. `later` holds what a field was renamed to since,
    in order (``{"title": ("heading",)}`` for a program still on ``title``), which is what
    reading newer records needs; `sources` puts the two together. It is true when either is
    not empty.

    Args:
        chains: field -> its former names, the latest first; fields without one are left out.
        later: field -> the names it was renamed to, in order; fields without one left out.
    """

    __slots__ = ("chains", "later", "others", "sources")

    chains: dict[str, tuple[str, ...]]
    later: dict[str, tuple[str, ...]]
    #: Every former and later name of these fields: an update writes none of them.
    others: frozenset[str]
    #: Field -> the names a record may hold it under instead, the one to read first first.
    sources: dict[str, tuple[str, ...]]

    def __init__(
        self,
        chains: Mapping[str, Iterable[str]] | None = None,
        later: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        made = {name: tuple(olds) for name, olds in (chains or {}).items()}
        made = {name: olds for name, olds in made.items() if olds}
        super().__init__({name: olds[0] for name, olds in made.items()})
        self.chains = made
        newer = {name: tuple(news) for name, news in (later or {}).items()}
        self.later = {name: news for name, news in newer.items() if news}
        # A record holding several names of a field was last written under the latest one
        # (an older program that updated it kept the newer names it did not know).
        self.sources = {}
        for name in {**self.later, **made}:
            ordered = (*reversed(self.later.get(name, ())), *made.get(name, ()))
            self.sources[name] = tuple(dict.fromkeys(n for n in ordered if n != name))
        self.others = frozenset(n for names in self.sources.values() for n in names)

    def __bool__(self) -> bool:
        # A program on a field's former name knows only its later names: the dict is empty,
        # but the table has renames.
        return bool(self.sources)

    def links(self) -> dict[str, str]:
        """Return the rename links that make these names (what the catalog records)."""
        links: dict[str, str] = {}
        for name, olds in self.chains.items():
            for new, old in zip((name, *olds), olds, strict=False):
                links.setdefault(new, old)
        for name, news in self.later.items():
            for new, old in zip(news, (name, *news), strict=False):
                links.setdefault(new, old)
        return links

    def same(self, other: Mapping[str, str]) -> bool:
        """Tell whether ``other`` is a `FormerNames` of the same former and later names."""
        return (
            isinstance(other, FormerNames)
            and other.chains == self.chains
            and other.later == self.later
        )


def rename_chains(
    renames: Mapping[str, str], fields: Iterable[str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Return each field's former names, the latest first, following the rename links.

    A rename back to an earlier name (``a`` to ``b`` to ``a``) ends a chain: no name is
    listed twice, and a field is not its own former name.

    Args:
        renames: rename links ``{name: name before}``, or a `FormerNames`.
        fields: the fields to follow; every name that has a link when omitted.
    """
    if isinstance(renames, FormerNames) and fields is None:
        return dict(renames.chains)
    links = rename_links(renames)
    chains: dict[str, tuple[str, ...]] = {}
    for name in links if fields is None else fields:
        chain = _walk(links, name)
        if chain:
            chains[name] = tuple(chain)
    return chains


def _walk(step: Mapping[str, str], name: str) -> list[str]:
    """Follow ``step`` (a name -> the next name) from ``name`` until it ends or repeats."""
    names: list[str] = []
    seen = {name}
    after = step.get(name)
    while after is not None and after not in seen:
        names.append(after)
        seen.add(after)
        after = step.get(after)
    return names


def _successors(links: Mapping[str, str]) -> dict[str, str]:
    """Turn rename links ``{name: name before}`` round: ``{name: what it was renamed to}``."""
    return {old: new for new, old in links.items()}


def _later_names(links: Mapping[str, str], name: str) -> list[str]:
    """Return what ``name`` was renamed to, in order (``["title", "heading"]`` for ``name``)."""
    return _walk(_successors(links), name)


def former_names(links: Mapping[str, str], fields: Iterable[str]) -> FormerNames:
    """Return the former and later names of ``fields`` that the rename links give.

    A later name that is a field too (a class with both ``title`` and ``heading``) is left
    out: a field is never read from another field.

    Args:
        links: rename links ``{name: name before}``, or a `FormerNames`.
        fields: the fields of the class that opens the table.
    """
    fields = list(fields)
    links = rename_links(links)
    successors = _successors(links)
    later = {name: tuple(n for n in _walk(successors, name) if n not in fields) for name in fields}
    return FormerNames(rename_chains(links, fields), later)


def follow_renames(spec: TableSpec, links: Mapping[str, str]) -> FormerNames | None:
    """Return the names an open table's fields have once the catalog records ``links``.

    For a catalog entry that arrives while the table is open (another program declared a
    rename): a program still on a field's former name learns its later names, so that it
    reads what the renamed program writes, and its updates do not keep them.

    Args:
        spec: the spec the table is open with; a table open for a migration (its renames
            are not a `FormerNames`) keeps the renames it declared.
        links: the rename links of the table's newest catalog entry.

    Returns:
        The new names, or ``None`` when they are the same.
    """
    known = spec.renames
    if not isinstance(known, FormerNames):
        return None
    # The catalog's links, and the table's own where they differ (as `plan_open` merges).
    names = former_names({**links, **known.links()}, spec.fields)
    return None if known.same(names) else names


def _resolve(node: Any, defs: Mapping[str, Any], depth: int = 0, *, shape: bool = True) -> Any:
    """Inline ``$ref`` targets; with ``shape``, drop cosmetic keys, so only a type remains."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 16:
            target = defs.get(ref.removeprefix("#/$defs/"))
            if target is not None:
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return _resolve(merged, defs, depth + 1, shape=shape)
        return {
            k: _resolve(v, defs, depth, shape=shape)
            for k, v in node.items()
            if not (shape and k in _COSMETIC)
        }
    if isinstance(node, list):
        return [_resolve(v, defs, depth, shape=shape) for v in node]
    return node


def _field_types(schema: Mapping[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs") or {}
    props = schema.get("properties") or {}
    return {name: _resolve(prop, defs) for name, prop in props.items()}


def _options(node: Any) -> list[Any] | None:
    if isinstance(node, dict) and set(node) == {"anyOf"} and isinstance(node["anyOf"], list):
        return list(node["anyOf"])
    return None


def accepts(new: Any, old: Any) -> bool:
    """Tell whether every value of the resolved type ``old`` is a value of ``new``.

    Conservative: ``True`` only for what a reader of ``new`` surely reads, the same type, a
    union with more options (``int`` to ``int | None``), an integer as a number (``int`` to
    ``float``), a constraint dropped (``max_length``), more enum values, lists and dicts of
    wider items, nested models whose fields widen. Anything else is a change of type.
    """
    if new == old or new == {} or new is True:
        return True
    if not isinstance(new, dict) or not isinstance(old, dict):
        return False
    olds = _options(old)
    if olds is not None:
        return all(accepts(new, option) for option in olds)
    news = _options(new)
    if news is not None:
        return any(accepts(option, old) for option in news)
    kind_new, kind_old = new.get("type"), old.get("type")
    if kind_new != kind_old and not (kind_old == "integer" and kind_new == "number"):
        return False
    rest_new = {k: v for k, v in new.items() if k != "type"}
    rest_old = {k: v for k, v in old.items() if k != "type"}
    for key in ("items", "additionalProperties"):
        if key in rest_new or key in rest_old:
            if not accepts(rest_new.pop(key, {}), rest_old.pop(key, {})):
                return False
    if "enum" in rest_new and "enum" in rest_old:
        wider = rest_new.pop("enum")
        if not all(value in wider for value in rest_old.pop("enum")):
            return False
    if "properties" in rest_new or "properties" in rest_old:
        props_new = rest_new.pop("properties", {})
        props_old = rest_old.pop("properties", {})
        required_new = set(rest_new.pop("required", ()))
        required_old = set(rest_old.pop("required", ()))
        if not required_new <= required_old or not set(props_old) <= set(props_new):
            return False
        if not all(accepts(props_new[name], props_old[name]) for name in props_old):
            return False
    # What is left are constraints: the new type may drop some, not add or change any.
    return all(key in rest_old and rest_old[key] == value for key, value in rest_new.items())


def _describe(node: Any) -> str:
    """Name a resolved type briefly, for error messages (``integer | null``)."""
    options = _options(node)
    if options is not None:
        return " | ".join(_describe(option) for option in options)
    if isinstance(node, dict):
        if "enum" in node:
            return "one of " + ", ".join(repr(v) for v in node["enum"])
        kind = node.get("type")
        if kind == "array":
            return f"array of {_describe(node.get('items', {}))}"
        if isinstance(kind, str):
            return kind
    return "any" if node in ({}, True) else "another type"


@dataclass(frozen=True)
class OpenPlan:
    """What opening a table with a spec does to the catalog (see `plan_open`).

    Attributes:
        spec: the spec to open with: the program's fields, and the renames and indexes the
            catalog records beside its own (a unique index another program declared is
            enforced here too).
        record: the merged spec to record in the catalog, ``None`` when it changes nothing.
        new_unique: the fields a unique index is declared on for the first time: the
            table's records must hold no value twice there before ``record`` is written.
    """

    spec: TableSpec
    record: TableSpec | None
    new_unique: tuple[str, ...] = ()


_HOW_TO_MIGRATE = (
    "to make this change, rewrite the table with `await db.migrate({model}, transform=...)` "
    "while no other program writes it; register {model} inside `async with db.conn(...)`, "
    "before that call, since a class registered earlier stops the login here "
    "(docs/guide/schemas.md, 'Migrations'); "
    "or keep the stored fields and types, give new fields a default, or widen a type"
)


def plan_open(entry: TableEntry, spec: TableSpec, *, replace: bool = False) -> OpenPlan:
    """Check that ``spec`` may open a table stored with ``entry``, and merge the two.

    Compatible: fields the spec lacks that records may lack (they had a default when they
    were recorded; their stored values are kept by updates, see ``discobase.schema``), fields
    the spec adds with a default, types the spec widens (`accepts`), renames the spec declares
    or the catalog records (a field whose chain of former names, `rename_chains`, reaches a
    recorded field whose type it accepts), and indexes the spec adds. The recorded schema
    becomes the union: nothing a program leaves out is taken out, and a unique index stays
    unique. The spec to open with carries a `FormerNames` of its fields' former names (and
    of their later names, for a field with a default that the catalog records renamed).

    Args:
        entry: the table as the catalog records it.
        spec: what the program declares.
        replace: a migration: record ``spec`` exactly, unchecked.

    Raises:
        SchemaMismatch: naming every offending field and saying how to migrate: a field
            recorded as required that the spec lacks, a type narrowed or changed, a field
            added without a default, or made required where records may lack it.
    """
    if replace:
        return OpenPlan(spec, None if _same(entry, spec) else spec, _new_unique(entry, spec))
    # Every rename recorded by others and declared here, as links; each field of the spec
    # follows its links back to its former names (a field renamed twice has two).
    links = {**entry.renames, **rename_links(spec.renames)}
    names = former_names(links, spec.fields)
    chains = names.chains
    opening = TableSpec(spec.name, spec.schema, spec.fields, spec.indexes, names)
    if (
        entry.schema_hash == schema_hash(spec.schema)
        and entry.indexes == dict(spec.indexes)
        and links == entry.renames
    ):
        return OpenPlan(opening, None)
    old_types = _field_types(entry.schema)
    new_types = _field_types(spec.schema)

    def stored_name(name: str) -> str:
        """Return the name the stored schema knows ``name`` by (its latest former one)."""
        if name in entry.fields:
            return name
        return next((old for old in chains.get(name, ()) if old in entry.fields), name)

    # Stored field -> the spec's field that renames it.
    consumer = {stored_name(name): name for name in spec.fields if stored_name(name) != name}
    consumed = set(consumer)
    removed = sorted(
        name
        for name, absent_ok in entry.fields.items()
        if name not in spec.fields and name not in consumed and not absent_ok
    )

    changed: list[str] = []
    details: list[str] = []
    for name in spec.fields:
        if stored_name(name) not in entry.fields:
            continue
        old, new = old_types.get(stored_name(name)), new_types.get(name)
        if old != new and not accepts(new, old):
            changed.append(name)
            details.append(f"{name}: stored {_describe(old)}, declared {_describe(new)}")

    bare = sorted(
        name
        for name, default in spec.fields.items()
        if not default and stored_name(name) not in entry.fields
    )
    required = sorted(
        name
        for name, default in spec.fields.items()
        if not default and entry.fields.get(stored_name(name), False)
    )
    problems: list[str] = []
    if removed:
        problems.append(
            "removed: " + ", ".join(removed) + " (required by the stored schema, so other "
            "programs could not read records this one writes; give it a default first)"
        )
    if changed:
        problems.append("narrowed or changed type: " + "; ".join(details))
    if bare:
        problems.append("added without a default: " + ", ".join(bare))
        for name in bare:
            later = _later_names(entry.renames, name)
            if later:
                problems.append(
                    f"{name!r} was renamed to "
                    + ", then to ".join(repr(n) for n in later)
                    + " (declare it so, or read the table with a class that does)"
                )
    if required:
        problems.append("made required: " + ", ".join(required) + " (stored records may lack it)")
    if problems:
        model = spec.schema.get("title") or spec.name.capitalize()
        raise SchemaMismatch(
            f"table {spec.name!r} does not match its stored schema ({'; '.join(problems)}); "
            + _HOW_TO_MIGRATE.format(model=model),
            table=spec.name,
            fields=removed + sorted(changed) + bare + required,
        )
    merged = _merge(entry, spec, stored_name, consumer, old_types, new_types)
    indexes = dict(entry.indexes)
    for name, unique in spec.indexes.items():
        indexes[name] = indexes.get(name, False) or unique
    opened = TableSpec(spec.name, spec.schema, spec.fields, indexes, opening.renames)
    new_unique = tuple(sorted(n for n, u in indexes.items() if u and not entry.indexes.get(n)))
    record = TableSpec(spec.name, merged[0], merged[1], indexes, links)
    if _same(entry, record):
        return OpenPlan(opened, None)
    return OpenPlan(opened, record, new_unique)


def _same(entry: TableEntry, spec: TableSpec) -> bool:
    return (
        entry.schema_hash == schema_hash(spec.schema)
        and entry.fields == dict(spec.fields)
        and entry.indexes == dict(spec.indexes)
        and entry.renames == rename_links(spec.renames)
    )


def _new_unique(entry: TableEntry, spec: TableSpec) -> tuple[str, ...]:
    return tuple(sorted(n for n, u in spec.indexes.items() if u and not entry.indexes.get(n)))


def _merge(
    entry: TableEntry,
    spec: TableSpec,
    stored_name: Callable[[str], str],
    consumer: Mapping[str, str],
    old_types: Mapping[str, Any],
    new_types: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, bool]]:
    """Return the union of the stored schema and the spec's, and its fields' flags.

    A stored property stays as recorded unless the spec widens it (cosmetic differences do
    not flip the record back and forth between two programs); the spec's new properties are
    inlined (their ``$ref`` targets copied in), so no ``$defs`` entry of two programs clash.

    Args:
        stored_name: a spec field -> the name the stored schema knows it by.
        consumer: a stored field a spec field renames -> that spec field.
    """
    stored = entry.schema
    spec_defs = spec.schema.get("$defs") or {}
    properties: dict[str, Any] = {
        name: prop
        for name, prop in (stored.get("properties") or {}).items()
        if name not in consumer
    }
    fields = {name: flag for name, flag in entry.fields.items() if name not in consumer}
    for name, prop in (spec.schema.get("properties") or {}).items():
        before = stored_name(name)
        if before in entry.fields and old_types.get(before) == new_types.get(name):
            if before != name:  # renamed: the stored property under its new name
                properties[name] = (stored.get("properties") or {}).get(before, prop)
                fields[name] = entry.fields[before]
            continue
        properties[name] = _resolve(prop, spec_defs, shape=False)
        fields[name] = entry.fields.get(before, True)
    required = [
        renamed
        for name in stored.get("required") or ()
        for renamed in [consumer.get(name, name)]
        if renamed in properties
    ]
    schema = {k: v for k, v in stored.items() if k not in ("properties", "required")}
    schema["properties"] = properties
    if required:
        schema["required"] = required
    return schema, fields


def refuse_duplicates(
    table: str,
    records: Mapping[int, Mapping[str, Any]],
    fields: Iterable[str],
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a unique index on fields whose values some records already share.

    Args:
        table: the table's name (for the error).
        records: the table's records, as stored.
        fields: the fields a unique index is declared on for the first time.
        defaults: JSON-mode defaults, the values of records that lack a field.

    Raises:
        UniqueConflict: naming each field, each value held twice and the records holding it.
    """
    duplicates: dict[str, dict[str, list[int]]] = {}
    for name in fields:
        holders: dict[str, list[int]] = {}
        default = (defaults or {}).get(name, _NO_VALUE)
        for record_id, data in records.items():
            value = data.get(name, default)
            if value is not _NO_VALUE:
                key = json.dumps(value, sort_keys=True, ensure_ascii=False)
                holders.setdefault(key, []).append(record_id)
        shared = {key: sorted(ids) for key, ids in holders.items() if len(ids) > 1}
        if shared:
            duplicates[name] = shared
    if not duplicates:
        return
    named = "; ".join(
        f"{name} = {value} in records {', '.join(map(str, ids))}"
        for name, shared in duplicates.items()
        for value, ids in list(shared.items())[:10]
    )
    count = sum(len(shared) for shared in duplicates.values())
    raise UniqueConflict(
        f"table {table!r} cannot have a unique index on {', '.join(duplicates)}: {count} "
        f"value(s) are already held by several records ({named}); nothing was recorded. Make "
        "the values unique first (update or delete the records with the index declared "
        "without unique=True, or with db.migrate), then declare it unique",
        table=table,
        duplicates=duplicates,
    )


def check_schema(entry: TableEntry, spec: TableSpec) -> bool:
    """Check that ``spec`` may open a table stored with ``entry``'s schema.

    Returns:
        Whether the catalog should record a new schema (see `plan_open`).

    Raises:
        SchemaMismatch: as `plan_open`.
    """
    return plan_open(entry, spec).record is not None
