"""Choices for the option a member is typing (commands layer: reads local state only).

Discord asks while the member types; the answer must come at once, so every choice is read
from the tables in memory, 25 at most: table names, field names, record ids, and the values
of an indexed field (reading every value of a field no index holds would be slow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from discobase.commands.render import json_text, shorten

if TYPE_CHECKING:
    from discobase.table import Table

__all__ = ["choices"]


def choices(
    tables: Mapping[str, type[Table]], focused: str, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Return the choices for option ``focused``, given the options typed so far."""
    typed = str(options.get(focused, "") or "")
    if focused == "table":
        names = [n for n in sorted(tables) if n.startswith(typed.lower())]
        return [{"name": n, "value": n} for n in names[:25]]
    model = tables.get(str(options.get("table", "")).lower())
    binding = None if model is None else model.__discobase_binding__
    if binding is None or binding.store is None:
        return []
    if focused == "field":
        names = [f for f in binding.fields if f.startswith(typed)]
        return [{"name": f, "value": f} for f in names[:25]]
    records = binding.store.records()
    if focused == "id":
        found = []
        for record_id, record in records.items():
            if str(record_id).startswith(typed):
                label = shorten(f"{record_id} {json_text(record)}", 100)
                found.append({"name": label, "value": str(record_id)})
                if len(found) == 25:
                    break
        return found
    if focused == "value":
        field = str(options.get("field", ""))
        if field not in binding.indexes:
            return []  # only indexed fields: reading every value of a big table is slow
        seen: dict[str, None] = {}
        for record in records.values():
            value = record.get(field)
            text = value if isinstance(value, str) else json_text(value)
            if text.startswith(typed) and len(text) <= 100:
                seen[text] = None
                if len(seen) == 25:
                    break
        return [{"name": t or '""', "value": t} for t in seen]
    return []
