"""Pins on the current ``/messages/pins`` endpoints: 204s, the listing, 250 max, type-6 messages.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md section 2.8 and fact 9.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.conformance.conftest import call, create_channel, post_messages
from tests.conformance.openapi import CheckedSession


async def pin(api: CheckedSession, channel: str, message: str) -> int:
    return (await call(api, "PUT", f"/channels/{channel}/messages/pins/{message}")).status


async def test_pin_list_unpin(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 2)
    assert await pin(api, channel_id, ids[0]) == 204

    listing = await api.get(f"/channels/{channel_id}/messages/pins")
    assert listing.status == 200
    body = listing.json()
    assert body["has_more"] is False
    assert [item["message"]["id"] for item in body["items"]] == [ids[0]]
    item = body["items"][0]
    assert item["message"]["pinned"] is True
    assert datetime.fromisoformat(item["pinned_at"]).tzinfo is not None

    fetched = (await api.get(f"/channels/{channel_id}/messages/{ids[0]}")).json()
    assert fetched["pinned"] is True

    unpinned = await call(api, "DELETE", f"/channels/{channel_id}/messages/pins/{ids[0]}")
    assert unpinned.status == 204 and unpinned.body == b""
    after = (await api.get(f"/channels/{channel_id}/messages/pins")).json()
    assert after == {"items": [], "has_more": False}


async def test_pinning_posts_a_type_6_system_message(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 1)
    await pin(api, channel_id, ids[0])
    page = (await api.get(f"/channels/{channel_id}/messages")).json()
    assert len(page) == 2
    newest = page[0]
    assert newest["type"] == 6
    assert int(newest["id"]) > int(ids[0])
    assert page[1]["id"] == ids[0] and page[1]["type"] == 0


async def test_250_pins_per_channel_then_30003(start_emulator: Any) -> None:
    # Roomy buckets: this test is about the pin count, not the rate limits.
    _, _, api, guild = await start_emulator(
        time_scale=0.01, limits={"message_create": (10_000, 5.0), "pin": (10_000, 5.0)}
    )
    channel_id = (await create_channel(api, guild, "pins"))["id"]
    ids = await post_messages(api, channel_id, 251)
    for message in ids[:250]:
        assert await pin(api, channel_id, message) == 204
    reply = await call(api, "PUT", f"/channels/{channel_id}/messages/pins/{ids[250]}")
    assert reply.status == 400
    assert reply.json()["code"] == 30003


async def test_pinning_an_unknown_message_is_10008(api: CheckedSession, channel_id: str) -> None:
    reply = await api.put(f"/channels/{channel_id}/messages/pins/123456789012345678")
    assert reply.status == 404
    assert reply.json()["code"] == 10008


async def test_pins_limit_is_1_to_50(api: CheckedSession, channel_id: str) -> None:
    path = f"/channels/{channel_id}/messages/pins"
    assert (await api.get(path, params={"limit": "50"})).status == 200
    for bad in ("0", "51"):
        reply = await api.get(path, params={"limit": bad})
        assert reply.status == 400
        assert reply.json()["code"] == 50035


async def test_deleting_a_pinned_message_removes_the_pin(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 1)
    await pin(api, channel_id, ids[0])
    assert (await call(api, "DELETE", f"/channels/{channel_id}/messages/{ids[0]}")).status == 204
    listing = (await api.get(f"/channels/{channel_id}/messages/pins")).json()
    assert listing == {"items": [], "has_more": False}


async def test_pins_first_page_is_newest_first_with_has_more(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 3)
    for message in ids:
        assert await pin(api, channel_id, message) == 204
    first = (await api.get(f"/channels/{channel_id}/messages/pins", params={"limit": "2"})).json()
    assert first["has_more"] is True
    assert [i["message"]["id"] for i in first["items"]] == [ids[2], ids[1]]
    stamps = [datetime.fromisoformat(i["pinned_at"]) for i in first["items"]]
    assert stamps == sorted(stamps, reverse=True)
    # The next page is asked for with the last item's pinned_at (facts 2.8): exclusive.
    rest = await api.get(
        f"/channels/{channel_id}/messages/pins",
        params={"limit": "2", "before": first["items"][-1]["pinned_at"]},
    )
    assert [i["message"]["id"] for i in rest.json()["items"]] == [ids[0]]
    assert rest.json()["has_more"] is False
