"""What REST writes publish for the gateway: the right dispatch, once, with Discord's payload.

Layer: conformance tests. Observed through the emulator's documented event bus
(``emu.events.subscribe``, ARCHITECTURE.md), not through a websocket: this checks the REST
side's half of the contract; delivery is the gateway suite's business.
Sources: discord-api-facts.md sections 2.7, 2.8, 3.2, 4.6, 4.7 and fact 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.conftest import call, create_channel, post_messages
from tests.conformance.openapi import CheckedSession

GUILDS = 1 << 0
GUILD_MESSAGES = 1 << 9


@pytest.fixture
def events(emu: Any) -> Iterator[list[Any]]:
    """Every event the emulator publishes from now on."""
    seen: list[Any] = []
    unsubscribe = emu.events.subscribe(seen.append)
    yield seen
    unsubscribe()


def named(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if e.name == name]


async def test_message_create_carries_guild_and_member(
    api: CheckedSession, bot: Any, guild_id: str, channel_id: str, events: list[Any]
) -> None:
    (message,) = await post_messages(api, channel_id, 1)
    (event,) = named(events, "MESSAGE_CREATE")
    assert event.intent == GUILD_MESSAGES
    assert event.guild_id == guild_id
    assert event.data["id"] == message
    assert event.data["guild_id"] == guild_id
    assert event.data["author"]["id"] == bot.id
    assert "member" in event.data


async def test_edit_sends_the_full_message(
    api: CheckedSession, channel_id: str, events: list[Any]
) -> None:
    (message,) = await post_messages(api, channel_id, 1)
    await call(api, "PATCH", f"/channels/{channel_id}/messages/{message}", json={"content": "v2"})
    (event,) = named(events, "MESSAGE_UPDATE")
    assert event.data["id"] == message
    assert event.data["content"] == "v2"
    assert event.data["author"]["id"]
    assert event.data["edited_timestamp"] is not None


async def test_delete_sends_ids_only(
    api: CheckedSession, guild_id: str, channel_id: str, events: list[Any]
) -> None:
    (message,) = await post_messages(api, channel_id, 1)
    await call(api, "DELETE", f"/channels/{channel_id}/messages/{message}")
    (event,) = named(events, "MESSAGE_DELETE")
    assert event.data == {"id": message, "channel_id": channel_id, "guild_id": guild_id}


async def test_bulk_delete_is_one_event_not_many(
    api: CheckedSession, guild_id: str, channel_id: str, events: list[Any]
) -> None:
    ids = await post_messages(api, channel_id, 3)
    body = {"messages": ids}
    assert (
        await call(api, "POST", f"/channels/{channel_id}/messages/bulk-delete", json=body)
    ).status == 204
    assert named(events, "MESSAGE_DELETE") == []
    (event,) = named(events, "MESSAGE_DELETE_BULK")
    assert sorted(event.data["ids"]) == sorted(ids)
    assert event.data["channel_id"] == channel_id
    assert event.data["guild_id"] == guild_id


async def test_pin_updates_pins_and_posts_a_system_message(
    api: CheckedSession, channel_id: str, events: list[Any]
) -> None:
    (message,) = await post_messages(api, channel_id, 1)
    await call(api, "PUT", f"/channels/{channel_id}/messages/pins/{message}")
    (pins_update,) = named(events, "CHANNEL_PINS_UPDATE")
    assert pins_update.intent == GUILDS
    assert pins_update.data["channel_id"] == channel_id
    system = [e for e in named(events, "MESSAGE_CREATE") if e.data["type"] == 6]
    assert len(system) == 1


async def test_channel_lifecycle_events(
    api: CheckedSession, guild_id: str, events: list[Any]
) -> None:
    category = await create_channel(api, guild_id, "cat", type=4)
    child = await create_channel(api, guild_id, "kid", parent_id=category["id"])
    created = named(events, "CHANNEL_CREATE")
    assert [e.data["id"] for e in created] == [category["id"], child["id"]]
    assert all(e.intent == GUILDS for e in created)
    await call(api, "DELETE", f"/channels/{category['id']}")
    (deleted,) = named(events, "CHANNEL_DELETE")
    assert deleted.data["id"] == category["id"]
    # Deleting a category orphans its children, each with a CHANNEL_UPDATE.
    updates = [e for e in named(events, "CHANNEL_UPDATE") if e.data["id"] == child["id"]]
    assert len(updates) == 1 and updates[0].data["parent_id"] is None


async def test_leaving_a_guild_tells_only_that_bot(
    api: CheckedSession, bot: Any, guild_id: str, events: list[Any]
) -> None:
    assert (await api.delete(f"/users/@me/guilds/{guild_id}")).status == 204
    (event,) = named(events, "GUILD_DELETE")
    assert event.target_bot_id == bot.id
    assert event.data["id"] == guild_id
    # Removed, not an outage: `unavailable` is absent.
    assert "unavailable" not in event.data
