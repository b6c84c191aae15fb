"""The transport contract: requests as bytes in, responses as bytes out (http layer).

Pure types, no aiohttp: the client codes against :class:`Transport`. The implementations sit
beside it: ``aiohttp_transport.py`` over aiohttp, and :class:`MockTransport` (below), the test
seam.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MockTransport", "RawResponse", "Transport", "TransportFailure"]


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response as received.

    Attributes:
        status: the HTTP status.
        reason: the reason phrase.
        headers: the headers, names in lower case (repeated names: the last wins).
        body: the raw body.
    """

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class TransportFailure(Exception):
    """The exchange failed before a complete response arrived (internal to the http layer).

    Attributes:
        timeout: whether it was a timeout rather than a connection failure.
    """

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class Transport(Protocol):
    """Send one request and return its response."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> RawResponse:
        """Send a request.

        Raises:
            TransportFailure: the connection failed, dropped or timed out.
        """

    async def close(self) -> None:
        """Release connections."""


Handler = Callable[[str, str, Mapping[str, str], bytes | None], Awaitable[RawResponse]]


class MockTransport:
    """A :class:`Transport` that hands each request to ``handler``; for tests.

    Args:
        handler: ``async (method, url, headers, body) -> RawResponse``; it may raise
            :class:`TransportFailure`.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> RawResponse:
        """Call the handler."""
        return await self._handler(method, url, headers, body)

    async def close(self) -> None:
        """Do nothing."""
