"""Fixtures for the conformance suite: the local Discord, judged by Discord's spec.

Every request a conformance test sends goes through ``CheckedSession``, which validates each
JSON answer against the spec (when ``../shared`` is present) and the exact
``Content-Type: application/json`` rule (always). These fixtures know the emulator only
through its documented Python API (ARCHITECTURE.md), never its internals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.conformance.openapi import (
    CheckedSession,
    OpenAPISpec,
    Reply,
    SpecCheckingProxy,
    missing_spec_reason,
)

# Real seconds per Discord second: a 5-second window lasts 50 ms.
TIME_SCALE = 0.01


@pytest.fixture(scope="session")
def openapi_spec() -> OpenAPISpec | None:
    """Discord's OpenAPI spec, or None when ``../shared`` is not beside the clone."""
    return OpenAPISpec.load()


@pytest.fixture
def require_spec(openapi_spec: OpenAPISpec | None) -> OpenAPISpec:
    """The spec; skips the test with a clear reason when it is absent."""
    if openapi_spec is None:
        pytest.skip(missing_spec_reason())
    return openapi_spec


@pytest.fixture
async def emu() -> AsyncIterator[Any]:
    """A fresh local Discord on a free loopback port, time-scaled for tests."""
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE) as emulator:
        yield emulator


@pytest.fixture
async def start_emulator(
    http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> AsyncIterator[Callable[..., Awaitable[tuple[Any, Any, CheckedSession, str]]]]:
    """Start emulators with given options (time scale, limits); each with a bot, client, guild."""
    from discobase.emulator import Emulator

    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> tuple[Any, Any, CheckedSession, str]:
            emulator = await stack.enter_async_context(Emulator(**options))
            bot = emulator.create_bot("rate-limited")
            guild = str(emulator.create_guild("Limits", bots=[bot]))
            api = CheckedSession(http_session, emulator.url, openapi_spec, bot.token)
            return emulator, bot, api, guild

        yield start


@pytest.fixture
def bot(emu: Any) -> Any:
    """A bot registered with the emulator."""
    return emu.create_bot("conformance-bot")


@pytest.fixture
def guild_id(emu: Any, bot: Any) -> str:
    """A guild the bot is in with its default (admin-like) role."""
    return str(emu.create_guild("Conformance", bots=[bot]))


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session for the checked client to ride on."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def session(http_session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """The session the gateway tests open their raw websockets on: ``http_session`` itself."""
    return http_session


@pytest.fixture
def api(
    emu: Any, bot: Any, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> CheckedSession:
    """A checked client authenticated as ``bot``."""
    return CheckedSession(http_session, emu.url, openapi_spec, bot.token)


@pytest.fixture
async def proxy(emu: Any, openapi_spec: OpenAPISpec | None) -> AsyncIterator[SpecCheckingProxy]:
    """A spec-checking proxy in front of the emulator, for third-party clients to talk to."""
    async with SpecCheckingProxy(emu.url, openapi_spec) as checking:
        yield checking


@pytest.fixture
async def channel_id(api: CheckedSession, guild_id: str) -> str:
    """A fresh text channel in ``guild_id``."""
    reply = await api.post(f"/guilds/{guild_id}/channels", json={"name": "records", "type": 0})
    assert reply.status == 201, reply.body
    return str(reply.json()["id"])


# -- helpers the test modules import ----------------------------------------------------------

DISCORD_EPOCH_MS = 1420070400000


def snowflake_ms(snowflake: str) -> int:
    """Return the Unix time in ms a snowflake encodes (bits 63-22 past the Discord epoch)."""
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


async def call(api: CheckedSession, method: str, path: str, **kwargs: Any) -> Reply:
    """Send a request as a polite client: wait out an exhausted bucket, retry a 429.

    Setup steps use this so that they never trip a limit by accident; the rate-limit tests
    themselves send raw requests.
    """
    for _ in range(100):
        reply = await api.request(method, path, **kwargs)
        if reply.status != 429:
            if reply.header("X-RateLimit-Remaining") == "0":
                await asyncio.sleep(float(reply.header("X-RateLimit-Reset-After") or 0))
            return reply
        await asyncio.sleep(float(reply.json()["retry_after"]))
    raise AssertionError(f"{method} {path} stayed rate limited")


async def post_messages(
    api: CheckedSession, channel: str, count: int, prefix: str = "m"
) -> list[str]:
    """Create ``count`` messages in order; return their ids, oldest first."""
    ids = []
    for i in range(count):
        reply = await call(
            api, "POST", f"/channels/{channel}/messages", json={"content": f"{prefix}{i}"}
        )
        assert reply.status == 200, reply.body
        ids.append(reply.json()["id"])
    return ids


async def create_channel(
    api: CheckedSession, guild: str, name: str, **fields: Any
) -> dict[str, Any]:
    """Create a guild channel politely and return it."""
    reply = await call(api, "POST", f"/guilds/{guild}/channels", json={"name": name, **fields})
    assert reply.status == 201, reply.body
    channel: dict[str, Any] = reply.json()
    return channel


def server_429s(emu: Any) -> int:
    """Count the 429s the emulator itself answered, by status and by scope."""
    stats = emu.stats()
    by_status = stats["responses_by_status"]
    by_scope = stats["ratelimited_by_scope"]
    return max(int(by_status.get(429, 0)) + int(by_status.get("429", 0)), sum(by_scope.values()))


def assert_clean(proxy: SpecCheckingProxy, emu: Any, openapi_spec: OpenAPISpec | None) -> None:
    """Assert that the proxy judged answers and found no problem, and nobody saw a 429."""
    assert proxy.ledger.problems == []
    assert 429 not in proxy.ledger.statuses()
    assert server_429s(emu) == 0
    if openapi_spec is not None:
        assert proxy.ledger.validated > 0
