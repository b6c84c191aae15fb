"""Paged answers and pending confirmations (commands layer).

A view is what a button refers to: the query behind a paged answer (``/find``, ``/table``,
``/column``) or a ``/clear`` waiting for its confirmation. Views are kept by a random key
that the buttons' ``custom_id`` carries, for as long as Discord lets the buttons be used; the
oldest go first. A page is read when it is shown: only the records on it are rendered.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from discobase.commands.checks import Refused, table_binding
from discobase.commands.render import (
    BLUE,
    json_text,
    message,
    page_buttons,
    parse_value,
    records_embed,
    shorten,
)
from discobase.errors import DiscobaseError

if TYPE_CHECKING:
    from discobase.database import Database
    from discobase.table import TableBinding

__all__ = ["COLUMN_PAGE", "MAX_VIEWS", "PAGE_SIZE", "VIEW_LIFETIME", "Views"]

PAGE_SIZE = 5
COLUMN_PAGE = 20
#: How long paging buttons and confirmations stay usable (Discord's token lives 15 minutes).
VIEW_LIFETIME = 15 * 60.0
MAX_VIEWS = 500


class Views:
    """The views of one database's commands, and the pages rendered from them.

    Args:
        db: the database whose tables the views read.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        # By key: (expiry, what); the oldest go first.
        self._views: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def new(self, kind: str, what: dict[str, Any]) -> str:
        """Keep a view of ``kind`` (``records``, ``column``, ``clear``); return its key."""
        now = time.monotonic()
        while self._views:
            oldest_key, (expiry, _) = next(iter(self._views.items()))
            if expiry > now and len(self._views) < MAX_VIEWS:
                break
            del self._views[oldest_key]
        key = secrets.token_hex(6)
        self._views[key] = (now + VIEW_LIFETIME * self.db.time_scale, {"kind": kind, **what})
        return key

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the view of ``key``, or ``None`` when it expired or never was."""
        found = self._views.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def pop(self, key: str) -> None:
        """Forget the view of ``key`` (a confirmation answered)."""
        self._views.pop(key, None)

    def records_page(self, key: str, page: int) -> dict[str, Any]:
        """Return page ``page`` of a ``records`` view as a message with its arrow buttons."""
        binding, ids, page, pages, total, note, _ = self._page(key, page, PAGE_SIZE)
        records = binding.require_store().records()
        shown = [(i, records[i]) for i in ids if i in records]
        title = f"{binding.name}: records where {note}" if note else f"{binding.name}: records"
        embed = records_embed(title, shown, page=page, pages=pages, total=total)
        return message(embed, components=page_buttons(key, page, pages))

    def column_page(self, key: str, page: int) -> dict[str, Any]:
        """Return page ``page`` of a ``column`` view: one line per record's value."""
        binding, ids, page, pages, total, _, view = self._page(key, page, COLUMN_PAGE)
        field = view["field"]
        records = binding.require_store().records()
        lines = []
        for i in ids:
            value = records.get(i, {}).get(field, binding.defaults.get(field))
            lines.append(f"`{i}`: {shorten(json_text(value), 150)}")
        embed = {
            "title": f"{binding.name}.{field}",
            "color": BLUE,
            "description": "\n".join(lines) or "No records.",
            "footer": {"text": f"Page {page + 1} of {pages} · {total} record(s)"},
        }
        return message(embed, components=page_buttons(key, page, pages))

    def _page(
        self, key: str, page: int, size: int
    ) -> tuple[TableBinding, list[int], int, int, int, str, dict[str, Any]]:
        """Return the binding, the ids on ``page``, the page, the pages, the total, a note
        naming the condition and the view, reading only the records the page shows."""
        view = self.get(key)
        if view is None:
            raise Refused("Expired", "These results expired: run the command again.")
        binding = table_binding(self.db.tables, view["table"])
        model = binding.model
        if view["kind"] == "records" and "field" in view:
            field, operator, text = view["field"], view["operator"], view["value"]
            condition = _condition(operator, binding.fields[field].annotation, text)
            try:
                total = int(model.count(**{field: condition}))
                pages = max(1, -(-total // size))
                page = min(max(page, 0), pages - 1)
                found = model.find(offset=page * size, limit=size, **{field: condition})
            except DiscobaseError as exc:
                raise Refused("Invalid query", str(exc)) from None
            label = dict(_OPERATOR_LABELS).get(operator, operator)
            ids = [r.id for r in found if r.id is not None]
            return binding, ids, page, pages, total, f"{field} {label} {text}", view
        every = sorted(binding.require_store().records())
        total = len(every)
        pages = max(1, -(-total // size))
        page = min(max(page, 0), pages - 1)
        return binding, every[page * size : (page + 1) * size], page, pages, total, "", view


_OPERATOR_LABELS = (
    ("eq", "="),
    ("ne", "!="),
    ("gt", ">"),
    ("ge", ">="),
    ("lt", "<"),
    ("le", "<="),
    ("startswith", "starts with"),
    ("contains", "contains"),
    ("one_of", "is one of"),
)


def _condition(operator: str, annotation: Any, text: str) -> Any:
    """Turn ``/find``'s operator and typed value into a library condition."""
    import discobase.operators as ops

    if operator == "one_of":
        return ops.one_of(*(parse_value(annotation, part.strip()) for part in text.split(",")))
    if operator in ("startswith", "contains"):
        # A substring or prefix is text; an element of a list is typed as the list's items.
        element = text if operator == "startswith" else parse_value(_element_type(annotation), text)
        return getattr(ops, operator)(element)
    value = parse_value(annotation, text)
    if operator == "eq":
        return value
    make = getattr(ops, operator, None)
    if make is None:
        raise Refused("Unknown operator", f"{operator!r} is not an operator of /find.")
    return make(value)


def _element_type(annotation: Any) -> Any:
    import typing

    args = typing.get_args(annotation)
    if annotation is str or not args:
        return annotation
    return args[0]
