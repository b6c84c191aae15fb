"""Two HTTP clients of one bot (two processes) writing one channel, against the local Discord.

Neither client sees the other's requests; the emulator's bucket counts both. The limiter has to
notice the sharing from the answers alone, stop earning 429s, and never fail a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from discobase.http import HTTPClient, routes
from tests.conftest import TIME_SCALE

CLIENTS = 2
WRITERS_PER_CLIENT = 4  # concurrent creates each client keeps going
CREATES_PER_CLIENT = 30  # six windows' worth of the channel's 5-per-5-s bucket each


@pytest.fixture
async def clients(emulator: Any) -> AsyncIterator[tuple[Any, list[HTTPClient], str]]:
    bot = emulator.create_bot("contention")
    guild_id = str(emulator.create_guild("contention", bots=[bot]))
    opened = [HTTPClient(bot.token, api_url=emulator.url, time_scale=TIME_SCALE) for _ in "ab"]
    for http in opened:
        await http.open()
    try:
        channel = await opened[0].create_guild_channel(guild_id, name="shared")
        yield emulator, opened, str(channel["id"])
    finally:
        for http in opened:
            await http.close()


def user_429s(emulator: Any) -> int:
    return int(emulator.stats()["ratelimited_by_scope"]["user"])


async def write(http: HTTPClient, channel_id: str, count: int, tag: str) -> list[str]:
    """Create ``count`` messages with ``WRITERS_PER_CLIENT`` in flight; return their ids."""
    queue = iter(range(count))
    ids: list[str] = []

    async def writer() -> None:
        for n in queue:
            message = await http.create_message(channel_id, content=f"{tag}{n}")
            ids.append(str(message["id"]))

    await asyncio.gather(*(writer() for _ in range(WRITERS_PER_CLIENT)))
    return ids


async def test_two_clients_share_a_bucket_without_failing_or_429_storms(
    clients: tuple[Any, list[HTTPClient], str],
) -> None:
    """Every create of both clients succeeds exactly once; the server refuses a handful at
    most, while the two discover each other (the limiter before contention pacing earned one
    or more per window, about 25 here)."""
    emulator, (first, second), channel_id = clients
    before = user_429s(emulator)
    ids_a, ids_b = await asyncio.gather(
        write(first, channel_id, CREATES_PER_CLIENT, "a"),
        write(second, channel_id, CREATES_PER_CLIENT, "b"),
    )
    assert len(set(ids_a) | set(ids_b)) == 2 * CREATES_PER_CLIENT
    stored = await first.fetch_messages(channel_id, limit=100)
    assert sorted(m["content"] for m in stored) == sorted(
        [f"a{n}" for n in range(CREATES_PER_CLIENT)] + [f"b{n}" for n in range(CREATES_PER_CLIENT)]
    )
    refused = user_429s(emulator) - before
    assert refused == first.stats.ratelimited + second.stats.ratelimited
    assert refused <= 2 * WRITERS_PER_CLIENT, refused
    assert first.ratelimiter.stats.contended >= 1 or second.ratelimiter.stats.contended >= 1


async def test_a_client_left_alone_goes_back_to_full_windows(
    clients: tuple[Any, list[HTTPClient], str],
) -> None:
    """Once the other sender stops and the sightings have decayed, one client spends whole
    windows again (several requests in flight), so sharing a bucket once costs nothing later."""
    emulator, (first, second), channel_id = clients
    await asyncio.gather(write(first, channel_id, 10, "a"), write(second, channel_id, 10, "b"))
    route = routes.CREATE_MESSAGE.compile(channel_id=channel_id)
    paced = [http for http in (first, second) if http.ratelimiter.view(route).contended]
    assert paced, "neither client noticed the other"
    subject = paced[0]

    async def pacing_ends() -> None:
        while subject.ratelimiter.view(route).contended:
            await asyncio.sleep(0.01)

    # Sightings decay by one request per four windows: well under 200 Discord seconds.
    await asyncio.wait_for(pacing_ends(), timeout=200 * TIME_SCALE)
    before = user_429s(emulator)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, subject.ratelimiter.view(route).in_flight)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    try:
        await write(subject, channel_id, 15, "c")
    finally:
        watcher.cancel()
    assert peak > 1
    assert user_429s(emulator) == before
