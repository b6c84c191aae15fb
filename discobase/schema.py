"""Schema changes several versions of a program share (public API layer: no I/O).

Three pieces sit between the catalog's record of a table's schema (``storage/catalog.py``,
which decides what is compatible) and the records a program reads and writes:

- `Renamed` declares that a field was called something else in older records:
  ``title: Annotated[str, discobase.Renamed("name")]``. Records that store the old name are
  read under the new one (`rename_fill`), and every update writes the new name.
- `keep_unknown` gives a record about to be updated the stored fields its class does not
  know (fields a newer version of the program added), so an older program that updates a
  record does not erase them.
- `declared_renames` reads the declarations off a model's fields.

It must not know how records are stored (messages, snapshots): it sees stored records as the
JSON-mode dicts a store hands out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from discobase.errors import TableRegistrationError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = ["Renamed", "declared_renames", "keep_unknown", "known_names", "rename_fill"]

_Fill = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class Renamed:
    """Mark a table field as renamed: older records store it under ``old``.

    Args:
        old: the field's name in records written before the rename.

    Example:
        ```python
        class Item(discobase.Table):
            title: Annotated[str, discobase.Renamed("name")]
        ```

    Records that hold ``name`` (and no ``title``) are read with ``title`` set to its value;
    queries on ``title`` find them; an update writes ``title``. The catalog records the
    rename, so every program that opens the table afterwards reads older records the same
    way, whether it declares the rename or not.
    """

    __slots__ = ("old",)
    __match_args__ = ("old",)

    old: str

    def __init__(self, old: str) -> None:
        if not isinstance(old, str) or not old:
            raise TypeError(f"Renamed() takes the field's former name, not {old!r}")
        object.__setattr__(self, "old", old)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Renamed is immutable")

    def __repr__(self) -> str:
        return f"Renamed({self.old!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Renamed)
        return self.old == other.old

    def __hash__(self) -> int:
        return hash((Renamed, self.old))


def declared_renames(fields: Mapping[str, FieldInfo]) -> dict[str, str]:
    """Return ``{field: former name}`` of the fields annotated with `Renamed`.

    Raises:
        TableRegistrationError: a former name is a field of the class too, or two fields
            claim one former name.
    """
    renames: dict[str, str] = {}
    for name, info in fields.items():
        for item in info.metadata:
            if isinstance(item, Renamed):
                if item.old in fields:
                    raise TableRegistrationError(
                        f"field {name!r} is declared Renamed({item.old!r}), but {item.old!r} "
                        "is still a field of the class: remove it, or drop the rename"
                    )
                if item.old in renames.values():
                    raise TableRegistrationError(
                        f"two fields are declared Renamed({item.old!r}); one former name "
                        "becomes one field"
                    )
                renames[name] = item.old
    return renames


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
        for item in info.metadata:
            if isinstance(item, Renamed):
                names.add(item.old)
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
        renamed: former names of fields (from the catalog too): not kept, as they are
            written under the new name.
    """
    if stored is None:
        return data
    unknown = stored.keys() - known
    if not unknown:
        return data
    if renamed:
        unknown -= set(renamed.values())
    unknown -= data.keys()
    if not unknown:
        return data
    return {**data, **{name: stored[name] for name in unknown}}


def rename_fill(renames: Mapping[str, str], fill: _Fill | None) -> _Fill:
    """Return a fill (see ``TableState.fill_missing``) that reads renamed fields too.

    A record that lacks a renamed field but holds its former name gets the field with that
    value; ``fill`` (the default factories' fill) then makes the values of the rest.
    """
    pairs = tuple(renames.items())

    def fill_renamed(lacking: list[dict[str, Any]]) -> list[dict[str, Any]]:
        made = [
            {new: data[old] for new, old in pairs if new not in data and old in data}
            for data in lacking
        ]
        if fill is None:
            return made
        merged = [
            {**data, **mine} if mine else data for data, mine in zip(lacking, made, strict=True)
        ]
        rest = fill(merged)
        return [{**mine, **more} for mine, more in zip(made, rest, strict=True)]

    return fill_renamed
