"""Reading one answer: its body decoded, or the error a success that is not JSON earns.

Http layer, beside the client: knows the transport's :class:`RawResponse` and the error tree,
nothing of the limiter or of retries. The status codes' errors are
:func:`discobase.http.errors.error_for`'s.
"""

from __future__ import annotations

from typing import Any

from discobase import _json
from discobase.http.errors import NotJSON
from discobase.http.routes import CompiledRoute
from discobase.http.transport import RawResponse

__all__ = ["decode", "not_json"]


def decode(raw: RawResponse) -> Any:
    """Decode a JSON body; return the raw bytes when it is not JSON."""
    if not raw.body:
        return None
    if "json" not in raw.headers.get("content-type", "json"):
        return raw.body
    try:
        return _json.loads(raw.body)
    except _json.JSONDecodeError:
        return raw.body


def not_json(raw: RawResponse, url: str, route: CompiledRoute) -> NotJSON:
    """Return the error for a success whose body is not JSON (``url`` must hold no token)."""
    content_type = raw.headers.get("content-type", "")
    shown = content_type or "no Content-Type"
    looks = "an HTML page" if "html" in content_type.lower() else f"{shown}, not JSON"
    return NotJSON(
        f"{url} answered with {looks} ({shown}): is api_url a Discord-compatible API "
        "(https://discord.com, or the local Discord's URL)?",
        status=raw.status,
        route=str(route),
        url=url,
        content_type=content_type,
    )
