"""The emulator's CDN: attachment downloads on signed, expiring URLs.

Layer: the emulator. Knows aiohttp's server API and the state's files; nothing of the client.

Discord signs attachment URLs (``?ex=<hex expiry>&is=<hex issue time>&hm=<signature>&``) and
refuses them once ``ex`` has passed; any payload it sends carries a fresh URL, so fetching the
message again is how a client renews one. Times are Discord seconds on the emulator's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from urllib.parse import quote

from aiohttp import web

from .clock import Clock
from .state import State

__all__ = ["CDN_PREFIX", "Cdn"]

CDN_PREFIX = "/attachments"
_GONE = "This content is no longer available."


class Cdn:
    """Sign attachment URLs and serve the files behind them.

    Args:
        state: Where the files live.
        clock: The Discord clock (issue and expiry times).
        origin: Returns the server's origin, ``http://HOST:PORT``.
        lifetime: How long a URL stays valid, in Discord seconds.
        key: The signing key (random when not given; persisted with the data directory).
    """

    def __init__(
        self,
        state: State,
        clock: Clock,
        origin: Callable[[], str],
        lifetime: float,
        key: bytes | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.origin = origin
        self.lifetime = lifetime
        self.key = key or secrets.token_bytes(32)
        self.downloads = 0
        self.refused = 0

    def _signature(self, path: str, ex: str, issued: str) -> str:
        message = f"{path}\n{ex}\n{issued}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def sign(self, channel_id: str, attachment_id: str, filename: str) -> str:
        """Return a fresh signed URL for an attachment."""
        now = self.clock.now()
        path = f"{CDN_PREFIX}/{channel_id}/{attachment_id}/{quote(filename)}"
        ex = format(int(now + self.lifetime), "x")
        issued = format(int(now), "x")
        hm = self._signature(path, ex, issued)
        return f"{self.origin()}{path}?ex={ex}&is={issued}&hm={hm}&"

    def add_routes(self, app: web.Application) -> None:
        """Serve ``GET /attachments/{channel_id}/{attachment_id}/{filename}``."""
        app.router.add_get(CDN_PREFIX + "/{channel_id}/{attachment_id}/{filename}", self._download)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["attachment_id"]
        ex = request.query.get("ex", "")
        issued = request.query.get("is", "")
        hm = request.query.get("hm", "")
        path = request.raw_path.partition("?")[0]
        expected = self._signature(path, ex, issued)
        try:
            expired = int(ex, 16) < self.clock.now()
        except ValueError:
            expired = True
        data = self.state.blobs.get(attachment_id)
        if expired or not hmac.compare_digest(hm, expected) or data is None:
            self.refused += 1
            return web.Response(status=404, text=_GONE)
        self.downloads += 1
        content_type = self.state.blob_types.get(attachment_id) or "application/octet-stream"
        return web.Response(body=data, headers={"Content-Type": content_type})
