"""Names discobase 1.0 had and this version does not: their AttributeError says what replaced
them (public API layer leaf; docs/versus-original.md tells the whole story).

A program ported from 1.0 meets these first, so the error is the migration guide's first line.
"""

from __future__ import annotations

__all__ = ["removed"]

_GUIDE = "(docs/versus-original.md)"
_REPLACED = {
    "__disco_id__": "is gone: a record's id is `record.id`, and `await Model.get(record_id)` "
    "reads one by id",
    "clean": "is gone: `await Model.find().delete_many()` empties a table in one batch, and "
    "`await db.migrate(Model, transform=...)` starts a table over after a class change",
}


def removed(owner: object, name: str) -> AttributeError:
    """Return the AttributeError for 1.0's ``name`` on ``owner``: what replaced it.

    Raised by a property of that name (not by ``__getattr__``, which would also stand in for
    the AttributeError of any other property that fails).
    """
    message = f"{type(owner).__name__}.{name} {_REPLACED[name]} {_GUIDE}"
    return AttributeError(message, name=name, obj=owner)
