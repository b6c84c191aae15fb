"""Values for fields that older records lack (public API layer, beside ``_binding``: pydantic
model classes and JSON-mode dicts; no store, no I/O).

A field added with a default factory, or an aliased field with a default, is missing from the
records written before it. The storage layer fills them once when a table opens (and when a
record is applied later, ``TableState.fill_missing``) with the values `Filler` makes, so that
every read and query of a record sees one stable value. This module must not know stores or
the database.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from discobase import _json
from discobase._stored_forms import value_adapter

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter
    from pydantic.fields import FieldInfo

__all__ = ["Filler"]


class Filler:
    """Make the stored values of fields that records written before them lack.

    Those are the fields whose default a factory makes, and aliased fields with a default
    (the storage layer knows defaults by the JSON schema's names, the aliases, while records
    hold field names). A plain factory's values are made with one serialiser call per field
    for all the records (0.3 s per 100,000 records for two fields); a field with validators
    or serialisers, a factory that takes the validated data, or a model with validators or
    its own serialiser is made by validating each record as reading it would (1 s).

    Args:
        model: the table's class.
        fields: its fields.
        validated: the fields that have validators or serializers of their own.
        validate: turn a stored dict into a record as reading it does.
    """

    def __init__(
        self,
        model: type[BaseModel],
        fields: dict[str, FieldInfo],
        validated: set[str],
        validate: Callable[[dict[str, Any]], BaseModel],
    ) -> None:
        self._model = model
        self._fields = fields
        self._validate = validate
        self.fields = frozenset(
            name
            for name, info in fields.items()
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
            info = fields[name]
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
                info = self._fields[name]
                kind: Any = info.annotation
                if info.metadata:
                    kind = typing.Annotated[(kind, *info.metadata)]
                # The model's config: bytes, timedeltas and infinities dump as in records.
                adapter = value_adapter(self._model, list[kind])
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
            record = self._validate(data)
            values: dict[str, Any] = _json.loads(
                record.model_dump_json(include=missing, by_alias=False)
            )
        except Exception:  # noqa: BLE001 - a record that does not fit is reported when read
            return {}
        return values
