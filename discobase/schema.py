"""Schema changes several versions of a program share (public API layer: no I/O).

Three pieces sit between the catalog's record of a table's schema (``storage/catalog.py``,
which decides what is compatible) and the records a program reads and writes:

- `Renamed` declares that a field was called something else in older records:
  ``title: Annotated[str, discobase.Renamed("name")]``; a field renamed more than once names
  each former name, the latest first: ``Renamed("title", "name")``. Records that store a
  former name are read under the new one (`rename_fill`), and every update writes the new
  name. A program still on the former name reads the new one the same way once the
  catalog's record of the rename reaches it.
- `keep_unknown` gives a record about to be updated the stored fields its class does not
  know (fields a newer version of the program added), so an older program that updates a
  record does not erase them; but not another name of one of its own fields.
- `declared_renames` reads the declarations off a model's fields, as the rename links the
  catalog records (``{"heading": "title", "title": "name"}``; ``storage/catalog.py`` follows
  them back, also through renames other programs recorded).

It must not know how records are stored (messages, snapshots): it sees stored records as the
JSON-mode dicts a store hands out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from discobase.errors import TableRegistrationError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = [
    "Renamed",
    "declared_renames",
    "keep_unknown",
    "known_names",
    "rename_fill",
    "renamed_fields",
]

_Fill = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class Renamed:
    """Mark a table field as renamed: older records store it under a former name.

    Args:
        *old: the field's former names, the latest first: ``Renamed("title", "name")`` for
            a field that was called ``name``, then ``title``. At least one.

    Example:
        ```python
        class Item(discobase.Table):
            title: Annotated[str, discobase.Renamed("name")]
        ```

    Records that hold ``name`` (and no ``title``) are read with ``title`` set to its value;
    queries on ``title`` find them; an update writes ``title``. The catalog records the
    rename, so every program that opens the table afterwards reads older records the same
    way, whether it declares the rename or not. A field renamed again follows every rename
    the catalog records: declaring only its latest former name is enough once the earlier
    rename is recorded.

    Raises:
        TypeError: no former name, one that is not a non-empty string, or one given twice.
    """

    __slots__ = ("names",)
    __match_args__ = ("old",)

    names: tuple[str, ...]

    def __init__(self, *old: str) -> None:
        if not old:
            raise TypeError("Renamed() takes the field's former name (or names, latest first)")
        for name in old:
            if not isinstance(name, str) or not name:
                raise TypeError(f"Renamed() takes the field's former names, not {name!r}")
        if len(set(old)) != len(old):
            raise TypeError(f"Renamed() names a former name twice: {old!r}")
        object.__setattr__(self, "names", tuple(old))

    @property
    def old(self) -> str:
        """The field's latest former name."""
        return self.names[0]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Renamed is immutable")

    def __repr__(self) -> str:
        return f"Renamed({', '.join(map(repr, self.names))})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Renamed)
        return self.names == other.names

    def __hash__(self) -> int:
        return hash((Renamed, self.names))


def _former_names(info: FieldInfo) -> list[str]:
    """Return a field's declared former names, the latest first (``Renamed`` in order)."""
    return [name for item in info.metadata if isinstance(item, Renamed) for name in item.names]


def declared_renames(fields: Mapping[str, FieldInfo]) -> dict[str, str]:
    """Return the rename links ``{name: name before}`` that the fields' `Renamed` declare.

    A field with one former name gives one link, ``{"title": "name"}``; a field with
    several, ``Renamed("title", "name")`` on ``heading``, gives one link per rename:
    ``{"heading": "title", "title": "name"}``.

    Raises:
        TableRegistrationError: a former name is a field of the class too, a field names
            itself or one former name twice, or two fields claim one former name.
    """
    links: dict[str, str] = {}
    claimed: dict[str, str] = {}
    for name, info in fields.items():
        olds = _former_names(info)
        for old in olds:
            if old in fields:
                raise TableRegistrationError(
                    f"field {name!r} is declared Renamed({old!r}), but {old!r} "
                    "is still a field of the class: remove it, or drop the rename"
                )
            if claimed.get(old) == name:
                raise TableRegistrationError(f"field {name!r} names its former name {old!r} twice")
            if old in claimed:
                raise TableRegistrationError(
                    f"two fields are declared Renamed({old!r}); one former name becomes one field"
                )
            claimed[old] = name
        for new, old in zip([name, *olds], olds, strict=False):
            links[new] = old
    return links


def known_names(fields: Mapping[str, FieldInfo], computed: frozenset[str]) -> frozenset[str]:
    """Return every key a stored record may hold for a field the class knows.

    The field names, their aliases (records of models that serialised by alias), computed
    fields (older records may hold them) and former names (`Renamed`).
    """
    names = set(fields) | set(computed)
    for info in fields.values():
        for alias in (info.alias, info.validation_alias, info.serialization_alias):
            if isinstance(alias, str):
                names.add(alias)
        names.update(_former_names(info))
    return frozenset(names)


def keep_unknown(
    data: dict[str, Any],
    stored: Mapping[str, Any] | None,
    known: frozenset[str],
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return ``data`` (a record about to be written) with the stored fields it cannot know.

    An older version of a program reads a record written by a newer one without the fields
    the newer one added (pydantic ignores them); writing the record back must not erase
    them. Costs a set difference when the stored record holds nothing unknown.

    Args:
        data: the JSON-mode dict about to be written.
        stored: the record as stored now (``None`` for a new record).
        known: what `known_names` returns for the class.
        renamed: the renames the table knows now: the store's ``FormerNames`` (the
            catalog's, followed while the table is open), whose former and later names of
            the class's fields are not kept, as the field is written under its own name;
            or rename links, whose former names are not kept.
    """
    if stored is None:
        return data
    unknown = stored.keys() - known
    if not unknown:
        return data
    if renamed:
        unknown -= _other_names(renamed)
    unknown -= data.keys()
    if not unknown:
        return data
    return {**data, **{name: stored[name] for name in unknown}}


def _sources(renames: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Return field -> the other names to read it from, the one to read first first."""
    sources = getattr(renames, "sources", None)  # a FormerNames knows them
    if isinstance(sources, dict):
        return sources
    # Loaded here, not at import: `import discobase` does not load the storage layer, and a
    # table opens only once it is loaded.
    from discobase.storage.evolution import rename_chains

    return rename_chains(renames)


def _other_names(renames: Mapping[str, str]) -> frozenset[str]:
    others = getattr(renames, "others", None)  # a FormerNames knows them
    if isinstance(others, frozenset):
        return others
    return frozenset(n for names in _sources(renames).values() for n in names)


def renamed_fields(renames: Mapping[str, str]) -> frozenset[str]:
    """Return the fields `rename_fill` reads from other names (given the same renames)."""
    return frozenset(_sources(renames))


def rename_fill(renames: Mapping[str, str], fill: _Fill | None) -> _Fill:
    """Return a fill (see ``TableState.fill_missing``) that reads renamed fields too.

    A record that lacks a renamed field but holds another of its names gets the field with
    the value of the latest one it holds: a former name (a field renamed twice reads
    records of either former name), or, in a program that opened the table before the
    field was renamed, a later name (what the renamed program writes). ``fill`` (the
    default factories' fill) then makes the values of the rest.

    Args:
        renames: the table's ``FormerNames`` as it is open (or rename links
            ``{name: name before}``, followed back for every name).
        fill: the default factories' fill, or ``None``.
    """
    pairs = tuple(_sources(renames).items())

    def values(data: dict[str, Any]) -> dict[str, Any]:
        mine: dict[str, Any] = {}
        for new, olds in pairs:
            if new not in data:
                for old in olds:
                    if old in data:
                        mine[new] = data[old]
                        break
        return mine

    def fill_renamed(lacking: list[dict[str, Any]]) -> list[dict[str, Any]]:
        made = [values(data) for data in lacking]
        if fill is None:
            return made
        merged = [
            {**data, **mine} if mine else data for data, mine in zip(lacking, made, strict=True)
        ]
        rest = fill(merged)
        return [{**mine, **more} for mine, more in zip(made, rest, strict=True)]

    return fill_renamed
