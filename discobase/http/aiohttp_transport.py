"""The aiohttp transport: one HTTP exchange (http layer: the only module importing aiohttp).

The client hands over a method, a URL, headers and a body of bytes and gets back a
``RawResponse``; every aiohttp and asyncio failure becomes ``TransportFailure``, which the
client retries or turns into a typed error. Nothing here knows about routes, rate limits or
tokens (the Authorization header is just a header, and it is never logged).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import aiohttp

from discobase.http.transport import RawResponse, TransportFailure

__all__ = ["AiohttpTransport"]

# aiohttp warns (ResourceWarning) when a bytes body passes 1 MiB, since it is written in one
# go; a file-like body is streamed in chunks instead, and a test suite that turns warnings
# into errors would otherwise fail every large write.
_STREAM_ABOVE = 1024 * 1024


class AiohttpTransport:
    """A :class:`Transport` over one ``aiohttp.ClientSession``.

    Args:
        connection_limit: concurrent connections at most (kept near the global rate cap).
    """

    def __init__(self, *, connection_limit: int = 50) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connection_limit),
            skip_auto_headers=("User-Agent",),
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> RawResponse:
        """Send a request (see :class:`Transport`)."""
        try:
            async with self._session.request(
                method,
                url,
                headers=dict(headers),
                data=io.BytesIO(body) if body is not None and len(body) > _STREAM_ABOVE else body,
                # A redirect would carry Authorization to wherever it points.
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                data = await response.read()
                return RawResponse(
                    status=response.status,
                    reason=response.reason or "",
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=data,
                )
        except TimeoutError as exc:
            raise TransportFailure("the request timed out", timeout=True) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # ValueError: a bad URL
            # The exception's text can hold the URL but never the headers.
            raise TransportFailure(f"connection failed: {type(exc).__name__}") from exc

    async def close(self) -> None:
        """Close the session and its connections."""
        await self._session.close()
