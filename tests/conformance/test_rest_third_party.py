"""Third-party proof: discord.py's unmodified REST layer works against the local Discord.

Layer: conformance tests. discord.py 2.x is driven through its public surface only: the
documented class attribute ``discord.http.Route.BASE`` points it at a spec-checking reverse
proxy in front of the emulator, so every answer it receives is validated against Discord's
OpenAPI spec on the way, and nothing inside discord.py is patched. Rate limits are counted
by the server (``emu.stats()``) and by the proxy; both must see zero 429s.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.conftest import assert_clean
from tests.conformance.openapi import OpenAPISpec, SpecCheckingProxy

discord = pytest.importorskip("discord")
from discord.http import HTTPClient, Route, handle_message_parameters  # noqa: E402


@pytest.fixture
def proxy(proxy: SpecCheckingProxy) -> Iterator[SpecCheckingProxy]:
    """conftest's spec-checking proxy, with discord.py's global base URL pointed at it.

    The URL is restored after the test, before the proxy closes.
    """
    saved = Route.BASE
    Route.BASE = proxy.url + "/api/v10"
    yield proxy
    Route.BASE = saved


async def test_discord_py_http_client(
    emu: Any, bot: Any, guild_id: str, proxy: SpecCheckingProxy, openapi_spec: OpenAPISpec | None
) -> None:
    http = HTTPClient(asyncio.get_running_loop())
    try:
        me = await http.static_login(bot.token)
        assert me["id"] == bot.id

        channel = await http.create_channel(int(guild_id), 0, name="Third Party")
        assert channel["name"] == "third-party"
        channel_id = int(channel["id"])

        sent = []
        for i in range(12):
            with handle_message_parameters(content=f"record {i}", nonce=f"n{i}") as params:
                sent.append(await http.send_message(channel_id, params=params))
        ids = [m["id"] for m in sent]

        # Backward, the way discord.py's history() walks: before=<oldest of the page>.
        backward: list[str] = []
        before = None
        while page := await http.logs_from(channel_id, 5, before=before):
            backward += [m["id"] for m in page]
            before = page[-1]["id"]
        assert backward == ids[::-1]

        # Forward: after=<newest of the page>, which is page[0] because pages are newest first.
        forward: list[str] = []
        after = 0
        while page := await http.logs_from(channel_id, 5, after=after):
            forward += [m["id"] for m in reversed(page)]
            after = page[0]["id"]
        assert forward == ids

        fetched = await http.get_message(channel_id, ids[3])
        assert fetched["content"] == "record 3"

        with handle_message_parameters(content="record 3, edited") as params:
            edited = await http.edit_message(channel_id, ids[3], params=params)
        assert edited["id"] == ids[3] and edited["edited_timestamp"] is not None

        await http.delete_message(channel_id, ids[0])
        await http.delete_messages(channel_id, ids[1:3])
        remaining = await http.logs_from(channel_id, 100)
        assert [m["id"] for m in remaining] == ids[3:][::-1]

        payload = b"\x89PNG fake" * 1000
        file = discord.File(io.BytesIO(payload), filename="blob.bin")
        with handle_message_parameters(content="upload", file=file) as params:
            uploaded = await http.send_message(channel_id, params=params)
        attachment = uploaded["attachments"][0]
        assert attachment["filename"] == "blob.bin" and attachment["size"] == len(payload)
        assert await http.get_from_cdn(attachment["url"]) == payload

        await http.pin_message(channel_id, ids[3])
        pins = await http.pins_from(channel_id)
        assert [item["message"]["id"] for item in pins["items"]] == [ids[3]]
        await http.unpin_message(channel_id, ids[3])

        await http.delete_channel(channel_id)
    finally:
        await http.close()
    assert_clean(proxy, emu, openapi_spec)


async def test_discord_py_models_parse_every_answer(
    emu: Any, bot: Any, guild_id: str, proxy: SpecCheckingProxy, openapi_spec: OpenAPISpec | None
) -> None:
    """Drive discord.py's REST-only object layer, which parses each answer into its models."""
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(bot.token)
        assert client.user is not None and client.user.id == int(bot.id)

        guild = await client.fetch_guild(int(guild_id))
        channel = await guild.create_text_channel("Model Layer")
        assert channel.name == "model-layer"

        sent = [await channel.send(f"m{i}") for i in range(7)]
        oldest_first = [m.id async for m in channel.history(limit=None, oldest_first=True)]
        assert oldest_first == [m.id for m in sent]
        after_third = [m.id async for m in channel.history(limit=None, after=sent[2])]
        assert after_third == [m.id for m in sent[3:]]
        newest_two = [m.id async for m in channel.history(limit=2)]
        assert newest_two == [sent[6].id, sent[5].id]

        fetched = await channel.fetch_message(sent[1].id)
        assert fetched.content == "m1" and fetched.author.id == int(bot.id)
        edited = await fetched.edit(content="m1 edited")
        assert edited.content == "m1 edited" and edited.edited_at is not None
        await sent[0].delete()

        await edited.pin()
        pinned = [m.id async for m in channel.pins()]
        assert pinned == [edited.id]
        await edited.unpin()

        uploaded = await channel.send(file=discord.File(io.BytesIO(b"abc" * 100), filename="x.txt"))
        assert await uploaded.attachments[0].read() == b"abc" * 100
    finally:
        await client.close()
    assert_clean(proxy, emu, openapi_spec)
