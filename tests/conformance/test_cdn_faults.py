"""CDN faults: 5xx, 429, redirects, slow and truncated bodies, stale URLs, each on the wire.

Layer: conformance tests (the emulator over loopback). Discord does not document what its
attachment CDN answers when it is overloaded or a URL has gone stale; the facts sheet
("What Discord does not promise", item 3) lists what a client must survive, and these tests
show that the emulator can make each one happen, count by count or at seeded random.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import TIME_SCALE, create_channel
from tests.conformance.openapi import CheckedSession, OpenAPISpec

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
KINDS = ("server_error", "rate_limited", "redirect", "slow", "truncated", "expired")


async def upload(api: CheckedSession, channel: str, name: str, data: bytes) -> str:
    """Post one file and return its signed URL."""
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "file"}), content_type="application/json")
    form.add_field("files[0]", data, filename=name)
    reply = await api.post(f"/channels/{channel}/messages", data=form)
    assert reply.status == 200, reply.body
    url: str = reply.json()["attachments"][0]["url"]
    return url


async def fetch(
    session: aiohttp.ClientSession, url: str, *, follow: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """Download ``url`` without a token: status, headers and the whole body."""
    async with session.get(url, allow_redirects=follow) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.fixture
async def file_url(api: CheckedSession, channel_id: str) -> str:
    """The signed URL of a 16 KiB attachment."""
    return await upload(api, channel_id, "blob.bin", PAYLOAD)


def faults(emu: Any) -> dict[str, int]:
    counted: dict[str, int] = emu.stats()["cdn"]["faults"]
    return counted


async def test_no_fault_is_on_by_default(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    for _ in range(3):
        assert (await fetch(http_session, file_url))[::2] == (200, PAYLOAD)
    stats = emu.stats()["cdn"]
    assert stats["downloads"] == 3 and stats["refused"] == 0
    assert stats["faults"] == dict.fromkeys(KINDS, 0)


@pytest.mark.parametrize("status", [None, 500, 502])
async def test_server_errors_for_the_next_n_downloads(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str, status: int | None
) -> None:
    emu.fail_cdn("server_error", count=2, status=status)
    statuses = [(await fetch(http_session, file_url))[0] for _ in range(3)]
    assert statuses == [status or 503] * 2 + [200]
    assert faults(emu)["server_error"] == 2
    assert emu.stats()["cdn"]["downloads"] == 1


async def test_rate_limited_download_says_how_long_to_wait(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("rate_limited", retry_after=3.0)
    status, headers, body = await fetch(http_session, file_url)
    assert status == 429 and body != PAYLOAD
    # Whole Discord seconds said in real ones, like the API's Retry-After.
    assert float(headers["Retry-After"]) == pytest.approx(3.0 * TIME_SCALE)
    assert (await fetch(http_session, file_url))[::2] == (200, PAYLOAD)
    assert faults(emu)["rate_limited"] == 1


async def test_redirect_leads_to_a_valid_url_of_the_same_file(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("redirect")
    status, headers, _ = await fetch(http_session, file_url, follow=False)
    assert status == 302
    target = headers["Location"]
    assert target.startswith(emu.url + "/attachments/") and "hm=" in target
    assert (await fetch(http_session, target))[::2] == (200, PAYLOAD)

    emu.fail_cdn("redirect", status=307)
    # A client that follows redirects just gets the file.
    assert (await fetch(http_session, file_url))[::2] == (200, PAYLOAD)
    assert faults(emu)["redirect"] == 2


async def test_slow_body_takes_at_least_its_size_over_the_rate(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    rate = 4096.0  # bytes per Discord second: 16 KiB take 4 Discord seconds
    emu.fail_cdn("slow", bytes_per_second=rate)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, headers, body = await fetch(http_session, file_url)
    elapsed = loop.time() - started
    assert (status, body) == (200, PAYLOAD)
    assert int(headers["Content-Length"]) == len(PAYLOAD)
    # A lower bound only: a busy machine may be slower, never faster.
    assert elapsed >= len(PAYLOAD) / rate * TIME_SCALE - 0.001
    assert faults(emu)["slow"] == 1


async def test_a_client_that_gives_up_on_a_slow_body_is_no_server_error(
    emu: Any, file_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A client's timeout ending a slow download is what the fault is for; the server used to
    # log it as "Error handling request" (Cannot write to closing transport).
    emu.fail_cdn("slow", bytes_per_second=64.0)  # 16 KiB: 256 Discord seconds
    with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
        async with aiohttp.ClientSession() as quitter:
            async with quitter.get(file_url) as response:
                assert response.status == 200
                await response.content.read(64)  # some of the body, then close
        await asyncio.sleep(50 * TIME_SCALE)  # the server tries its next writes
    assert faults(emu)["slow"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_truncated_body_is_an_error_not_a_short_file(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("truncated", fraction=0.25)
    async with http_session.get(file_url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == len(PAYLOAD)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert faults(emu)["truncated"] == 1
    # The next download is whole again.
    assert (await fetch(http_session, file_url))[::2] == (200, PAYLOAD)


@pytest.mark.parametrize("status", [None, 403])
async def test_expired_url_is_refused_like_a_stale_one(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str, status: int | None
) -> None:
    emu.fail_cdn("expired", status=status)
    refused = await fetch(http_session, file_url)
    assert refused[0] == (status or 404) and refused[2] != PAYLOAD
    assert (await fetch(http_session, file_url))[::2] == (200, PAYLOAD)
    assert faults(emu)["expired"] == 1
    assert emu.stats()["cdn"]["refused"] == 0  # injected, not a real refusal


async def test_faults_hit_only_downloads_that_would_succeed(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("server_error")
    forged = file_url.replace("hm=", "hm=0")
    assert (await fetch(http_session, forged))[0] == 404
    assert (await fetch(http_session, file_url))[0] == 503
    assert emu.stats()["cdn"]["refused"] == 1


async def test_cdn_faults_are_separate_from_the_api(
    emu: Any, api: CheckedSession, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("server_error", count=5)
    assert (await api.get("/users/@me")).status == 200
    emu.clear_cdn_faults()
    emu.fail_next("GET", r".*", 500)
    assert (await fetch(http_session, file_url))[0] == 200
    assert emu.stats()["faults_injected"] == 0
    assert faults(emu)["server_error"] == 0


async def test_path_regex_picks_the_files_to_fail(
    emu: Any, api: CheckedSession, http_session: aiohttp.ClientSession, channel_id: str
) -> None:
    fine = await upload(api, channel_id, "fine.bin", b"fine")
    broken = await upload(api, channel_id, "broken.bin", b"broken")
    emu.fail_cdn("server_error", count=10, path_regex=r"/broken\.bin$")
    assert (await fetch(http_session, fine))[::2] == (200, b"fine")
    assert (await fetch(http_session, broken))[0] == 503


async def download_statuses(
    start_emulator: Any, http_session: aiohttp.ClientSession, seed: int
) -> list[int]:
    emu, _, api, guild = await start_emulator(time_scale=TIME_SCALE, seed=seed)
    channel = (await create_channel(api, guild, "random"))["id"]
    url = await upload(api, channel, "r.bin", b"random")
    emu.fail_cdn("server_error", probability=0.5)
    statuses = [(await fetch(http_session, url))[0] for _ in range(24)]
    emu.clear_cdn_faults()
    assert (await fetch(http_session, url))[0] == 200
    assert faults(emu)["server_error"] == statuses.count(503)
    return statuses


async def test_probability_faults_replay_with_the_same_seed(
    start_emulator: Any, http_session: aiohttp.ClientSession
) -> None:
    first = await download_statuses(start_emulator, http_session, seed=1234)
    again = await download_statuses(start_emulator, http_session, seed=1234)
    assert first == again
    assert set(first) == {200, 503}  # at 0.5 over 24 draws, both happen with this seed


async def test_probability_one_fails_every_download_until_cleared(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("expired", probability=1.0)
    assert [(await fetch(http_session, file_url))[0] for _ in range(4)] == [404] * 4
    emu.clear_cdn_faults()
    assert (await fetch(http_session, file_url))[0] == 200


def test_bad_cdn_faults_are_refused(emu: Any) -> None:
    for kind, options in [
        ("teapot", {}),
        ("server_error", {"status": 404}),
        ("redirect", {"status": 200}),
        ("expired", {"status": 410}),
        ("slow", {"bytes_per_second": 0}),
        ("truncated", {"fraction": 1.0}),
        ("server_error", {"probability": 1.5}),
        ("server_error", {"count": -1}),
    ]:
        with pytest.raises(ValueError):
            emu.fail_cdn(kind, **options)


async def test_reset_forgets_cdn_faults_and_their_counts(
    emu: Any, http_session: aiohttp.ClientSession, file_url: str
) -> None:
    emu.fail_cdn("server_error")
    assert (await fetch(http_session, file_url))[0] == 503
    emu.fail_cdn("server_error", probability=1.0)
    emu.reset()
    assert faults(emu) == dict.fromkeys(KINDS, 0)
    assert (await fetch(http_session, file_url))[0] == 200


async def test_admin_api_sets_and_clears_cdn_faults(
    emu: Any,
    http_session: aiohttp.ClientSession,
    openapi_spec: OpenAPISpec | None,
    file_url: str,
) -> None:
    admin = CheckedSession(http_session, emu.url, openapi_spec)
    fault = {"kind": "server_error", "count": 1, "status": 502}
    assert (await admin.post("/_emulator/cdn/faults", json=fault)).status == 204
    assert (await fetch(http_session, file_url))[0] == 502
    every = {"kind": "redirect", "probability": 1.0}
    assert (await admin.post("/_emulator/cdn/faults", json=every)).status == 204
    assert (await fetch(http_session, file_url, follow=False))[0] == 302
    assert (await admin.delete("/_emulator/cdn/faults", json={})).status == 204
    assert (await fetch(http_session, file_url, follow=False))[0] == 200
    stats = (await admin.get("/_emulator/stats")).json()["cdn"]["faults"]
    assert stats["server_error"] == 1 and stats["redirect"] == 1
    bad = await admin.post("/_emulator/cdn/faults", json={"kind": "nonsense"})
    assert bad.status == 400
    assert (await admin.post("/_emulator/cdn/faults", json={})).status == 400
