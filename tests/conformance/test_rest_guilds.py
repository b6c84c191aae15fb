"""Guilds and channels: listing, leaving, creating, normalising, limits, deleting.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md sections 3.1-3.4 and fact 4 (no guild creation by bots).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import call, create_channel
from tests.conformance.openapi import CheckedSession


async def test_my_guilds_ascending_and_paged(emu: Any, api: CheckedSession, bot: Any) -> None:
    created = [str(emu.create_guild(f"g{i}", bots=[bot])) for i in range(5)]
    ids = sorted(created, key=int)

    everything = (await api.get("/users/@me/guilds")).json()
    listed = [g["id"] for g in everything]
    assert listed == sorted(listed, key=int)
    assert set(ids) <= set(listed)
    assert all(isinstance(g["permissions"], str) for g in everything)

    first_two = (await api.get("/users/@me/guilds", params={"limit": "2"})).json()
    assert [g["id"] for g in first_two] == listed[:2]

    after = (await api.get("/users/@me/guilds", params={"after": ids[1]})).json()
    assert [g["id"] for g in after] == [i for i in listed if int(i) > int(ids[1])]

    after_limited = await api.get("/users/@me/guilds", params={"after": ids[1], "limit": "2"})
    assert [g["id"] for g in after_limited.json()] == [i for i in listed if int(i) > int(ids[1])][
        :2
    ]

    before = (await api.get("/users/@me/guilds", params={"before": ids[3]})).json()
    assert [g["id"] for g in before] == [i for i in listed if int(i) < int(ids[3])]


async def test_leaving_a_guild(api: CheckedSession, guild_id: str) -> None:
    reply = await api.delete(f"/users/@me/guilds/{guild_id}")
    assert reply.status == 204
    assert reply.body == b""
    listed = [g["id"] for g in (await api.get("/users/@me/guilds")).json()]
    assert guild_id not in listed
    assert (await api.get(f"/guilds/{guild_id}")).status in (403, 404)


async def test_channels_of_a_left_guild_are_missing_access(
    api: CheckedSession, guild_id: str, channel_id: str
) -> None:
    assert (await api.delete(f"/users/@me/guilds/{guild_id}")).status == 204
    for reply in (
        await api.get(f"/channels/{channel_id}"),
        await api.post(f"/channels/{channel_id}/messages", json={"content": "x"}),
    ):
        assert reply.status == 403
        assert reply.json()["code"] == 50001


async def test_my_guilds_limit_is_1_to_200(api: CheckedSession, guild_id: str) -> None:
    assert (await api.get("/users/@me/guilds", params={"limit": "200"})).status == 200
    for bad in ("0", "201"):
        reply = await api.get("/users/@me/guilds", params={"limit": bad})
        assert reply.status == 400
        assert reply.json()["code"] == 50035


async def test_leaving_an_unknown_guild_is_10004(api: CheckedSession) -> None:
    reply = await api.delete("/users/@me/guilds/123456789012345678")
    assert reply.status == 404
    assert reply.json()["code"] == 10004


async def test_get_guild(api: CheckedSession, guild_id: str) -> None:
    reply = await api.get(f"/guilds/{guild_id}")
    assert reply.status == 200
    guild = reply.json()
    assert guild["id"] == guild_id
    assert guild["name"] == "Conformance"


async def test_get_guild_with_counts(api: CheckedSession, guild_id: str) -> None:
    guild = (await api.get(f"/guilds/{guild_id}", params={"with_counts": "true"})).json()
    assert guild["approximate_member_count"] >= 1
    assert "approximate_presence_count" in guild


async def test_unknown_guild_is_refused(api: CheckedSession) -> None:
    reply = await api.get("/guilds/123456789012345678")
    assert reply.status in (403, 404)
    assert reply.json()["code"] in (10004, 50001)


async def test_create_channel_is_201_and_listed(api: CheckedSession, guild_id: str) -> None:
    reply = await api.post(f"/guilds/{guild_id}/channels", json={"name": "records", "type": 0})
    assert reply.status == 201
    channel = reply.json()
    assert channel["type"] == 0 and channel["guild_id"] == guild_id
    listed = (await api.get(f"/guilds/{guild_id}/channels")).json()
    assert channel["id"] in [c["id"] for c in listed]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Hello World", "hello-world"), ("Big   Gap", "big-gap"), ("  Padded  ", "padded")],
)
async def test_text_channel_names_are_normalised(
    api: CheckedSession, guild_id: str, given: str, expected: str
) -> None:
    channel = await create_channel(api, guild_id, given, type=0)
    assert channel["name"] == expected


async def test_voice_and_category_names_are_kept(api: CheckedSession, guild_id: str) -> None:
    voice = await create_channel(api, guild_id, "Voice Room", type=2)
    category = await create_channel(api, guild_id, "My Tables", type=4)
    assert voice["name"] == "Voice Room"
    assert category["name"] == "My Tables"


@pytest.mark.parametrize("name", ["", "x" * 101])
async def test_channel_name_must_be_1_to_100(api: CheckedSession, guild_id: str, name: str) -> None:
    reply = await api.post(f"/guilds/{guild_id}/channels", json={"name": name, "type": 0})
    assert reply.status == 400
    body = reply.json()
    assert body["code"] == 50035
    assert "name" in body["errors"]


async def test_channel_needs_a_name(api: CheckedSession, guild_id: str) -> None:
    reply = await api.post(f"/guilds/{guild_id}/channels", json={"type": 0})
    assert reply.status == 400
    assert reply.json()["code"] == 50035


async def test_500_channels_per_guild(start_emulator: Any) -> None:
    # A roomy create bucket: this test is about the channel count, not the rate limit.
    _, _, api, guild_id = await start_emulator(
        time_scale=0.01, limits={"guild_channel_create": (10_000, 5.0)}
    )
    existing = len((await api.get(f"/guilds/{guild_id}/channels")).json())
    for i in range(500 - existing):
        await create_channel(api, guild_id, f"c{i}", type=0)
    reply = await call(api, "POST", f"/guilds/{guild_id}/channels", json={"name": "one-too-many"})
    assert reply.status == 400
    assert reply.json()["code"] == 30013


async def test_50_channels_per_category(api: CheckedSession, guild_id: str) -> None:
    category = await create_channel(api, guild_id, "bucket", type=4)
    for i in range(50):
        child = await create_channel(api, guild_id, f"t{i}", type=0, parent_id=category["id"])
        assert child["parent_id"] == category["id"]
    reply = await call(
        api,
        "POST",
        f"/guilds/{guild_id}/channels",
        json={"name": "overflow", "type": 0, "parent_id": category["id"]},
    )
    assert reply.status == 400
    # The overflow is still a valid channel outside the category.
    assert (await create_channel(api, guild_id, "outside", type=0))["parent_id"] is None


async def test_text_channel_topic_is_at_most_1024(api: CheckedSession, channel_id: str) -> None:
    ok = await api.patch(f"/channels/{channel_id}", json={"topic": "t" * 1024})
    assert ok.status == 200
    too_long = await api.patch(f"/channels/{channel_id}", json={"topic": "t" * 1025})
    assert too_long.status == 400
    assert too_long.json()["code"] == 50035


async def test_unknown_channel_is_10003(api: CheckedSession) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = {"json": {"topic": "x"}} if method == "PATCH" else {}
        reply = await api.request(method, "/channels/123456789012345678", **body)
        assert reply.status == 404
        assert reply.json()["code"] == 10003


async def test_get_and_patch_channel(api: CheckedSession, channel_id: str) -> None:
    got = await api.get(f"/channels/{channel_id}")
    assert got.status == 200 and got.json()["id"] == channel_id
    edited = await api.patch(f"/channels/{channel_id}", json={"topic": "the records table"})
    assert edited.status == 200
    assert edited.json()["topic"] == "the records table"
    renamed = await api.patch(f"/channels/{channel_id}", json={"name": "New Name"})
    assert renamed.status == 200 and renamed.json()["name"] == "new-name"


async def test_delete_channel_answers_200_with_the_channel(
    api: CheckedSession, channel_id: str
) -> None:
    reply = await api.delete(f"/channels/{channel_id}")
    assert reply.status == 200
    assert reply.json()["id"] == channel_id
    gone = await api.get(f"/channels/{channel_id}")
    assert gone.status == 404
    assert gone.json()["code"] == 10003


async def test_deleting_a_category_orphans_its_children(api: CheckedSession, guild_id: str) -> None:
    category = await create_channel(api, guild_id, "cat", type=4)
    child = await create_channel(api, guild_id, "kid", type=0, parent_id=category["id"])
    assert (await api.delete(f"/channels/{category['id']}")).status == 200
    after = (await api.get(f"/channels/{child['id']}")).json()
    assert after["parent_id"] is None


async def test_post_guilds_is_refused_like_an_unknown_route(api: CheckedSession) -> None:
    reply = await api.post("/guilds", json={"name": "mine"})
    assert reply.status in (404, 405)
    assert reply.json()["code"] == 0
