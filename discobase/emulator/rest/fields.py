"""Fields that several endpoints read alike: message text and embeds, lists, flags, and the
integer and snowflake query parameters.

Layer: the emulator's REST side. Each function returns the value or raises the form error
Discord answers for it (50035 Invalid Form Body); message creates and edits and interaction
responses share the message checks, history and guild pages the query checks.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import form_error
from .context import Context

__all__ = [
    "MAX_COMPONENTS",
    "MAX_CONTENT",
    "MAX_EMBEDS",
    "list_field",
    "message_content",
    "is_snowflake",
    "message_embeds",
    "query_int",
    "query_snowflake",
    "truthy",
]

MAX_CONTENT = 2000
_SET_BY_DISCORD = ("proxy_url", "height", "width")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,19}")
MAX_EMBEDS = 10
# Top-level components of one message (spec: MessageCreateRequest.components maxItems 40).
MAX_COMPONENTS = 40


def message_content(body: dict[str, Any]) -> str:
    """Return a body's ``content`` as text ('' when absent), at most 2000 code points."""
    content = body.get("content")
    if content is None:
        return ""
    if not isinstance(content, str):
        content = str(content)
    if len(content) > MAX_CONTENT:  # len() counts code points, as Discord (Python 3) does
        raise form_error(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    return content


def message_embeds(body: dict[str, Any]) -> list[Any]:
    """Return a body's rich embeds (``embeds`` or the legacy ``embed``), checked against
    Discord's per-field caps and the 6000-character total."""
    embeds = body.get("embeds")
    if embeds is None:
        embed = body.get("embed")
        embeds = [] if embed is None else [embed]
    if not isinstance(embeds, list):
        raise form_error("embeds", "BASE_TYPE_LIST", "Must be a list.")
    if len(embeds) > MAX_EMBEDS:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    out = []
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            raise form_error(["embeds", i], "DICT_TYPE_CONVERT", "Only dictionaries.")
        for key, cap in (("title", 256), ("description", 4096)):
            text = embed.get(key)
            if isinstance(text, str):
                total += _bounded(len(text.strip()), cap, ["embeds", i, key])
        fields = embed.get("fields") or []
        if not isinstance(fields, list):
            raise form_error(["embeds", i, "fields"], "BASE_TYPE_LIST", "Must be a list.")
        if len(fields) > 25:
            raise form_error(["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "At most 25.")
        kept_fields = []
        for j, item in enumerate(fields):
            if not isinstance(item, dict):
                raise form_error(["embeds", i, "fields", j], "DICT_TYPE_CONVERT", "Only dicts.")
            for key, cap in (("name", 256), ("value", 1024)):
                # Both are required in an embed field (docs: Embed Field Structure).
                path: list[str | int] = ["embeds", i, "fields", j, key]
                if item.get(key) is None:
                    raise form_error(path, "BASE_TYPE_REQUIRED", "This field is required")
                total += _bounded(len(str(item[key]).strip()), cap, path)
            # Discord's answer always says whether a field is inline (the spec requires it).
            inline = bool(item.get("inline"))
            kept_fields.append(
                {"name": str(item["name"]), "value": str(item["value"]), "inline": inline}
            )
        for key, sub, cap in (("footer", "text", 2048), ("author", "name", 256)):
            part = embed.get(key)
            if isinstance(part, dict) and isinstance(part.get(sub), str):
                total += _bounded(len(part[sub].strip()), cap, ["embeds", i, key, sub])
        clean = {k: v for k, v in embed.items() if k not in ("provider", "video")}
        clean["type"] = "rich"
        for media in ("image", "thumbnail"):
            # Discord measures and proxies media itself: a sent size or proxy URL is ignored.
            if isinstance(clean.get(media), dict):
                clean[media] = {k: v for k, v in clean[media].items() if k not in _SET_BY_DISCORD}
        if "fields" in clean:
            clean["fields"] = kept_fields
        out.append(clean)
    if total > 6000:
        raise form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds 6000.")
    return out


def _bounded(length: int, cap: int, path: list[str | int]) -> int:
    if length > cap:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {cap} or fewer in length.")
    return length


def list_field(body: dict[str, Any], key: str, most: int | None = None) -> list[Any]:
    """Return ``body[key]`` as a list ([] when absent or null), of at most ``most`` items."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise form_error(key, "BASE_TYPE_LIST", "Must be a list.")
    if most is not None and len(value) > most:
        raise form_error(key, "BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer in length.")
    return value


def truthy(value: Any) -> bool:
    """Return a flag's truth as Discord reads it (``"true"``/``"1"`` in query strings)."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def query_int(ctx: Context, name: str, default: int, low: int, high: int) -> int:
    """Read an integer query parameter in ``[low, high]`` or raise Discord's form error."""
    raw = ctx.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise form_error(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.') from None
    if value < low:
        raise form_error(
            name, "NUMBER_TYPE_MIN", f"Int value should be greater than or equal to {low}."
        )
    if value > high:
        raise form_error(
            name, "NUMBER_TYPE_MAX", f"Int value should be less than or equal to {high}."
        )
    return value


def is_snowflake(text: str) -> bool:
    """Return whether ``text`` is a snowflake: ASCII digits of an unsigned 64-bit integer
    (spec pattern ``^(0|[1-9][0-9]*)$``; a larger number is no snowflake to Discord)."""
    return _DIGITS.fullmatch(text) is not None and int(text) < 1 << 64


def query_snowflake(ctx: Context, name: str) -> int | None:
    """Read a snowflake query parameter or raise Discord's form error."""
    raw = ctx.query.get(name)
    if raw is None:
        return None
    if not is_snowflake(raw):
        raise form_error(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
    return int(raw)
