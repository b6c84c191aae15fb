"""Attachment URLs: signed, expiring, refused when forged, fresh on every fetch.

Layer: integration tests (real sockets; ``advance`` moves the Discord clock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from discobase.emulator import Emulator


@pytest.fixture
async def uploaded() -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession, str, dict[str, Any]]]:
    async with Emulator(time_scale=0.01, attachment_url_lifetime=3600) as emu:
        bot = emu.create_bot("cdn")
        guild_id = emu.create_guild("cdn", bots=[bot])
        headers = {"Authorization": f"Bot {bot.token}"}
        base = emu.url + "/api/v10"
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(
                f"{base}/guilds/{guild_id}/channels", json={"name": "files"}
            ) as reply:
                channel_id = (await reply.json())["id"]
            form = aiohttp.FormData()
            form.add_field("files[0]", b"payload", filename="report v1.txt")
            async with session.post(f"{base}/channels/{channel_id}/messages", data=form) as reply:
                assert reply.status == 200
                message = await reply.json()
            yield emu, session, f"{base}/channels/{channel_id}/messages/{message['id']}", message


async def test_signed_url_downloads_until_it_expires(uploaded: Any) -> None:
    emu, session, message_url, message = uploaded
    attachment = message["attachments"][0]
    assert attachment["filename"] == "report_v1.txt"
    assert attachment["size"] == 7 and attachment["content_type"] == "text/plain"
    url = URL(attachment["url"])
    assert url.path.startswith("/attachments/")
    issued, expires = int(url.query["is"], 16), int(url.query["ex"], 16)
    assert expires - issued == 3600
    async with session.get(url) as reply:
        assert reply.status == 200 and await reply.read() == b"payload"
    emu.advance(3601)
    async with session.get(url) as reply:
        assert reply.status == 404
    async with session.get(message_url) as reply:
        fresh = URL((await reply.json())["attachments"][0]["url"])
    assert fresh != url
    async with session.get(fresh) as reply:
        assert reply.status == 200 and await reply.read() == b"payload"


async def test_forged_or_bare_urls_are_refused(uploaded: Any) -> None:
    emu, session, _, message = uploaded
    url = URL(message["attachments"][0]["url"])
    forged_expiry = url.update_query(ex=format(int(url.query["ex"], 16) + 10**6, "x"))
    forged_signature = url.update_query(hm="0" * 64)
    for bad in (forged_expiry, forged_signature, url.with_query(None)):
        async with session.get(bad) as reply:
            assert reply.status == 404
    assert emu.stats()["cdn"]["refused"] == 3


async def test_images_report_their_dimensions(uploaded: Any) -> None:
    import struct
    import zlib

    _, session, message_url, _ = uploaded
    header = struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + header
        + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    )
    form = aiohttp.FormData()
    form.add_field("files[0]", png, filename="pic.png", content_type="image/png")
    form.add_field("files[1]", b"not an image", filename="notes.txt")
    channel_url = message_url.rsplit("/", 1)[0]
    async with session.post(channel_url, data=form) as reply:
        picture, notes = (await reply.json())["attachments"]
    assert (picture["width"], picture["height"]) == (640, 480)
    assert picture["content_type"] == "image/png"
    assert "width" not in notes
