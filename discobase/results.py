"""What a query returns: `Records` and `Count` (public API layer: plain containers, no I/O).

``Table.find()`` returns `Records`, a list of records that may also be awaited or iterated with
``async for``, and that writes over all of its records (``delete_many``, ``update_many``, done
by ``discobase._bulk``). ``Table.count()`` returns `Count`, an ``int`` that may be awaited. Both
are answers already in memory: awaiting them finishes at once. This module must stay light:
``import discobase`` loads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterable
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["Count", "Records"]

T = TypeVar("T")


class Records(list[T]):
    """The records a query found: a list that may also be awaited or iterated with `async for`.

    The records are in memory, so the answer is ready at once; awaiting it returns the list
    itself. `for u in User.find(...)`, `await User.find(...)` and
    `async for u in User.find(...)` therefore all work. The list also offers `first()`,
    `exists()`, and writes over all of its records: `delete_many()` and `update_many()`.
    """

    # The table queried, so that update_many() of an empty answer still checks its names.
    __slots__ = ("_table",)
    _table: type[Any]

    @classmethod
    def of(cls, table: type[Any], records: Iterable[T] = ()) -> Records[T]:
        """Return the records ``table``'s query found (how ``find()`` makes its answer)."""
        found: Records[T] = cls(records)
        found._table = table
        return found

    @property
    def table(self) -> type[Any] | None:
        """Return the table queried, or ``None`` for a list made by hand."""
        return getattr(self, "_table", None)

    def __await__(self) -> Generator[Any, None, Self]:
        return self
        yield  # pragma: no cover  (makes this a generator: awaiting finishes at once)

    def __aiter__(self) -> AsyncIterator[T]:
        """Iterate over the records with `async for` (over the list as it is now)."""
        return _aiter(list(self))

    def first(self) -> T | None:
        """Return the first record (in the query's order), or `None` if there is none.

        `User.find(name="Peter", order_by="-age").first()` reads as it says; give the
        query `limit=1` too when it may match many records, so that only one is read.
        """
        return self[0] if self else None

    def exists(self) -> bool:
        """Tell whether the query found any record."""
        return bool(self)

    def delete_many(self) -> asyncio.Task[int]:
        """Delete every record of this list, one atomic batch per table.

        `await User.find(age=lt(18)).delete_many()` deletes all of them or, if the write
        fails, none. The task completes with the number of records deleted, once Discord has
        stored the deletion; the records are then unsaved (their `id` is `None`).

        Raises:
            RecordStateError: a record of the list is not saved.
            UsageError: called outside the event loop the database runs in, or the list holds
                something that is not a record.
        """
        from discobase._bulk import delete_records

        return delete_records(self)

    def update_many(self, **changes: Any) -> asyncio.Task[list[T]]:
        """Set fields of every record of this list and write them, one atomic batch per table.

        `await User.find(country="NL").update_many(active=False)`. Each value is validated as
        an assignment would be, before anything is written; the records in this list then
        hold the new values at once, and the task completes with them once Discord has
        stored the change. As with `update()`, whole records are written: a change another
        process made to one of them since the query is overwritten.

        Raises:
            InvalidQuery: a name is not a field of a record's table (checked against the
                table queried even when nothing matched).
            pydantic.ValidationError: a value does not fit its field (nothing is written or
                changed).
            UniqueViolation: a unique index would hold a value twice.
            RecordStateError: a record of the list is not saved.
            UsageError: called outside the event loop the database runs in.
        """
        from discobase._bulk import update_records

        return update_records(self, changes)


async def _aiter(items: list[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


class Count(int):
    """A record count: an ``int`` that may also be awaited (``await User.count()``)."""

    def __await__(self) -> Generator[Any, None, int]:
        return int(self)
        yield  # pragma: no cover
