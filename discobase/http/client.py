"""The REST client (http layer: knows routes, the limiter and the transport contract).

:class:`HTTPClient` turns a compiled route into one or more exchanges: it waits for the limiter,
sends through a :class:`~discobase.http.transport.Transport`, feeds the answer back to the
limiter, retries what is safe to retry and raises typed errors for the rest. It must not know
about storage or the gateway, and it imports aiohttp only when it opens (through
``aiohttp_transport.py``).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from discobase import _json
from discobase.errors import UsageError
from discobase.http import routes
from discobase.http.clock import Clock, LoopClock
from discobase.http.errors import (
    ClientClosed,
    InvalidToken,
    NotJSON,
    RateLimited,
    TransportError,
    error_for,
)
from discobase.http.files import File, encode_multipart
from discobase.http.ratelimit import RateLimiter
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


class HTTPClient:
    """A Discord REST client whose limiter aims never to earn a 429.

    Use it as an async context manager; every method raises a
    :class:`~discobase.http.errors.HTTPException` subclass on failure.

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
            payload = _decode(raw)
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
                if type(payload) is bytes:  # _decode hands back what is not JSON as is
                    # The template, not the filled path: a path may hold an interaction or
                    # webhook token, and errors never carry a token.
                    raise _not_json(raw, self._base + route.route.template, route)
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

    # ------------------------------------------------------------------ users, gateway

    async def fetch_current_user(self) -> Any:
        """Return the bot's user object."""
        return await self.request(routes.GET_MY_USER.compile())

    async def fetch_current_application(self) -> Any:
        """Return the bot's application object."""
        return await self.request(routes.GET_MY_APPLICATION.compile())

    async def fetch_gateway_bot(self) -> Any:
        """Return the gateway URL, recommended shards and the identify budget."""
        return await self.request(routes.GET_BOT_GATEWAY.compile())

    async def fetch_my_guilds(self) -> list[Any]:
        """Return every guild the bot is in (all pages, ascending by id)."""
        guilds: list[Any] = []
        after: str | None = None
        while True:
            page = await self.request(
                routes.LIST_MY_GUILDS.compile(), query={"limit": 200, "after": after}
            )
            if not isinstance(page, list):
                return guilds
            guilds.extend(page)
            if len(page) < 200:
                return guilds
            after = str(max(int(g["id"]) for g in page))

    async def leave_guild(self, guild_id: int | str) -> None:
        """Leave a guild."""
        await self.request(routes.LEAVE_GUILD.compile(guild_id=guild_id))

    # ------------------------------------------------------------------ guilds, channels

    async def create_guild(self, name: str, **fields: Any) -> Any:
        """Create a guild (Discord removed this for bots in 2025; the emulator keeps it)."""
        return await self.request(routes.CREATE_GUILD.compile(), json={"name": name, **fields})

    async def fetch_guild(self, guild_id: int | str, *, with_counts: bool = False) -> Any:
        """Return a guild."""
        query = {"with_counts": True} if with_counts else None
        return await self.request(routes.GET_GUILD.compile(guild_id=guild_id), query=query)

    async def fetch_guild_member(self, guild_id: int | str, user_id: int | str) -> Any:
        """Return a member of a guild (its ``roles`` are role ids; no privileged intent)."""
        route = routes.GET_GUILD_MEMBER.compile(guild_id=guild_id, user_id=user_id)
        return await self.request(route)

    async def fetch_guild_channels(self, guild_id: int | str) -> Any:
        """Return a guild's channels (threads excluded)."""
        return await self.request(routes.LIST_GUILD_CHANNELS.compile(guild_id=guild_id))

    async def create_guild_channel(
        self,
        guild_id: int | str,
        *,
        name: str,
        type: int = 0,
        topic: str | None = None,
        parent_id: int | str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> Any:
        """Create a channel in a guild and return it."""
        body: dict[str, Any] = {"name": name, "type": type, **fields}
        if topic is not None:
            body["topic"] = topic
        if parent_id is not None:
            body["parent_id"] = str(parent_id)
        route = routes.CREATE_GUILD_CHANNEL.compile(guild_id=guild_id)
        return await self.request(route, json=body, reason=reason)

    async def fetch_channel(self, channel_id: int | str) -> Any:
        """Return a channel."""
        return await self.request(routes.GET_CHANNEL.compile(channel_id=channel_id))

    async def edit_channel(
        self, channel_id: int | str, *, reason: str | None = None, **fields: Any
    ) -> Any:
        """Change a channel's fields and return it (renames have their own tiny limit)."""
        variant = routes.channel_edit_variant(fields)
        route = routes.UPDATE_CHANNEL.compile(variant, channel_id=channel_id)
        return await self.request(route, json=fields, reason=reason)

    async def delete_channel(self, channel_id: int | str, *, reason: str | None = None) -> Any:
        """Delete a channel and return it."""
        route = routes.DELETE_CHANNEL.compile(channel_id=channel_id)
        return await self.request(route, reason=reason)

    # ------------------------------------------------------------------ messages

    async def create_message(
        self,
        channel_id: int | str,
        *,
        content: str | None = None,
        files: Sequence[File] = (),
        nonce: str | None = None,
        flags: int = 0,
        allowed_mentions: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Any:
        """Post a message and return it.

        The body always carries ``nonce`` with ``enforce_nonce``, so a retry after a lost
        response returns the message already stored instead of writing it twice.

        Args:
            channel_id: the channel.
            content: the text (at most 2000 characters).
            files: attachments.
            nonce: a unique id for this write (at most 25 characters); generated if omitted.
            flags: message flags.
            allowed_mentions: defaults to mentioning nobody.
            **fields: other body fields (``embeds``, ``attachments``, ...).
        """
        body: dict[str, Any] = dict(fields)
        if content is not None:
            body["content"] = content
        if flags:
            body["flags"] = flags
        body["allowed_mentions"] = (
            allowed_mentions if allowed_mentions is not None else {"parse": []}
        )
        body["nonce"] = nonce if nonce is not None else str(secrets.randbits(63))
        body["enforce_nonce"] = True
        route = routes.CREATE_MESSAGE.compile(channel_id=channel_id)
        return await self.request(route, json=body, files=list(files) or None)

    async def fetch_messages(
        self,
        channel_id: int | str,
        *,
        before: int | str | None = None,
        after: int | str | None = None,
        around: int | str | None = None,
        limit: int = 100,
    ) -> Any:
        """Return up to ``limit`` (1-100) messages, newest first, even with ``after``."""
        query = {"before": before, "after": after, "around": around, "limit": limit}
        route = routes.LIST_MESSAGES.compile(channel_id=channel_id)
        return await self.request(route, query=query)

    async def fetch_message(self, channel_id: int | str, message_id: int | str) -> Any:
        """Return one message."""
        route = routes.GET_MESSAGE.compile(channel_id=channel_id, message_id=message_id)
        return await self.request(route)

    async def edit_message(
        self,
        channel_id: int | str,
        message_id: int | str,
        *,
        files: Sequence[File] = (),
        **fields: Any,
    ) -> Any:
        """Change a message's fields (``content``, ``attachments``, ...) and return it."""
        variant = routes.message_edit_variant(message_id, self._discord_now_ms())
        route = routes.UPDATE_MESSAGE.compile(variant, channel_id=channel_id, message_id=message_id)
        return await self.request(route, json=fields, files=list(files) or None)

    async def delete_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Delete a message."""
        variant = routes.message_delete_variant(message_id, self._discord_now_ms())
        route = routes.DELETE_MESSAGE.compile(variant, channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def bulk_delete_messages(
        self,
        channel_id: int | str,
        message_ids: Sequence[int | str],
        *,
        reason: str | None = None,
    ) -> None:
        """Delete 2 to 100 messages under 14 days old at once."""
        route = routes.BULK_DELETE_MESSAGES.compile(channel_id=channel_id)
        body = {"messages": [str(m) for m in message_ids]}
        await self.request(route, json=body, reason=reason)

    async def pin_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Pin a message."""
        route = routes.CREATE_PIN.compile(channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def unpin_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Unpin a message."""
        route = routes.DELETE_PIN.compile(channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def fetch_pins(
        self, channel_id: int | str, *, before: str | None = None, limit: int = 50
    ) -> Any:
        """Return a page of pins: ``{"items": [{"pinned_at", "message"}], "has_more"}``."""
        route = routes.LIST_PINS.compile(channel_id=channel_id)
        return await self.request(route, query={"before": before, "limit": limit})

    # ------------------------------------------------------------------ application commands

    async def fetch_global_application_commands(self, application_id: int | str) -> Any:
        """Return the application's global commands."""
        route = routes.LIST_GLOBAL_APPLICATION_COMMANDS.compile(application_id=application_id)
        return await self.request(route)

    async def bulk_overwrite_global_application_commands(
        self, application_id: int | str, commands: Sequence[Mapping[str, Any]]
    ) -> Any:
        """Replace every global command of the application; return the stored list."""
        route = routes.BULK_OVERWRITE_GLOBAL_APPLICATION_COMMANDS.compile(
            application_id=application_id
        )
        return await self.request(route, json=[dict(c) for c in commands])

    async def fetch_guild_application_commands(
        self, application_id: int | str, guild_id: int | str
    ) -> Any:
        """Return the application's commands in one guild."""
        route = routes.LIST_GUILD_APPLICATION_COMMANDS.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route)

    async def bulk_overwrite_guild_application_commands(
        self,
        application_id: int | str,
        guild_id: int | str,
        commands: Sequence[Mapping[str, Any]],
    ) -> Any:
        """Replace every command of the application in one guild; return the stored list.

        An empty list removes them all. A PUT replaces the whole set, so a retry is safe.
        """
        route = routes.BULK_OVERWRITE_GUILD_APPLICATION_COMMANDS.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route, json=[dict(c) for c in commands])

    async def create_guild_application_command(
        self, application_id: int | str, guild_id: int | str, command: Mapping[str, Any]
    ) -> Any:
        """Create (or replace, by name) one command in a guild and return it."""
        route = routes.CREATE_GUILD_APPLICATION_COMMAND.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route, json=dict(command))

    async def delete_guild_application_command(
        self, application_id: int | str, guild_id: int | str, command_id: int | str
    ) -> None:
        """Delete one command of a guild."""
        route = routes.DELETE_GUILD_APPLICATION_COMMAND.compile(
            application_id=application_id, guild_id=guild_id, command_id=command_id
        )
        await self.request(route)

    # ------------------------------------------------------------------ interactions

    async def create_interaction_response(
        self,
        interaction_id: int | str,
        interaction_token: str,
        type: int,
        data: Mapping[str, Any] | None = None,
        *,
        with_response: bool = False,
    ) -> Any:
        """Answer an interaction (once, within 3 seconds of its creation).

        Not counted toward the global limit. A message's ``allowed_mentions`` defaults to
        mentioning nobody.

        Args:
            interaction_id: the interaction's id.
            interaction_token: its token (never shown in an error or a log line).
            type: the callback type (4 reply, 5 deferred reply, 6 deferred update, 7 update
                the component's message, 8 autocomplete choices, 9 modal).
            data: the callback's ``data``.
            with_response: ask for the ``InteractionCallbackResponse`` (else ``None``).
        """
        body: dict[str, Any] = {"type": type}
        if data is not None:
            body["data"] = _with_no_mentions(data) if type in (4, 7) else dict(data)
        route = routes.CREATE_INTERACTION_RESPONSE.compile(
            interaction_id=interaction_id, interaction_token=interaction_token
        )
        query = {"with_response": True} if with_response else None
        return await self.request(route, json=body, query=query)

    async def create_followup_message(
        self, application_id: int | str, interaction_token: str, **fields: Any
    ) -> Any:
        """Send a follow-up message to an interaction (for 15 minutes) and return it."""
        route = routes.CREATE_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def fetch_original_interaction_response(
        self, application_id: int | str, interaction_token: str
    ) -> Any:
        """Return an interaction's original response message."""
        route = routes.GET_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route)

    async def edit_original_interaction_response(
        self, application_id: int | str, interaction_token: str, **fields: Any
    ) -> Any:
        """Change an interaction's original response (a deferral's answer) and return it."""
        route = routes.EDIT_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def delete_original_interaction_response(
        self, application_id: int | str, interaction_token: str
    ) -> None:
        """Delete an interaction's original response."""
        route = routes.DELETE_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        await self.request(route)

    async def edit_followup_message(
        self,
        application_id: int | str,
        interaction_token: str,
        message_id: int | str,
        **fields: Any,
    ) -> Any:
        """Change a follow-up message and return it."""
        route = routes.EDIT_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token, message_id=message_id
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def delete_followup_message(
        self, application_id: int | str, interaction_token: str, message_id: int | str
    ) -> None:
        """Delete a follow-up message."""
        route = routes.DELETE_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token, message_id=message_id
        )
        await self.request(route)

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
            raise error_for(raw.status, _decode(raw), route="GET <attachment>", reason=raw.reason)


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


def _not_json(raw: RawResponse, url: str, route: CompiledRoute) -> NotJSON:
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


def _with_no_mentions(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a message body that mentions nobody unless it says otherwise."""
    body = dict(fields)
    body.setdefault("allowed_mentions", {"parse": []})
    return body


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(raw: RawResponse) -> Any:
    """Decode a JSON body; return the raw bytes when it is not JSON."""
    if not raw.body:
        return None
    if "json" not in raw.headers.get("content-type", "json"):
        return raw.body
    try:
        return _json.loads(raw.body)
    except _json.JSONDecodeError:
        return raw.body
