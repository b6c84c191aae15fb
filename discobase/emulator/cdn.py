"""The emulator's CDN: attachment downloads on signed, expiring URLs.

Layer: the emulator. Knows aiohttp's server API and the state's files; nothing of the client.

Discord signs attachment URLs (``?ex=<hex expiry>&is=<hex issue time>&hm=<signature>&``) and
refuses them once ``ex`` has passed; any payload it sends carries a fresh URL, so fetching the
message again is how a client renews one. Times are Discord seconds on the emulator's clock.
Injected failures (``cdn_faults``) hit only downloads that would succeed, and are separate
from the API's.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

from aiohttp import web

from .cdn_faults import CDN_FAULT_KINDS, GONE, CdnFault, serve_fault
from .clock import Clock
from .link import Link
from .state import State

__all__ = ["CDN_PREFIX", "Cdn"]

CDN_PREFIX = "/attachments"


class Cdn:
    """Sign attachment URLs and serve the files behind them.

    Args:
        state: Where the files live.
        clock: The Discord clock (issue and expiry times).
        origin: Returns the server's origin, ``http://HOST:PORT``.
        lifetime: How long a URL stays valid, in Discord seconds.
        key: The signing key (random when not given; persisted with the data directory).
        rng: Where probability faults draw their chances (the emulator's seeded one).
        link: The client's link (its latency delays every download).
    """

    def __init__(
        self,
        state: State,
        clock: Clock,
        origin: Callable[[], str],
        lifetime: float,
        key: bytes | None = None,
        *,
        rng: random.Random | None = None,
        link: Link | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.origin = origin
        self.lifetime = lifetime
        self.key = key or secrets.token_bytes(32)
        self.rng = rng or random.Random()
        self.link = link or Link(clock)
        self.downloads = 0
        self.refused = 0
        self.faults: list[CdnFault] = []
        self.fault_counts: Counter[str] = Counter()

    def add_fault(self, fault: CdnFault) -> None:
        """Queue an injected failure (see ``Emulator.fail_cdn``)."""
        self.faults.append(fault)

    def remove_fault(self, fault: CdnFault) -> None:
        """Take one injected failure out of force, if it still is (chaos mode changing)."""
        # By identity: two faults with the same settings compare equal.
        self.faults[:] = [kept for kept in self.faults if kept is not fault]

    def clear_faults(self) -> None:
        """Forget every pending failure (counters stay)."""
        self.faults.clear()

    def reset(self) -> None:
        """Forget counters and pending failures."""
        self.downloads = self.refused = 0
        self.faults.clear()
        self.fault_counts.clear()

    def stats(self) -> dict[str, object]:
        """Return ``downloads``, ``refused`` and ``faults`` (injected, by kind)."""
        return {
            "downloads": self.downloads,
            "refused": self.refused,
            "faults": {kind: self.fault_counts[kind] for kind in CDN_FAULT_KINDS},
        }

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

    def _draw_fault(self, path: str) -> CdnFault | None:
        # Faults are tried in the order they were added; a probability draws only for a
        # download it matches, so the draws follow the downloads and a seed replays them.
        for fault in self.faults:
            if fault.matches(path) and fault.trigger.fires(self.rng) and fault.trigger.spend():
                if fault.trigger.spent:
                    self.faults.remove(fault)
                return fault
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        await self.link.wait_latency()
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
            return web.Response(status=404, text=GONE)
        content_type = self.state.blob_types.get(attachment_id) or "application/octet-stream"
        fault = self._draw_fault(path)
        if fault is not None:
            self.fault_counts[fault.kind] += 1
            info = request.match_info
            return await serve_fault(
                fault,
                request,
                data,
                content_type,
                self.clock,
                lambda: self.sign(info["channel_id"], attachment_id, info["filename"]),
            )
        self.downloads += 1
        return web.Response(body=data, headers={"Content-Type": content_type})
