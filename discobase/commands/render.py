"""Embeds and values for the slash commands (commands layer: pure, no I/O).

Records, schemas and statistics become Discord embeds within Discord's limits (title 256,
description 4096, 25 fields of 1024, 6000 in all); a value typed in a command becomes the
Python value a field would be given in code. Nothing here shows a token: records are shown as
their tables store them, and nothing else of the bot is.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from discobase import _json

__all__ = [
    "BLUE",
    "GREEN",
    "RED",
    "clear_prompt",
    "error_embed",
    "json_text",
    "message",
    "page_buttons",
    "parse_json_object",
    "parse_value",
    "records_embed",
    "shorten",
    "type_name",
]

BLUE = 0x5865F2
GREEN = 0x57F287
RED = 0xED4245
FIELD_VALUE = 1024
DESCRIPTION = 4096


def shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(*embeds: dict[str, Any], components: Sequence[Any] = ()) -> dict[str, Any]:
    """Return a message body with ``embeds``, ``components`` and no mentions."""
    return {
        "embeds": list(embeds),
        "components": list(components),
        "allowed_mentions": {"parse": []},
    }


def error_embed(title: str, detail: str) -> dict[str, Any]:
    """Return a red embed that says what went wrong."""
    return {"title": shorten(title, 256), "description": shorten(detail, DESCRIPTION), "color": RED}


def json_text(value: Any) -> str:
    """Return ``value`` as compact JSON text."""
    return _json.dumps(value).decode()


def records_embed(
    title: str,
    records: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    page: int,
    pages: int,
    total: int,
    note: str = "",
) -> dict[str, Any]:
    """Return one page of records: a field per record, its id and its fields as JSON."""
    fields = []
    for record_id, data in records:
        body = shorten(json_text(dict(data)), FIELD_VALUE - 12)
        fields.append({"name": f"id {record_id}", "value": f"```json\n{body}\n```"})
    footer = f"Page {page + 1} of {max(pages, 1)} · {total} record{'s' * (total != 1)}"
    embed: dict[str, Any] = {"title": shorten(title, 256), "color": BLUE, "fields": fields}
    if not records:
        embed["description"] = "No records."
    elif note:
        embed["description"] = shorten(note, DESCRIPTION)
    embed["footer"] = {"text": footer}
    return embed


def page_buttons(key: str, page: int, pages: int) -> list[dict[str, Any]]:
    """Return the arrow buttons of a paged answer (none when it fits one page)."""
    if pages <= 1:
        return []
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 2,
                    "label": "◀ Previous",
                    "custom_id": f"discobase:page:{key}:{page - 1}",
                    "disabled": page <= 0,
                },
                {
                    "type": 2,
                    "style": 2,
                    "label": "Next ▶",
                    "custom_id": f"discobase:page:{key}:{page + 1}",
                    "disabled": page >= pages - 1,
                },
            ],
        }
    ]


def clear_prompt(key: str, table: str, count: int) -> dict[str, Any]:
    """Return ``/clear``'s question: what it deletes, and the buttons that confirm or cancel."""
    embed = {
        "title": f"Delete every record of {table}?",
        "description": (
            f"This deletes all {count} record(s) of **{table}** and cannot be "
            "undone. The table itself stays."
        ),
        "color": RED,
    }
    buttons = [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 4,
                    "label": f"Delete {count} record(s)",
                    "custom_id": f"discobase:clear:{key}:yes",
                },
                {
                    "type": 2,
                    "style": 2,
                    "label": "Cancel",
                    "custom_id": f"discobase:clear:{key}:no",
                },
            ],
        }
    ]
    return message(embed, components=buttons)


def type_name(annotation: Any) -> str:
    """Return a field's type as code would spell it (``int``, ``list[str]``, ``str | None``)."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(annotation)) + "]"
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _is_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_text(a) for a in typing.get_args(annotation))
    return False


def parse_value(annotation: Any, text: str) -> Any:
    """Turn what a member typed into the value code would pass for a field of this type.

    Text fields take the text as typed; other fields take JSON (``42``, ``true``,
    ``["a", "b"]``) or, when it is not JSON, the text itself (a date, an enum's value), which
    the field's own validation then accepts or refuses exactly as it would in code.
    """
    if _is_text(annotation):
        return text
    try:
        return _json.loads(text)
    except ValueError:
        return text


class BadInput(ValueError):
    """What a member typed cannot be used; the message says why, for the member."""


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """Parse a JSON object a member typed.

    Raises:
        BadInput: not JSON, or not an object.
    """
    try:
        value = _json.loads(text)
    except ValueError as exc:
        raise BadInput(f'{what} must be a JSON object, e.g. {{"name": "Peter"}}: {exc}') from None
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object (in braces), not {type(value).__name__}")
    return value
