"""Fixtures for the conformance suite: the local Discord, judged by Discord's spec.

Every request a conformance test sends goes through ``CheckedSession``, which validates each
JSON answer against the spec (when ``../shared`` is present) and the exact
``Content-Type: application/json`` rule (always). These fixtures know the emulator only
through its documented Python API (ARCHITECTURE.md), never its internals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conformance.openapi import CheckedSession, OpenAPISpec, missing_spec_reason

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
def api(
    emu: Any, bot: Any, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> CheckedSession:
    """A checked client authenticated as ``bot``."""
    return CheckedSession(http_session, emu.url, openapi_spec, bot.token)


@pytest.fixture
async def channel_id(api: CheckedSession, guild_id: str) -> str:
    """A fresh text channel in ``guild_id``."""
    reply = await api.post(f"/guilds/{guild_id}/channels", json={"name": "records", "type": 0})
    assert reply.status == 201, reply.body
    return str(reply.json()["id"])
