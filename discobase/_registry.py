"""A database's tables: registering a class as one, opening them (public API layer: what
``@db.table`` checks and attaches, and the tables' specs for storage).

`register` refuses a class that cannot be a table (not a ``Table`` subclass, already a table
of another database, a name taken, a field that would hide an attribute of every record or
a query keyword, a name too long for a Discord channel, a type pydantic cannot build) and
attaches its `TableBinding`; `open_unbuilt` opens, once the database is logged in, every
registered table that is not open yet, and `not_open` says why a table is not. This module
must not know the connection. The table
module is imported on first registration: it loads pydantic's model machinery, most of
``import discobase``'s time, and a program that defines tables has it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from discobase._binding import TableBinding, TableOwner
from discobase._connection import Phase
from discobase._logging import log
from discobase.errors import (
    DiscobaseError,
    NotConnected,
    SchemaMismatch,
    TableNotBuilt,
    TableRegistrationError,
)

if TYPE_CHECKING:
    from discobase.storage import StorageEngine
    from discobase.table import Table

__all__ = ["not_open", "open_unbuilt", "register"]

T = TypeVar("T", bound="Table")

# Keyword arguments of the query methods: a field of one of these names could not be queried.
_QUERY_KEYWORDS = {"order_by": "find", "limit": "find", "offset": "find", "strict": "find_unique"}
# Discord's longest channel name: a table's channel is named after it.
_NAME_LIMIT = 100


def register(
    owner: TableOwner, tables: MutableMapping[str, TableBinding[Table]], model: type[T]
) -> type[T]:
    """Register ``model`` as a table of ``owner``, whose tables by name are ``tables``.

    Raises:
        TableRegistrationError: see ``Database.table()``.
    """
    from discobase.table import Table

    if not isinstance(model, type) or not issubclass(model, Table) or model is Table:
        raise TableRegistrationError(
            f"@db.table takes a subclass of discobase.Table, not {model!r}"
        )
    current = model.__dict__.get("__discobase_binding__")
    if isinstance(current, TableBinding):
        if current.database is owner:
            return model
        raise TableRegistrationError(
            f"{model.__name__} is already a table of {current.database!r}; "
            "a class belongs to one database: define a second class for the other one"
        )
    name = model.__name__.lower()
    if name in tables:
        raise TableRegistrationError(
            f"{owner!r} already has a table named {name!r} "
            f"({tables[name].model.__qualname__}); table names come from class "
            "names in lower case and must be unique"
        )
    if "id" in model.model_fields:
        raise TableRegistrationError(
            f"{model.__name__} declares a field named 'id'; discobase gives every record "
            "its id (record.id), so pick another name"
        )
    from pydantic.errors import PydanticUserError

    try:
        # Table defers building validators (for import time); build now, so a type
        # pydantic cannot handle fails here as it would at class creation. Forward
        # references that are not defined yet stay allowed, as in pydantic.
        model.model_rebuild(raise_errors=False)
    except PydanticUserError as exc:
        raise TableRegistrationError(f"{model.__name__} cannot be a table: {exc}") from exc
    _check_fields_and_name(model, name)
    binding: TableBinding[Table] = TableBinding(owner, model, name)
    model.__discobase_binding__ = binding
    tables[name] = binding
    return model


def _check_fields_and_name(model: type[Table], name: str) -> None:
    """Refuse a class whose fields or name cannot make a table.

    Raises:
        TableRegistrationError: a field hides an attribute of every record or is named like
            a query keyword argument, or the name is longer than a Discord channel name.
    """
    taken = sorted(field for field in model.model_fields if field in _table_names())
    if taken:
        field = taken[0]
        raise TableRegistrationError(
            f"{model.__name__} declares a field named {field!r}, which is an attribute "
            f"of every record (Table.{field}): the field's value would hide it, and "
            f"record.{field} would no longer work. Rename the field (for example "
            f"{field}_: ... = Field(alias={field!r}) keeps {field}= working when you "
            "construct records)"
        )
    for field, method in _QUERY_KEYWORDS.items():
        if field in model.model_fields:
            raise TableRegistrationError(
                f"{model.__name__} declares a field named {field!r}, which is a keyword "
                f"argument of {method}(): {model.__name__}.{method}({field}=...) could not "
                f"query it. Rename the field (Field(alias={field!r}) keeps {field}= working "
                "when you construct records)"
            )
    if len(name) > _NAME_LIMIT:
        raise TableRegistrationError(
            f"the table name {name[:20]!r}... is {len(name)} characters long; its Discord "
            f"channel name may have at most {_NAME_LIMIT}: give the class a shorter name"
        )


def _table_names() -> frozenset[str]:
    """Return every public name a record has from ``Table`` (its methods and pydantic's)."""
    from discobase.table import Table

    global _TABLE_NAMES
    if _TABLE_NAMES is None:
        _TABLE_NAMES = frozenset(name for name in dir(Table) if not name.startswith("_"))
    return _TABLE_NAMES


_TABLE_NAMES: frozenset[str] | None = None


async def open_unbuilt(
    tables: Mapping[str, TableBinding[Any]],
    engine: StorageEngine,
    opened: Callable[[TableBinding[Any]], None],
) -> None:
    """Open every table of ``tables`` that is not open yet; ``opened(binding)`` after each.

    Raises:
        SchemaMismatch: a table's stored schema is incompatible with its class; the other
            tables are opened all the same, and those that cannot be are in its ``also``.
    """
    from discobase.migrate import migrating, spec_of

    refused: list[SchemaMismatch] = []
    # A table registered while another opens is picked up by the next round; a table being
    # migrated is opened by its migration.
    while waiting := [
        b for b in tables.values() if b.store is None and not _in(b, refused) and not migrating(b)
    ]:
        for binding in waiting:
            try:
                store = await engine.open_table(spec_of(binding))
            except SchemaMismatch as exc:
                # A rollout usually changes several tables: name every one that does not fit
                # the stored schema at once, not one per attempt.
                refused.append(exc)
                continue
            binding.store = store
            opened(binding)
            count = store.count()
            noun = "record" if count == 1 else "records"
            log().info("table %r ready (%d %s)", binding.name, count, noun)

    if refused:
        first, *others = refused
        if others:
            first.also = others
            lines = [f"{len(refused)} tables do not fit their stored schemas.", str(first)]
            first.args = ("\n".join(lines + [str(other) for other in others]),)
        raise first


def _in(binding: TableBinding[Any], refused: list[SchemaMismatch]) -> bool:
    return any(error.table == binding.name for error in refused)


def not_open(binding: TableBinding[Any], phase: Phase) -> DiscobaseError:
    """Return the error that says why ``binding``'s table is not open, and what to do.

    Args:
        binding: the table.
        phase: where its database is in its lifecycle.
    """
    name = binding.model.__name__
    from discobase.migrate import migrating

    if phase is Phase.READY and migrating(binding):
        return TableNotBuilt(
            f"table {binding.name!r} is being migrated; use {name} once db.migrate() returned"
        )
    if phase is Phase.READY:
        return TableNotBuilt(
            f"table {binding.name!r} was registered after login; "
            f"call `await db.build_tables()` before using {name}"
        )
    if phase is Phase.STARTING:
        return NotConnected(
            f"the database is still starting; `await db.wait_ready()` before using {name}"
        )
    return NotConnected(
        f"the database is not connected; use {name} inside `async with db.conn(token):` "
        "or after `db.login_task(token)` and `await db.wait_ready()`"
    )
