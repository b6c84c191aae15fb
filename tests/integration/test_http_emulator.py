"""HTTPClient against the local Discord emulator: every endpoint, limits and fault injection."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from discobase.http import File, HTTPClient
from discobase.http.errors import InvalidToken, NotFound, RateLimited
from tests.conftest import TIME_SCALE


def count_429(stats: dict[Any, Any]) -> int:
    """Find the emulator's count of 429 responses in its stats (``{429: n}`` or ``*_429``)."""
    total = 0
    for key, value in stats.items():
        name = str(key)
        if isinstance(value, dict):
            if name != "gateway":
                total += count_429(value)
        elif isinstance(value, int) and ("429" in name or "rate_limited" in name.lower()):
            total += value
    return total


@pytest.fixture
async def setup(emulator: Any) -> AsyncIterator[tuple[Any, HTTPClient, str]]:
    bot = emulator.create_bot("http-tests")
    guild_id = str(emulator.create_guild("http tests", bots=[bot]))
    async with HTTPClient(bot.token, api_url=emulator.url, time_scale=TIME_SCALE) as http:
        yield emulator, http, guild_id


async def new_channel(http: HTTPClient, guild_id: str, name: str = "table") -> str:
    channel = await http.create_guild_channel(guild_id, name=name, topic="t")
    return str(channel["id"])


async def test_identity_and_discovery(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    me = await http.fetch_current_user()
    assert me["bot"] is True
    application = await http.fetch_current_application()
    assert application["id"]
    gateway = await http.fetch_gateway_bot()
    assert gateway["url"].startswith("ws://")
    guilds = await http.fetch_my_guilds()
    assert guild_id in {g["id"] for g in guilds}
    assert (await http.fetch_guild(guild_id))["id"] == guild_id


async def test_channels_and_messages_round_trip(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    assert channel_id in {c["id"] for c in await http.fetch_guild_channels(guild_id)}
    created = [await http.create_message(channel_id, content=f"m{i}") for i in range(3)]
    page = await http.fetch_messages(channel_id, limit=10)
    assert [m["id"] for m in page] == [m["id"] for m in reversed(created)]
    after = await http.fetch_messages(channel_id, after=created[0]["id"])
    assert {m["id"] for m in after} == {created[1]["id"], created[2]["id"]}
    edited = await http.edit_message(channel_id, created[0]["id"], content="changed")
    assert edited["content"] == "changed"
    assert (await http.fetch_message(channel_id, created[0]["id"]))["content"] == "changed"
    await http.pin_message(channel_id, created[1]["id"])
    pins = await http.fetch_pins(channel_id)
    assert [p["message"]["id"] for p in pins["items"]] == [created[1]["id"]]
    await http.unpin_message(channel_id, created[1]["id"])
    await http.delete_message(channel_id, created[2]["id"])
    with pytest.raises(NotFound) as info:
        await http.fetch_message(channel_id, created[2]["id"])
    assert info.value.code == 10008
    await http.bulk_delete_messages(channel_id, [created[0]["id"], created[1]["id"]])
    remaining = [m for m in await http.fetch_messages(channel_id) if m["type"] == 0]
    assert remaining == []
    edited_channel = await http.edit_channel(channel_id, position=3)
    assert edited_channel["id"] == channel_id
    await http.delete_channel(channel_id)
    with pytest.raises(NotFound):
        await http.fetch_channel(channel_id)


async def test_upload_and_download(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    data = bytes(range(256)) * 40
    message = await http.create_message(
        channel_id, content="with file", files=[File("blob.bin", data)]
    )
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "blob.bin" and attachment["size"] == len(data)
    assert await http.download_attachment(attachment["url"]) == data


async def test_large_upload_warns_nothing(setup: tuple[Any, HTTPClient, str]) -> None:
    """A 3 MB upload is streamed: aiohttp's ResourceWarning about large raw bytes bodies would
    fail every large write in a test suite that turns warnings into errors."""
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    data = bytes(range(256)) * 12_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        message = await http.create_message(channel_id, files=[File("big.bin", data)])
    (attachment,) = message["attachments"]
    assert await http.download_attachment(attachment["url"]) == data


async def test_bursts_earn_no_429(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channels = [await new_channel(http, guild_id, f"c{i}") for i in range(10)]
    before = count_429(emu.stats())
    await asyncio.gather(
        *(http.create_message(channels[0], content=str(i)) for i in range(12)),
        *(http.create_message(c, content="x") for c in channels for _ in range(6)),
    )
    assert http.stats.ratelimited == 0
    assert count_429(emu.stats()) == before


async def test_500_after_write_leaves_one_message(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    emu.fail_next("POST", r"/channels/\d+/messages", 500, after_write=True)
    message = await http.create_message(channel_id, content="exactly once")
    page = await http.fetch_messages(channel_id)
    assert [m["id"] for m in page if m["type"] == 0] == [message["id"]]
    assert http.stats.retries >= 1


async def test_5xx_before_write_is_retried(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    emu.fail_next("GET", r"/users/@me", 502, count=2)
    assert (await http.fetch_current_user())["bot"] is True
    assert http.stats.server_errors == 2


async def test_rename_sublimit_spares_other_edits(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    await http.edit_channel(channel_id, name="one")
    await http.edit_channel(channel_id, topic="two")
    with pytest.raises(RateLimited):
        await http.edit_channel(channel_id, name="three")
    with pytest.raises(RateLimited):  # known now: refused without asking again
        await http.edit_channel(channel_id, name="four")
    await http.edit_channel(channel_id, position=2)
    assert http.stats.ratelimited <= 1


async def test_deletes_across_age_classes(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    channel_id = await new_channel(http, guild_id)
    old = [await http.create_message(channel_id, content=f"o{i}") for i in range(4)]
    emu.advance(15 * 86_400)
    middle = [await http.create_message(channel_id, content=f"m{i}") for i in range(4)]
    emu.advance(60)
    young = [await http.create_message(channel_id, content=f"y{i}") for i in range(4)]
    before = count_429(emu.stats())
    await asyncio.gather(*(http.delete_message(channel_id, m["id"]) for m in old + middle + young))
    assert count_429(emu.stats()) == before
    assert [m for m in await http.fetch_messages(channel_id) if m["type"] == 0] == []


async def test_bad_token_fails_fast(emulator: Any) -> None:
    async with HTTPClient("not-a-token", api_url=emulator.url, time_scale=TIME_SCALE) as http:
        results = await asyncio.gather(
            *(http.fetch_current_user() for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) for r in results)
        assert http.stats.requests_sent == 1


async def test_leave_guild(setup: tuple[Any, HTTPClient, str]) -> None:
    emu, http, guild_id = setup
    await http.leave_guild(guild_id)
    assert guild_id not in {g["id"] for g in await http.fetch_my_guilds()}
