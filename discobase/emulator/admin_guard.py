"""Keep the admin API local in fact: its own Host, JSON only, no foreign origin.

Layer: the emulator. One aiohttp middleware in front of everything under ``/_emulator``
(the gateway's ``/_emulator/gateway/...`` routes included); Discord's own routes pass
untouched. Knows nothing of the client.

Why: the admin API needs no token because it listens on loopback, but a web page open in the
user's browser can reach loopback too. Two tricks would let it: DNS rebinding (a page's own
host name made to resolve to 127.0.0.1, so its requests carry that foreign name in ``Host``),
and "simple" cross-origin requests (a form post or a ``no-cors`` fetch, sent without asking
first). So a request is refused unless its ``Host`` is the emulator's own address, a request
that changes anything (any method but GET, HEAD and OPTIONS) must say
``Content-Type: application/json``, which a browser sends cross-origin only after a CORS
preflight the emulator never grants, and a request with an ``Origin`` header must come from
the emulator's own origin.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = ["ADMIN_PREFIX", "admin_guard", "allowed_hosts"]

ADMIN_PREFIX = "/_emulator"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refuse(status: int, error: str) -> web.Response:
    response = web.Response(status=status, body=orjson.dumps({"error": error}))
    response.headers["Content-Type"] = "application/json"
    return response


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Return the ``Host`` values that name the emulator: loopback names and ``host``.

    Lower-case, each with its port; without the port too when it is 80, as clients leave it
    out there.
    """
    names = {"127.0.0.1", "localhost", "[::1]"}
    configured = host.strip().lower()
    if configured:
        names.add(f"[{configured}]" if ":" in configured else configured)
    out = {f"{name}:{port}" for name in names}
    if port == 80:
        out |= names
    return frozenset(out)


def admin_guard(address: Callable[[], tuple[str, int]]) -> Middleware:
    """Return the middleware that refuses admin requests that are not local or not JSON.

    Args:
        address: Returns the emulator's host and port (the port is known once it listens).
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path != ADMIN_PREFIX and not path.startswith(ADMIN_PREFIX + "/"):
            return await handler(request)
        hosts = allowed_hosts(*address())
        # The raw header: aiohttp's ``request.host`` falls back to the socket's address.
        host = request.headers.get("Host", "").strip().lower()
        if host not in hosts:
            return _refuse(403, "the admin API answers only requests addressed to the emulator")
        origin = request.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in hosts}:
            return _refuse(403, "the admin API refuses requests from another origin")
        if request.method not in _SAFE_METHODS and request.content_type != "application/json":
            return _refuse(415, "the admin API takes Content-Type: application/json (send {})")
        return await handler(request)

    return guard
