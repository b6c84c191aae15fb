"""How a record is written: the JSON-mode dict it is stored as, checked to read back (public
API layer, beside ``_binding``: pydantic records in, JSON out; no store, no I/O).

Records are written in JSON mode exactly as pydantic serialises them to JSON, and read back by
validating that JSON (see ``discobase.table``). A value pydantic writes is not always one a
reader takes: a lone surrogate, an integer of more than 4300 digits, nesting deeper than 200
levels, a serializer whose output its own validator refuses. `RecordEncoder` refuses such a
record before anything is written (`UnstorableRecord`, naming the field), as cheaply as the
model allows: plain-scalar records (``discobase._plain_records``) are their own stored form,
and the records of a large ``save_many`` are encoded and checked a slice at a time. This module
must not know stores, tables' other concerns or the database.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError, from_json

from discobase import _json
from discobase._plain_records import (
    direct_loader,
    fits_nothing,
    float_field,
    needs_validation,
    plain_check,
)
from discobase.errors import UnstorableRecord

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter

__all__ = ["DUMP_SLICE", "RecordEncoder"]

#: Records per slice when a large ``save_many`` is serialised with list adapter calls.
DUMP_SLICE = 2048
_dict_of = attrgetter("__dict__")
# What readers refuse: pydantic's JSON parser takes values nested at most this deep, and it and
# the standard library's parser (behind discobase._json for big integers) integers of at most
# this many digits.
_DEPTH_LIMIT = 200
_DIGITS_LIMIT = 4300
# A run of more digits (and minus signs) than that, as discobase._json spots long numbers.
_LONG_NUMBER = b"0" * (_DIGITS_LIMIT + 1)
_ZEROS = bytes.maketrans(b"123456789-", b"0000000000")


class RecordEncoder:
    """Turn one table's records into the JSON-mode dicts it stores, refusing unreadable ones.

    Args:
        model: the table's class.
        name: the table's name, for error messages.
        fields: the model's fields.
        read: validate stored JSON text as the table's readers do.
    """

    def __init__(
        self,
        model: type[BaseModel],
        name: str,
        fields: Mapping[str, FieldInfo],
        read: Callable[[str | bytes], BaseModel],
    ) -> None:
        self.model = model
        self.name = name
        self.fields = fields
        self._read = read
        # As readers read: a model with serialize_by_alias=True once stored its records under
        # aliases (see TableBinding).
        self._by_alias = bool(model.model_config.get("serialize_by_alias"))
        # Computed fields are derived, so never stored.
        self._computed = frozenset(model.__pydantic_computed_fields__)
        self._exclude = set(self._computed) or None
        self._list_adapter: TypeAdapter[list[Any]] | None = None
        # How records are checked before they are written (see _checks), made on first use.
        self._slice_checks: tuple[bool, bool, bool] | None = None
        # Whether a record's own dict is its stored dict (see _plain_record), once known.
        self._plain_fits: Callable[[Mapping[str, Any]], bool] | None = None
        self._plain_float_names: tuple[str, ...] = ()
        # The slices _plain_slices made last, which check_slices need not check.
        self._checked_slices: list[bytes] | None = None
        # For models whose records are plain scalars: their float fields (see _plain_slices);
        # False for other models; None until first asked.
        self._plain_floats: tuple[str, ...] | Literal[False] | None = None
        # Whether the table nests models (whose own settings write a non-finite float as
        # null); None until _checks().
        self._nested_models: bool | None = None

    def storable(self, record: BaseModel) -> dict[str, Any]:
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
        if self._nested_models:
            self._refuse_nested_non_finite(record)
        changed = self._may_change_floats(text)
        if checks[0] or changed:
            try:
                back = self._read(text)
            except Exception as exc:  # noqa: BLE001 - a validator may raise anything on read
                raise self._unstorable(record, exc) from None
            if changed:
                self._check_floats_kept(record, back)
        return data

    @staticmethod
    def _may_change_floats(text: str | bytes) -> bool:
        """Tell whether a non-finite float may have been written as a string.

        The table writes a NaN or an infinity as the text ``"NaN"``/``"Infinity"``, which a
        float field reads back as the float but an ``Any`` field as the str, without an
        error: such records are read back and compared (`_check_floats_kept`), only when the
        text holds one of those spellings. (A nested model writes one as ``null``: see
        `_refuse_nested_non_finite`.)
        """
        if isinstance(text, str):
            text = text.encode()
        return b'"NaN"' in text or b'Infinity"' in text

    def _refuse_nested_non_finite(self, record: BaseModel) -> None:
        """Refuse a NaN or an infinity inside a nested model of ``record``.

        A nested model writes one by its own settings, as ``null`` unless it says
        ``ser_json_inf_nan="strings"``: a reader then gets ``None`` (a ``float | None``, an
        ``Any``), or cannot read the record at all, which every query then skips. A walk of
        the record's nested values costs about a microsecond; reading each record back
        whenever its text holds a null (any field that is None) cost ten.
        """
        for name, value in record.__dict__.items():
            if _non_finite_in(value, counted=False):
                raise self._non_finite(name)

    def _check_floats_kept(self, record: BaseModel, back: BaseModel) -> None:
        """Refuse a record whose non-finite floats a reader would not read back as floats."""
        exclude = self._exclude
        read = back.model_dump(exclude=exclude)
        for name, value in record.model_dump(exclude=exclude).items():
            if not _floats_kept(value, read.get(name)):
                raise self._non_finite(name)

    def _non_finite(self, field: str) -> UnstorableRecord:
        """Return the refusal of a record whose field holds a NaN or an infinity that a
        reader would not read back as a float."""
        return UnstorableRecord(
            f"a {self.model.__name__} record cannot be stored in table {self.name!r}: "
            f"field {field!r}: {_NON_FINITE}; nothing was written",
            table=self.name,
            field=field,
            reason=_NON_FINITE,
        )

    def _plain_record(self, record: BaseModel) -> dict[str, Any] | None:
        """Return :meth:`storable`'s dict from the record's own, when that is exact.

        A record of a plain-scalar model (see ``discobase._plain_records``) whose values have
        exactly their fields' types holds its JSON-mode dict already: a copy of it is what
        pydantic would write and a reader build, once the JSON codec takes it (it refuses a
        lone surrogate; an integer of more than 4300 digits is refused too) and every float
        is finite (pydantic writes the others as text). ``None`` otherwise: the slow way says
        what is wrong, if anything.
        """
        fits = self._plain_fits
        if fits is None:
            fits = self._plain_fits = plain_check(self.model) or fits_nothing
            self._plain_float_names = tuple(
                name for name, info in self.fields.items() if float_field(info.annotation)
            )
        values = record.__dict__
        if not fits(values) or record.__pydantic_extra__:
            return None
        if self._plain_float_names:
            for name in self._plain_float_names:
                value = values[name]
                if value is not None and not math.isfinite(value):
                    return None
        try:
            _json.dumps(values)
        except (TypeError, ValueError):  # orjson's refusal is a TypeError
            return None
        return dict(values)

    def check_slices(self, records: Sequence[BaseModel], slices: list[bytes]) -> None:
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
        size = DUMP_SLICE
        if self._nested_models:
            for record in records:
                self._refuse_nested_non_finite(record)
        for number, piece in enumerate(slices):
            suspect = _LONG_NUMBER in piece.translate(_ZEROS) or self._may_change_floats(piece)
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
        own_functions = needs_validation(self.model)
        try:
            schema = self.model.model_json_schema(mode="serialization")
            depth = _schema_depth(schema, schema.get("$defs") or {}, frozenset())
        except Exception:  # noqa: BLE001 - a type without a JSON schema: assume the worst
            depth = None
        self._nested_models = _nests_models(self.model)
        flat = depth is not None and depth <= 1
        deep = depth is None or depth > _DEPTH_LIMIT
        checks = self._slice_checks = (own_functions or not flat, own_functions, deep)
        return checks

    def _unstorable(self, record: BaseModel, exc: BaseException) -> UnstorableRecord:
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

    def _blame(self, record: BaseModel) -> str | None:
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

    def dump_slices(self, records: Sequence[BaseModel]) -> list[bytes] | None:
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
            from pydantic import ConfigDict, TypeAdapter

            # A value of an Any field is written by the settings of the outermost type: the
            # list's, not the model's, which would write an infinity there as null, unseen.
            settings = {k: v for k, v in self.model.model_config.items() if k.startswith("ser_")}
            try:
                adapter = TypeAdapter(
                    list[self.model],  # type: ignore[name-defined]
                    config=ConfigDict(**settings),  # type: ignore[typeddict-item]
                )
            except Exception:
                return None
            self._list_adapter = adapter
        size = DUMP_SLICE
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

    def _plain_slices(self, records: Sequence[BaseModel]) -> list[bytes] | None:
        """Return :meth:`dump_slices`'s slices from the records' own dicts, when that is exact.

        A record of a model whose fields are plain scalars (see ``discobase._plain_records``) holds
        exactly its JSON-mode values, so its dict encoded by the JSON codec is what pydantic's
        serialiser writes, in a third of the time (10 ms per 100,000 records, in the caller's
        turn of the event loop), except for non-finite floats, which pydantic writes as
        ``"Infinity"`` and ``"NaN"``, and text the codec refuses (a lone surrogate): those
        batches are serialised by pydantic. ``None`` then, or for other models.
        """
        floats = self._plain_floats
        if floats is None:
            eligible = (
                direct_loader(self.model) is not None
                and self.model.model_config.get("extra") != "allow"
            )
            floats = self._plain_floats = (
                tuple(name for name, info in self.fields.items() if float_field(info.annotation))
                if eligible
                else False
            )
        if floats is False:
            return None
        dicts = list(map(_dict_of, records))
        try:
            for name in floats:
                if not all(map(math.isfinite, filter(None, map(itemgetter(name), dicts)))):
                    return None
            size = DUMP_SLICE
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


_NON_FINITE = (
    "it holds a NaN or an infinity where a reader would not read back a float (in an Any "
    "field it reads the str 'NaN', in a nested model's field None)"
)


def _nests_models(model: type[BaseModel]) -> bool:
    """Tell whether a model's fields may hold pydantic models (nested, in containers, or
    in fields of any type)."""
    from pydantic import BaseModel

    def holds(annotation: Any) -> bool:
        if annotation is Any or annotation is object:
            return True
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return True
        return any(holds(arg) for arg in typing.get_args(annotation))

    return any(holds(info.annotation) for info in model.model_fields.values())


def _non_finite_in(value: Any, *, counted: bool) -> bool:
    """Tell whether ``value`` holds a NaN or an infinity that counts: inside a nested model
    that writes it as ``null``, or anywhere (``counted``: ``value`` itself counts)."""
    from pydantic import BaseModel

    if isinstance(value, float):
        return counted and not math.isfinite(value)
    if isinstance(value, str | int) or value is None:
        return False
    if isinstance(value, BaseModel):
        writes_null = value.model_config.get("ser_json_inf_nan", "null") != "strings"
        return any(_non_finite_in(v, counted=writes_null) for v in value.__dict__.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_non_finite_in(v, counted=counted) for v in value)
    if isinstance(value, dict):
        return any(_non_finite_in(v, counted=counted) for v in value.values())
    return False


def _floats_kept(written: Any, read: Any) -> bool:
    """Tell whether every non-finite float of ``written`` is a float of ``read`` in its place.

    Only floats are compared: other differences (a tuple read as a list) are not this check's.
    """
    if isinstance(written, float):
        return (
            math.isfinite(written)
            or (isinstance(read, float) and read == written)
            or (isinstance(read, float) and math.isnan(read) and math.isnan(written))
        )
    if isinstance(written, dict):
        if not isinstance(read, dict):
            return not _non_finite_in(written, counted=True)
        return all(_floats_kept(v, read.get(k)) for k, v in written.items())
    if isinstance(written, list | tuple):
        if not isinstance(read, list | tuple) or len(read) != len(written):
            return not _non_finite_in(written, counted=True)
        return all(map(_floats_kept, written, read))
    return True


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
