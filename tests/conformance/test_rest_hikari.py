"""Third-party proof, second witness: hikari's unmodified REST client works against the emulator.

Layer: conformance tests. hikari 2.7's ``RESTApp`` is driven through its public surface only:
its documented ``url`` argument points it at a spec-checking reverse proxy in front of the
emulator, so every answer hikari receives is validated against Discord's OpenAPI spec on the
way (when ``../shared`` is present), and nothing inside hikari is patched. hikari parses every
answer into its own models, so a field it requires and does not get fails here too. Rate
limits are counted by the server (``emu.stats()``) and by the proxy: hikari's own limiter,
fed only the emulator's headers, must keep both at zero 429s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conformance.conftest import assert_clean
from tests.conformance.openapi import OpenAPISpec, SpecCheckingProxy

hikari = pytest.importorskip("hikari")

# More than one page of hikari's history iterator, which always asks for limit=100: walking
# the channel in either direction takes a full page, a partial one and an empty one.
MESSAGES = 105


@pytest.fixture
async def rest(bot: Any, proxy: SpecCheckingProxy) -> AsyncIterator[Any]:
    """hikari's REST client for ``bot``, pointed at the proxy by its public ``url`` argument."""
    app = hikari.RESTApp(url=proxy.url + "/api/v10")
    await app.start()
    try:
        async with app.acquire(bot.token, hikari.TokenType.BOT) as client:
            yield client
    finally:
        await app.close()


def history_requests(emu: Any) -> int:
    return int(emu.stats()["requests_by_route"].get("GET /channels/{channel_id}/messages", 0))


@pytest.mark.slow
async def test_hikari_rest_client(
    emu: Any,
    bot: Any,
    guild_id: str,
    proxy: SpecCheckingProxy,
    rest: Any,
    openapi_spec: OpenAPISpec | None,
) -> None:
    me = await rest.fetch_my_user()
    assert str(me.id) == bot.id and me.is_bot

    channel = await rest.create_guild_text_channel(int(guild_id), "Hikari Records")
    assert channel.name == "hikari-records" and channel.type == hikari.ChannelType.GUILD_TEXT
    assert channel.guild_id == int(guild_id)

    sent = [await rest.create_message(channel, f"record {i}") for i in range(MESSAGES)]
    ids = [message.id for message in sent]
    assert all(message.author.id == me.id and message.channel_id == channel.id for message in sent)
    assert [message.content for message in sent[:2]] == ["record 0", "record 1"]

    # Backward: hikari asks before=<oldest of the last page> until a page comes back empty.
    issued = history_requests(emu)
    backward = [message.id async for message in rest.fetch_messages(channel, before=ids[-1])]
    assert backward == ids[:-1][::-1]
    assert history_requests(emu) - issued == 3  # 100, 4, then an empty page
    # Forward: after=<newest of the last page>; hikari turns each newest-first page around.
    issued = history_requests(emu)
    forward = [message.id async for message in rest.fetch_messages(channel, after=ids[0])]
    assert forward == ids[1:]
    assert history_requests(emu) - issued == 3

    fetched = await rest.fetch_message(channel, ids[3])
    assert fetched.content == "record 3" and fetched.edited_timestamp is None

    edited = await rest.edit_message(channel, ids[3], "record 3, edited")
    assert edited.id == ids[3] and edited.content == "record 3, edited"
    assert edited.edited_timestamp is not None

    await rest.delete_message(channel, ids[0])
    await rest.delete_messages(channel, ids[1:3])  # two ids: hikari bulk-deletes them
    remaining = [message.id async for message in rest.fetch_messages(channel, after=0)]
    assert remaining == ids[3:]

    payload = b"\x89PNG fake" * 1000
    uploaded = await rest.create_message(
        channel, "upload", attachment=hikari.Bytes(payload, "blob.bin")
    )
    (attachment,) = uploaded.attachments
    assert attachment.filename == "blob.bin" and attachment.size == len(payload)
    assert await attachment.read() == payload  # a GET of the signed attachment URL

    await rest.delete_channel(channel)
    assert_clean(proxy, emu, openapi_spec)
    if openapi_spec is not None:  # every create, every history page: each answer was judged
        assert proxy.ledger.validated >= MESSAGES + 6
