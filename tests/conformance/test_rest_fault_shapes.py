"""REST answers Discord really sends, and slow links: each on the wire, judged by the spec.

Layer: conformance tests (the emulator over loopback). Sources: the facts sheet, "What Discord
does not promise", items 4-8: the channel and server write limits (20028/20029, PR #8290),
Cloudflare's 403 (40333, #6473), a nonce whose message was deleted (10008, staff in #6647),
slow networks, and ``before``/``after``/``around`` being mutually exclusive.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import TIME_SCALE, call, create_channel, post_messages
from tests.conformance.openapi import CheckedSession, OpenAPISpec

MESSAGES = r"/channels/\d+/messages$"
WRITE_LIMIT = "The write action you are performing on the channel has hit the write rate limit."
KiB = 1024


def invalid_requests(emu: Any) -> int:
    count: int = emu.stats()["invalid_requests"]
    return count


# -- JSON codes and messages -------------------------------------------------------------------


async def test_channel_write_limit_429_has_code_20028(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    await post_messages(api, channel_id, 1)
    emu.fail_next("POST", MESSAGES, 429, code=20028, retry_after=0.3)
    reply = await api.post(f"/channels/{channel_id}/messages", json={"content": "refused"})
    assert reply.status == 429
    assert reply.json() == {
        "message": WRITE_LIMIT,
        "retry_after": pytest.approx(0.3 * TIME_SCALE),
        "global": False,
        "code": 20028,
    }
    assert reply.header("X-RateLimit-Scope") == "user"
    assert reply.header("Retry-After") is not None
    # A sub-limit: the route bucket's own headers, with requests still left in it.
    assert reply.header("X-RateLimit-Bucket") not in (None, "injected-fault")
    assert int(reply.header("X-RateLimit-Remaining") or 0) > 0
    assert reply.header("X-RateLimit-Reset-After") is not None
    assert len((await api.get(f"/channels/{channel_id}/messages")).json()) == 1


async def test_server_write_limit_20029_with_a_shared_scope(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    emu.fail_next("POST", MESSAGES, 429, code=20029, scope="shared", retry_after=2.0)
    reply = await api.post(f"/channels/{channel_id}/messages", json={"content": "refused"})
    body = reply.json()
    assert reply.status == 429 and body["code"] == 20029 and body["global"] is False
    assert "server" in body["message"] and "write rate limit" in body["message"]
    assert body["retry_after"] == pytest.approx(2.0 * TIME_SCALE)
    assert reply.header("X-RateLimit-Scope") == "shared"
    assert invalid_requests(emu) == 0  # a shared 429 is not the caller's fault


async def test_global_429_may_carry_a_code_too(emu: Any, api: CheckedSession) -> None:
    emu.fail_next("GET", r"/users/@me$", 429, code=20028, scope="global")
    reply = await api.get("/users/@me")
    assert reply.status == 429 and reply.json()["global"] is True
    assert reply.json()["code"] == 20028
    assert reply.header("X-RateLimit-Global") == "true"


async def test_plain_injected_429_is_unchanged(emu: Any, api: CheckedSession) -> None:
    emu.fail_next("GET", r"/users/@me$", 429)
    reply = await api.get("/users/@me")
    assert reply.json()["code"] == 0 and reply.json()["message"] == "You are being rate limited."
    assert reply.header("X-RateLimit-Bucket") == "injected-fault"


async def test_cloudflare_403_has_code_40333(emu: Any, api: CheckedSession) -> None:
    emu.fail_next("GET", r"/users/@me$", 403, code=40333)
    reply = await api.get("/users/@me")
    assert reply.status == 403
    assert reply.json() == {"message": "internal network error", "code": 40333}
    assert invalid_requests(emu) == 1  # every 403 counts toward the Cloudflare ban
    assert (await api.get("/users/@me")).status == 200


async def test_any_code_and_message_can_be_injected(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    overloaded = "API resource is currently overloaded. Try again a little later."
    emu.fail_next("POST", MESSAGES, 503, code=130000, message=overloaded, after_write=True)
    reply = await api.post(f"/channels/{channel_id}/messages", json={"content": "stored"})
    assert reply.status == 503
    assert reply.json() == {"message": overloaded, "code": 130000}
    assert len((await api.get(f"/channels/{channel_id}/messages")).json()) == 1
    emu.fail_next("GET", r"/users/@me$", 404, code=10013)
    assert (await api.get("/users/@me")).json() == {"message": "Unknown User", "code": 10013}


async def test_after_write_429_with_a_code_stores_the_message(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    emu.fail_next("POST", MESSAGES, 429, code=20028, after_write=True)
    reply = await api.post(f"/channels/{channel_id}/messages", json={"content": "kept"})
    assert reply.status == 429 and reply.json()["code"] == 20028
    assert int(reply.header("X-RateLimit-Remaining") or 0) >= 0
    assert len((await api.get(f"/channels/{channel_id}/messages")).json()) == 1


def test_bad_faults_are_refused(emu: Any) -> None:
    with pytest.raises(ValueError):
        emu.fail_next("GET", "/", 500, probability=1.5)
    with pytest.raises(ValueError):
        emu.fail_next("GET", "/", 200)
    with pytest.raises(ValueError):
        emu.fail_next("GET", "/", 429, scope="nobody")


# -- faults at random ----------------------------------------------------------------------------


async def statuses_at_random(start_emulator: Any, seed: int) -> list[int]:
    # A roomy bucket: a 429 retried would draw again, and timing would change the draws.
    emu, _, api, _ = await start_emulator(
        time_scale=TIME_SCALE, seed=seed, limits={"user_me": (1000, 5.0)}
    )
    emu.fail_next("GET", r"/users/@me$", 500, probability=0.4)
    statuses = [(await api.get("/users/@me")).status for _ in range(25)]
    assert emu.stats()["faults_injected"] == statuses.count(500)
    emu.clear_faults()
    assert (await api.get("/users/@me")).status == 200
    return statuses


async def test_probability_faults_replay_with_the_same_seed(start_emulator: Any) -> None:
    first = await statuses_at_random(start_emulator, seed=99)
    again = await statuses_at_random(start_emulator, seed=99)
    assert first == again
    assert set(first) == {200, 500}


async def test_probability_fault_lasts_until_cleared_or_reset(
    emu: Any, api: CheckedSession
) -> None:
    emu.fail_next("GET", r"/users/@me$", 502, probability=1.0)
    assert [(await api.get("/users/@me")).status for _ in range(4)] == [502] * 4
    emu.reset()
    assert (await api.get("/users/@me")).status == 200


# -- a nonce whose message was deleted -----------------------------------------------------------


async def test_nonce_of_a_deleted_message_is_unknown_message(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    body = {"content": "once", "nonce": "gone-1", "enforce_nonce": True}
    first = await call(api, "POST", f"/channels/{channel_id}/messages", json=body)
    deleted = await api.delete(f"/channels/{channel_id}/messages/{first.json()['id']}")
    assert deleted.status == 204
    again = await call(api, "POST", f"/channels/{channel_id}/messages", json=body)
    assert again.status == 404
    assert again.json() == {"message": "Unknown Message", "code": 10008}
    assert (await api.get(f"/channels/{channel_id}/messages")).json() == []

    # Without enforce_nonce, or once the dedup window has passed, it is a new message.
    plain = {"content": "new", "nonce": "gone-1"}
    assert (await call(api, "POST", f"/channels/{channel_id}/messages", json=plain)).status == 200
    emu.advance(6 * 60)
    later = await call(api, "POST", f"/channels/{channel_id}/messages", json=body)
    assert later.status == 200 and later.json()["nonce"] == "gone-1"


async def test_nonce_of_a_bulk_deleted_message_is_unknown_message(
    api: CheckedSession, channel_id: str
) -> None:
    path = f"/channels/{channel_id}/messages"
    sent = [
        (await call(api, "POST", path, json={"content": c, "nonce": c, "enforce_nonce": True}))
        for c in ("a", "b")
    ]
    ids = [reply.json()["id"] for reply in sent]
    assert (await api.post(f"{path}/bulk-delete", json={"messages": ids})).status == 204
    retry = await call(
        api, "POST", path, json={"content": "a", "nonce": "a", "enforce_nonce": True}
    )
    assert retry.status == 404 and retry.json()["code"] == 10008


# -- before, after and around --------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [("before", "after"), ("around", "before"), ("around", "after"), ("around", "before", "after")],
)
async def test_history_refuses_more_than_one_cursor(
    api: CheckedSession, channel_id: str, names: tuple[str, ...]
) -> None:
    ids = await post_messages(api, channel_id, 3)
    params = {name: ids[1] for name in names}
    reply = await api.get(f"/channels/{channel_id}/messages", params=params)
    assert reply.status == 400
    body = reply.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    leaf = body["errors"]["_errors"][0]
    assert isinstance(leaf["code"], str) and all(name in leaf["message"] for name in names)
    for name in names:  # each alone still works
        one = await call(api, "GET", f"/channels/{channel_id}/messages", params={name: ids[1]})
        assert one.status == 200


# -- slow links ----------------------------------------------------------------------------------


def multipart(data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "big"}), content_type="application/json")
    form.add_field("files[0]", data, filename="big.bin")
    return form


async def test_slow_link_really_slows_an_upload(
    emu: Any, api: CheckedSession, http_session: aiohttp.ClientSession, channel_id: str
) -> None:
    data = bytes(range(256)) * (4 * KiB)  # 1 MiB
    rate = 100 * KiB  # bytes per Discord second: at least 10 Discord seconds for the body
    emu.set_link(upload_bytes_per_second=rate)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.post(f"/channels/{channel_id}/messages", data=multipart(data))
    elapsed = loop.time() - started
    assert reply.status == 200, reply.body
    # A lower bound only: a busy machine may be slower, never faster.
    assert elapsed >= len(data) / rate * TIME_SCALE
    url = reply.json()["attachments"][0]["url"]
    async with http_session.get(url) as download:
        assert await download.read() == data
    json_body = {"content": "x" * 2000}
    started = loop.time()
    assert (await api.post(f"/channels/{channel_id}/messages", json=json_body)).status == 200
    assert loop.time() - started >= len(json.dumps(json_body)) / rate * TIME_SCALE


async def test_slow_link_still_refuses_an_oversized_body(start_emulator: Any) -> None:
    emu, _, api, guild = await start_emulator(time_scale=TIME_SCALE, max_request_size=64 * KiB)
    channel = (await create_channel(api, guild, "small"))["id"]
    emu.set_link(upload_bytes_per_second=10_000 * KiB)
    reply = await api.post(f"/channels/{channel}/messages", data=multipart(b"z" * 80 * KiB))
    assert reply.status == 413 and reply.json()["code"] == 40005


async def test_latency_delays_every_answer(
    emu: Any, api: CheckedSession, http_session: aiohttp.ClientSession, channel_id: str
) -> None:
    latency = 5.0  # Discord seconds
    emu.set_link(latency=latency)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await api.get("/users/@me")).status == 200
    assert loop.time() - started >= latency * TIME_SCALE
    emu.set_link()
    reply = await api.post(f"/channels/{channel_id}/messages", data=multipart(b"cdn"))
    url = reply.json()["attachments"][0]["url"]
    emu.set_link(latency=latency)
    started = loop.time()
    async with http_session.get(url) as download:
        assert await download.read() == b"cdn"
    assert loop.time() - started >= latency * TIME_SCALE


def test_bad_link_settings_are_refused(emu: Any) -> None:
    with pytest.raises(ValueError):
        emu.set_link(upload_bytes_per_second=0)
    with pytest.raises(ValueError):
        emu.set_link(latency=-1)


# -- the admin API -------------------------------------------------------------------------------


async def test_admin_api_sets_codes_probabilities_and_the_link(
    emu: Any,
    api: CheckedSession,
    http_session: aiohttp.ClientSession,
    openapi_spec: OpenAPISpec | None,
) -> None:
    admin = CheckedSession(http_session, emu.url, openapi_spec)
    fault = {"method": "GET", "path_regex": r"/users/@me$", "status": 403, "code": 40333}
    assert (await admin.post("/_emulator/faults", json=fault)).status == 204
    assert (await api.get("/users/@me")).json()["code"] == 40333
    limited = {
        "method": "GET",
        "path_regex": r"/users/@me$",
        "status": 429,
        "code": 20029,
        "scope": "shared",
        "probability": 1.0,
        "message": "custom",
    }
    assert (await admin.post("/_emulator/faults", json=limited)).status == 204
    reply = await api.get("/users/@me")
    assert reply.json()["message"] == "custom" and reply.header("X-RateLimit-Scope") == "shared"
    assert (await admin.delete("/_emulator/faults", json={})).status == 204
    assert (await api.get("/users/@me")).status == 200
    bad = {"method": "GET", "path_regex": "/", "status": 500, "probability": 2}
    assert (await admin.post("/_emulator/faults", json=bad)).status == 400

    assert (await admin.get("/_emulator/link")).json() == {
        "upload_bytes_per_second": None,
        "latency": None,
    }
    link = {"upload_bytes_per_second": 2048, "latency": 0.5}
    assert (await admin.put("/_emulator/link", json=link)).json() == {
        "upload_bytes_per_second": 2048.0,
        "latency": 0.5,
    }
    assert (await admin.put("/_emulator/link", json={"latency": -1})).status == 400
    assert (await admin.post("/_emulator/reset", json={})).status == 204
    assert (await admin.get("/_emulator/link")).json()["latency"] is None
