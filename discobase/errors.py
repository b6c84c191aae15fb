"""The root of discobase's exception tree (shared leaf layer: imports nothing from discobase).

Every error discobase raises derives from :class:`DiscobaseError`; nothing from aiohttp or
asyncio escapes a public call. Each layer defines its own branch next to its code and
``discobase/__init__.py`` re-exports them all::

    DiscobaseError
    ├── UsageError                   the caller used the API wrongly (this module)
    │   └── ...                      not connected, table not built, saved record saved again
    ├── HTTPException                discobase.http.errors: a request failed (status, code, route)
    │   └── ...                      BadRequest, Unauthorized/InvalidToken, Forbidden, NotFound,
    │                                ServerError, RateLimited, CloudflareBanned, TransportError
    ├── GatewayError                 discobase.gateway.errors: the gateway connection failed
    │   └── ...                      GatewayClosed (with may_reconnect), handshake timeouts,
    │                                identify budget exhausted
    └── DatabaseError                this module: the database cannot do what was asked
        └── ...                      guild not found, schema mismatch, unique violation, ...

A token never appears in an error's message or repr.
"""

from __future__ import annotations

__all__ = ["DatabaseError", "DiscobaseError", "UsageError"]


class DiscobaseError(Exception):
    """Base class of every error discobase raises."""


class UsageError(DiscobaseError):
    """The API was used in a way it does not allow; the message says the right call."""


class DatabaseError(DiscobaseError):
    """The database could not do what was asked (missing guild, schema conflict, ...)."""
