"""Check query operators against a table's fields and compile them into tests (public API layer).

``discobase.operators`` describes a condition (``gt(18)``), ``discobase.query`` evaluates
compiled tests on JSON-mode records; this module sits between them. It knows a field's type
only from its annotation, which decides the operators that fit it:

- every field: ``ne``, ``one_of`` (compared as equality is, on stored JSON values);
- numbers, strings, dates, times, datetimes, timedeltas, decimals: ``gt``, ``ge``, ``lt``,
  ``le``, compared as the field's values compare (an ISO datetime string by its instant);
- strings: ``startswith`` and ``contains`` (a substring);
- lists, sets, frozensets and tuples: ``contains`` (an element).

``Any`` fields take every operator, each record's value compared when it is of the operand's
kind. Anything else (an operator on a ``bool``, ``contains`` on an ``int``) is an
``InvalidQuery`` naming the operator and the field. Operands are turned into the JSON form the
field stores, with the field's own validation, before any record is read.
"""

from __future__ import annotations

import collections.abc
import datetime
import decimal
import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Collection
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from discobase._stored_forms import value_adapter
from discobase.errors import InvalidQuery
from discobase.operators import Operator
from discobase.query import (
    MISSING,
    Condition,
    Contains,
    NotEqual,
    OneOf,
    Range,
    StoreView,
)

if TYPE_CHECKING:
    from discobase._binding import TableBinding

__all__ = ["compile_conditions", "set_equalities", "set_fields", "whole_range"]

_ORDERED = ("gt", "ge", "lt", "le")
_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}
_SEQUENCES = (
    list,
    set,
    frozenset,
    tuple,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
)
_NO_ORDER = "only numbers, strings, dates, times, datetimes, timedeltas and decimals have an order"


def _number_key(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return value if value == value else None  # NaN is in no range
    if kind is str:
        return _INFINITIES.get(value)  # pydantic stores infinities as strings
    return None


def _text_key(value: Any) -> Any:
    return value if type(value) is str else None


def _iso_key(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def key(value: Any) -> Any:
        if type(value) is not str:
            return None
        try:
            return parse(value)
        except ValueError:
            return None

    return key


_datetime_key = _iso_key(datetime.datetime.fromisoformat)
_date_key = _iso_key(datetime.date.fromisoformat)
_time_key = _iso_key(datetime.time.fromisoformat)


def _decimal_key(value: Any) -> Any:
    if type(value) is bool or not isinstance(value, str | int | float):
        return None
    try:
        number = decimal.Decimal(value if isinstance(value, str) else repr(value))
    except decimal.InvalidOperation:
        return None
    return None if number.is_nan() else number


_TIMEDELTA_ADAPTER: Any = None


def _timedelta_key(value: Any) -> Any:
    # Stored as an ISO 8601 duration ("P1DT2H"), or as seconds with ser_json_timedelta="float".
    global _TIMEDELTA_ADAPTER
    if type(value) in (int, float):
        return datetime.timedelta(seconds=value) if value == value else None
    if type(value) is not str:
        return None
    if _TIMEDELTA_ADAPTER is None:
        from pydantic import TypeAdapter

        _TIMEDELTA_ADAPTER = TypeAdapter(datetime.timedelta)
    try:
        parsed: datetime.timedelta = _TIMEDELTA_ADAPTER.validate_python(value)
    except Exception:  # noqa: BLE001 - not a duration: in no range
        return None
    return parsed


class _Kind:
    """What a field's type allows: an order (and its key), text operators, elements."""

    __slots__ = ("element", "key", "name", "text")

    def __init__(
        self,
        name: str,
        *,
        key: Callable[[Any], Any] | None = None,
        text: bool = False,
        element: Any = MISSING,
    ) -> None:
        self.name = name
        self.key = key
        self.text = text
        self.element = element


_NUMBER = _Kind("number", key=_number_key)
_STRING = _Kind("str", key=_text_key, text=True)
_ANY = _Kind("Any", key=_number_key, text=True, element=Any)


def _kind_of(annotation: Any) -> _Kind:
    """Classify a field's annotation (see the module's docstring)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind_of(typing.get_args(annotation)[0])
    if annotation is Any or annotation is object:
        return _ANY
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        kinds = [_kind_of(a) for a in options]
        if len(kinds) == 1 or all(k is kinds[0] for k in kinds):
            return kinds[0]
        if all(k is _NUMBER for k in kinds):
            return _NUMBER
        return _Kind(" | ".join(_name_of(a) for a in options))
    if origin is Literal:
        values = typing.get_args(annotation)
        if all(type(v) is str for v in values):
            return _STRING
        if all(type(v) in (int, float) for v in values):
            return _NUMBER
        return _Kind(_name_of(annotation))
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        args = typing.get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            element = Any  # a fixed-length tuple: elements of several types
        else:
            element = args[0] if args else Any
        return _Kind(_name_of(annotation), element=element)
    if isinstance(annotation, type):
        if issubclass(annotation, bool | enum.Enum):
            return _Kind(annotation.__name__)  # a bool or an enum member has no useful order
        if issubclass(annotation, int | float):
            return _NUMBER
        if issubclass(annotation, str):
            return _STRING
        if issubclass(annotation, datetime.datetime):
            return _Kind("datetime", key=_datetime_key)
        if issubclass(annotation, datetime.date):
            return _Kind("date", key=_date_key)
        if issubclass(annotation, datetime.time):
            return _Kind("time", key=_time_key)
        if issubclass(annotation, datetime.timedelta):
            return _Kind("timedelta", key=_timedelta_key)
        if issubclass(annotation, decimal.Decimal):
            return _Kind("Decimal", key=_decimal_key)
    return _Kind(_name_of(annotation))


def _name_of(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


# Model -> field -> its kind; classifying is cheap, but a range query should cost microseconds.
_KINDS: dict[type, dict[str, _Kind]] = {}
_ID = _Kind("id", key=_number_key)


def _field_kind(binding: TableBinding[Any], field: str) -> _Kind:
    known = _KINDS.get(binding.model)
    if known is None:
        known = _KINDS[binding.model] = {}
    kind = known.get(field)
    if kind is None:
        kind = known[field] = _kind_of(binding.fields[field].annotation)
    return kind


# Model -> the fields that hold a set (stored as a list in no particular order).
_SETS: dict[type, frozenset[str]] = {}
_SET_TYPES = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)


def set_fields(binding: TableBinding[Any]) -> frozenset[str]:
    """Return the names of the fields typed as a set (perhaps ``| None``): their stored lists
    are compared in any order (`discobase.query.unordered`)."""
    known = _SETS.get(binding.model)
    if known is None:
        known = _SETS[binding.model] = frozenset(
            name for name, info in binding.fields.items() if _is_set(info.annotation)
        )
    return known


def set_equalities(binding: TableBinding[Any], conditions: dict[str, Any]) -> list[Condition]:
    """Take the equalities of set fields out of ``conditions`` (field name -> JSON-mode value)
    and return their tests, which compare the stored lists in any order."""
    if not any(type(value) is list for value in conditions.values()):
        return []
    model = binding.model.__name__
    tests: list[Condition] = []
    for field in set_fields(binding).intersection(conditions):
        value = conditions.pop(field)
        default = binding.defaults.get(field, MISSING)
        spelling = functools.partial(_equality_spelling, model, field, value)
        tests.append(OneOf(field, default, spelling, [value], sets=True))
    return tests


def _equality_spelling(model: str, field: str, value: Any) -> str:
    return f"{model}.find({field}={value!r})"


def _is_set(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_set(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(options) == 1 and _is_set(options[0])
    return origin in _SET_TYPES or annotation in _SET_TYPES


def whole_range(binding: TableBinding[Any], field: str) -> Range | None:
    """Return the range of every value of a field that has an order (numbers, strings,
    dates, ...: what a sorted index can hold), or ``None``."""
    if field not in binding.fields:
        return None
    kind = _field_kind(binding, field)
    if kind.key is None or kind is _ANY:
        return None
    return Range(field, binding.defaults.get(field, MISSING), field, key=kind.key)


def compile_conditions(
    binding: TableBinding[Any], store: StoreView, conditions: dict[str, Any]
) -> tuple[list[Condition], Collection[int] | None]:
    """Take the operators out of ``conditions`` and compile them.

    Args:
        binding: the table.
        store: its store (for conditions on ``id``).
        conditions: field name -> value or operator; the operators are removed from it.

    Returns:
        The tests on fields, and the ids that conditions on ``id`` allow (``None``: any).

    Raises:
        InvalidQuery: an unknown field, an operator that does not fit the field's type, or an
            operand the field cannot hold.
    """
    tests: list[Condition] = []
    id_tests: list[Condition] = []
    for field, value in list(conditions.items()):
        if not isinstance(value, Operator):
            continue
        del conditions[field]
        if field == "id" and "id" not in binding.fields:
            id_tests.extend(_compile(binding, field, value, _ID))
            continue
        if field not in binding.fields:
            known = ", ".join(sorted(binding.fields)) or "(none)"
            raise InvalidQuery(
                f"{binding.model.__name__} has no field {field!r} (queried with "
                f"{field}={value!r}); its fields are: {known}"
            )
        tests.extend(_compile(binding, field, value, _field_kind(binding, field)))
    within: Collection[int] | None = None
    if id_tests:
        records = store.records()
        pool: Collection[int] = records.keys()
        first = id_tests[0]
        if isinstance(first, OneOf):
            pool = {v for v in first.values if type(v) is int and v in records}
        within = [i for i in pool if all(test.match(i) for test in id_tests)]
    return tests, within


def _compile(
    binding: TableBinding[Any], field: str, operator: Operator[Any], kind: _Kind
) -> list[Condition]:
    # A range query should cost microseconds: the messages that name the operator and the
    # field (its repr, the field's kind) are only written when one is raised.
    model = binding.model.__name__
    spelling = partial(_spelling, model, field, operator)
    default = binding.defaults.get(field, MISSING)
    tests: list[Condition] = []
    bounds: Range | None = None
    for name, operand in operator.parts:
        if name in _ORDERED:
            key = kind.key
            if key is None:
                raise InvalidQuery(f"{name}() does not apply to {model}.{field}: {_NO_ORDER}")
            if kind is _NUMBER and type(operand) in (int, float):
                stored = operand  # any number bounds a range: age=gt(17.5) on an int field
            else:
                stored = _to_json(binding, field, operand, name, kind)
            sortable = True
            if kind is _ANY:
                if type(stored) is str:
                    key = _text_key
                sortable = False
            bound = key(stored)
            if bound is None:
                where = _where(name, model, field, kind)
                raise InvalidQuery(f"{where}: {operand!r} has no place in an order")
            low = name in ("gt", "ge")
            inclusive = name in ("ge", "le")
            if bounds is None:
                bounds = Range(
                    field,
                    default,
                    spelling,
                    key=key,
                    low=bound if low else None,
                    low_inclusive=inclusive,
                    high=None if low else bound,
                    high_inclusive=inclusive,
                    sortable=sortable,
                )
                tests.append(bounds)
            elif bounds.key is not key:
                raise InvalidQuery(f"{spelling()}: a number and a string bound one range")
            else:
                try:
                    if low:
                        bounds.narrow_low(bound, inclusive)
                    else:
                        bounds.narrow_high(bound, inclusive)
                except TypeError:
                    raise InvalidQuery(f"{spelling()}: its bounds do not compare") from None
        elif name == "startswith":
            if not kind.text:
                raise InvalidQuery(
                    f"startswith() does not apply to {model}.{field}: a {kind.name} field is "
                    "not a string"
                )
            if not isinstance(operand, str):
                where = _where(name, model, field, kind)
                raise InvalidQuery(f"{where}: the prefix must be a str, not {operand!r}")
            prefix = _text_operand(binding, field, operand, kind)
            tests.append(
                Range(
                    field,
                    default,
                    spelling,
                    key=_text_key,
                    low=prefix,
                    high=_successor(prefix),
                    high_inclusive=False,
                    prefix=prefix,
                    sortable=kind is not _ANY,
                )
            )
        elif name == "contains":
            if kind is _ANY:
                tests.append(Contains(field, default, spelling, operand, substring=None))
            elif kind.text:
                if not isinstance(operand, str):
                    where = _where(name, model, field, kind)
                    raise InvalidQuery(f"{where}: the substring must be a str, not {operand!r}")
                substring = _text_operand(binding, field, operand, kind)
                tests.append(Contains(field, default, spelling, substring, substring=True))
            elif kind.element is not MISSING:
                where = _where(name, model, field, kind)
                element = _element_json(binding, field, kind.element, operand, where)
                tests.append(Contains(field, default, spelling, element, substring=False))
            else:
                raise InvalidQuery(
                    f"contains() does not apply to {model}.{field}: a {kind.name} field is "
                    "neither a string nor a list, set or tuple"
                )
        elif name == "ne":
            stored = _to_json(binding, field, operand, name, kind)
            sets = field in set_fields(binding)
            tests.append(NotEqual(field, default, spelling, stored, sets=sets))
        elif name == "one_of":
            if (
                len(operand) == 1
                and isinstance(operand[0], list | tuple | set | frozenset)
                and kind.element is MISSING
            ):
                where = _where(name, model, field, kind)
                raise InvalidQuery(
                    f"{where}: one_of() takes the values themselves, one_of(*values), "
                    f"not a {type(operand[0]).__name__} of them"
                )
            values = [_to_json(binding, field, v, name, kind) for v in operand]
            sets = field in set_fields(binding)
            tests.append(OneOf(field, default, spelling, values, sets=sets))
        else:  # pragma: no cover  (operators are made by this package's functions)
            raise InvalidQuery(f"{spelling()}: unknown operator {name!r}")
    return tests


def _spelling(model: str, field: str, operator: Operator[Any]) -> str:
    """Return how the user wrote a condition, e.g. ``User.find(age=gt(18))``."""
    return f"{model}.find({field}={operator!r})"


def _where(name: str, model: str, field: str, kind: _Kind) -> str:
    """Return what an error about one operator names, e.g. ``gt() on User.age (a number field)``."""
    return f"{name}() on {model}.{field} (a {kind.name} field)"


def _to_json(binding: TableBinding[Any], field: str, value: Any, name: str, kind: _Kind) -> Any:
    if kind is _ID:
        if type(value) is int:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        where = _where(name, binding.model.__name__, field, kind)
        raise InvalidQuery(f"{where}: {value!r} is not a record id")
    if kind is _ANY:
        return value  # stored as given (JSON-compatible values only)
    try:
        return binding.query_value(field, value)
    except InvalidQuery as exc:
        where = _where(name, binding.model.__name__, field, kind)
        raise InvalidQuery(f"{where}: {exc}") from None


def _text_operand(binding: TableBinding[Any], field: str, text: str, kind: _Kind) -> str:
    # The field's string rules (str_to_lower, ...) apply to the operand as to stored values;
    # constraints (min_length, a pattern) need not hold for a part of a value.
    if kind is _ANY:
        return text
    try:
        stored = binding.query_value(field, text)
    except InvalidQuery:
        return text
    return stored if type(stored) is str else text


def _successor(prefix: str) -> str | None:
    """Return the first string after every string that starts with ``prefix``."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


# (model, field) -> adapter of the field's element type.
_ELEMENT_ADAPTERS: dict[tuple[type, str], Any] = {}


def _element_json(
    binding: TableBinding[Any], field: str, element: Any, value: Any, where: str
) -> Any:
    if element is Any:
        return value
    key = (binding.model, field)
    adapter = _ELEMENT_ADAPTERS.get(key)
    if adapter is None:
        adapter = value_adapter(binding.model, element)
        _ELEMENT_ADAPTERS[key] = adapter
    try:
        from discobase import _json

        return _json.loads(adapter.dump_json(adapter.validate_python(value), by_alias=False))
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, or a dump that fails
        reason = exc.errors()[0].get("msg", str(exc)) if hasattr(exc, "errors") else str(exc)
        raise InvalidQuery(
            f"{where}: {value!r} cannot be an element of {binding.model.__name__}.{field}: {reason}"
        ) from None
