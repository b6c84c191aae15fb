"""The ``Table`` base class users subclass (public API layer: pydantic models over a store).

A table is a pydantic model. ``@db.table`` attaches a :class:`TableBinding` to the class; once
the database is ready the binding holds the table's store, and the methods here turn records
into JSON-mode dicts for it and its dicts back into records. This module must not know how the
store keeps its records (messages, snapshots, the gateway) nor import the HTTP client: writes
go through the store's ``submit`` and come back as futures the database turns into tasks.

Records are written in JSON mode exactly as pydantic serialises them to JSON, and read back by
validating that JSON, so every type pydantic can serialise round-trips: bytes as base64, non-
finite floats as strings, datetimes with their offsets, enums by value, nested models, integers
of any size. Records are stored under field names, never aliases (``by_alias=False``), and read
back by field name (``by_name=True``, pydantic 2.11), so an alias generator or
``Field(alias=...)`` changes nothing stored; computed fields are derived, so never stored.
"""

from __future__ import annotations

import types
import typing
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, overload

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic.fields import FieldInfo

from discobase import _json
from discobase.errors import (
    InvalidQuery,
    MultipleRecordsFound,
    RecordNotFound,
    RecordStateError,
    StorageCorrupted,
    TableNotRegistered,
    TableRegistrationError,
    UsageError,
)
from discobase.index import declared_indexes
from discobase.query import (
    MISSING,
    Count,
    Records,
    StoreView,
    order_ids,
    parse_order_by,
    select_ids,
)

if TYPE_CHECKING:
    import asyncio

    from pydantic import TypeAdapter

    from discobase.database import Database

__all__ = ["Table", "TableBinding", "TableStoreLike"]

# Types whose JSON form is the Python value itself and orders the same way.
_PLAIN = (str, int, bool)
# Config keys that change a string on its way in: a query value must then be validated.
_STRING_RULES = ("str_strip_whitespace", "str_to_lower", "str_to_upper")
# From this many records on, save_many serialises them with list adapter calls, this many
# records per call.
_BATCH_DUMP_MIN = 64
_DUMP_SLICE = 2048
_private_of = attrgetter("__pydantic_private__")
# Keyword arguments of the query methods: a field of one of these names could not be queried.
_QUERY_KEYWORDS = {"order_by": "find", "limit": "find", "offset": "find", "strict": "find_unique"}
# Discord's longest channel name: a table's channel is named after it.
_NAME_LIMIT = 100


class TableStoreLike(StoreView, typing.Protocol):
    """The storage contract's ``TableStore`` as this module uses it."""

    def new_id(self) -> int:
        """Return a fresh record id."""
        ...

    def new_ids(self, count: int) -> list[int]:
        """Return ``count`` fresh record ids."""
        ...

    def get(self, record_id: int) -> dict[str, Any] | None:
        """Return a record's JSON-mode dict, or ``None``."""
        ...

    def count(self) -> int:
        """Return the number of live records."""
        ...

    def submit(self, ops: Sequence[Any]) -> asyncio.Future[None]:
        """Queue ``ops`` as one atomic batch; the future resolves once Discord has them."""
        ...

    def submit_later(self, chunks: Iterator[list[Any]], count: int) -> asyncio.Future[None]:
        """As :meth:`submit`, for ``count`` operations the store makes from ``chunks``."""
        ...


class TableBinding:
    """What ``@db.table`` attaches to a class: its database, name, fields, indexes and store.

    Attributes:
        database: the database the table belongs to.
        model: the table's class.
        name: the table's name (the class name in lower case).
        indexes: ``{field: unique}`` of the declared indexes.
        store: the open store, ``None`` until the database built the table.
    """

    def __init__(self, database: Database, model: type[Table], name: str) -> None:
        """Describe ``model`` as the table ``name`` of ``database``.

        Raises:
            TableRegistrationError: a field is named like a query keyword argument, or the
                name is longer than a Discord channel name may be.
        """
        _check_registrable(model, name)
        self.database = database
        self.model = model
        self.name = name
        self.fields: dict[str, FieldInfo] = dict(model.model_fields)
        self.indexes = declared_indexes(self.fields)
        self._store: TableStoreLike | None = None
        self.defaults = _json_defaults(model, self.fields)
        # Computed fields are left out of what is stored (and of older records when read).
        self._computed = frozenset(model.__pydantic_computed_fields__)
        # Before field names were enforced, a model with serialize_by_alias=True stored its
        # records under aliases: those records are still read (by alias, or by name).
        self._by_alias = bool(model.model_config.get("serialize_by_alias"))
        validated = _fields_with_validators(model)
        self._filler = _Filler(self, validated)
        strings_rewritten = any(model.model_config.get(k) for k in _STRING_RULES)
        # Fields whose query values are already in JSON form when they have the field's type.
        self._as_is = {
            name: info.annotation
            for name, info in self.fields.items()
            if name not in validated
            and info.annotation in _PLAIN
            and not (info.annotation is str and strings_rewritten)
        }
        self._raw_sortable = {
            name for name, info in self.fields.items() if _orders_as_json(info.annotation)
        }
        self._list_adapter: TypeAdapter[list[Any]] | None = None

    @property
    def store(self) -> TableStoreLike | None:
        """Return the open store, ``None`` until the database built the table."""
        return self._store

    @store.setter
    def store(self, store: TableStoreLike | None) -> None:
        # The database sets the store once the table is open, before any query can run: old
        # records get their default-factory values here, once, so reads and queries agree.
        self._store = store
        filler = self._filler
        if store is None or not filler.fields:
            return
        from discobase.storage.state import TableState

        state = getattr(store, "state", None)
        if isinstance(state, TableState):
            state.fill_missing(filler.fields, filler.fill)

    def _validate(self, data: Mapping[str, Any]) -> Table:
        if self._computed and not self._computed.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in self._computed}
        record: Table = self.model.__pydantic_validator__.validate_json(
            _json.dumps(data), by_alias=self._by_alias, by_name=True
        )
        return record

    def require_store(self) -> TableStoreLike:
        """Return the open store, or raise the error that says what to do first."""
        store = self.store
        if store is None:
            return self.database._store_for(self)
        return store

    def schema(self) -> dict[str, Any]:
        """Return the JSON schema the catalog keeps for this table."""
        return self.model.model_json_schema()

    def has_default(self) -> dict[str, bool]:
        """Return ``{field: has a default}`` for every field."""
        return {name: not info.is_required() for name, info in self.fields.items()}

    def query_value(self, field: str, value: Any) -> Any:
        """Return ``value`` in the JSON form records store for ``field``.

        Raises:
            InvalidQuery: no such field, or ``value`` is not valid for it.
        """
        kind = self._as_is.get(field)
        if kind is not None and type(value) is kind:
            return value
        if field not in self.fields:
            known = ", ".join(sorted(self.fields)) or "(none)"
            raise InvalidQuery(
                f"{self.model.__name__} has no field {field!r}; its fields are: {known}"
            )
        try:
            return self._dump_field(field, value)
        except ValidationError as exc:
            reason = exc.errors()[0].get("msg", "invalid value")
            raise InvalidQuery(
                f"{value!r} cannot be a value of {self.model.__name__}.{field}: {reason}"
            ) from None

    def _dump_field(self, field: str, value: Any) -> Any:
        # Validating an assignment runs the model's own field validators and config, so the
        # query value is turned into exactly what a record with that value would store.
        model = self.model
        try:
            probe = model.model_construct()
            model.__pydantic_validator__.validate_assignment(probe, field, value)
        except ValidationError:
            raise
        except Exception:
            # A model validator that needs the other fields: validate the field on its own.
            info = self.fields[field]
            from pydantic import TypeAdapter

            adapter: TypeAdapter[Any] = TypeAdapter(typing.cast(Any, info.annotation))
            return _json.loads(adapter.dump_json(adapter.validate_python(value), by_alias=False))
        return _json.loads(probe.model_dump_json(include={field}, by_alias=False))[field]

    def dump_slices(self, records: Sequence[Table]) -> list[bytes] | None:
        """Return records of this table as JSON arrays of at most 2048 records each.

        Each slice is one call of a list adapter, a third of the time of one call per record;
        what it holds is exactly what ``Table._dump`` would give, decoded. ``None`` when the
        model cannot be wrapped in a list (a forward reference not defined yet).
        """
        adapter = self._list_adapter
        if adapter is None:
            from pydantic import TypeAdapter

            try:
                adapter = TypeAdapter(list[self.model])  # type: ignore[name-defined]
            except Exception:
                return None
            self._list_adapter = adapter
        size = _DUMP_SLICE
        exclude = {"__all__": set(self._computed)} if self._computed else None
        return [
            adapter.dump_json(list(records[i : i + size]), by_alias=False, exclude=exclude)
            for i in range(0, len(records), size)
        ]

    def sort_value(self, records: Mapping[int, dict[str, Any]], record_id: int, field: str) -> Any:
        """Return a raw JSON value to order by, for fields whose JSON orders like the value."""
        if field == "id":
            return record_id
        value = records[record_id].get(field, MISSING)
        if value is MISSING:
            value = self.defaults.get(field, MISSING)
        return None if value is MISSING else value

    def orders_as_json(self, field: str) -> bool:
        """Tell whether a field's stored JSON values sort like its Python values."""
        return field == "id" or field in self._raw_sortable

    def load(self, record_id: int, data: Mapping[str, Any]) -> Table:
        """Turn a stored dict into a record carrying its id.

        Raises:
            StorageCorrupted: the stored data does not fit the model.
        """
        try:
            record = self._validate(data)
        except ValidationError as exc:
            raise StorageCorrupted(
                f"record {record_id} of table {self.name!r} does not fit "
                f"{self.model.__name__}: {exc.errors()[0].get('msg', 'invalid')}"
            ) from None
        # Straight into pydantic's private dict: this runs once per record a query returns.
        private = record.__pydantic_private__
        if private is None:  # pragma: no cover  (Table declares a private attribute)
            record._id = record_id
        else:
            private["_id"] = record_id
        return record


class Table(BaseModel):
    """The base of every table: a pydantic model whose instances are records.

    Subclass it, declare fields as on any pydantic model, and register the class with
    ``@db.table``; the table's name is the class name in lower case. Records are written with
    :meth:`save`, :meth:`update`, :meth:`delete` or :meth:`commit`, each of which returns an
    ``asyncio.Task``: awaiting it waits until Discord has stored the change, and a task left
    alone still runs (a failure is logged under the ``discobase`` logger). Queries
    (:meth:`find`, :meth:`find_unique`, :meth:`get`, :meth:`count`) read the table's records
    from memory.

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
    def id(self) -> int | None:
        """Return the record's id: set by ``save()`` at once, ``None`` before."""
        return _id_of(self)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        yield "id", _id_of(self)
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
            NotConnected, TableNotBuilt, TableNotRegistered: the table is not usable yet.
        """
        binding = _binding_of(type(self))
        store = binding.require_store()
        saved_id = _id_of(self)
        if saved_id is not None:
            raise RecordStateError(
                f"this {binding.name} record is already saved (id {saved_id}); "
                "use update() to write its changes, or commit() to save or update"
            )
        from discobase.storage import Put

        private = self.__pydantic_private__
        assert private is not None  # Table declares a private attribute
        record_id = private.get("_retry_id") or store.new_id()
        future = store.submit([Put(record_id, self._dump())])
        private["_id"] = record_id
        future.add_done_callback(partial(_unsave_if_failed, [private], [record_id]))
        return binding.database._track(future, f"save of {binding.name} {record_id}", self)

    def update(self) -> asyncio.Task[Self]:
        """Write this saved record's current fields; the task completes once stored.

        Writes are whole records and the later entry wins: if another process deleted the
        record meanwhile, this writes it again. If the write fails, queries keep showing the
        record as stored before, and ``update()`` may be called again.

        Raises:
            RecordStateError: the record was never saved (use ``save()`` or ``commit()``).
            UniqueViolation: a unique index already holds one of its values.
        """
        binding = _binding_of(type(self))
        store = binding.require_store()
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved yet; "
                "use save() to insert it, or commit() to save or update"
            )
        from discobase.storage import Put

        future = store.submit([Put(record_id, self._dump())])
        return binding.database._track(future, f"update of {binding.name} {record_id}", self)

    def delete(self) -> asyncio.Task[None]:
        """Delete this saved record; the task completes once the deletion is stored.

        Once it completes the record is unsaved again (``id`` is ``None``): ``save()`` would
        insert it anew under a new id. If it fails, the record stays saved.

        Raises:
            RecordStateError: the record was never saved.
        """
        binding = _binding_of(type(self))
        store = binding.require_store()
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved, so there is nothing to delete; "
                "only records saved with save() (or found with find()) can be deleted"
            )
        from discobase.storage import Delete

        future = store.submit([Delete(record_id)])

        def forget(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None and self._id == record_id:
                self._id = None

        future.add_done_callback(forget)
        return binding.database._track(future, f"delete of {binding.name} {record_id}", None)

    def commit(self) -> asyncio.Task[Self]:
        """Save this record if it is new, update it otherwise."""
        return self.save() if _id_of(self) is None else self.update()

    @classmethod
    def save_many(cls, records: Iterable[Self]) -> asyncio.Task[list[Self]]:
        """Insert several new records as one atomic batch.

        Every record gets its id at once; readers see all of them or none. If the write
        fails, every record is unsaved again (``id`` is ``None``), so ``save_many()`` may
        simply be called again.

        Raises:
            UsageError: a record is not of this table, or appears twice.
            RecordStateError: a record is already saved.
            UniqueViolation: a unique index would hold a value twice.
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        batch = list(records)
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
        from discobase.storage import Put

        ids = store.new_ids(len(batch))
        if any(map(dict.get, privates, repeat("_retry_id"))):
            # A retry of a failed insert: records keep the ids they had (see Table._retry_id).
            ids = [p.get("_retry_id") or i for p, i in zip(privates, ids, strict=True)]
            if len(set(ids)) != len(ids):
                raise UsageError("save_many() got the same record twice")
        # private["_id"] = record_id for every record, in C. A record given twice keeps the
        # later of its two ids: reading them back finds it in a third of the time a set of
        # the records' id() takes.
        deque(map(dict.__setitem__, privates, repeat("_id"), ids), maxlen=0)
        try:
            if list(map(dict.get, privates, repeat("_id"))) != ids:
                raise UsageError("save_many() got the same record twice")
            # A large batch is serialised now, so later changes to the records are not
            # written, but decoded by the store when it needs the dicts: for 100,000 records
            # that halves what the caller's event loop waits for.
            slices = binding.dump_slices(batch) if len(batch) >= _BATCH_DUMP_MIN else None
            if slices is None:
                ops = [Put(i, r._dump()) for i, r in zip(ids, batch, strict=True)]
                future = store.submit(ops)
            else:
                future = store.submit_later(_puts(ids, slices), len(batch))
        except BaseException:
            deque(map(dict.__setitem__, privates, repeat("_id"), repeat(None)), maxlen=0)
            raise
        future.add_done_callback(partial(_unsave_if_failed, privates, ids))
        what = f"save_many of {len(batch)} {binding.name} records"
        return binding.database._track(future, what, batch)

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
        """Return the records equal to every given field (all records without arguments).

        The result is a list that may also be awaited: ``for u in User.find(name="Peter")``
        and ``await User.find(name="Peter")`` both work.

        Args:
            order_by: a field name, ``"-name"`` for descending, or a sequence of them
                (``"id"`` is creation order, the default); ``None`` values come last.
            limit: return at most this many records.
            offset: skip this many records first.
            **fields: field name -> value; ``id`` may be given too.

        Raises:
            InvalidQuery: an unknown field, a value the field cannot hold, a bad ``order_by``,
                ``limit`` or ``offset``.
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        if limit is not None and not _is_count(limit):
            raise InvalidQuery(f"limit must be a non-negative int, not {limit!r}")
        if not _is_count(offset):
            raise InvalidQuery(f"offset must be a non-negative int, not {offset!r}")
        if order_by is not None and not isinstance(order_by, str):
            try:
                order_by = list(order_by)
            except TypeError:
                raise InvalidQuery(
                    f"order_by takes a field name or a sequence of them, not {order_by!r}"
                ) from None
        keys = parse_order_by(order_by, binding.fields)
        ids = _matching_ids(binding, store, fields)
        records = store.records()
        loaded: dict[int, Table] = {}
        if keys and all(binding.orders_as_json(field) for field, _ in keys):
            ids = order_ids(ids, keys, lambda i, f: binding.sort_value(records, i, f))
        elif keys:
            loaded = {i: binding.load(i, records[i]) for i in ids}
            ids = order_ids(ids, keys, lambda i, f: i if f == "id" else getattr(loaded[i], f))
        end = None if limit is None else offset + limit
        page = ids[offset:end]
        return Records(
            typing.cast(Self, loaded.get(i) or binding.load(i, records[i])) for i in page
        )

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
        binding = _binding_of(cls)
        store = binding.require_store()
        if not isinstance(strict, bool):
            raise InvalidQuery(f"strict must be True or False, not {strict!r}")
        if not fields:
            raise InvalidQuery(
                "find_unique() needs at least one field to match, e.g. "
                f"{cls.__name__}.find_unique(name=...); use find() to list every record"
            )
        ids = _matching_ids(binding, store, fields)
        if strict and len(ids) != 1:
            query = ", ".join(f"{k}={v!r}" for k, v in fields.items())
            if not ids:
                raise RecordNotFound(f"no {binding.name} record has {query}")
            raise MultipleRecordsFound(
                f"{len(ids)} {binding.name} records have {query}; "
                "use find() for all of them or find_unique(..., strict=False) for the first"
            )
        if not ids:
            return None
        return typing.cast(Self, binding.load(ids[0], store.records()[ids[0]]))

    @classmethod
    async def get(cls, record_id: int | str) -> Self:
        """Return the record with this id.

        Raises:
            RecordNotFound: no record has this id.
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        wanted = _as_id(record_id)
        data = None if wanted is None else store.get(wanted)
        if wanted is None or data is None:
            raise RecordNotFound(f"no {binding.name} record has id {record_id!r}")
        return typing.cast(Self, binding.load(wanted, data))

    @classmethod
    def count(cls, **fields: Any) -> Count:
        """Return how many records equal every given field (all records without arguments).

        The result is an ``int`` that may also be awaited.
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        if not fields:
            return Count(store.count())
        return Count(len(_matching_ids(binding, store, fields)))


class _Filler:
    """Make the stored values of fields that records written before them lack.

    Those are the fields whose default a factory makes, and aliased fields with a default
    (the storage layer knows defaults by the JSON schema's names, the aliases, while records
    hold field names). A plain factory's values are made with one serialiser call per field
    for all the records (0.3 s per 100,000 records for two fields); a field with validators
    or serialisers, a factory that takes the validated data, or a model with validators or
    its own serialiser is made by validating each record as reading it would (1 s).
    """

    def __init__(self, binding: TableBinding, validated: set[str]) -> None:
        self._binding = binding
        model = binding.model
        self.fields = frozenset(
            name
            for name, info in binding.fields.items()
            if info.default_factory is not None
            or (not info.is_required() and name != (info.validation_alias or info.alias or name))
        )
        decorators = model.__pydantic_decorators__
        whole = bool(decorators.model_validators or decorators.model_serializers) or bool(
            model.model_config.get("validate_default")
        )
        # Field -> (the default's maker, its serialiser once made) for the plain ones.
        self._plain: dict[str, tuple[Callable[[], Any], TypeAdapter[list[Any]] | None]] = {}
        for name in self.fields:
            info = binding.fields[name]
            if whole or name in validated or info.validate_default:
                continue
            factory = info.default_factory
            if factory is None:
                self._plain[name] = (partial(info.get_default, call_default_factory=False), None)
            elif not info.default_factory_takes_validated_data:
                self._plain[name] = (typing.cast(Callable[[], Any], factory), None)

    def fill(self, lacking: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return, for each stored record, ``{field: JSON value}`` of the fields it lacks."""
        made: list[dict[str, Any]] = [{} for _ in lacking]
        rest: set[str] = set()
        for name in self.fields:
            rows = [i for i, data in enumerate(lacking) if name not in data]
            values = self._plain_values(name, len(rows)) if rows else None
            if values is None:
                rest.add(name)
                continue
            for i, value in zip(rows, values, strict=True):
                made[i][name] = value
        if rest:
            for data, mine in zip(lacking, made, strict=True):
                missing = {name for name in rest if name not in data}
                if missing:
                    mine.update(self._validated_values(data, missing))
        return made

    def _plain_values(self, name: str, count: int) -> list[Any] | None:
        plain = self._plain.get(name)
        if plain is None:
            return None
        make, adapter = plain
        try:
            if adapter is None:
                from pydantic import TypeAdapter

                info = self._binding.fields[name]
                kind: Any = info.annotation
                if info.metadata:
                    kind = typing.Annotated[(kind, *info.metadata)]
                # The model's config: bytes, timedeltas and infinities dump as in records.
                adapter = TypeAdapter(list[kind], config=self._binding.model.model_config)
                self._plain[name] = (make, adapter)
            values: list[Any] = _json.loads(
                adapter.dump_json([make() for _ in range(count)], by_alias=False)
            )
        except Exception:  # noqa: BLE001 - made the slow way, which reports nothing either
            del self._plain[name]
            return None
        return values

    def _validated_values(self, data: dict[str, Any], missing: set[str]) -> dict[str, Any]:
        try:
            # Validating runs each factory as reading the record would (with the validated
            # data, for a factory that takes it); dumping gives the values' stored form.
            record = self._binding._validate(data)
            values: dict[str, Any] = _json.loads(
                record.model_dump_json(include=missing, by_alias=False)
            )
        except Exception:  # noqa: BLE001 - a record that does not fit is reported when read
            return {}
        return values


def _check_registrable(model: type[Table], name: str) -> None:
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


def _is_count(value: object) -> bool:
    # bool is an int in Python, but limit=True is a mistake, not a count of one.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _binding_of(model: type[Table]) -> TableBinding:
    # Read the class's own dict: a subclass of a registered table inherits the attribute but
    # is not that table.
    binding = model.__dict__.get("__discobase_binding__")
    if binding is None:
        raise TableNotRegistered(
            f"{model.__name__} is not a table of any database yet; "
            f"decorate it with @db.table (and call await db.build_tables() if the "
            "database is already connected)"
        )
    return typing.cast(TableBinding, binding)


def _puts(ids: list[int], slices: list[bytes]) -> Iterator[list[Any]]:
    """Decode JSON slices of records into put operations under ``ids``, a slice at a time."""
    from discobase.storage import Put

    start = 0
    for piece in slices:
        datas: list[dict[str, Any]] = _json.loads(piece)
        end = start + len(datas)
        yield [Put(i, data) for i, data in zip(ids[start:end], datas, strict=True)]
        start = end


def _unsave_if_failed(
    privates: list[dict[str, Any]], ids: list[int], future: asyncio.Future[None]
) -> None:
    """Make the records of a failed insert unsaved again, so that it can simply be retried
    (under the same ids, see ``Table._retry_id``).

    A record whose id changed meanwhile (deleted and saved anew) is left alone.
    """
    failed = future.cancelled() or future.exception() is not None
    for private, record_id in zip(privates, ids, strict=True):
        if private.get("_id") == record_id:
            if failed:
                private["_id"] = None
            private["_retry_id"] = record_id if failed else None


def _id_of(record: Table) -> int | None:
    # Not record._id: pydantic keeps private attributes out of the instance dict, so that
    # lookup fails first and ends in BaseModel.__getattr__, microseconds per call (seconds
    # for a save_many of 100,000 records).
    private = record.__pydantic_private__
    if private is None:  # pragma: no cover  (Table declares a private attribute)
        return record._id
    value: int | None = private.get("_id")
    return value


def _matching_ids(
    binding: TableBinding, store: TableStoreLike, fields: Mapping[str, Any]
) -> list[int]:
    conditions = dict(fields)
    within: Collection[int] | None = None
    if "id" in conditions and "id" not in binding.fields:
        wanted = _as_id(conditions.pop("id"))
        within = () if wanted is None else (wanted,)
    json_conditions = {name: binding.query_value(name, value) for name, value in conditions.items()}
    return select_ids(store, json_conditions, binding.defaults, within=within)


def _as_id(value: Any) -> int | None:
    # Ids are ints; accept their decimal string too (as Discord writes snowflakes).
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _json_defaults(model: type[BaseModel], fields: Mapping[str, FieldInfo]) -> dict[str, Any]:
    # What a stored record that predates a field is read with. default_factory values may
    # differ per record, so they stay unknown (such records never match on that field).
    defaults: dict[str, Any] = {}
    for name, info in fields.items():
        if info.is_required() or info.default_factory is not None:
            continue
        try:
            from pydantic import TypeAdapter

            adapter: TypeAdapter[Any] = TypeAdapter(typing.cast(Any, info.annotation))
            defaults[name] = _json.loads(adapter.dump_json(info.default, by_alias=False))
        except Exception:
            defaults[name] = MISSING
    return defaults


def _fields_with_validators(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    decorators = model.__pydantic_decorators__
    for group in (decorators.field_validators, decorators.field_serializers):
        for decorator in group.values():
            fields = decorator.info.fields
            names.update(model.model_fields if "*" in fields else fields)
    return names


def _orders_as_json(annotation: Any) -> bool:
    if annotation in _PLAIN:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and args[0] in _PLAIN
    return False
