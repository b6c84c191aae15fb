"""How a model is read: what ``@db.table`` attaches to a class (public API layer, below
``discobase.table``: pydantic model classes, JSON-mode dicts and a table store's protocol).

A `TableBinding` describes one registered model as a table: its name, fields, indexes,
renames and defaults; the store it reads once its database built it; how a stored JSON-mode
dict becomes a record (validated, or built directly for plain-scalar models) and how a
query value becomes the JSON a record stores. Writing a record goes through its
`RecordEncoder` (``discobase._encoder``); fields older records lack are filled by its
``Filler`` (``discobase._filler``). Both are made, and their modules imported, on first use:
defining or registering a model class loads neither, nor ``logging``.

The binding knows its database only as a `TableOwner` and its store only as a
`TableStoreLike`: this module must not import ``discobase.table`` (which builds on it),
``discobase.database`` (which makes bindings) nor the storage layer (how a store keeps its
records: messages, snapshots, the gateway).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError

from discobase import _json
from discobase._collector import QUIET_PAGE, gc_paused
from discobase._plain_records import (
    STRING_RULES,
    direct_loader,
    direct_page_loader,
    validate_always,
)
from discobase._stored_forms import stored_defaults, stored_schema, value_adapter
from discobase.errors import InvalidQuery, TableNotRegistered, UnreadableRecord
from discobase.index import declared_indexes
from discobase.query import MISSING, StoreView
from discobase.schema import declared_renames, known_names, rename_fill, renamed_fields

if TYPE_CHECKING:
    import asyncio

    from pydantic import BaseModel

    from discobase._encoder import RecordEncoder
    from discobase._filler import Filler

__all__ = [
    "TableBinding",
    "TableOwner",
    "TableStoreLike",
    "as_id",
    "binding_of",
    "id_of",
    "is_record",
]

M = TypeVar("M", bound="BaseModel")

# Types whose JSON form is the Python value itself and orders the same way.
_PLAIN = (str, int, bool)


class _TableLog:
    """The ``discobase.table`` logger, looked up when first used: ``logging`` is not imported
    when a model class is defined."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("discobase.table"), name)


# Unreadable records are reported here, once each (a warning names table, channel, message,
# id): the logger is named after the module users know, as the documentation says.
_log = _TableLog()


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


@runtime_checkable
class _FillableState(Protocol):
    """The storage engine's ``TableState`` as a binding fills older records in it."""

    def fill_missing(
        self,
        fields: Collection[str],
        fill: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    ) -> int:
        """Give every record that lacks one of ``fields`` the values ``fill`` makes, once."""
        ...


class TableOwner(Protocol):
    """The database a table belongs to, as its tables use it (`Database` is the one).

    A protocol rather than an import: the database imports the tables to register them, so
    the tables know it only by what they ask of it. The members are private names: they are
    the tables' way into the database, not its users' API.
    """

    def _track(self, future: asyncio.Future[Any], what: str, result: Any) -> asyncio.Task[Any]:
        """Return the task a write returns: it completes with ``result`` once ``future`` does."""
        ...

    def _store_for(self, binding: TableBinding[Any]) -> TableStoreLike:
        """Raise the error that says why ``binding`` has no store."""
        ...

    def _watch(self, binding: TableBinding[Any], fields: Mapping[str, Any]) -> AsyncIterator[Any]:
        """Return a watcher of the table's changes that match ``fields`` (a `discobase.Watch`)."""
        ...


class TableBinding(Generic[M]):
    """What ``@db.table`` attaches to a class: its database, name, fields, indexes and store.

    Attributes:
        database: the database the table belongs to.
        model: the table's class.
        name: the table's name (the class name in lower case).
        indexes: ``{field: unique}`` of the declared indexes.
        store: the open store, ``None`` until the database built the table.
        encoder: turns its records into what is stored (``discobase._encoder``).
    """

    def __init__(self, database: TableOwner, model: type[M], name: str) -> None:
        """Describe ``model`` as the table ``name`` of ``database``.

        Raises:
            TableRegistrationError: a renamed field is declared twice or over another one
                (``discobase.schema``).
        """
        self.database = database
        self.model = model
        self.name = name
        self.fields: dict[str, FieldInfo] = dict(model.model_fields)
        self.indexes = declared_indexes(self.fields)
        # Renamed fields: {field: former name} (discobase.schema), with the catalog's.
        self.renames = declared_renames(self.fields)
        # The renames the table knows now (its store's, which follow the catalog): updates
        # write none of their other names of this class's fields (schema.keep_unknown).
        self.renames_now: Mapping[str, str] = self.renames
        self._store: TableStoreLike | None = None
        self.defaults = stored_defaults(model, self.fields)
        # Computed fields are left out of what is stored (and of older records when read).
        self._computed = frozenset(model.__pydantic_computed_fields__)
        # What stored records may hold for fields this class knows: an update keeps the rest.
        self.known_names = known_names(self.fields, self._computed)
        self._forbids_extra = model.model_config.get("extra") == "forbid"
        # Before field names were enforced, a model with serialize_by_alias=True stored its
        # records under aliases: those records are still read (by alias, or by name).
        self._by_alias = bool(model.model_config.get("serialize_by_alias"))
        validated = self._validated = _fields_with_validators(model)
        strings_rewritten = any(model.model_config.get(k) for k in STRING_RULES)
        # Fields whose query values are already in JSON form when they have the field's type
        # (that type): a query compares such a value as it is, without query_value.
        self.as_is: dict[str, Any] = {
            name: info.annotation
            for name, info in self.fields.items()
            if name not in validated
            and info.annotation in _PLAIN
            and not (info.annotation is str and strings_rewritten)
        }
        self._raw_sortable = {
            name for name, info in self.fields.items() if _orders_as_json(info.annotation)
        }
        # How stored dicts become records without validating them again (see load), made
        # on first use: validate_always when the model needs its validator for every record;
        # and the same for a page of records at once, or None (see load_page).
        self._direct: Callable[[int, Mapping[str, Any]], M | None] = self._first_direct
        self._direct_page: (
            Callable[[Sequence[int], Mapping[int, dict[str, Any]]], list[M] | None] | None
        ) = self._first_page
        # Record id -> (its stored dict, why it cannot be read): known unreadable records,
        # skipped by queries without validating them again, reported once each.
        self._unreadable: dict[int, tuple[dict[str, Any], UnreadableRecord]] = {}
        # The ids of the records this process is deleting (the deletion not yet stored or
        # failed): an update of one is refused meanwhile, since the record is unsaved once
        # the deletion is stored, whatever was written after it (see Table.update).
        # A count per id: two deletions of one record (two objects of it) may overlap.
        self.deleting: dict[int, int] = {}
        # The event loop the store was opened in: the only one writes may come from.
        self.loop: asyncio.AbstractEventLoop | None = None

    @functools.cached_property
    def encoder(self) -> RecordEncoder:
        """Return what turns the table's records into what is stored (made on first use)."""
        from discobase._encoder import RecordEncoder

        return RecordEncoder(self.model, self.name, self.fields, self._validate_text)

    @functools.cached_property
    def _filler(self) -> Filler:
        # Made on first use: when the table opens, or a record is applied that lacks fields.
        from discobase._filler import Filler

        return Filler(self.model, self.fields, self._validated, self._validate)

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
        self._fill_records(store)
        if store is not None and hasattr(store, "on_renames"):  # renames recorded later
            store.on_renames = functools.partial(self._fill_records, store)

    def _fill_records(self, store: TableStoreLike | None) -> None:
        """Give the records the values this class reads: defaults, other names of fields."""
        filler = self._filler
        spec = getattr(store, "spec", None)
        renames: Mapping[str, str] = getattr(spec, "renames", None) or self.renames
        renamed = renamed_fields(renames)
        self.renames_now = renames
        if store is None or not (filler.fields or renamed):
            return
        # Through the state the storage engine's store keeps (a test's fake store may have
        # none): the store's own protocol has no say in how records are kept.
        state = getattr(store, "state", None)
        if isinstance(state, _FillableState):
            if renamed:  # records that hold another name of a field are read under its own
                fill = rename_fill(renames, filler.fill if filler.fields else None)
                state.fill_missing(filler.fields | renamed, fill)
            else:
                state.fill_missing(filler.fields, filler.fill)

    def _validate(self, data: Mapping[str, Any]) -> M:
        if self._computed and not self._computed.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in self._computed}
        if self._forbids_extra and not self.known_names.issuperset(data):
            # Fields of another version of the program: not this class's to refuse (an
            # update keeps them, see discobase.schema.keep_unknown).
            data = {k: v for k, v in data.items() if k in self.known_names}
        return self._validate_text(_json.dumps(data))

    def _validate_text(self, text: str | bytes) -> M:
        record: M = self.model.__pydantic_validator__.validate_json(
            text, by_alias=self._by_alias, by_name=True
        )
        return record

    def storable(self, record: M) -> dict[str, Any]:
        """Return the JSON-mode dict ``record`` is stored as, once it is known to read back.

        Raises:
            UnstorableRecord: a reader could not read it back; nothing is written.
        """
        return self.encoder.storable(record)

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

    def try_load(self, record_id: int, data: Mapping[str, Any]) -> M | None:
        """Return the record, or ``None`` (reported once) if it cannot be read."""
        try:
            return self.load(record_id, data)
        except UnreadableRecord:
            return None

    def require_store(self) -> TableStoreLike:
        """Return the open store, or raise the error that says what to do first."""
        store = self._store
        if store is None:
            return self.database._store_for(self)
        return store

    def schema(self) -> dict[str, Any]:
        """Return the JSON schema the catalog keeps for this table."""
        return stored_schema(self.model, self.defaults)

    def has_default(self) -> dict[str, bool]:
        """Return ``{field: has a default}`` for every field."""
        return {name: not info.is_required() for name, info in self.fields.items()}

    def query_value(self, field: str, value: Any) -> Any:
        """Return ``value`` in the JSON form records store for ``field``.

        Raises:
            InvalidQuery: no such field, or ``value`` is not valid for it.
        """
        kind = self.as_is.get(field)
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
        except (PydanticSerializationError, ValueError) as exc:
            # Validated (an Any field takes any object) but with no JSON form: no record
            # could hold it.
            raise InvalidQuery(
                f"{value!r} cannot be a value of {self.model.__name__}.{field}: it has no JSON "
                f"form ({exc})"
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
            adapter = value_adapter(model, self.fields[field].annotation)
            return _json.loads(adapter.dump_json(adapter.validate_python(value), by_alias=False))
        return _json.loads(probe.model_dump_json(include={field}, by_alias=False))[field]

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

    def _first_direct(self, record_id: int, data: Mapping[str, Any]) -> M | None:
        self._make_loaders()
        return self._direct(record_id, data)

    def _first_page(
        self, ids: Sequence[int], records: Mapping[int, dict[str, Any]]
    ) -> list[M] | None:
        self._make_loaders()
        page = self._direct_page
        return None if page is None else page(ids, records)

    def _make_loaders(self) -> None:
        # The model is complete by the first read: its loaders replace the _first_ ones.
        self._direct = direct_loader(self.model) or validate_always
        self._direct_page = direct_page_loader(self.model)

    def load_one(self, record_id: int, data: dict[str, Any]) -> M | None:
        """Return the record of a stored dict, or ``None`` (reported once) if it cannot be read."""
        record = self._direct(record_id, data)
        if record is None:
            return self.try_load(record_id, data)
        return record

    def load_page(self, ids: Sequence[int], records: Mapping[int, dict[str, Any]]) -> list[M]:
        """Return the records of ``ids``, in that order, without those that cannot be read.

        A record that cannot be read is left out and reported (once), as `try_load` does;
        the caller tells by the length whether one was.
        """
        if len(ids) < QUIET_PAGE:
            return self._load_page(ids, records)
        # A record is a few new containers, none in a cycle: each collection that making
        # thousands of them triggers walks them all again, and the older generations too
        # (two thirds of what returning 100,000 records cost). Nothing awaits meanwhile.

        with gc_paused():
            return self._load_page(ids, records)

    def _load_page(self, ids: Sequence[int], records: Mapping[int, dict[str, Any]]) -> list[M]:
        if len(ids) == 1:
            record = self.load_one(ids[0], records[ids[0]])
            return [] if record is None else [record]
        page = self._direct_page
        if page is not None and ids:
            made = page(ids, records)
            if made is not None:
                return made
        found: list[M] = []
        append = found.append
        direct = self._direct
        for record_id, data in zip(ids, map(records.__getitem__, ids), strict=True):
            record = direct(record_id, data)
            if record is None:
                record = self.try_load(record_id, data)
                if record is None:
                    continue
            append(record)
        return found

    def load(self, record_id: int, data: Mapping[str, Any]) -> M:
        """Turn a stored dict into a record carrying its id.

        Raises:
            UnreadableRecord: the stored data does not fit the model (logged once, at
                WARNING, naming the table, its channel, the message and the record).
        """
        made = self._direct(record_id, data)
        if made is not None:
            return made
        try:
            record = self._validate(data)
        except Exception as exc:  # noqa: BLE001 - a validator may raise anything
            raise self._unreadable_record(record_id, data, exc) from None
        # Straight into pydantic's private dict: this runs once per record a query returns.
        private = record.__pydantic_private__
        assert private is not None  # Table declares a private attribute
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
            f"{self.model.__name__}: {reason}. Queries skip it. If a newer version of the "
            "program wrote it (a widened type, docs/guide/schemas.md), run that version "
            "here and keep the record; if it is damaged, delete it with "
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


def binding_of(model: type[M]) -> TableBinding[M]:
    """Return the binding ``@db.table`` attached to ``model``.

    Raises:
        TableNotRegistered: ``model`` is not a registered table.
    """
    # A subclass of a registered table inherits the attribute but is not that table: the
    # binding must be the class's own (its model is the class). Every query starts here.
    binding = getattr(model, "__discobase_binding__", None)
    if binding is not None and binding.model is model:
        return typing.cast("TableBinding[M]", binding)
    binding = model.__dict__.get("__discobase_binding__")
    if binding is None:
        raise TableNotRegistered(
            f"{model.__name__} is not a table of any database yet; "
            f"decorate it with @db.table (and call await db.build_tables() if the "
            "database is already connected)"
        )
    return typing.cast("TableBinding[M]", binding)


def is_record(value: object) -> bool:
    """Tell whether ``value`` is a record: an instance of a ``discobase.Table`` class."""
    # Every Table class has the attribute, None until it is registered (see binding_of).
    return hasattr(type(value), "__discobase_binding__")


def id_of(record: BaseModel) -> int | None:
    """Return a record's id (``None`` while it is not saved)."""
    # Not record._id: pydantic keeps private attributes out of the instance dict, so that
    # lookup fails first and ends in BaseModel.__getattr__, microseconds per call (seconds
    # for a save_many of 100,000 records).
    private = record.__pydantic_private__
    assert private is not None  # Table declares a private attribute
    value: int | None = private.get("_id")
    return value


def as_id(value: Any) -> int | None:
    """Return a record id given as an int or its decimal string, or ``None``."""
    # Ids are ints; accept their decimal string too (as Discord writes snowflakes).
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


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
