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
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, TypeVar

from discobase.index import Index

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "STRING_RULES",
    "direct_loader",
    "direct_page_loader",
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
    plan = _Plan.of(model)
    if plan is None:
        return None
    # plan.fits, inlined: this runs once per record a query returns.
    exact = plan.exact
    names = plan.names
    has_none = plan.has_none
    allowed = plan.allowed
    contains = frozenset.__contains__
    fields_set = plan.fields_set
    extra = plan.extra
    template = plan.template
    new, set_dict, set_fields_set = _new, _set_dict, _set_fields_set
    set_extra, set_private = _set_extra, _set_private

    def make(record_id: int, data: Mapping[str, Any]) -> M | None:
        found = tuple(map(type, data.values()))
        if (
            found != exact
            and not (has_none and len(found) == len(allowed) and all(map(contains, allowed, found)))
        ) or tuple(data) != names:
            return None
        record: M = new(model)
        set_dict(record, data.copy() if type(data) is dict else dict(data))
        set_fields_set(record, set(fields_set))
        set_extra(record, {} if extra else None)
        private: dict[str, Any] | None
        if template is not None:
            private = template.copy()
            set_private(record, private)
        else:
            set_private(record, None)
            record.model_post_init(None)
            private = record.__pydantic_private__
            assert private is not None
        private["_id"] = record_id
        return record

    return make


def direct_page_loader(
    model: type[M],
) -> Callable[[Sequence[int], Mapping[int, dict[str, Any]]], list[M] | None] | None:
    """Return a maker of many records at once, for the models `direct_loader` serves.

    The maker takes record ids and the records mapping they are read from and returns the
    records (each built as `direct_loader`'s maker does, from a dict of its own), or ``None``
    when one of the stored dicts does not fit (the caller then reads them one by one). It does
    each step in one loop over the whole page, in C or compiled for the model: about half the
    time of a maker call per record. Records held as compact rows (a table state's, whose
    mapping has ``page``) are decoded a page at a time, without a dict of the store's per
    record.
    """
    plan = _Plan.of(model)
    return None if plan is None or plan.template is None else plan.make_page


class _Plan:
    """How records of one plain-scalar model are built without validation (see above)."""

    __slots__ = (
        "allowed",
        "dicts",
        "exact",
        "extra",
        "fields_set",
        "fits",
        "has_none",
        "model",
        "names",
        "privates",
        "template",
    )

    def __init__(
        self,
        model: type[BaseModel],
        fits: Callable[[Mapping[str, Any]], bool],
        template: dict[str, Any] | None,
    ) -> None:
        self.model = model
        self.fits = fits
        self.names = tuple(model.model_fields)
        self.exact, self.allowed = _field_types(model)
        self.has_none = self.allowed != tuple(frozenset((kind,)) for kind in self.exact)
        # Private attribute defaults shared by every record, or None: made per record by
        # pydantic's own initialiser (a factory, a mutable default).
        self.template = template
        self.fields_set = frozenset(self.names)
        self.extra = model.model_config.get("extra") == "allow"
        # The page makers, compiled by the first page (a plan made for direct_loader alone
        # never builds one).
        self.dicts: Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]] | None = None
        self.privates: Callable[[Sequence[int]], list[dict[str, Any]]] | None = None

    @classmethod
    def of(cls, model: type[BaseModel]) -> _Plan | None:
        fits = plain_check(model)
        if fits is None:
            return None
        post_init = model.model_post_init
        if (
            getattr(post_init, "__module__", None) != "pydantic._internal._model_construction"
            or getattr(post_init, "__qualname__", None) != "init_private_attributes"
        ):
            return None  # the model's own model_post_init must run: validate
        template: dict[str, Any] | None = {}
        for name, private in model.__private_attributes__.items():
            default = private.default
            if private.default_factory is not None or type(default) not in _SHARED_DEFAULTS:
                template = None  # made per record, by pydantic's own initialiser
                break
            assert template is not None
            template[name] = default
        return cls(model, fits, template)

    def make_page(
        self, ids: Sequence[int], records: Mapping[int, dict[str, Any]]
    ) -> list[Any] | None:
        # Each step is one C loop over the page (map, list ==) or one comprehension compiled
        # for the model (the dicts): a Python loop doing the same per record costs about twice
        # as much. What `make` does, in the same order.
        count = len(ids)
        if not count:
            return []
        template = self.template
        assert template is not None  # direct_page_loader serves no other model
        dicts, privates = self.dicts, self.privates
        if dicts is None or privates is None:
            dicts, privates = self.dicts, self.privates = _page_makers(
                self.model, self.names, template
            )
        page = getattr(records, "page", None)
        shaped = None if page is None else page(ids)
        datas: list[dict[str, Any]]
        if shaped is not None and shaped[0] == self.names:
            # Compact rows of the model's fields, in order: the values alone are decoded, and
            # each record's dict is made here (its own: nobody else holds it).
            values = shaped[1]
            if not self._fit(list(map(type, chain.from_iterable(values))), count):
                return None
            datas = dicts(values)
        else:
            stored = list(map(records.__getitem__, ids))
            if list(chain.from_iterable(stored)) != list(self.names) * count:
                return None  # a record lacks a field, holds another, or in another order
            if not self._fit(list(map(type, chain.from_iterable(map(dict.values, stored)))), count):
                return None
            datas = list(map(dict.copy, stored))  # the store's dicts stay the store's
        made = list(map(_new, repeat(self.model, count)))
        _run(map(_set_dict, made, datas))
        _run(map(_set_fields_set, made, map(set, repeat(self.fields_set, count))))
        extras: Iterable[dict[str, Any] | None]
        extras = map(dict, repeat((), count)) if self.extra else repeat(None, count)
        _run(map(_set_extra, made, extras))
        _run(map(_set_private, made, privates(ids)))
        return made

    def _fit(self, types: list[type], count: int) -> bool:
        # Whether a page's values, ``count`` records' in field order, have the fields' types
        # (an int where a float is held does not fit: validation makes it a float).
        return types == list(self.exact) * count or (
            self.has_none
            and len(types) == len(self.allowed) * count
            and all(map(frozenset.__contains__, self.allowed * count, types))
        )


def _page_makers(
    model: type[BaseModel], names: tuple[str, ...], template: dict[str, Any]
) -> tuple[
    Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]],
    Callable[[Sequence[int]], list[dict[str, Any]]],
]:
    """Return the makers of a page's record dicts (from each record's values, in the order of
    ``names``) and of its private dicts (``template`` with each record's ``_id``).

    Each is a list comprehension of dict displays, compiled for the model: per record, one
    BUILD_MAP of constant keys, where a dict copied and set key by key costs twice as much (a
    third of what building a page of records cost). Only the names, quoted by ``repr``, and
    generated variable names enter the source; every value is bound from the namespace.
    """
    unpack = "".join(f"_{at}, " for at in range(len(names)))
    fields = ", ".join(f"{name!r}: _{at}" for at, name in enumerate(names))
    namespace: dict[str, Any] = {}
    privates: list[str] = []
    for at, name in enumerate({**template, "_id": None}):
        if name == "_id":
            privates.append(f"{name!r}: record_id")
        else:
            namespace[f"_default{at}"] = template[name]
            privates.append(f"{name!r}: _default{at}")
    source = (
        f"def dicts(values):\n    return [{{{fields}}} for ({unpack}) in values]\n"
        f"def privates(ids):\n    return [{{{', '.join(privates)}}} for record_id in ids]\n"
    )
    exec(compile(source, f"<discobase: pages of {model.__qualname__}>", "exec"), namespace)  # noqa: S102
    return namespace["dicts"], namespace["privates"]


def _field_types(model: type[BaseModel]) -> tuple[tuple[type, ...], tuple[frozenset[type], ...]]:
    # The exact type of each field's values, and the types it may hold (with None).
    exact: list[type] = []
    allowed: list[frozenset[type]] = []
    for info in model.model_fields.values():
        kind: Any = info.annotation
        options = {kind}
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            options = set(typing.get_args(kind))
            kind = next(k for k in options if k is not type(None))
        exact.append(kind)
        allowed.append(frozenset(options))
    return tuple(exact), tuple(allowed)


def _slot_setters() -> tuple[Any, Any, Any, Any]:
    # A record's four slots, set as pydantic's own constructors set them (object.__setattr__
    # of each), through the descriptors themselves: a C loop (map) can call those.
    from pydantic import BaseModel

    slots = BaseModel.__dict__
    names = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    setters = tuple(slots[name].__set__ for name in names)
    return setters[0], setters[1], setters[2], setters[3]


_new = object.__new__
_set_dict, _set_fields_set, _set_extra, _set_private = _slot_setters()


def _run(steps: Any) -> None:
    """Run an iterator of steps to its end (in C), keeping nothing."""
    deque(steps, maxlen=0)


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
