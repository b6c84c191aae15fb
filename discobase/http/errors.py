"""Errors of the REST client (http layer: knows nothing of aiohttp, storage or the gateway).

Every failure of a request surfaces as one of these; no aiohttp or asyncio exception escapes.
Each error carries the route it failed on (``"PATCH /channels/{channel_id}"``), never the
request headers, so a token cannot leak through a message or a repr.

```text
    DiscobaseError                       discobase.errors
    ├── UsageError
    │   └── ClientClosed                 the client was used before opening or after closing
    └── HTTPException                    a request failed: status, code, message, errors, route
        ├── BadRequest                   400 (form errors in ``errors``)
        │   └── PayloadTooLarge          413 or codes 40005/50045: a file or body is too large
        ├── Unauthorized                 401
        │   └── InvalidToken             the token was refused; every later request fails too
        ├── Forbidden                    403
        ├── NotFound                     404
        ├── MethodNotAllowed             405
        ├── ServerError                  5xx after the retries were spent
        ├── RateLimited                  a wait longer than ``max_wait`` would be needed
        ├── CloudflareBanned             a Cloudflare 429: the breaker is open, nothing is sent
        ├── InvalidRequestLimit          too many 401/403/429 lately: the client refuses to send
        ├── NotJSON                      a success answered with something else than JSON (HTML:
        │                                ``api_url`` is not a Discord API), naming URL and type
        └── TransportError               the connection failed or timed out (status ``None``)
```
"""

from __future__ import annotations

from typing import Any

from discobase.errors import DiscobaseError, UsageError

__all__ = [
    "FILE_TOO_LARGE_CODES",
    "SUBLIMIT_CODES",
    "BadRequest",
    "ClientClosed",
    "CloudflareBanned",
    "Forbidden",
    "HTTPException",
    "InvalidRequestLimit",
    "InvalidToken",
    "MethodNotAllowed",
    "NotFound",
    "NotJSON",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "error_for",
]

#: Discord's JSON codes that mean "this file (or the whole body) is over the upload limit".
FILE_TOO_LARGE_CODES = frozenset({40005, 50045})

#: JSON codes of undocumented sub-limits: channel write limit, old-message edits, service limit.
SUBLIMIT_CODES = frozenset({20028, 30046, 40062})


class ClientClosed(UsageError):
    """The HTTP client is not open; use ``async with HTTPClient(...)``."""


class HTTPException(DiscobaseError):
    """A request failed.

    Attributes:
        status: the HTTP status, or ``None`` when no response arrived.
        code: Discord's JSON error code (``0`` when the body had none).
        message: Discord's message, or a description of the failure.
        errors: Discord's nested ``errors`` object (form errors), empty when absent.
        route: ``"METHOD /template"`` of the request, without ids or secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int = 0,
        errors: dict[str, Any] | None = None,
        route: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors: dict[str, Any] = errors or {}
        self.route = route
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"{self.status} " if self.status is not None else ""
        code = f" (code {self.code})" if self.code else ""
        where = f" on {self.route}" if self.route else ""
        text = f"{head}{self.message}{code}{where}"
        details = _flatten_errors(self.errors)
        if details:
            text += ": " + "; ".join(details)
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, route={self.route!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[HTTPException], state: dict[str, Any]) -> HTTPException:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


def _flatten_errors(errors: dict[str, Any], prefix: str = "") -> list[str]:
    """Turn Discord's nested ``errors`` into ``"field.0.name: message"`` lines."""
    lines: list[str] = []
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list):
            for leaf in value:
                if isinstance(leaf, dict):
                    lines.append(f"{prefix or '<body>'}: {leaf.get('message', leaf.get('code'))}")
        elif isinstance(value, dict):
            lines.extend(_flatten_errors(value, f"{prefix}.{key}" if prefix else key))
    return lines


class BadRequest(HTTPException):
    """400: Discord refused the request's content."""


class PayloadTooLarge(BadRequest):
    """413, or code 40005/50045: a file (or the whole body) is over the upload limit."""


class Unauthorized(HTTPException):
    """401: the request had no valid authorization."""


class InvalidToken(Unauthorized):
    """The token was refused; the client fails every later request without sending it."""


class Forbidden(HTTPException):
    """403: the bot lacks a permission or access."""


class NotFound(HTTPException):
    """404: an unknown resource or route."""


class MethodNotAllowed(HTTPException):
    """405: the route exists but not with this method."""


class ServerError(HTTPException):
    """5xx: Discord failed, and retrying did not help."""


class RateLimited(HTTPException):
    """Sending would mean waiting longer than the client's ``max_wait``.

    Attributes:
        retry_after: seconds (Discord's, unscaled by the client) until the limit lifts.
        scope: ``"user"``, ``"global"``, ``"shared"`` or ``"sublimit"``.
    """

    def __init__(self, message: str, *, retry_after: float, scope: str, **kwargs: Any) -> None:
        self.retry_after = retry_after
        self.scope = scope
        super().__init__(message, **kwargs)


class CloudflareBanned(HTTPException):
    """A 429 came from Cloudflare, not Discord; the client sends nothing until it passes.

    Attributes:
        retry_after: seconds until the client's breaker closes again.
    """

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class InvalidRequestLimit(HTTPException):
    """The client saw too many 401/403/429 lately and refuses to risk an IP ban."""


class NotJSON(HTTPException):
    """A request succeeded with a body that is not JSON: ``api_url`` points at a web page (a
    proxy's or a website's HTML), not at a Discord-compatible API.

    Attributes:
        url: the URL requested (it never holds the token, which travels in a header).
        content_type: the answer's ``Content-Type`` (``""`` when it had none).
    """

    def __init__(self, message: str, *, url: str, content_type: str, **kwargs: Any) -> None:
        self.url = url
        self.content_type = content_type
        super().__init__(message, **kwargs)


class TransportError(HTTPException):
    """The connection failed, dropped or timed out, and retrying did not help."""


_BY_STATUS: dict[int, type[HTTPException]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def error_for(status: int, body: Any, *, route: str, reason: str = "") -> HTTPException:
    """Build the typed error for an error response.

    Args:
        status: the HTTP status.
        body: the decoded JSON body, or anything else when it was not JSON.
        route: ``"METHOD /template"`` of the request.
        reason: the HTTP reason phrase, used when the body has no message.

    Returns:
        The most specific `HTTPException` subclass.
    """
    code = 0
    message = reason or f"HTTP {status}"
    errors: dict[str, Any] = {}
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) else 0
        raw_message = body.get("message")
        if isinstance(raw_message, str) and raw_message:
            message = raw_message
        raw_errors = body.get("errors")
        if isinstance(raw_errors, dict):
            errors = raw_errors
    cls: type[HTTPException]
    if code in FILE_TOO_LARGE_CODES:
        cls = PayloadTooLarge
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, HTTPException)
    return cls(message, status=status, code=code, errors=errors, route=route)
