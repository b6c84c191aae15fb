"""The ``Table`` base class users subclass (public API layer: pydantic models over a store).

A table is a pydantic model. ``@db.table`` attaches a `TableBinding` to the class
(``discobase._binding``: how the model is read and written); once the database is ready the
binding holds the table's store, and the methods here are the user's API over it: writes
(`Table.save`, `Table.update`, `Table.delete`, `Table.save_many`, ...) and queries
(`Table.find`, `Table.find_unique`, `Table.get`, `Table.count`, `Table.watch`). This module
must not know how the store keeps its records (messages, snapshots, the gateway) nor import
the HTTP client or the database: writes go through the store's ``submit`` and come back as
futures the table's owner (a `TableOwner`) turns into tasks. What a write does around
``submit`` (its bookkeeping once stored or failed, the collector held off for a burst) is in
``discobase._writes``; which records a query's fields select is in ``discobase._matching``.

Records are written in JSON mode exactly as pydantic serialises them to JSON, and read back by
validating that JSON, so every type pydantic can serialise round-trips: bytes as base64, non-
finite floats as strings, datetimes with their offsets, enums by value, nested models, integers
of any size. Records are stored under field names, never aliases (``by_alias=False``), and read
back by field name (``by_name=True``, pydantic 2.11), so an alias generator or
``Field(alias=...)`` changes nothing stored; computed fields are derived, so never stored.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter, setitem
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeAlias, overload

from pydantic import BaseModel, ConfigDict, PrivateAttr

from discobase import _binding, _json
from discobase._binding import TableStoreLike, as_id, binding_of, id_of
from discobase._matching import (
    count_matching,
    first_in_order,
    found_by_index,
    matching_ids,
    sort_values,
)
from discobase._ordering import order_ids, parse_order_by
from discobase._removed import removed
from discobase._writes import (
    check_loop,
    collector_off_this_turn,
    deleting,
    forget_if_deleted,
    puts,
    unsave_all_if_failed,
    unsave_if_failed,
)
from discobase.errors import (
    InvalidQuery,
    MultipleRecordsFound,
    RecordNotFound,
    RecordStateError,
    UsageError,
)
from discobase.results import Count, Records
from discobase.schema import keep_unknown

if TYPE_CHECKING:
    import asyncio

    from discobase.watch import Watch

    # What @db.table attaches to a Table class, as the modules above (commands, migrate)
    # name it: a binding whose records are Tables.
    TableBinding: TypeAlias = _binding.TableBinding["Table"]
else:
    TableBinding = _binding.TableBinding

__all__ = ["Table", "TableBinding", "TableStoreLike"]

# From this many records on, save_many serialises them with list adapter calls (see
# RecordEncoder.dump_slices).
_BATCH_DUMP_MIN = 64
_private_of = attrgetter("__pydantic_private__")


class Table(BaseModel):
    """The base of every table: a pydantic model whose instances are records.

    Subclass it, declare fields as on any pydantic model, and register the class with
    ``@db.table``; the table's name is the class name in lower case. Records are written with
    `save()`, `update()`, `delete()` or `commit()`, each of which returns an
    ``asyncio.Task``: awaiting it waits until Discord has stored the change, and a task left
    alone still runs (a failure is logged under the ``discobase`` logger); `delete_id()`
    deletes by id. Queries (`find()`, `find_unique()`, `get()`, `count()`)
    read the table's records from memory; a stored record that does not fit the class is
    skipped and logged (see `find()`).

    Inside ``async with db.batch():`` the tasks complete when the batch is written, after the
    block: await them after it, not inside it.
    """

    # defer_build: building a validator at class creation costs more than the rest of
    # `import discobase`; each table builds its own on first use instead.
    model_config = ConfigDict(
        defer_build=True,
        validate_assignment=True,
        ser_json_bytes="base64",
        val_json_bytes="base64",
        ser_json_inf_nan="strings",
    )

    __discobase_binding__: ClassVar[TableBinding | None] = None
    _id: int | None = PrivateAttr(default=None)
    # The id of this record's last insert that failed: a failure can come after Discord stored
    # the write (a 5xx outlasting the retries, a timeout), so the retry reuses the id, and a
    # write that did land is overwritten rather than doubled.
    _retry_id: int | None = PrivateAttr(default=None)

    @property
    def id(self) -> int:
        """Return the record's id: set by `save()` at once, `None` before.

        Typed `int`, as django-stubs types an automatic primary key: records a query returns
        always have one, and so does a record once `save()` was called, which is where ids
        are read. A record never saved (or deleted, or whose save failed) has `None`; check
        with `record.id is None` (which type-checks) where that can happen. Python's typing
        has no intersection type that could say "this `User`, saved" for query results only.
        """
        return id_of(self)  # type: ignore[return-value]  # None only before save(), as above

    if not TYPE_CHECKING:  # at run time only: a type checker still flags the name

        @property
        def __disco_id__(self) -> int:
            raise removed(self, "__disco_id__")  # 1.0's name: the error says record.id

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        yield "id", id_of(self)
        yield from super().__repr_args__()

    # ------------------------------------------------------------------ writes

    def save(self) -> asyncio.Task[Self]:
        """Insert this record; the returned task completes once it is stored.

        The record gets its id at once; queries see it once the task is done. If the write
        fails, the record is unsaved again (``id`` is ``None``), so ``save()`` may simply be
        called again.

        Raises:
            RecordStateError: the record is already saved (use ``update()`` or ``commit()``).
            UniqueViolation: a unique index already holds one of its values.
            UnstorableRecord: a value could not be read back once stored (nothing is written).
            NotConnected, TableNotBuilt, TableNotRegistered: the table is not usable yet.
            UsageError: called outside the event loop the database runs in.
        """
        binding = binding_of(type(self))
        store = binding.require_store()
        check_loop(binding, "save")
        private = self.__pydantic_private__
        assert private is not None  # Table declares a private attribute
        saved_id = private.get("_id")
        if saved_id is not None:
            raise RecordStateError(
                f"this {binding.name} record is already saved (id {saved_id}); "
                "use update() to write its changes, or commit() to save or update"
            )
        from discobase._writetask import Relay
        from discobase.storage.codec import Put

        collector_off_this_turn(binding)
        data = binding.encoder.storable(self)
        record_id = private.get("_retry_id") or store.new_id()
        future = store.submit([Put(record_id, data)])
        private["_id"] = record_id
        write = Relay.after(future, unsave_if_failed, private, record_id)
        return binding.database._track(write, f"save of {binding.name} {record_id}", self)

    def update(self) -> asyncio.Task[Self]:
        """Write this saved record's current fields; the task completes once stored.

        Writes are whole records and the later entry wins: if another process deleted the
        record meanwhile, this writes it again. If the write fails, queries keep showing the
        record as stored before, and ``update()`` may be called again.

        Raises:
            RecordStateError: the record was never saved (use ``save()`` or ``commit()``), or
                its ``delete()`` is still being written (await it first).
            UniqueViolation: a unique index already holds one of its values.
            UnstorableRecord: a value could not be read back once stored (nothing is written).
            UsageError: called outside the event loop the database runs in.
        """
        binding = binding_of(type(self))
        store = binding.require_store()
        check_loop(binding, "update")
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved yet; "
                "use save() to insert it, or commit() to save or update"
            )
        if record_id in binding.deleting:
            raise RecordStateError(
                f"this {binding.name} record (id {record_id}) is being deleted: await its "
                "delete() first; it is then unsaved, and save() inserts it anew"
            )
        from discobase.storage.codec import Put

        collector_off_this_turn(binding)
        # Fields this class does not know (a newer program's) keep their stored values.
        data = keep_unknown(
            binding.storable(self), store.get(record_id), binding.known_names, binding.renames_now
        )
        future = store.submit([Put(record_id, data)])
        return binding.database._track(future, f"update of {binding.name} {record_id}", self)

    def delete(self) -> asyncio.Task[None]:
        """Delete this saved record; the task completes once the deletion is stored.

        Once it completes the record is unsaved again (``id`` is ``None``): ``save()`` would
        insert it anew under a new id. If it fails, the record stays saved.

        Raises:
            RecordStateError: the record was never saved.
        """
        binding = binding_of(type(self))
        store = binding.require_store()
        check_loop(binding, "delete")
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved, so there is nothing to delete; "
                "only records saved with save() (or found with find()) can be deleted"
            )
        from discobase._writetask import Relay
        from discobase.storage.codec import Delete

        collector_off_this_turn(binding)
        future = store.submit([Delete(record_id)])
        deleting(binding, [record_id], future)
        write = Relay.after(future, forget_if_deleted, self.__pydantic_private__, record_id)
        return binding.database._track(write, f"delete of {binding.name} {record_id}", None)

    def commit(self) -> asyncio.Task[Self]:
        """Save this record if it is new, update it otherwise."""
        return self.save() if id_of(self) is None else self.update()

    @classmethod
    def delete_id(cls, record_id: int | str) -> asyncio.Task[None]:
        """Delete the stored record with this id, without reading it.

        The way to remove a record that cannot be read (one a query skipped and reported,
        naming its id): it is deleted by id, as it is stored. A record object in memory that
        holds this id keeps it: its ``update()`` would write it anew.

        Raises:
            RecordNotFound: no stored record has this id.
            UsageError: called outside the event loop the database runs in.
        """
        binding = binding_of(cls)
        store = binding.require_store()
        check_loop(binding, "delete_id")
        wanted = as_id(record_id)
        if wanted is None or store.get(wanted) is None:
            raise RecordNotFound(f"no {binding.name} record has id {record_id!r}")
        from discobase.storage.codec import Delete

        future = store.submit([Delete(wanted)])
        return binding.database._track(future, f"delete of {binding.name} {wanted}", None)

    @classmethod
    def save_many(cls, records: Iterable[Self]) -> asyncio.Task[list[Self]]:
        """Insert several new records as one atomic batch.

        Every record gets its id at once; readers see all of them or none. If the write
        fails, every record is unsaved again (``id`` is ``None``), so ``save_many()`` may
        simply be called again.

        Raises:
            UsageError: a record is not of this table, or appears twice, or one record was
                given instead of a list; or called outside the event loop the database runs in.
            RecordStateError: a record is already saved.
            UniqueViolation: a unique index would hold a value twice.
            UnstorableRecord: a record could not be read back once stored (nothing is
                written).
        """
        binding = binding_of(cls)
        store = binding.require_store()
        check_loop(binding, "save_many")
        if isinstance(records, BaseModel):  # iterating one would give its (name, value) pairs
            raise UsageError(
                f"save_many() takes a list of {cls.__name__} records, not one record: "
                f"save_many([record]), or record.save()"
            )
        try:
            batch = list(records)
        except TypeError:  # None, a number: list() would raise a bare TypeError
            raise UsageError(
                f"save_many() takes a list of {cls.__name__} records, not {records!r}"
            ) from None
        # Checked with C loops (map, set): this part runs before the caller's event loop gets
        # control back, and a Python loop over 100,000 records takes a tenth of a second.
        strangers = set(map(type, batch)) - {cls}
        if strangers:
            stranger = next(iter(strangers))
            raise UsageError(
                f"save_many() of {cls.__name__} got a {stranger.__name__}; "
                f"call save_many() on that record's own table"
            )
        privates: list[dict[str, Any]] = list(map(_private_of, batch))
        saved_id = next(filter(None, map(dict.get, privates, repeat("_id"))), None)
        if saved_id is not None:
            raise RecordStateError(
                f"a {binding.name} record given to save_many() is already saved "
                f"(id {saved_id}); update it with update() or commit()"
            )
        from discobase.storage.codec import Put

        ids = store.new_ids(len(batch))
        if any(map(dict.get, privates, repeat("_retry_id"))):
            # A retry of a failed insert: records keep the ids they had (see Table._retry_id).
            ids = [p.get("_retry_id") or i for p, i in zip(privates, ids, strict=True)]
            if len(set(ids)) != len(ids):
                raise UsageError("save_many() got the same record twice")
        # private["_id"] = record_id for every record, in C (operator.setitem: dict.__setitem__
        # is a slot wrapper, two and a half times as slow). A record given twice keeps the
        # later of its two ids: reading them back finds it in a third of the time a set of
        # the records' id() takes.
        deque(map(setitem, privates, repeat("_id"), ids), maxlen=0)
        try:
            if list(map(dict.get, privates, repeat("_id"))) != ids:
                raise UsageError("save_many() got the same record twice")
            # A large batch is serialised now, so later changes to the records are not
            # written, but decoded by the store when it needs the dicts: for 100,000 records
            # that halves what the caller's event loop waits for.
            slices = binding.encoder.dump_slices(batch) if len(batch) >= _BATCH_DUMP_MIN else None
            if slices is None:
                ops = [Put(i, binding.storable(r)) for i, r in zip(ids, batch, strict=True)]
                future = store.submit(ops)
            else:
                binding.encoder.check_slices(batch, slices)
                future = store.submit_later(puts(ids, slices), len(batch))
        except BaseException:
            deque(map(setitem, privates, repeat("_id"), repeat(None)), maxlen=0)
            raise
        from discobase._writetask import Relay

        write = Relay.after(future, unsave_all_if_failed, privates, ids)
        what = f"save_many of {len(batch)} {binding.name} records"
        return binding.database._track(write, what, batch)

    def _dump(self) -> dict[str, Any]:
        # model_dump_json honours the JSON-only settings (base64 bytes, "Infinity") that
        # model_dump(mode="json") ignores; decoding it gives the exact JSON-mode dict.
        computed = type(self).__pydantic_computed_fields__
        dumped = self.model_dump_json(by_alias=False, exclude=set(computed) if computed else None)
        data: dict[str, Any] = _json.loads(dumped)
        return data

    # ------------------------------------------------------------------ queries

    @classmethod
    def find(
        cls,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        **fields: Any,
    ) -> Records[Self]:
        """Return the records matching every given field (all records without arguments).

        A field's value is matched by equality, or by an operator: `find(age=gt(18))`,
        `find(country=one_of("NL", "BE"))`, `find(name=startswith("Pe"))` (see
        `discobase.operators`; a range or prefix on an indexed field is answered by its
        index). The result is a list that may also be awaited or iterated with `async for`:
        `for u in User.find(name="Peter")` and `await User.find(name="Peter")` both work. It
        also has `first()`, `exists()`, `update_many()` and `delete_many()` (see `Records`).

        Args:
            order_by: a field name, ``"-name"`` for descending, or a sequence of them
                (``"id"`` is creation order, the default); ``None`` (and NaN) values come
                last.
            limit: return at most this many records.
            offset: skip this many records first.
            **fields: field name -> value or operator; ``id`` may be given too.

        A stored record that does not fit the model (written by an older version, another
        program or by hand) is skipped and logged once at WARNING on the ``discobase.table``
        logger, naming the table, its channel, the message and the record's id; delete it
        with `delete_id()`.

        Raises:
            InvalidQuery: an unknown field, a value the field cannot hold, an operator that
                does not fit the field's type, a bad ``order_by``,
                ``limit`` or ``offset``.
        """
        binding = binding_of(cls)
        store = binding.require_store()
        if len(fields) == 1 and order_by is None and limit is None and type(offset) is int:
            # find(name="Peter"), the most common query: straight to the index, if it can.
            found = None if offset else found_by_index(binding, store, fields)
            if found is not None:
                return found
        if limit is not None and not _is_count(limit):
            raise InvalidQuery(f"limit must be a non-negative int, not {limit!r}")
        if (type(offset) is not int or offset < 0) and not _is_count(offset):
            raise InvalidQuery(f"offset must be a non-negative int, not {offset!r}")
        keys = None
        if order_by is not None:
            keys = parse_order_by(order_by, binding.fields)
        records = store.records()
        if keys and limit is not None:
            # Ordered by an indexed field: the first records straight from its sorted index.
            window = first_in_order(binding, store, fields, keys, offset + limit)
            # A record known to be unreadable takes no place, not even among those skipped.
            if window is not None and len(binding.readable(window, records)) == len(window):
                page = binding.load_page(window[offset:], records)
                if len(page) == len(window) - offset:
                    return Records.of(cls, page)
                # An unreadable record was left out (and reported): planned below instead.
        ids = selected = binding.readable(matching_ids(binding, store, fields, records), records)
        end = None if limit is None else offset + limit
        if keys:
            if all(binding.orders_as_json(field) for field, _ in keys):
                values = sort_values(binding, store, records, ids, [f for f, _ in keys])
                ids = order_ids(selected, keys, values, first=end)
            else:
                # Ordered by values only the records know (datetimes, ...): read them all.
                loaded = {id_of(r): r for r in binding.load_page(ids, records)}
                ids = [i for i in ids if i in loaded]
                ids = order_ids(ids, keys, lambda f: lambda i: getattr(loaded[i], f), first=end)
                return Records.of(cls, [loaded[i] for i in ids[offset:end]])
        if not offset and end is None:
            # Every match: an unreadable one is left out (and reported).
            return Records.of(cls, binding.load_page(ids, records))
        while True:
            window = ids[offset:end]
            page = binding.load_page(window, records)
            if len(page) == len(window):
                return Records.of(cls, page)
            # An unreadable record was left out (and reported): page again without it (and
            # order again: ids may be ordered only as far as the limit).
            skipped = set(window).difference(map(id_of, page))
            selected = [i for i in selected if i not in skipped]
            ids = order_ids(selected, keys, values, first=end) if keys else selected

    @overload
    @classmethod
    async def find_unique(cls, *, strict: Literal[True] = True, **fields: Any) -> Self: ...

    @overload
    @classmethod
    async def find_unique(cls, *, strict: bool, **fields: Any) -> Self | None: ...

    @classmethod
    async def find_unique(cls, *, strict: bool = True, **fields: Any) -> Self | None:
        """Return the one record equal to every given field.

        Args:
            strict: when true, anything but exactly one match is an error; when false, the
                first match (by id) or ``None``.
            **fields: field name -> value (at least one).

        Raises:
            InvalidQuery: no field given, or an unknown field.
            RecordNotFound: strict, and nothing matched.
            MultipleRecordsFound: strict, and several records matched.
        """
        binding = binding_of(cls)
        store = binding.require_store()
        check_loop(binding, "find_unique", writes=False)
        if not isinstance(strict, bool):
            raise InvalidQuery(f"strict must be True or False, not {strict!r}")
        if not fields:
            raise InvalidQuery(
                "find_unique() needs at least one field to match, e.g. "
                f"{cls.__name__}.find_unique(name=...); use find() to list every record"
            )
        records = store.records()
        ids = binding.readable(matching_ids(binding, store, fields, records), records)
        found: list[Self] = []
        # Unreadable matches are skipped (and reported), as find() skips them; a second
        # readable match is enough to refuse a strict query.
        for i in ids:
            record = binding.try_load(i, records[i])
            if record is not None:
                found.append(record)
                if not strict or len(found) > 1:
                    break
        if strict and len(found) != 1:
            query = ", ".join(f"{k}={v!r}" for k, v in fields.items())
            if not found:
                raise RecordNotFound(f"no {binding.name} record has {query}")
            many = len(binding.readable(ids, records))
            raise MultipleRecordsFound(
                f"{many} {binding.name} records have {query}; "
                "use find() for all of them or find_unique(..., strict=False) for the first"
            )
        return found[0] if found else None

    @classmethod
    async def get(cls, record_id: int | str) -> Self:
        """Return the record with this id.

        Raises:
            RecordNotFound: no record has this id.
            UnreadableRecord: the stored record does not fit the model (delete it with
                `delete_id()`).
        """
        binding = binding_of(cls)
        store = binding.require_store()
        check_loop(binding, "get", writes=False)
        wanted = as_id(record_id)
        data = None if wanted is None else store.get(wanted)
        if wanted is None or data is None:
            raise RecordNotFound(f"no {binding.name} record has id {record_id!r}")
        return binding.load(wanted, data)

    @classmethod
    def count(cls, **fields: Any) -> Count:
        """Return how many records equal every given field (all records without arguments).

        The result is an ``int`` that may also be awaited.
        """
        binding = binding_of(cls)
        store = binding.require_store()
        if not fields:
            return Count(store.count())
        return Count(count_matching(binding, store, fields))

    @classmethod
    def watch(cls, **fields: Any) -> Watch[Self]:
        """Return an async iterator of this table's changes, from now on.

        ``async for change in User.watch(country="NL"):`` yields a `discobase.Change` for
        each insert, update and delete applied in this process: its own writes, other
        processes' writes as they arrive, and what gap checks and catch-ups read. A change
        is yielded when the record matches the filter before or after it (equality, or an
        operator as in `find()`), so a record that stops matching is seen leaving. Changes
        to one record come in log order, each once; iteration ends when the database
        closes. See the live-sync guide.

        Raises:
            NotConnected, TableNotBuilt: the table is not open.
            InvalidQuery: as `find()`; ``id`` is matched by equality only.
        """
        binding = binding_of(cls)
        check_loop(binding, "watch", writes=False)
        return typing.cast("Watch[Self]", binding.database._watch(binding, fields))


def _is_count(value: object) -> bool:
    # bool is an int in Python, but limit=True is a mistake, not a count of one.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
