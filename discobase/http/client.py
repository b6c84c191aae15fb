"""The REST client (http layer: knows routes, the limiter and the transport contract).

:class:`HTTPClient` turns a compiled route into one or more exchanges: it waits for the limiter,
sends through a :class:`~discobase.http.transport.Transport`, feeds the answer back to the
limiter, retries what is safe to retry and raises typed errors for the rest. It must not know
about storage or the gateway, and it imports aiohttp only when it opens (through
``aiohttp_transport.py``).

This module holds what every request shares: the lifecycle, ``request()`` and its retry loop,
the backoff, the estimate of Discord's clock and the CDN download. The typed methods
(``fetch_message``, ``create_message``, ...) live in ``endpoints/``, one module per section of
``routes.py``; decoding an answer is ``responses.py``'s.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from discobase import _json
from discobase.errors import UsageError
from discobase.http import routes
from discobase.http.clock import Clock, LoopClock
from discobase.http.endpoints import (
    ApplicationCommandEndpoints,
    GuildEndpoints,
    InteractionEndpoints,
    MessageEndpoints,
    UserEndpoints,
)
from discobase.http.errors import (
    ClientClosed,
    InvalidToken,
    RateLimited,
    TransportError,
    error_for,
)
from discobase.http.files import File, encode_multipart
from discobase.http.ratelimit import RateLimiter
from discobase.http.responses import decode, not_json
from discobase.http.routes import CompiledRoute
from discobase.http.transport import RawResponse, Transport, TransportFailure

__all__ = ["DEFAULT_API_URL", "HTTPClient", "HTTPStats", "check_token"]

DEFAULT_API_URL = "https://discord.com"
API_PATH = "/api/v10"
PROJECT_URL = "https://github.com/discobase/discobase"

# Statuses worth another attempt: Discord's own failures and its gateways being busy.
RETRY_STATUSES = frozenset({500, 502, 503, 504, 524})
# A request that keeps meeting 429s gives up after this many (the limiter should prevent any).
MAX_RATELIMIT_RETRIES = 5
# 429s that only say the bucket ran dry (another process of the bot spent it) are the normal
# cost of sharing a bucket: each costs a wait until the refill, not a spin, so they get a far
# larger allowance; the limiter's invalid-request counter still guards against a ban.
MAX_DRAINED_RETRIES = 50


def _version() -> str:
    # A leaf module, not importlib.metadata: that import takes 25 ms, in the event loop when
    # the first client opens (the longest stall of a start-up).
    from discobase._version import __version__

    return __version__


@dataclass(frozen=True, slots=True)
class HTTPStats:
    """Counters of a client's traffic.

    Attributes:
        requests_sent: requests put on the wire (every attempt counts).
        responses: responses received.
        ratelimited: 429 responses received.
        retries: attempts beyond the first (after a 429, a 5xx or a failed connection).
        server_errors: 5xx responses received.
        transport_failures: attempts that got no response (refused, dropped, timed out).
    """

    requests_sent: int = 0
    responses: int = 0
    ratelimited: int = 0
    retries: int = 0
    server_errors: int = 0
    transport_failures: int = 0


class HTTPClient(
    UserEndpoints,
    GuildEndpoints,
    MessageEndpoints,
    ApplicationCommandEndpoints,
    InteractionEndpoints,
):
    """A Discord REST client whose limiter aims never to earn a 429.

    Use it as an async context manager; every method raises a
    :class:`~discobase.http.errors.HTTPException` subclass on failure. The typed methods come
    from the groups of :mod:`discobase.http.endpoints`.

    Args:
        token: the bot token (never shown in a repr, a log line or an error).
        api_url: the origin to talk to, e.g. ``http://127.0.0.1:8765``; ``/api/v10`` is added.
        time_scale: real seconds per Discord second; scales the client's own constants (the
            global window, backoff, margins, ``max_wait``); values read from the wire are
            taken as they are.
        global_limit: requests per second at most (Discord allows 50).
        max_wait: the longest rate-limit wait (Discord seconds) to sleep through before raising
            :class:`~discobase.http.errors.RateLimited`.
        max_retries: extra attempts after a 5xx, a timeout or a dropped connection.
        timeout: real seconds one attempt may take.
        transport: a custom transport (tests); default aiohttp.
        clock: a custom clock (tests); default the running loop's.
        rng: the random source for backoff jitter and nonces.
        require_via: treat a 429 without a ``Via`` header as Cloudflare's, unless its body is
            Discord's JSON (an object with ``retry_after``); non-JSON 429s always are.
    """

    def __init__(
        self,
        token: str,
        *,
        api_url: str | None = None,
        time_scale: float = 1.0,
        global_limit: int = 47,
        max_wait: float = 60.0,
        max_retries: int = 3,
        timeout: float = 15.0,
        transport: Transport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        require_via: bool = True,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        check_token(token)
        self._authorization = f"Bot {token}"
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._base = self.api_url + API_PATH
        self.time_scale = time_scale
        self.max_retries = max_retries
        # Not scaled: it guards against a slow network or host, which run on real time.
        self.timeout = timeout
        self._clock: Clock = clock or LoopClock()
        self._rng = rng or random.Random()
        self._transport = transport
        self._owns_transport = transport is None
        self._state = "new"
        self._global_limit = global_limit
        self.ratelimiter = RateLimiter(
            clock=self._clock,
            time_scale=time_scale,
            global_limit=global_limit,
            max_wait=max_wait,
            require_via=require_via,
        )
        self.user_agent = f"DiscordBot ({PROJECT_URL}, {_version()})"
        self._counters = dict.fromkeys(HTTPStats.__dataclass_fields__, 0)
        # Discord's clock as last seen in a fresh snowflake, for message-age variants.
        self._discord_ms: tuple[float, float] | None = None

    def __repr__(self) -> str:
        return f"<HTTPClient api_url={self.api_url!r} state={self._state}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> HTTPClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the connection pool (imports aiohttp on first use)."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise ClientClosed("this HTTPClient was closed; make a new one")
        if self._transport is None:
            from discobase.http.aiohttp_transport import AiohttpTransport

            self._transport = AiohttpTransport(connection_limit=self._global_limit + 3)
        self._state = "open"

    async def close(self) -> None:
        """Close the connection pool; later requests raise ``ClientClosed``."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._transport is not None and self._owns_transport:
            await self._transport.close()

    @property
    def stats(self) -> HTTPStats:
        """Return a snapshot of the traffic counters."""
        return HTTPStats(**self._counters)

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        route: CompiledRoute,
        *,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        files: Sequence[File] | None = None,
        reason: str | None = None,
    ) -> Any:
        """Send a request through the limiter and return its decoded JSON.

        Args:
            route: the compiled route (``routes.CREATE_MESSAGE.compile(channel_id=...)``).
            json: the JSON body (with ``files``: sent as ``payload_json``).
            query: query parameters; ``None`` values are left out, booleans sent as
                ``true``/``false``.
            files: files to upload as ``multipart/form-data``.
            reason: the audit-log reason.

        Returns:
            The decoded JSON, or ``None`` for an empty body (204).

        Raises:
            HTTPException: a subclass naming the failure.
            ClientClosed: the client is not open.
        """
        if self._state != "open" or self._transport is None:
            raise ClientClosed("the HTTPClient is not open; use `async with HTTPClient(...)`")
        url = self._base + route.path
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += "?" + urlencode(pairs)
        headers = {"Authorization": self._authorization, "User-Agent": self.user_agent}
        if reason:
            headers["X-Audit-Log-Reason"] = quote(reason[:512], safe="")
        body: bytes | None = None
        if files:
            body, headers["Content-Type"] = encode_multipart(json or {}, files)
        elif json is not None:
            body = _json.dumps(json)
            headers["Content-Type"] = "application/json"
        retryable = route.route.is_idempotent or (
            isinstance(json, dict) and json.get("nonce") is not None and json.get("enforce_nonce")
        )
        return await self._exchange(route, url, headers, body, bool(retryable))

    async def _exchange(
        self,
        route: CompiledRoute,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        retryable: bool,
    ) -> Any:
        assert self._transport is not None
        limiter = self.ratelimiter
        failures = 0
        limited = 0
        drained = 0
        front = False
        while True:
            permit = await limiter.acquire(route, front=front)
            if self._state != "open":
                limiter.release(permit)
                raise ClientClosed("the HTTPClient was closed while the request waited")
            front = True  # a retry keeps its place at the head of its queue
            try:
                permit.mark_sent()
                self._count("requests_sent")
                raw = await self._transport.send(
                    route.method, url, headers=headers, body=body, timeout=self.timeout
                )
            except TransportFailure as exc:
                limiter.release(permit)
                self._count("transport_failures")
                if retryable and failures < self.max_retries:
                    failures += 1
                    await self._backoff(failures)
                    continue
                raise TransportError(str(exc), route=str(route)) from exc
            except BaseException:
                limiter.release(permit)
                raise
            self._count("responses")
            payload = decode(raw)
            if raw.status == 429:
                self._count("ratelimited")
            retry = limiter.on_response(permit, raw.status, raw.headers, payload)
            if retry:
                if permit.drained:
                    drained += 1
                else:
                    limited += 1
                if limited > MAX_RATELIMIT_RETRIES or drained > MAX_DRAINED_RETRIES:
                    raise RateLimited(
                        "still rate limited after several waits",
                        status=429,
                        retry_after=0.0,
                        scope="user",
                        route=str(route),
                    )
                self._count("retries")
                continue
            if 200 <= raw.status < 300:
                if raw.status == 204 or not raw.body:
                    return None
                if type(payload) is bytes:  # decode hands back what is not JSON as is
                    # The template, not the filled path: a path may hold an interaction or
                    # webhook token, and errors never carry a token.
                    raise not_json(raw, self._base + route.route.template, route)
                self._observe(payload)
                return payload
            if raw.status == 401:
                raise InvalidToken("the token was refused (401)", status=401, route=str(route))
            if raw.status >= 500:
                self._count("server_errors")
                if raw.status in RETRY_STATUSES and retryable and failures < self.max_retries:
                    failures += 1
                    await self._backoff(failures)
                    continue
            raise error_for(raw.status, payload, route=str(route), reason=raw.reason)

    def _count(self, name: str) -> None:
        self._counters[name] += 1

    async def _backoff(self, attempt: int) -> None:
        """Sleep a full-jitter exponential backoff (0.5 s base, 8 s cap, Discord seconds)."""
        self._count("retries")
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1)) * self.time_scale
        await self._sleep(self._rng.uniform(0.0, ceiling))

    async def _sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self._clock.call_later(delay, wake)
        try:
            await future
        finally:
            handle.cancel()

    def _observe(self, payload: Any) -> None:
        # A just-created object's snowflake tells Discord's time (the emulator's runs fast).
        if isinstance(payload, dict) and "id" in payload and "channel_id" in payload:
            try:
                created = routes.snowflake_time_ms(payload["id"])
            except (TypeError, ValueError):
                return
            now = self._clock.now()
            estimate = self._discord_now_ms()
            if self._discord_ms is None or created > estimate:
                self._discord_ms = (created, now)

    def _discord_now_ms(self) -> float:
        """Estimate Discord's current Unix time in milliseconds."""
        wall = time.time() * 1000
        if self._discord_ms is None:
            return wall
        seen, at = self._discord_ms
        return max(wall, seen + (self._clock.now() - at) * 1000 / self.time_scale)

    # ------------------------------------------------------------------ attachments

    async def download_attachment(self, url: str) -> bytes:
        """Download an attachment's bytes from its CDN URL (no token is sent there).

        Raises:
            HTTPException: the CDN answered with an error or could not be reached.
        """
        if self._state != "open" or self._transport is None:
            raise ClientClosed("the HTTPClient is not open; use `async with HTTPClient(...)`")
        headers = {"User-Agent": self.user_agent}
        failures = 0
        while True:
            try:
                raw: RawResponse = await self._transport.send(
                    "GET", url, headers=headers, body=None, timeout=self.timeout
                )
            except TransportFailure as exc:
                self._count("transport_failures")
                if failures < self.max_retries:
                    failures += 1
                    await self._backoff(failures)
                    continue
                raise TransportError(str(exc), route="GET <attachment>") from exc
            if raw.status == 200:
                return raw.body
            if raw.status in RETRY_STATUSES and failures < self.max_retries:
                failures += 1
                await self._backoff(failures)
                continue
            raise error_for(raw.status, decode(raw), route="GET <attachment>", reason=raw.reason)


def check_token(token: object) -> None:
    """Refuse a token no Authorization header can carry, without ever showing it.

    Raises:
        UsageError: not a str, empty, or with whitespace around or inside it.
    """
    if not isinstance(token, str) or not token:
        raise UsageError("the bot token must be a non-empty str")
    if token != token.strip():
        raise UsageError(
            "the bot token has whitespace around it (a newline left by a file or an "
            "environment variable?); pass token.strip()"
        )
    if not token.isprintable() or any(char.isspace() for char in token):
        raise UsageError(
            "the bot token holds whitespace or control characters, which no bot token has: "
            "copy it again from the Developer Portal (Bot > Reset Token)"
        )


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
