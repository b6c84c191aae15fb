"""Plain-scalar models: records whose own dicts are exactly their stored form (public API layer,
beside ``_binding``: pure functions of a pydantic model class; no store, no I/O).

A model whose fields are all plain scalars (``str``, ``int``, ``float``, ``bool``, each perhaps
``| None``) with no constraint, validator, serializer or string rule holds, in a record's
``__dict__``, exactly the JSON-mode values pydantic would write and a reader would build. Such
records skip pydantic on both paths: a query builds them from stored dicts without validating
(`direct_loader`), a write stores a copy of their dict (`plain_check`). Every other model goes
pydantic's way. This module must not know tables, stores or the database.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from discobase.index import Index

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "STRING_RULES",
    "direct_loader",
    "fits_nothing",
    "float_field",
    "needs_validation",
    "plain_check",
    "validate_always",
]

M = TypeVar("M", bound="BaseModel")

# Config keys that change a string on its way in: a query value must then be validated.
STRING_RULES = ("str_strip_whitespace", "str_to_lower", "str_to_upper")
# Field types whose JSON value, when its Python type is exactly this, is what validating it
# gives back (an int is not a float's: validation makes 1 into 1.0).
_DIRECT_TYPES = (str, int, float, bool)
# Config keys that make validation change a str or refuse one: such models always validate.
_DIRECT_CONFIG = (*STRING_RULES, "str_min_length", "str_max_length", "coerce_numbers_to_str")
# Private attribute defaults that records may share (immutable).
_SHARED_DEFAULTS: tuple[type, ...] = (*_DIRECT_TYPES, type(None))


def float_field(annotation: Any) -> bool:
    """Tell whether a plain scalar field (see `direct_loader`) may hold a float."""
    return annotation is float or float in typing.get_args(annotation)


def fits_nothing(data: Mapping[str, Any]) -> bool:
    """The plain check of models that are not plain: no dict fits."""
    return False


def validate_always(record_id: int, data: Mapping[str, Any]) -> None:
    """The direct loader of models that need validation: never builds a record."""
    return None


def direct_loader(
    model: type[M],
) -> Callable[[int, Mapping[str, Any]], M | None] | None:
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
    fits = plain_check(model)
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

    def make(record_id: int, data: Mapping[str, Any]) -> M | None:
        if not fits(data):
            return None
        record: M = new(model)
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


def plain_check(model: type[BaseModel]) -> Callable[[Mapping[str, Any]], bool] | None:
    """Return a check that a dict holds exactly what validation gives back for ``model``.

    For a model whose fields are all plain scalars (``str``, ``int``, ``float``, ``bool``,
    each perhaps ``| None``) with no constraint, validator, serializer or string rule, a dict
    whose keys are the fields, in order, and whose values have exactly those types, is what
    validating it gives back (see `direct_loader`). ``None`` for any other model.
    """
    if model.__pydantic_root_model__ or needs_validation(model):
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


def needs_validation(model: type[BaseModel]) -> bool:
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
