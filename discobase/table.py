"""The ``Table`` base class users subclass (public API layer: pydantic models over a store).

A table is a pydantic model. ``@db.table`` attaches a `TableBinding` to the class; once
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

import logging
import types
import typing
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, overload

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError, from_json

from discobase import _json
from discobase.errors import (
    InvalidQuery,
    MultipleRecordsFound,
    RecordNotFound,
    RecordStateError,
    TableNotRegistered,
    TableRegistrationError,
    UnreadableRecord,
    UnstorableRecord,
    UsageError,
)
from discobase.index import declared_indexes
from discobase.operators import Operator
from discobase.query import (
    MISSING,
    Count,
    Records,
    StoreView,
    order_ids,
    parse_order_by,
    select_ids,
)
from discobase.schema import declared_renames, keep_unknown, known_names, rename_fill

if TYPE_CHECKING:
    import asyncio

    from pydantic import TypeAdapter

    from discobase.database import Database
    from discobase.watch import Watch

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
_dict_of = attrgetter("__dict__")
# Keyword arguments of the query methods: a field of one of these names could not be queried.
_QUERY_KEYWORDS = {"order_by": "find", "limit": "find", "offset": "find", "strict": "find_unique"}
# Discord's longest channel name: a table's channel is named after it.
_NAME_LIMIT = 100
# What readers refuse: pydantic's JSON parser takes values nested at most this deep, and it and
# the standard library's parser (behind discobase._json for big integers) integers of at most
# this many digits.
_DEPTH_LIMIT = 200
_DIGITS_LIMIT = 4300
# A run of more digits (and minus signs) than that, as discobase._json spots long numbers.
_LONG_NUMBER = b"0" * (_DIGITS_LIMIT + 1)
_ZEROS = bytes.maketrans(b"123456789-", b"0000000000")
# Unreadable records are reported here, once each (a warning names table, channel, message, id).
_log = logging.getLogger("discobase.table")


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
        """As `submit()`, for ``count`` operations the store makes from ``chunks``."""
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
        # Renamed fields: {field: former name} (discobase.schema), with the catalog's.
        self.renames = declared_renames(self.fields)
        self._store: TableStoreLike | None = None
        self.defaults = _json_defaults(model, self.fields)
        # Computed fields are left out of what is stored (and of older records when read).
        self._computed = frozenset(model.__pydantic_computed_fields__)
        # What stored records may hold for fields this class knows: an update keeps the rest.
        self.known_names = known_names(self.fields, self._computed)
        self._forbids_extra = model.model_config.get("extra") == "forbid"
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
        self._exclude = set(self._computed) or None
        # How records are checked before they are written (see _checks), made on first use.
        self._slice_checks: tuple[bool, bool, bool] | None = None
        # How stored dicts become records without validating them again (see _direct), made
        # on first use: False when the model needs its validator for every record.
        self._direct: Callable[[int, Mapping[str, Any]], Table | None] | None = None
        # Whether a record's own dict is its stored dict (see _plain_record), once known.
        self._plain_fits: Callable[[Mapping[str, Any]], bool] | None = None
        self._plain_float_names: tuple[str, ...] = ()
        # The slices _plain_slices made last, which check_slices need not check.
        self._checked_slices: list[bytes] | None = None
        # For models whose records are plain scalars: their float fields (see _plain_slices);
        # False for other models; None until first asked.
        self._plain_floats: tuple[str, ...] | Literal[False] | None = None
        # Record id -> (its stored dict, why it cannot be read): known unreadable records,
        # skipped by queries without validating them again, reported once each.
        self._unreadable: dict[int, tuple[dict[str, Any], UnreadableRecord]] = {}
        # The event loop the store was opened in: the only one writes may come from.
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def store(self) -> TableStoreLike | None:
        """Return the open store, ``None`` until the database built the table."""
        return self._store

    @store.setter
    def store(self, store: TableStoreLike | None) -> None:
        # The database sets the store once the table is open, before any query can run: old
        # records get their default-factory values here, once, so reads and queries agree.
        self._store = store
        self._unreadable.clear()
        self.loop = None
        if store is not None:
            import asyncio

            try:
                self.loop = asyncio.get_running_loop()
            except RuntimeError:  # pragma: no cover  (the database opens tables in its loop)
                pass
        filler = self._filler
        spec = getattr(store, "spec", None)
        renames: Mapping[str, str] = getattr(spec, "renames", None) or self.renames
        if store is None or not (filler.fields or renames):
            return
        from discobase.storage.state import TableState

        state = getattr(store, "state", None)
        if isinstance(state, TableState):
            if renames:  # records that hold a former name are read under the new one
                fill = rename_fill(renames, filler.fill if filler.fields else None)
                state.fill_missing(filler.fields | set(renames), fill)
            else:
                state.fill_missing(filler.fields, filler.fill)

    def _validate(self, data: Mapping[str, Any]) -> Table:
        if self._computed and not self._computed.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in self._computed}
        if self._forbids_extra and not self.known_names.issuperset(data):
            # Fields of another version of the program: not this class's to refuse (an
            # update keeps them, see discobase.schema.keep_unknown).
            data = {k: v for k, v in data.items() if k in self.known_names}
        return self._validate_text(_json.dumps(data))

    def _validate_text(self, text: str | bytes) -> Table:
        record: Table = self.model.__pydantic_validator__.validate_json(
            text, by_alias=self._by_alias, by_name=True
        )
        return record

    # ------------------------------------------------------------------ checked writes

    def storable(self, record: Table) -> dict[str, Any]:
        """Return the JSON-mode dict ``record`` is stored as, once it is known to read back.

        The record is encoded as it will be stored and decoded as a reader will, which the
        save did anyway; that alone refuses lone surrogates, integers of more than 4300 digits
        and nesting the serialiser refuses. It is then validated as a reader will (2 to 3
        microseconds for a small record, a quarter of what a save() costs), unless the model
        is flat: scalar fields only (they cannot be changed in place behind validation) and no
        validator or serializer of its own (see `_checks()`).

        Raises:
            UnstorableRecord: a reader could not read it back; nothing is written.
        """
        plain = self._plain_record(record)
        if plain is not None:
            return plain
        try:
            text = record.model_dump_json(by_alias=False, exclude=self._exclude)
        except Exception as exc:  # noqa: BLE001 - a serializer's failure, whatever its type
            raise self._unstorable(record, exc) from None
        try:
            data: dict[str, Any] = _json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise self._unstorable(record, exc) from None
        checks = self._slice_checks or self._checks()
        if checks[0]:
            try:
                self._validate_text(text)
            except Exception as exc:  # noqa: BLE001 - a validator may raise anything on read
                raise self._unstorable(record, exc) from None
        return data

    def _plain_record(self, record: Table) -> dict[str, Any] | None:
        """Return :meth:`storable`'s dict from the record's own, when that is exact.

        A record of a plain-scalar model (see ``_plain_check``) whose values have exactly
        their fields' types holds its JSON-mode dict already: a copy of it is what pydantic
        would write and a reader build, once the JSON codec takes it (it refuses a lone
        surrogate; an integer of more than 4300 digits is refused too) and every float is
        finite (pydantic writes the others as text). ``None`` otherwise: the slow way says
        what is wrong, if anything.
        """
        fits = self._plain_fits
        if fits is None:
            fits = self._plain_fits = _plain_check(self.model) or _fits_nothing
            self._plain_float_names = tuple(
                name for name, info in self.fields.items() if _float_field(info.annotation)
            )
        values = record.__dict__
        if not fits(values) or record.__pydantic_extra__:
            return None
        if self._plain_float_names:
            import math

            for name in self._plain_float_names:
                value = values[name]
                if value is not None and not math.isfinite(value):
                    return None
        try:
            _json.dumps(values)
        except (TypeError, ValueError):  # orjson's refusal is a TypeError
            return None
        return dict(values)

    def check_slices(self, records: Sequence[Table], slices: list[bytes]) -> None:
        """Check that the records of a large ``save_many``, as ``dump_slices`` made them, read
        back; the cheap way when the model's types round-trip by themselves.

        Validating 100,000 records costs 450 ms, fifteen times their encoding, and would
        stall the event loop as long. A model whose types hold no validator or serializer of
        its own (so that a value pydantic serialised is one it validates again) needs only
        the limits readers have: integers of at most 4300 digits (a scan for a long run of
        digits, 5 ms per 100,000 records) and nesting at most 200 deep, which the JSON schema
        bounds for most models (otherwise the slices are parsed by pydantic's parser, 45 ms
        per 100,000). Only models with validators or serializers of their own are validated
        in full. A suspect slice is checked record by record, as `storable()` does, to
        name the record and the field.

        Raises:
            UnstorableRecord: a record could not be read back; nothing is written.
        """
        if slices is self._checked_slices:
            self._checked_slices = None
            return
        _, validate, parse = self._slice_checks or self._checks()
        size = _DUMP_SLICE
        for number, piece in enumerate(slices):
            suspect = _LONG_NUMBER in piece.translate(_ZEROS)
            # A slice nests its records one level deeper than readers see them: a record
            # exactly at the limit is a false alarm, which the record-by-record check clears.
            try:
                if not suspect and validate:
                    adapter = self._list_adapter
                    assert adapter is not None  # dump_slices made it
                    adapter.validate_json(piece, by_alias=self._by_alias, by_name=True)
                elif not suspect and parse:
                    from_json(piece)
            except Exception:  # noqa: BLE001 - named by the check below
                suspect = True
            if suspect:
                for record in records[number * size : (number + 1) * size]:
                    self.storable(record)

    def _checks(self) -> tuple[bool, bool, bool]:
        """Return (validate each record, validate slices, parse slices for their depth)."""
        own_functions = _needs_validation(self.model)
        try:
            schema = self.model.model_json_schema(mode="serialization")
            depth = _schema_depth(schema, schema.get("$defs") or {}, frozenset())
        except Exception:  # noqa: BLE001 - a type without a JSON schema: assume the worst
            depth = None
        flat = depth is not None and depth <= 1
        deep = depth is None or depth > _DEPTH_LIMIT
        checks = self._slice_checks = (own_functions or not flat, own_functions, deep)
        return checks

    def _unstorable(self, record: Table, exc: BaseException) -> UnstorableRecord:
        field: str | None = None
        reason = _why_unstorable(str(exc))
        if isinstance(exc, ValidationError) and exc.errors():
            first = exc.errors()[0]
            location = first.get("loc") or ()
            if location and isinstance(location[0], str):
                field = location[0]
            if first.get("type") != "json_invalid":  # the model's own rules refused it
                where = ".".join(str(part) for part in location[1:])
                reason = f"it would not read back: {where + ': ' if where else ''}{first['msg']}"
        if field is None:
            field = self._blame(record)
        where = f" field {field!r}:" if field is not None else ""
        return UnstorableRecord(
            f"a {self.model.__name__} record cannot be stored in table {self.name!r}:{where} "
            f"{reason}; nothing was written",
            table=self.name,
            field=field,
            reason=reason,
        )

    def _blame(self, record: Table) -> str | None:
        # On the failure path only: encode and decode each field alone to find the culprit.
        for name in self.fields:
            if name in self._computed:
                continue
            try:
                text = record.model_dump_json(by_alias=False, include={name})
                _json.loads(text)
                from_json(text)
            except Exception:  # noqa: BLE001 - any failure names the field
                return name
        return None

    # ------------------------------------------------------------------ unreadable records

    def readable(self, ids: list[int], records: Mapping[int, dict[str, Any]]) -> list[int]:
        """Return ``ids`` without the records already known to be unreadable."""
        known = self._unreadable
        if not known:
            return ids
        for record_id, (data, _) in list(known.items()):
            if records.get(record_id) is not data:
                del known[record_id]  # rewritten or deleted since
        return [i for i in ids if i not in known] if known else ids

    def try_load(self, record_id: int, data: Mapping[str, Any]) -> Table | None:
        """Return the record, or ``None`` (reported once) if it cannot be read."""
        try:
            return self.load(record_id, data)
        except UnreadableRecord:
            return None

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
        plain = self._plain_slices(records)
        if plain is not None:
            return plain
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
        try:
            return [
                adapter.dump_json(list(records[i : i + size]), by_alias=False, exclude=exclude)
                for i in range(0, len(records), size)
            ]
        except PydanticSerializationError:
            # A value the serialiser refuses (a lone surrogate, ...): name the record.
            for record in records:
                self.storable(record)
            raise

    def _plain_slices(self, records: Sequence[Table]) -> list[bytes] | None:
        """Return :meth:`dump_slices`'s slices from the records' own dicts, when that is exact.

        A record of a model whose fields are plain scalars (see ``_direct_loader``) holds
        exactly its JSON-mode values, so its dict encoded by the JSON codec is what pydantic's
        serialiser writes, in a third of the time (10 ms per 100,000 records, in the caller's
        turn of the event loop), except for non-finite floats, which pydantic writes as
        ``"Infinity"`` and ``"NaN"``, and text the codec refuses (a lone surrogate): those
        batches are serialised by pydantic. ``None`` then, or for other models.
        """
        floats = self._plain_floats
        if floats is None:
            eligible = (
                _direct_loader(self.model) is not None
                and self.model.model_config.get("extra") != "allow"
            )
            floats = self._plain_floats = (
                tuple(name for name, info in self.fields.items() if _float_field(info.annotation))
                if eligible
                else False
            )
        if floats is False:
            return None
        dicts = list(map(_dict_of, records))
        import math

        try:
            for name in floats:
                if not all(map(math.isfinite, filter(None, map(itemgetter(name), dicts)))):
                    return None
            size = _DUMP_SLICE
            slices = [_json.dumps_64(dicts[i : i + size]) for i in range(0, len(dicts), size)]
        except (KeyError, TypeError, ValueError):  # orjson's refusal is a TypeError
            return None
        if None in slices:
            return None  # an integer beyond 64 bits: pydantic's way, and the digits checked
        checked = typing.cast(list[bytes], slices)
        # No number in them has more than 20 digits, and plain records nest no deeper than
        # readers take: check_slices has nothing to look for.
        self._checked_slices = checked
        return checked

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
            UnreadableRecord: the stored data does not fit the model (logged once, at
                WARNING, naming the table, its channel, the message and the record).
        """
        direct = self._direct
        if direct is None:
            direct = self._direct = _direct_loader(self.model) or _validate_always
        made = direct(record_id, data)
        if made is not None:
            return made
        try:
            record = self._validate(data)
        except Exception as exc:  # noqa: BLE001 - a validator may raise anything
            raise self._unreadable_record(record_id, data, exc) from None
        # Straight into pydantic's private dict: this runs once per record a query returns.
        private = record.__pydantic_private__
        if private is None:  # pragma: no cover  (Table declares a private attribute)
            record._id = record_id
        else:
            private["_id"] = record_id
        return record

    def _unreadable_record(
        self, record_id: int, data: Mapping[str, Any], exc: BaseException
    ) -> UnreadableRecord:
        known = self._unreadable.get(record_id)
        if known is not None and known[0] is data:
            return known[1]
        if isinstance(exc, ValidationError):
            errors = exc.errors()
            first = errors[0] if errors else None
            reason = str(first.get("msg", exc)) if first else str(exc)
            location = ".".join(str(part) for part in first.get("loc", ())) if first else ""
            if location:
                reason = f"{location}: {reason}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        store = self._store
        channel_id: int | None = getattr(store, "channel_id", None)
        state = getattr(store, "state", None)
        version = getattr(state, "version", None)
        message_id: int | None = version(record_id) if callable(version) else None
        channel = f"channel {channel_id}" if channel_id is not None else "its channel"
        message = f"message {message_id}" if message_id is not None else "an unknown message"
        error = UnreadableRecord(
            f"record {record_id} of table {self.name!r} ({channel}, {message}) does not fit "
            f"{self.model.__name__}: {reason}. Queries skip it; delete it with "
            f"await {self.model.__name__}.delete_id({record_id})",
            table=self.name,
            record_id=record_id,
            channel_id=channel_id,
            message_id=message_id,
            reason=reason,
        )
        if type(data) is dict:
            self._unreadable[record_id] = (data, error)
        _log.warning("%s", error)
        return error


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
        return _id_of(self)  # type: ignore[return-value]  # None only before save(), as above

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
            UnstorableRecord: a value could not be read back once stored (nothing is written).
            NotConnected, TableNotBuilt, TableNotRegistered: the table is not usable yet.
            UsageError: called outside the event loop the database runs in.
        """
        binding = _binding_of(type(self))
        store = binding.require_store()
        _check_loop(binding, "save")
        saved_id = _id_of(self)
        if saved_id is not None:
            raise RecordStateError(
                f"this {binding.name} record is already saved (id {saved_id}); "
                "use update() to write its changes, or commit() to save or update"
            )
        from discobase.storage import Put

        _collector_off_this_turn(binding)
        private = self.__pydantic_private__
        assert private is not None  # Table declares a private attribute
        data = binding.storable(self)
        record_id = private.get("_retry_id") or store.new_id()
        future = store.submit([Put(record_id, data)])
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
            UnstorableRecord: a value could not be read back once stored (nothing is written).
            UsageError: called outside the event loop the database runs in.
        """
        binding = _binding_of(type(self))
        store = binding.require_store()
        _check_loop(binding, "update")
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved yet; "
                "use save() to insert it, or commit() to save or update"
            )
        from discobase.storage import Put

        _collector_off_this_turn(binding)
        # Fields this class does not know (a newer program's) keep their stored values.
        data = keep_unknown(binding.storable(self), store.get(record_id), binding.known_names)
        future = store.submit([Put(record_id, data)])
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
        _check_loop(binding, "delete")
        record_id = self._id
        if record_id is None:
            raise RecordStateError(
                f"this {binding.name} record is not saved, so there is nothing to delete; "
                "only records saved with save() (or found with find()) can be deleted"
            )
        from discobase.storage import Delete

        _collector_off_this_turn(binding)
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
    def delete_id(cls, record_id: int | str) -> asyncio.Task[None]:
        """Delete the stored record with this id, without reading it.

        The way to remove a record that cannot be read (one a query skipped and reported,
        naming its id): it is deleted by id, as it is stored. A record object in memory that
        holds this id keeps it: its ``update()`` would write it anew.

        Raises:
            RecordNotFound: no stored record has this id.
            UsageError: called outside the event loop the database runs in.
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        _check_loop(binding, "delete_id")
        wanted = _as_id(record_id)
        if wanted is None or store.get(wanted) is None:
            raise RecordNotFound(f"no {binding.name} record has id {record_id!r}")
        from discobase.storage import Delete

        future = store.submit([Delete(wanted)])
        return binding.database._track(future, f"delete of {binding.name} {wanted}", None)

    @classmethod
    def save_many(cls, records: Iterable[Self]) -> asyncio.Task[list[Self]]:
        """Insert several new records as one atomic batch.

        Every record gets its id at once; readers see all of them or none. If the write
        fails, every record is unsaved again (``id`` is ``None``), so ``save_many()`` may
        simply be called again.

        Raises:
            UsageError: a record is not of this table, or appears twice; or called outside
                the event loop the database runs in.
            RecordStateError: a record is already saved.
            UniqueViolation: a unique index would hold a value twice.
            UnstorableRecord: a record could not be read back once stored (nothing is
                written).
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        _check_loop(binding, "save_many")
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
                ops = [Put(i, binding.storable(r)) for i, r in zip(ids, batch, strict=True)]
                future = store.submit(ops)
            else:
                binding.check_slices(batch, slices)
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
        """Return the records matching every given field (all records without arguments).

        A field's value is matched by equality, or by an operator: `find(age=gt(18))`,
        `find(country=one_of("NL", "BE"))`, `find(name=startswith("Pe"))` (see
        `discobase.operators`; a range or prefix on an indexed field is answered by its
        index). The result is a list that may also be awaited or iterated with `async for`:
        `for u in User.find(name="Peter")` and `await User.find(name="Peter")` both work. It
        also has `first()`, `exists()`, `update_many()` and `delete_many()` (see `Records`).

        Args:
            order_by: a field name, ``"-name"`` for descending, or a sequence of them
                (``"id"`` is creation order, the default); ``None`` values come last.
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
        records = store.records()
        ids = binding.readable(_matching_ids(binding, store, fields), records)
        loaded: dict[int, Table] = {}
        if keys and all(binding.orders_as_json(field) for field, _ in keys):
            ids = order_ids(ids, keys, lambda i, f: binding.sort_value(records, i, f))
        elif keys:
            for i in ids:
                record = binding.try_load(i, records[i])
                if record is not None:
                    loaded[i] = record
            ids = [i for i in ids if i in loaded]
            ids = order_ids(ids, keys, lambda i, f: i if f == "id" else getattr(loaded[i], f))
        end = None if limit is None else offset + limit
        while True:
            page: list[Self] = []
            for i in ids[offset:end]:
                record = loaded.get(i) or binding.try_load(i, records[i])
                if record is None:
                    break
                loaded[i] = record
                page.append(typing.cast(Self, record))
            else:
                return Records(page)
            # An unreadable record was skipped (and reported): page again without it.
            ids = binding.readable(ids, records)

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
        _check_loop(binding, "find_unique")
        if not isinstance(strict, bool):
            raise InvalidQuery(f"strict must be True or False, not {strict!r}")
        if not fields:
            raise InvalidQuery(
                "find_unique() needs at least one field to match, e.g. "
                f"{cls.__name__}.find_unique(name=...); use find() to list every record"
            )
        records = store.records()
        ids = binding.readable(_matching_ids(binding, store, fields), records)
        found: list[Table] = []
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
        return typing.cast(Self, found[0]) if found else None

    @classmethod
    async def get(cls, record_id: int | str) -> Self:
        """Return the record with this id.

        Raises:
            RecordNotFound: no record has this id.
            UnreadableRecord: the stored record does not fit the model (delete it with
                `delete_id()`).
        """
        binding = _binding_of(cls)
        store = binding.require_store()
        _check_loop(binding, "get")
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
        from discobase.watch import watch_table

        binding = _binding_of(cls)
        _check_loop(binding, "watch")
        return typing.cast("Watch[Self]", watch_table(binding, fields))


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
    global _TABLE_NAMES
    if _TABLE_NAMES is None:
        _TABLE_NAMES = frozenset(name for name in dir(Table) if not name.startswith("_"))
    return _TABLE_NAMES


_TABLE_NAMES: frozenset[str] | None = None


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


# Field types whose JSON value, when its Python type is exactly this, is what validating it
# gives back (an int is not a float's: validation makes 1 into 1.0).
_DIRECT_TYPES = (str, int, float, bool)
# Config keys that make validation change a str or refuse one: such models always validate.
_DIRECT_CONFIG = (*_STRING_RULES, "str_min_length", "str_max_length", "coerce_numbers_to_str")
# Private attribute defaults that records may share (immutable).
_SHARED_DEFAULTS: tuple[type, ...] = (*_DIRECT_TYPES, type(None))


def _float_field(annotation: Any) -> bool:
    """Tell whether a plain scalar field (see ``_direct_loader``) may hold a float."""
    return annotation is float or float in typing.get_args(annotation)


def _fits_nothing(data: Mapping[str, Any]) -> bool:
    """The plain check of models that are not plain: no dict fits."""
    return False


def _validate_always(record_id: int, data: Mapping[str, Any]) -> Table | None:
    """The direct loader of models that need validation: never builds a record."""
    return None


def _direct_loader(
    model: type[Table],
) -> Callable[[int, Mapping[str, Any]], Table | None] | None:
    """Return a maker of records from stored dicts without validation, when that is exact.

    Validating a stored record again (encode the dict, parse and validate the JSON) is most
    of what a query returning it costs. For a model whose fields are all plain scalars
    (``str``, ``int``, ``float``, ``bool``, each perhaps ``| None``) with no constraint,
    validator, serializer or string rule, a stored dict whose keys are the fields, in order,
    and whose values have exactly those types is what validation would give back: the maker
    builds the record from a copy of it (the values are immutable, so changing the record
    never changes the stored dict) and returns ``None`` for any other dict, which is then
    validated. ``None`` when the model is not such a model.
    """
    fits = _plain_check(model)
    if fits is None:
        return None
    post_init = model.model_post_init
    if (
        getattr(post_init, "__module__", None) != "pydantic._internal._model_construction"
        or getattr(post_init, "__qualname__", None) != "init_private_attributes"
    ):
        return None  # the model's own model_post_init must run: validate
    names = list(model.model_fields)
    template: dict[str, Any] | None = {}
    for name, private in model.__private_attributes__.items():
        default = private.default
        if private.default_factory is not None or type(default) not in _SHARED_DEFAULTS:
            template = None  # made per record, by pydantic's own initialiser
            break
        assert template is not None
        template[name] = default
    fields_set = frozenset(names)
    extra = model.model_config.get("extra") == "allow"
    setattr_ = object.__setattr__
    new = object.__new__

    def make(record_id: int, data: Mapping[str, Any]) -> Table | None:
        if not fits(data):
            return None
        record: Table = new(model)
        setattr_(record, "__dict__", dict(data))
        setattr_(record, "__pydantic_fields_set__", set(fields_set))
        setattr_(record, "__pydantic_extra__", {} if extra else None)
        private: dict[str, Any] | None
        if template is not None:
            private = template.copy()
            setattr_(record, "__pydantic_private__", private)
        else:
            setattr_(record, "__pydantic_private__", None)
            record.model_post_init(None)
            private = record.__pydantic_private__
            assert private is not None
        private["_id"] = record_id
        return record

    return make


def _plain_check(model: type[Table]) -> Callable[[Mapping[str, Any]], bool] | None:
    """Return a check that a dict holds exactly what validation gives back for ``model``.

    For a model whose fields are all plain scalars (``str``, ``int``, ``float``, ``bool``,
    each perhaps ``| None``) with no constraint, validator, serializer or string rule, a dict
    whose keys are the fields, in order, and whose values have exactly those types, is what
    validating it gives back (see ``_direct_loader``). ``None`` for any other model.
    """
    from discobase.index import Index

    if model.__pydantic_root_model__ or _needs_validation(model):
        return None
    if any(model.model_config.get(key) for key in _DIRECT_CONFIG):
        return None
    names: list[str] = []
    exact: list[type] = []
    allowed: list[frozenset[type]] = []
    for name, info in model.model_fields.items():
        if any(not isinstance(item, Index) for item in info.metadata):
            return None  # a constraint (max_length, strict, ...) validation would check
        kind: Any = info.annotation
        options = {kind}
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            options = set(typing.get_args(kind))
            if type(None) not in options or len(options) != 2:
                return None
            kind = next(k for k in options if k is not type(None))
        if kind not in _DIRECT_TYPES:
            return None
        names.append(name)
        exact.append(kind)
        allowed.append(frozenset(options))
    field_names = tuple(names)
    exact_types = tuple(exact)
    allowed_types = tuple(allowed)
    has_none = any(len(options) > 1 for options in allowed)
    contains = frozenset.__contains__

    def fits(data: Mapping[str, Any]) -> bool:
        found = tuple(map(type, data.values()))
        if found != exact_types and not (
            has_none
            and len(found) == len(allowed_types)
            and all(map(contains, allowed_types, found))
        ):
            return False
        return tuple(data) == field_names

    return fits


# Whether the cyclic collector is held off until the event loop's next turn (see below).
_collector_held = False


def _collector_off_this_turn(binding: TableBinding) -> None:
    """Hold the cyclic collector off until the event loop's next turn.

    A burst of writes (``gather(*(r.save() for r in records))``) runs in one go, and each
    write leaves a task, its coroutine and a few futures behind: their allocations trigger
    collections that walk every one made before, again and again (70 % of what 10,000 saves
    cost). Held off for the burst, the collector walks them once when the loop turns. Code
    that runs meanwhile only keeps its cyclic garbage that long.
    """
    global _collector_held
    if _collector_held:
        return
    import asyncio

    from discobase.storage.snapshot import pause_gc

    loop = binding.loop or asyncio.get_running_loop()
    pause_gc()
    _collector_held = True
    loop.call_soon(_collector_on)


def _collector_on() -> None:
    global _collector_held
    from discobase.storage.snapshot import resume_gc

    _collector_held = False
    resume_gc()


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
    tests: list[Any] = []
    if any(isinstance(value, Operator) for value in conditions.values()):
        # gt(18), one_of(...), ...: compiled against the fields' types (discobase._conditions).
        from discobase._conditions import compile_conditions

        tests, within = compile_conditions(binding, store, conditions)
    if "id" in conditions and "id" not in binding.fields:
        wanted = _as_id(conditions.pop("id"))
        ids = () if wanted is None else (wanted,)
        within = ids if within is None else [i for i in ids if i in within]
    json_conditions = {name: binding.query_value(name, value) for name, value in conditions.items()}
    return select_ids(store, json_conditions, binding.defaults, within=within, tests=tests)


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


def _check_loop(binding: TableBinding, call: str) -> None:
    """Refuse a call made outside the event loop the table's database runs in.

    The store's futures belong to that loop: a write queued from another thread's loop would
    be stored but its task would never complete there, and a write from code with no loop
    at all has nothing to run its task.

    Raises:
        UsageError: no running loop, or another one than the database's.
    """
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            f"{binding.model.__name__}.{call}() was called with no running event loop (from "
            "synchronous code, or a thread without asyncio); it returns a task to await: call "
            "it from a coroutine running in the database's event loop. Nothing was written"
        ) from None
    if binding.loop is not None and loop is not binding.loop:
        raise UsageError(
            f"{binding.model.__name__}.{call}() was called from another event loop than the "
            f"one {binding.database!r} runs in (a second thread's asyncio.run?); a database "
            "serves only the loop it logged in from: hand the call to that loop (for example "
            "with asyncio.run_coroutine_threadsafe). Nothing was written"
        )


def _why_unstorable(detail: str) -> str:
    """Say in words why a reader could not read a value, from its codec's message."""
    if "surrogates not allowed" in detail:
        return (
            "it holds a lone surrogate (a str such as '\\ud800', half of a UTF-16 pair), "
            "which is not Unicode text and cannot be encoded"
        )
    if "recursion limit" in detail or "serialization depth" in detail or "Recursion" in detail:
        return f"it is nested too deeply: readers take at most {_DEPTH_LIMIT} levels"
    if "integer string conversion" in detail or "number out of range" in detail:
        return (
            f"it holds an integer of more than {_DIGITS_LIMIT} digits, which readers refuse "
            "(store it as a str)"
        )
    return f"it would not read back: {detail}"


def _needs_validation(model: type[BaseModel]) -> bool:
    """Tell whether a model's stored values may fail to validate although pydantic made them.

    True when its schema holds a function of the user's (a validator or serializer, on a
    field, a model or a type) or a field left out of what is stored.
    """
    if any(info.exclude for info in model.model_fields.values()):
        return True
    seen: set[int] = set()
    stack: list[Any] = [model.__pydantic_core_schema__]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.startswith("function-"):
                return True
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return False


def _schema_depth(node: Any, defs: Mapping[str, Any], seen: frozenset[str]) -> int | None:
    """Return how deep a value of a JSON schema nests (0 for a scalar), ``None`` if unbounded."""
    if node is True or not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            return None  # a recursive model
        return _schema_depth(defs[name], defs, seen | {name})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            depths = [_schema_depth(option, defs, seen) for option in node[key]]
            return None if None in depths else max((d for d in depths if d is not None), default=0)
    if "const" in node or "enum" in node:
        return 1  # literal and enum values are scalars, at worst a short list
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or not kinds:
        return None  # Any: anything at all
    deepest = 0
    for kind in kinds:
        if kind in ("string", "integer", "number", "boolean", "null"):
            continue
        if kind == "array":
            parts = [*node.get("prefixItems", ()), *([node["items"]] if "items" in node else [])]
            if not parts:
                return None
        elif kind == "object":
            parts = list((node.get("properties") or {}).values())
            extra = node.get("additionalProperties")
            if extra is True or (extra is None and not parts):
                return None
            if isinstance(extra, dict):
                parts.append(extra)
        else:
            return None
        depths = [_schema_depth(part, defs, seen) for part in parts]
        if None in depths:
            return None
        deepest = max(deepest, 1 + max((d for d in depths if d is not None), default=0))
    return deepest
