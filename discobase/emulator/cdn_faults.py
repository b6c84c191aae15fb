"""Injected CDN failures: what a download may meet besides the file.

Layer: the emulator. Knows aiohttp's server API; nothing of the client.

Discord's attachment CDN is a separate service from the API, and what it answers when it is
overloaded or a URL has gone stale is not documented (facts sheet, "What Discord does not
promise", item 3). A client must survive each of these, so each can be injected:

- ``server_error``: a 5xx (503 unless told), plain text.
- ``rate_limited``: a 429 with ``Retry-After`` (Discord seconds, scaled), plain text.
- ``redirect``: a 302 (or 301/303/307/308) to a freshly signed URL of the same file.
- ``slow``: the file, trickled at ``bytes_per_second`` (Discord seconds, scaled).
- ``truncated``: ``Content-Length`` promises the whole file, a ``fraction`` of it is sent and
  the connection closes: a client must see an error, not a short file.
- ``expired``: the refusal of a stale or unknown URL (404 unless told; 403 also happens).

The bodies of these answers are this emulator's choice; Discord publishes none of them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from .clock import Clock
from .faults import Trigger, retry_after_header

__all__ = ["CDN_FAULT_KINDS", "GONE", "CdnFault", "serve_fault"]

CDN_FAULT_KINDS = ("server_error", "rate_limited", "redirect", "slow", "truncated", "expired")
GONE = "This content is no longer available."
_STATUSES: dict[str, tuple[int, tuple[int, ...]]] = {
    "server_error": (503, tuple(range(500, 600))),
    "rate_limited": (429, (429,)),
    "redirect": (302, (301, 302, 303, 307, 308)),
    "expired": (404, (403, 404)),
    "slow": (200, (200,)),
    "truncated": (200, (200,)),
}
# Write the file in slices of about this many real seconds (see ``link._SLICE``).
_SLICE = 0.01
_MAX_WRITE = 1 << 20


@dataclass(slots=True)
class CdnFault:
    """One injected CDN failure (see ``Emulator.fail_cdn``)."""

    kind: str
    trigger: Trigger
    status: int
    pattern: re.Pattern[str] | None = None
    retry_after: float = 1.0
    bytes_per_second: float = 16_384.0
    fraction: float = 0.5

    @classmethod
    def build(
        cls,
        kind: str,
        count: int | None,
        probability: float | None,
        *,
        status: int | None = None,
        path_regex: str | None = None,
        retry_after: float = 1.0,
        bytes_per_second: float = 16_384.0,
        fraction: float = 0.5,
    ) -> CdnFault:
        """Return a validated fault.

        Raises:
            ValueError: an unknown kind, a status the kind cannot answer, or a bad number.
        """
        if kind not in _STATUSES:
            raise ValueError(f"kind must be one of {', '.join(CDN_FAULT_KINDS)}, not {kind!r}")
        default, allowed = _STATUSES[kind]
        chosen = default if status is None else int(status)
        if chosen not in allowed:
            raise ValueError(f"a {kind} fault cannot answer {chosen}")
        if not bytes_per_second > 0:
            raise ValueError("bytes_per_second must be positive")
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be at least 0 and below 1")
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        return cls(
            kind,
            Trigger.of(count, probability),
            chosen,
            None if path_regex is None else re.compile(path_regex),
            float(retry_after),
            float(bytes_per_second),
            float(fraction),
        )

    def matches(self, path: str) -> bool:
        """Return whether a download of ``path`` is one this fault may hit."""
        return self.trigger.armed and (
            self.pattern is None or self.pattern.search(path) is not None
        )


async def serve_fault(
    fault: CdnFault,
    request: web.Request,
    data: bytes,
    content_type: str,
    clock: Clock,
    fresh_url: Callable[[], str],
) -> web.StreamResponse:
    """Answer a download that ``fault`` hits.

    Args:
        fault: The fault that fires.
        request: The download request.
        data: The file.
        content_type: The file's type.
        clock: The Discord clock (for the time scale).
        fresh_url: Signs a new valid URL of the same file (the redirect's target).
    """
    kind = fault.kind
    if kind == "redirect":
        return web.Response(status=fault.status, headers={"Location": fresh_url()})
    if kind == "expired":
        return web.Response(status=fault.status, text=GONE)
    if kind == "rate_limited":
        headers = {"Retry-After": retry_after_header(clock, fault.retry_after)}
        return web.Response(status=429, text="429: Too Many Requests", headers=headers)
    if kind == "server_error":
        return web.Response(status=fault.status, text=f"{fault.status}: {_reason(fault.status)}")
    if kind == "slow":
        return await _trickle(request, data, content_type, clock, fault.bytes_per_second)
    return await _cut_short(request, data, content_type, fault.fraction)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


async def _trickle(
    request: web.Request, data: bytes, content_type: str, clock: Clock, rate: float
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = len(data)
    await response.prepare(request)
    real_rate = rate / max(clock.to_real(1.0), 1e-12)
    size = max(1, min(_MAX_WRITE, int(real_rate * _SLICE)))
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for offset in range(0, len(data), size):
            chunk = data[offset : offset + size]
            # The n-th byte leaves no earlier than n / rate after the headers: the body takes
            # at least its size over the rate.
            delay = start + clock.to_real((offset + len(chunk)) / rate) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        # The client gave up on the slow body (its timeout) and closed the connection: the
        # normal end of this fault, not a server error to log.
        pass
    return response


async def _cut_short(
    request: web.Request, data: bytes, content_type: str, fraction: float
) -> web.StreamResponse:
    # An empty file cannot be cut: promise one byte and send none.
    promised = max(len(data), 1)
    sent = min(int(len(data) * fraction), promised - 1)
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = promised
    await response.prepare(request)
    if sent:
        await response.write(data[:sent])
    # Closing (not aborting) flushes what was written, then the peer sees the connection end
    # before Content-Length is reached: an incomplete payload, as a dropped CDN node gives.
    if request.transport is not None:
        request.transport.close()
    return response
