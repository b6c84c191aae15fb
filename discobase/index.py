"""Index declarations on table fields (public API layer: plain data, no I/O, no storage).

A field is indexed by annotating it: ``name: Annotated[str, discobase.Index()]``. Pydantic keeps
unknown ``Annotated`` metadata on the field, so the declaration costs nothing until a table is
built; the storage layer then keeps a hash index for the field, which turns an equality query
on it into a lookup instead of a scan, and, from the first range, prefix or ordered query on
the field, its values in order (docs/guide/indexes.md, "Ranges and prefixes").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = ["Index", "declared_indexes"]


class Index:
    """Mark a table field as indexed: equality, ``one_of``, ranges and prefixes on it, and
    ordering by it with a ``limit``, read the index instead of every record.

    Args:
        unique: refuse a write that would give two records the same value of this field
            (`UniqueViolation`).

    Example:
        ```python
        class User(discobase.Table):
            email: Annotated[str, discobase.Index(unique=True)]
            name: Annotated[str, discobase.Index()]
        ```
    """

    # Written out rather than a frozen dataclass: `dataclasses` imports `inspect`, a tenth of
    # `import discobase`. Immutable, compared and hashed by value, as the dataclass was.
    __slots__ = ("unique",)
    __match_args__ = ("unique",)

    unique: bool

    def __init__(self, unique: bool = False) -> None:
        object.__setattr__(self, "unique", unique)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Index is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Index is immutable")

    def __repr__(self) -> str:
        return f"Index(unique={self.unique!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Index)
        return self.unique == other.unique

    def __hash__(self) -> int:
        return hash((self.unique,))


def declared_indexes(fields: Mapping[str, FieldInfo]) -> dict[str, bool]:
    """Return ``{field: unique}`` for every field that carries an `Index`.

    Args:
        fields: a model's ``model_fields``.
    """
    indexes: dict[str, bool] = {}
    for name, info in fields.items():
        marks = [m for m in info.metadata if isinstance(m, Index)]
        if marks:
            # Two marks on one field (e.g. through a reused Annotated alias) mean one index,
            # unique if either asks for it.
            indexes[name] = any(m.unique for m in marks)
    return indexes
