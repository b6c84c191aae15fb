"""Index declarations on table fields (public API layer: plain data, no I/O, no storage).

A field is indexed by annotating it: ``name: Annotated[str, discobase.Index()]``. Pydantic keeps
unknown ``Annotated`` metadata on the field, so the declaration costs nothing until a table is
built; the storage layer then keeps a hash index for the field, which turns an equality query
on it into a lookup instead of a scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic.fields import FieldInfo

__all__ = ["Index", "declared_indexes"]


@dataclass(frozen=True, slots=True)
class Index:
    """Mark a table field as indexed.

    Args:
        unique: refuse a write that would give two records the same value of this field
            (:class:`~discobase.errors.UniqueViolation`).

    Example::

        class User(discobase.Table):
            email: Annotated[str, discobase.Index(unique=True)]
            name: Annotated[str, discobase.Index()]
    """

    unique: bool = False


def declared_indexes(fields: Mapping[str, FieldInfo]) -> dict[str, bool]:
    """Return ``{field: unique}`` for every field that carries an :class:`Index`.

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
