"""Attachments on the CDN: signed ``ex``/``is``/``hm`` URLs that expire and refresh on refetch.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet).
Sources: discord-api-facts.md section 2.2 ("Signed CDN URLs").
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp

from tests.conformance.openapi import CheckedSession

DAY = 86_400


async def upload(api: CheckedSession, channel: str, name: str, data: bytes) -> dict[str, Any]:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "file"}), content_type="application/json")
    form.add_field("files[0]", data, filename=name)
    reply = await api.post(f"/channels/{channel}/messages", data=form)
    assert reply.status == 200, reply.body
    message: dict[str, Any] = reply.json()
    return message


def signature(url: str) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query)
    return {key: query[key][0] for key in ("ex", "is", "hm")}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def download(api: CheckedSession, url: str) -> tuple[int, bytes]:
    reply = await api.get(url, auth=False)
    return reply.status, reply.body


async def test_attachment_url_is_signed_and_downloads(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    payload = bytes(range(256)) * 4
    message = await upload(api, channel_id, "blob.bin", payload)
    attachment = message["attachments"][0]
    url = attachment["url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == emu.url
    assert parts.path.endswith(f"/{channel_id}/{attachment['id']}/blob.bin")
    signed = signature(url)
    expires, issued = int(signed["ex"], 16), int(signed["is"], 16)
    assert expires > issued
    assert signed["hm"]
    assert await download(api, url) == (200, payload)
    assert await download(api, attachment["proxy_url"]) == (200, payload)


async def test_forged_or_unsigned_urls_are_refused(api: CheckedSession, channel_id: str) -> None:
    url = (await upload(api, channel_id, "secret.bin", b"secret"))["attachments"][0]["url"]
    hm = signature(url)["hm"]
    forged_hm = with_query(url, hm=("0" if hm[0] != "0" else "1") + hm[1:])
    later = format(int(signature(url)["ex"], 16) + 10 * DAY, "x")
    extended = with_query(url, ex=later)
    unsigned = urlunsplit(urlsplit(url)._replace(query=""))
    for bad in (forged_hm, extended, unsigned):
        status, body = await download(api, bad)
        assert status in (403, 404), bad
        assert body != b"secret"


async def test_urls_expire_and_a_refetch_gives_a_fresh_one(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    message = await upload(api, channel_id, "old.bin", b"aging")
    url = message["attachments"][0]["url"]
    lifetime = int(signature(url)["ex"], 16) - int(signature(url)["is"], 16)
    emu.advance(lifetime + 60)
    status, _ = await download(api, url)
    assert status in (403, 404)

    refetched = (await api.get(f"/channels/{channel_id}/messages/{message['id']}")).json()
    fresh = refetched["attachments"][0]["url"]
    assert fresh != url
    assert int(signature(fresh)["ex"], 16) > int(signature(url)["ex"], 16)
    assert await download(api, fresh) == (200, b"aging")


async def test_deleted_message_attachment_is_gone(api: CheckedSession, channel_id: str) -> None:
    message = await upload(api, channel_id, "temp.bin", b"temp")
    url = message["attachments"][0]["url"]
    assert (await api.delete(f"/channels/{channel_id}/messages/{message['id']}")).status == 204
    status, _ = await download(api, url)
    assert status in (403, 404)


async def test_url_lifetime_is_configurable(start_emulator: Any) -> None:
    _, _, api, guild = await start_emulator(time_scale=0.01, attachment_url_lifetime=3600.0)
    channel = (await api.post(f"/guilds/{guild}/channels", json={"name": "short"})).json()["id"]
    url = (await upload(api, channel, "s.bin", b"short-lived"))["attachments"][0]["url"]
    signed = signature(url)
    assert int(signed["ex"], 16) - int(signed["is"], 16) == 3600
