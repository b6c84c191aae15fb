"""The JSON form a table's records store for a value of one of its fields (public API layer,
beside ``_binding``: pure functions of a pydantic model class; no store, no I/O).

A record is stored as its model dumps it, so the model's JSON settings shape every value:
``Table`` writes infinities and NaN as ``"Infinity"``/``"NaN"``, bytes as base64. A value
dumped apart from a record (a field's default, the element a query looks for) must be dumped
with the same settings, or it will not compare equal to what records hold.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from discobase import _json
from discobase.query import MISSING

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter
    from pydantic.fields import FieldInfo

__all__ = ["stored_defaults", "stored_schema", "value_adapter"]


def value_adapter(model: type[BaseModel], annotation: Any) -> TypeAdapter[Any]:
    """Return an adapter that validates and dumps ``annotation`` as ``model``'s records do."""
    from pydantic import PydanticUserError, TypeAdapter

    config: Mapping[str, Any] = model.model_config
    # Only the keys a TypeAdapter of a non-model type accepts, and the only ones that matter
    # (json_encoders, deprecated, still shapes what records store).
    kept = {
        k: v
        for k, v in config.items()
        if k.startswith(("ser_json", "val_json", "str_")) or k == "json_encoders"
    }
    try:
        return TypeAdapter(annotation, config=typing.cast(Any, kept or None))
    except PydanticUserError:
        return TypeAdapter(annotation)  # a model or dataclass: it has a config of its own


def stored_defaults(model: type[BaseModel], fields: Mapping[str, FieldInfo]) -> dict[str, Any]:
    """Return ``{field: its default as a record stores it}`` for the fields with a default.

    This is what a stored record that predates a field is read with, and compared by.
    ``default_factory`` values may differ per record, so they are ``MISSING`` (such records
    never match on that field); so is a default that does not dump.
    """
    defaults: dict[str, Any] = {}
    for name, info in fields.items():
        if info.is_required() or info.default_factory is not None:
            continue
        try:
            adapter = value_adapter(model, info.annotation)
            defaults[name] = _json.loads(adapter.dump_json(info.default, by_alias=False))
        except Exception:  # noqa: BLE001 - pydantic's errors on dumping an odd default
            defaults[name] = MISSING
    return defaults


def stored_schema(model: type[BaseModel], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``model``'s JSON schema, its defaults as `stored_defaults` gives them.

    pydantic leaves a non-finite float in a default as the float, which JSON cannot hold:
    the catalog would record ``null``, and a table's store would key older records by ``inf``
    while its records hold ``"Infinity"``.
    """
    schema = model.model_json_schema()
    properties = schema.get("properties") or {}
    for name, info in model.model_fields.items():
        stored = defaults.get(name, MISSING)
        prop = properties.get(info.alias or name, properties.get(name))
        if stored is MISSING or not isinstance(prop, dict):
            continue
        if "default" in prop and _non_finite(prop["default"]):
            prop["default"] = stored
    return schema


def _non_finite(value: Any) -> bool:
    # Anywhere in a default: a nested model's field, a list's item.
    if type(value) is float:
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_non_finite, value.values()))
    if isinstance(value, list | tuple):
        return any(map(_non_finite, value))
    return False
