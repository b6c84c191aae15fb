"""One REST request as the handlers see it: the bot, path parameters, the parsed body and the
parts of the emulator a handler may use.

Layer: the emulator's REST side. Knows aiohttp's request object; knows nothing of the client,
nor of the ``Emulator`` class: handlers get a :class:`Backend` (the state and its renderer,
the interactions, the limits, the link and the size limits), which the emulator builds. So
the REST modules import only lower layers and never the server that wires them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.base_protocol import BaseProtocol

from ..errors import ApiError, form_error
from ..interactions import InteractionStore
from ..limits import LimitConfig, RateLimiter
from ..link import Link
from ..models import Bot
from ..render import Renderer
from ..state import State

__all__ = ["Backend", "Context", "Reply", "Route", "Upload"]

MiB = 1024 * 1024


def too_large() -> ApiError:
    """Return Discord's answer to an oversized upload (413, code 40005)."""
    return ApiError(413, 40005, "Request entity too large")


@dataclass(frozen=True, slots=True)
class Backend:
    """What the REST side uses of the emulator; one for the emulator's life.

    Attributes:
        state: The world: lookups, permissions and changes.
        interactions: The interactions and guild commands.
        limiter: The rate-limit engine (its ``config`` is the limits table).
        link: The client's link (latency and upload bandwidth).
        rng: The emulator's seeded source, which probability faults draw from.
        gateway_url: Returns the gateway's URL, ``ws://HOST:PORT/gateway``.
        max_file_size: Largest accepted file, in bytes.
        max_request_size: Largest accepted request body, in bytes.
    """

    state: State
    interactions: InteractionStore
    limiter: RateLimiter
    link: Link
    rng: random.Random
    gateway_url: Callable[[], str]
    max_file_size: int
    max_request_size: int


@dataclass(frozen=True, slots=True)
class Upload:
    """One ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class Reply:
    """A handler's answer: status and JSON body (None for an empty 204)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["Context"], Awaitable[Reply]]
LimitSelector = Callable[["Context"], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path template, handler and its rate-limit bucket.

    Attributes:
        method: HTTP method.
        template: Discord's path template, e.g. ``/channels/{channel_id}/messages``.
        handler: The coroutine that answers.
        limit: The key of its bucket in the limits table (None: only the global limit).
        major: The path parameter that is the top-level resource (channel, guild).
        auth: Whether a bot token is required.
        select: Chooses the bucket(s) from the request when one name is not enough
            (message age for deletes, the name/topic sub-limit); overrides ``limit``.
        global_limit: Whether the request counts toward the global limit (interaction
            callbacks and interaction webhooks do not).
    """

    method: str
    template: str
    handler: Handler
    limit: str | None = None
    major: str | None = None
    auth: bool = True
    select: LimitSelector | None = None
    global_limit: bool = True

    @property
    def key(self) -> str:
        """Return ``"METHOD /template"``, the name counters use."""
        return f"{self.method} {self.template}"


class Context:
    """The request, the authenticated bot, path parameters and the lazily parsed body.

    Args:
        backend: What handlers may use of the emulator.
        request: The aiohttp request.
        bot: The authenticated bot (None on routes without a token).
        params: The path parameters.
        body: The body when it was already received (over a slow link); None to read it
            from the request.
    """

    def __init__(
        self,
        backend: Backend,
        request: web.Request,
        bot: Bot | None,
        params: dict[str, str],
        *,
        body: bytes | None = None,
    ) -> None:
        self._backend = backend
        self.state = backend.state
        self.render: Renderer = backend.state.render
        self.interactions = backend.interactions
        self.request = request
        self._bot = bot
        self.params = params
        self._body = body
        self._parsed: tuple[Any, list[Upload]] | None = None

    @property
    def limits(self) -> LimitConfig:
        """Return the rate-limit table (for routes that choose their bucket)."""
        return self._backend.limiter.config

    def gateway_url(self) -> str:
        """Return the gateway's URL, ``ws://HOST:PORT/gateway``."""
        return self._backend.gateway_url()

    @property
    def has_bot(self) -> bool:
        """Return whether the request carried a valid bot token."""
        return self._bot is not None

    @property
    def bot(self) -> Bot:
        """Return the authenticated bot (routes with ``auth=False`` must not ask)."""
        assert self._bot is not None, "route without auth asked for the bot"
        return self._bot

    @property
    def query(self) -> Any:
        """Return the query string as a multidict."""
        return self.request.query

    async def json(self) -> Any:
        """Return the JSON body (from ``payload_json`` or plain fields for multipart)."""
        return (await self.payload())[0]

    async def payload(self) -> tuple[Any, list[Upload]]:
        """Return the body's JSON and its uploaded files, parsed once."""
        if self._parsed is None:
            self._parsed = await self._parse()
        return self._parsed

    async def _parse(self) -> tuple[Any, list[Upload]]:
        request = self.request
        limit = self._backend.max_request_size
        if request.content_length is not None and request.content_length > limit:
            raise too_large()
        ctype = request.content_type
        if self._body is not None and len(self._body) > limit:
            raise too_large()
        if ctype == "multipart/form-data":
            return await self._parse_multipart(limit, await self._multipart())
        if self._body is not None:
            raw = self._body
        else:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise too_large() from None
        if not raw:
            return {}, []
        if ctype == "application/json":
            try:
                return orjson.loads(raw), []
            except orjson.JSONDecodeError:
                raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
        if ctype == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            return dict(parse_qsl(raw.decode(errors="replace"))), []
        raise form_error([], "CONTENT_TYPE_INVALID", f"Expected Content-Type to be {_TYPES}.")

    async def _multipart(self) -> MultipartReader:
        if self._body is None:
            return await self.request.multipart()
        # The body was received already (a slow link): parse it from memory with aiohttp's own
        # reader. Its buffer limit is above the body's size, so the stream never asks the
        # (transport-less) protocol to pause reading.
        loop = asyncio.get_running_loop()
        stream = StreamReader(BaseProtocol(loop), max(1 << 16, len(self._body) + 1), loop=loop)
        stream.feed_data(self._body)
        stream.feed_eof()
        return MultipartReader(self.request.headers, stream)

    async def _parse_multipart(
        self, limit: int, reader: MultipartReader
    ) -> tuple[Any, list[Upload]]:
        body: dict[str, Any] = {}
        payload_json: Any = None
        files: list[Upload] = []
        total = 0
        per_file = self._backend.max_file_size
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):  # nested multipart: Discord refuses it too
                raise form_error([], "CONTENT_TYPE_INVALID", "Nested multipart is not allowed.")
            name = part.name or ""
            chunks = []
            while True:
                chunk = await part.read_chunk(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise too_large()
                chunks.append(chunk)
            data = b"".join(chunks)
            if name == "payload_json":
                try:
                    payload_json = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise form_error(
                        "payload_json", "JSON_INVALID", "The payload_json is not valid JSON."
                    ) from None
            elif name.startswith("files[") and name.endswith("]") or part.filename:
                index = _file_index(name, len(files))
                if len(data) > per_file:
                    raise too_large()
                files.append(
                    Upload(
                        index,
                        unquote(part.filename or "") or f"file{index}",
                        part.headers.get("Content-Type"),
                        data,
                    )
                )
            else:
                body[name] = data.decode(errors="replace")
        if payload_json is not None:
            if not isinstance(payload_json, dict):
                raise form_error("payload_json", "DICT_TYPE_CONVERT", "Only dictionaries.")
            body = {**body, **payload_json}
        return body, files


_TYPES = "application/json, application/x-www-form-urlencoded or multipart/form-data"


def _file_index(name: str, fallback: int) -> int:
    inner = name[len("files[") : -1] if name.startswith("files[") else ""
    return int(inner) if inner.isdigit() else fallback
