"""Rate limits as Discord applies them: headers, per-resource buckets, 429s, sub-limits, bans.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md section 1 and fact 5.

Tests that need a 429 to be *certain* run the emulator at ``time_scale=1.0``: a burst sent
well inside a real 5-second window cannot straddle it, however loaded the machine. They never
wait for a window to pass, so they stay fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conformance.conftest import create_channel, post_messages
from tests.conformance.openapi import CheckedSession, Reply

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


@pytest.fixture
async def real_time_api(
    start_emulator: Callable[..., Awaitable[tuple[Any, Any, CheckedSession, str]]],
) -> tuple[Any, Any, CheckedSession, str]:
    """An emulator at time_scale 1.0, a bot, a checked client and a guild."""
    return await start_emulator(time_scale=1.0)


async def send_message(api: CheckedSession, channel: str, content: str = "x") -> Reply:
    return await api.post(f"/channels/{channel}/messages", json={"content": content})


def assert_rate_headers(reply: Reply) -> None:
    for name in RATE_HEADERS:
        assert reply.header(name) is not None, f"{name} missing"
    limit = int(reply.header("X-RateLimit-Limit") or "")
    remaining = int(reply.header("X-RateLimit-Remaining") or "")
    assert 0 <= remaining < limit
    reset_after = float(reply.header("X-RateLimit-Reset-After") or "")
    assert reset_after >= 0
    reset = reply.header("X-RateLimit-Reset") or ""
    # Epoch seconds with millisecond precision, e.g. 1470173023.123.
    whole, _, fraction = reset.partition(".")
    assert whole.isdigit() and len(whole) >= 10
    assert fraction.isdigit() and len(fraction) <= 3


async def test_message_create_carries_consistent_headers(
    api: CheckedSession, channel_id: str
) -> None:
    first = await send_message(api, channel_id)
    assert first.status == 200
    assert_rate_headers(first)
    second = await send_message(api, channel_id)
    assert_rate_headers(second)
    assert first.header("X-RateLimit-Bucket") == second.header("X-RateLimit-Bucket")
    assert first.header("X-RateLimit-Limit") == second.header("X-RateLimit-Limit")
    remaining = [int(r.header("X-RateLimit-Remaining") or "") for r in (first, second)]
    # Either the same window (one fewer) or a fresh one after a reset.
    assert (
        remaining[1] == remaining[0] - 1
        or remaining[1] == int(first.header("X-RateLimit-Limit") or "") - 1
    )


async def test_reset_is_the_wall_clock_plus_reset_after(real_time_api: Any) -> None:
    _, _, api, guild = real_time_api
    channel = await create_channel(api, guild, "clock")
    before = time.time()
    reply = await send_message(api, channel["id"])
    after = time.time()
    reset = float(reply.header("X-RateLimit-Reset") or "")
    reset_after = float(reply.header("X-RateLimit-Reset-After") or "")
    # Generous slack: the point is the clock (wall, seconds), not the precision.
    assert before + reset_after - 2 <= reset <= after + reset_after + 2


async def test_channels_have_independent_buckets_with_one_hash(real_time_api: Any) -> None:
    _, _, api, guild = real_time_api
    a = (await create_channel(api, guild, "a"))["id"]
    b = (await create_channel(api, guild, "b"))["id"]
    first_a = await send_message(api, a)
    limit = int(first_a.header("X-RateLimit-Limit") or "")
    for _ in range(limit - 1):
        assert (await send_message(api, a)).status == 200
    assert (await send_message(api, a)).status == 429
    first_b = await send_message(api, b)
    assert first_b.status == 200
    assert int(first_b.header("X-RateLimit-Remaining") or "") == limit - 1
    assert first_b.header("X-RateLimit-Bucket") == first_a.header("X-RateLimit-Bucket")


async def test_429_body_and_headers(real_time_api: Any) -> None:
    emu, _, api, guild = real_time_api
    channel = (await create_channel(api, guild, "limited"))["id"]
    replies = [await send_message(api, channel, f"m{i}") for i in range(6)]
    assert [r.status for r in replies[:5]] == [200] * 5
    limited = replies[5]
    assert limited.status == 429
    body = limited.json()
    assert isinstance(body["retry_after"], float)
    assert 0 < body["retry_after"] <= 5.0
    assert body["global"] is False
    assert isinstance(body["message"], str)
    assert limited.header("X-RateLimit-Scope") == "user"
    assert limited.header("Via")
    retry_header = float(limited.header("Retry-After") or "")
    assert retry_header >= body["retry_after"] - 1
    assert limited.header("X-RateLimit-Global") is None
    # The refused create stored nothing.
    page = (await api.get(f"/channels/{channel}/messages")).json()
    assert [m["content"] for m in page] == [f"m{i}" for i in range(5)][::-1]


async def test_global_limit_of_50_per_second(start_emulator: Any) -> None:
    # Route buckets made roomy so that only the global limit can refuse, and time slowed
    # tenfold so that the whole burst surely lands inside one (10 s real) global second.
    _, _, api, guild = await start_emulator(
        time_scale=10.0, limits={"channel_get": (1000, 5.0), "guild_channel_create": (1000, 5.0)}
    )
    channel = (await create_channel(api, guild, "global"))["id"]
    burst = await asyncio.gather(*(api.get(f"/channels/{channel}") for _ in range(80)))
    statuses = [r.status for r in burst]
    # One request (the channel create) already counted in this second.
    assert statuses.count(200) <= 49
    refused = [r for r in burst if r.status == 429]
    assert len(refused) >= 80 - 49
    sample = refused[0]
    assert sample.json()["global"] is True
    assert isinstance(sample.json()["retry_after"], float)
    assert sample.header("X-RateLimit-Global") == "true"
    assert sample.header("X-RateLimit-Scope") == "global"
    assert sample.header("Via")
    assert sample.header("Retry-After")
    # Reported in real seconds: at most one (scaled) global window away.
    assert 0 < sample.json()["retry_after"] <= 10.0


async def test_invalid_requests_lead_to_a_cloudflare_ban(start_emulator: Any) -> None:
    emu, _, api, _ = await start_emulator(
        time_scale=1.0, limits={"invalid_limit": 20, "ban_duration": 600.0}
    )
    for _ in range(20):
        assert (await api.get("/users/@me", auth="Bot nope")).status == 401
    banned = await api.get("/users/@me")
    assert banned.status == 429
    assert banned.header("Via") is None
    assert (banned.content_type or "").startswith("text/html")
    assert b"<html" in banned.body.lower()
    stats = emu.stats()
    assert stats["invalid_requests"] >= 20
    assert stats["bans"] == 1
    # The ban is temporary: it lifts after its configured duration.
    emu.advance(601)
    assert (await api.get("/users/@me")).status == 200


async def test_403s_count_as_invalid_requests(start_emulator: Any) -> None:
    emu, bot, api, _ = await start_emulator(time_scale=1.0)
    bare = str(emu.create_guild("Bare", bots=[bot], permissions=0))
    emu.reset()
    reply = await api.post(f"/guilds/{bare}/channels", json={"name": "nope"})
    assert reply.status == 403
    assert emu.stats()["invalid_requests"] == 1


async def test_404s_are_not_invalid_requests(start_emulator: Any) -> None:
    emu, _, api, _ = await start_emulator(
        time_scale=1.0, limits={"invalid_limit": 5, "channel_get": (1000, 5.0)}
    )
    for _ in range(10):
        assert (await api.get("/channels/123456789012345678")).status == 404
    assert (await api.get("/users/@me")).status == 200
    assert emu.stats()["invalid_requests"] == 0


async def test_channel_name_and_topic_sub_limit(real_time_api: Any) -> None:
    _, _, api, guild = real_time_api
    channel = (await create_channel(api, guild, "renamed"))["id"]
    path = f"/channels/{channel}"
    assert (await api.patch(path, json={"name": "one"})).status == 200
    assert (await api.patch(path, json={"topic": "two"})).status == 200
    third = await api.patch(path, json={"name": "three"})
    assert third.status == 429
    assert third.header("X-RateLimit-Scope") == "user"
    assert float(third.json()["retry_after"]) > 60  # a 10-minute window, not the main one
    # Other edits of the same channel are not held back by the name/topic sub-limit.
    other = await api.patch(path, json={"nsfw": True})
    assert other.status == 200
    assert (await api.get(path)).json()["name"] == "one"


async def test_time_scale_shrinks_windows_with_the_same_ratios(
    real_time_api: Any, api: CheckedSession, channel_id: str
) -> None:
    _, _, slow_api, guild = real_time_api
    slow_channel = (await create_channel(slow_api, guild, "slow"))["id"]
    slow = await send_message(slow_api, slow_channel)
    fast = await send_message(api, channel_id)
    assert slow.header("X-RateLimit-Limit") == fast.header("X-RateLimit-Limit")
    slow_after = float(slow.header("X-RateLimit-Reset-After") or "")
    fast_after = float(fast.header("X-RateLimit-Reset-After") or "")
    assert 1.0 < slow_after <= 5.0
    assert 0.0 < fast_after <= 0.05 + 0.001


async def test_delete_buckets_depend_on_message_age(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    old = await post_messages(api, channel_id, 1, prefix="old")
    emu.advance(15 * 86_400)
    middle = await post_messages(api, channel_id, 1, prefix="mid")
    emu.advance(60)
    young = await post_messages(api, channel_id, 1, prefix="young")
    replies = {}
    for name, ids in (("old", old), ("middle", middle), ("young", young)):
        reply = await api.delete(f"/channels/{channel_id}/messages/{ids[0]}")
        assert reply.status == 204
        replies[name] = reply
    old_bucket = replies["old"].header("X-RateLimit-Bucket")
    middle_bucket = replies["middle"].header("X-RateLimit-Bucket")
    assert old_bucket and middle_bucket and old_bucket != middle_bucket
    young_bucket = replies["young"].header("X-RateLimit-Bucket")
    assert young_bucket != middle_bucket


async def test_guild_routes_are_keyed_by_guild(real_time_api: Any) -> None:
    emu, bot, api, guild = real_time_api
    other = str(emu.create_guild("Other", bots=[bot]))
    first = await api.post(f"/guilds/{guild}/channels", json={"name": "a0"})
    limit = int(first.header("X-RateLimit-Limit") or "")
    for i in range(1, limit):
        assert (await api.post(f"/guilds/{guild}/channels", json={"name": f"a{i}"})).status == 201
    assert (await api.post(f"/guilds/{guild}/channels", json={"name": "over"})).status == 429
    elsewhere = await api.post(f"/guilds/{other}/channels", json={"name": "b"})
    assert elsewhere.status == 201
    assert int(elsewhere.header("X-RateLimit-Remaining") or "") == limit - 1
    assert elsewhere.header("X-RateLimit-Bucket") == first.header("X-RateLimit-Bucket")
