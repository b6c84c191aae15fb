"""HTTPClient over a MockTransport and a manual clock: retries, errors, bodies, secrets."""

from __future__ import annotations

import asyncio
import pickle
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from discobase import _json
from discobase.errors import DiscobaseError
from discobase.http import File, HTTPClient, ManualClock, MockTransport, RawResponse, routes
from discobase.http.errors import (
    BadRequest,
    ClientClosed,
    Forbidden,
    HTTPException,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
)
from discobase.http.files import encode_multipart
from discobase.http.wire import TransportFailure

TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.secret-part.xyz"
JSON = {"content-type": "application/json", "via": "1.1 google"}


def respond(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> RawResponse:
    data = b"" if body is None else _json.dumps(body)
    return RawResponse(status, "", {**JSON, **(headers or {})}, data)


Seen = list[tuple[str, str, dict[str, str], bytes | None]]


def make_client(
    clock: ManualClock,
    answer: Callable[[int, str, str, bytes | None], RawResponse | Exception],
) -> tuple[HTTPClient, Seen]:
    seen: Seen = []

    async def handler(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> RawResponse:
        seen.append((method, url, dict(headers), body))
        result = answer(len(seen) - 1, method, url, body)
        if isinstance(result, Exception):
            raise result
        return result

    client = HTTPClient(
        TOKEN,
        api_url="http://discord.test",
        transport=MockTransport(handler),
        clock=clock,
        rng=random.Random(4),
    )
    return client, seen


async def drive(clock: ManualClock, coro: Any) -> Any:
    """Await ``coro`` while moving the manual clock through its timers."""
    task = asyncio.ensure_future(coro)
    for _ in range(10_000):
        await clock.settle()
        if task.done():
            return task.result()
        deadline = clock.next_deadline
        assert deadline is not None, "stuck with no timer pending"
        await clock.advance(max(0.0, deadline - clock.now()))
    raise AssertionError("did not finish")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_get_retried_through_502s(clock: ManualClock) -> None:
    """Scenario 16, first half: 502, 502, then 200, with backoff in between."""

    def answer(i: int, *_: Any) -> RawResponse:
        return respond(502, {"message": "bad gateway", "code": 0}) if i < 2 else respond(200, {})

    client, seen = make_client(clock, answer)
    async with client:
        start = clock.now()
        assert await drive(clock, client.fetch_channel(1)) == {}
    assert len(seen) == 3
    assert clock.now() > start  # it backed off
    assert client.stats.retries == 2 and client.stats.server_errors == 2


async def test_create_message_carries_nonce_and_is_retried(clock: ManualClock) -> None:
    """Scenario 16, second half: a 500 after the write; the retry repeats the same nonce."""
    stored: dict[str, dict[str, Any]] = {}

    def answer(i: int, method: str, url: str, body: bytes | None) -> RawResponse:
        payload = _json.loads(body or b"{}")
        message = stored.setdefault(payload["nonce"], {"id": str(len(stored) + 1), **payload})
        return respond(500, {"message": "oops", "code": 0}) if i == 0 else respond(200, message)

    client, seen = make_client(clock, answer)
    async with client:
        message = await drive(clock, client.create_message(5, content="hi"))
    assert len(stored) == 1 and len(seen) == 2
    first, second = (_json.loads(s[3] or b"") for s in seen)
    assert first == second
    assert first["enforce_nonce"] is True and first["nonce"]
    assert first["allowed_mentions"] == {"parse": []}
    assert message["content"] == "hi"


async def test_post_without_nonce_is_not_retried(clock: ManualClock) -> None:
    client, seen = make_client(clock, lambda *_: respond(500, {"message": "x", "code": 0}))
    async with client:
        route = routes.CREATE_GUILD_CHANNEL.compile(guild_id=1)
        with pytest.raises(ServerError) as info:
            await drive(clock, client.request(route, json={"name": "a"}))
    assert len(seen) == 1
    assert info.value.status == 500 and info.value.route == "POST /guilds/{guild_id}/channels"


async def test_dropped_connections_retry_then_raise(clock: ManualClock) -> None:
    client, seen = make_client(clock, lambda *_: TransportFailure("reset by peer"))
    async with client:
        with pytest.raises(TransportError) as info:
            await drive(clock, client.fetch_guild(1))
    assert len(seen) == 4  # one attempt and three retries
    assert info.value.status is None
    assert client.ratelimiter.view(routes.GET_GUILD.compile(guild_id=1)).in_flight == 0


async def test_401_fails_later_requests_without_sending(clock: ManualClock) -> None:
    client, seen = make_client(
        clock, lambda *_: respond(401, {"message": "401: Unauthorized", "code": 0})
    )
    async with client:
        with pytest.raises(InvalidToken):
            await drive(clock, client.fetch_current_user())
        with pytest.raises(InvalidToken):
            await drive(clock, client.fetch_guild(1))
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, 50035, BadRequest),
        (403, 50013, Forbidden),
        (404, 10003, NotFound),
        (413, 40005, PayloadTooLarge),
        (400, 50045, PayloadTooLarge),
    ],
)
async def test_errors_are_typed(
    clock: ManualClock, status: int, code: int, kind: type[HTTPException]
) -> None:
    errors = {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "too long"}]}}
    body = {"message": "nope", "code": code, "errors": errors}
    client, _ = make_client(clock, lambda *_: respond(status, body))
    async with client:
        with pytest.raises(kind) as info:
            await drive(clock, client.fetch_message(1, 2))
    error = info.value
    assert isinstance(error, DiscobaseError)
    assert (error.status, error.code, error.message) == (status, code, "nope")
    assert error.errors == errors
    assert "content: too long" in str(error)
    assert pickle.loads(pickle.dumps(error)).code == code


async def test_token_never_leaks(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    client, seen = make_client(
        clock, lambda *_: respond(403, {"message": "Missing Access", "code": 50001})
    )
    async with client:
        with pytest.raises(Forbidden) as info:
            await drive(clock, client.fetch_guild(1))
    assert seen[0][2]["Authorization"] == f"Bot {TOKEN}"
    for text in (repr(client), str(info.value), repr(info.value), caplog.text):
        assert TOKEN not in text and "secret-part" not in text


async def test_headers_query_and_reason(clock: ManualClock) -> None:
    client, seen = make_client(clock, lambda *_: respond(200, []))
    async with client:
        await drive(clock, client.fetch_messages(3, after=10, limit=5))
        await drive(clock, client.delete_message(3, 4, reason="clean up/é"))
    method, url, headers, _ = seen[0]
    assert url == "http://discord.test/api/v10/channels/3/messages?after=10&limit=5"
    assert headers["User-Agent"].startswith("DiscordBot (https://")
    assert seen[1][2]["X-Audit-Log-Reason"] == "clean%20up%2F%C3%A9"


async def test_multipart_upload(clock: ManualClock) -> None:
    client, seen = make_client(clock, lambda *_: respond(200, {"id": "1"}))
    async with client:
        await drive(clock, client.create_message(3, files=[File("a.bin", b"\x00\x01")]))
    headers, body = seen[0][2], seen[0][3] or b""
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="payload_json"' in body and b'name="files[0]"; filename="a.bin"' in body
    assert b"\x00\x01" in body and b'"enforce_nonce":true' in body


def test_multipart_round_trips_through_a_parser() -> None:
    from email.parser import BytesParser

    body, content_type = encode_multipart(
        {"content": "x"}, [File('we"ird.txt', b"hello", "text/plain"), File("b", b"")]
    )
    message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = message.get_payload()
    assert isinstance(parts, list) and len(parts) == 3
    payload = _json.loads(parts[0].get_payload(decode=True))
    assert payload["attachments"] == [
        {"id": 0, "filename": 'we"ird.txt'},
        {"id": 1, "filename": "b"},
    ]
    assert parts[1].get_payload(decode=True) == b"hello"


async def test_closed_client_refuses(clock: ManualClock) -> None:
    client, _ = make_client(clock, lambda *_: respond(200, {}))
    with pytest.raises(ClientClosed):
        await client.fetch_current_user()
    async with client:
        pass
    with pytest.raises(ClientClosed):
        await client.fetch_current_user()
    with pytest.raises(ClientClosed):
        await client.open()


async def test_fetch_my_guilds_pages(clock: ManualClock) -> None:
    def answer(i: int, method: str, url: str, body: bytes | None) -> RawResponse:
        if i == 0:
            return respond(200, [{"id": str(n)} for n in range(1, 201)])
        return respond(200, [{"id": "201"}])

    client, seen = make_client(clock, answer)
    async with client:
        guilds = await drive(clock, client.fetch_my_guilds())
    assert len(guilds) == 201
    assert "after=200" in seen[1][1]


async def test_download_attachment_sends_no_token(clock: ManualClock) -> None:
    client, seen = make_client(clock, lambda *_: RawResponse(200, "OK", {}, b"bytes"))
    async with client:
        data = await drive(clock, client.download_attachment("http://cdn.test/a/b/c.bin"))
    assert data == b"bytes"
    assert "Authorization" not in seen[0][2]


async def test_cancelled_request_gives_back_its_slot(clock: ManualClock) -> None:
    gate = asyncio.Event()

    async def handler(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> RawResponse:
        await gate.wait()
        return respond(200, {})

    client = HTTPClient(TOKEN, transport=MockTransport(handler), clock=clock)
    async with client:
        route = routes.GET_CHANNEL.compile(channel_id=1)
        first = asyncio.ensure_future(client.request(route))
        second = asyncio.ensure_future(client.request(route))
        await clock.settle()
        assert client.ratelimiter.view(route).queued == 1
        first.cancel()
        await clock.settle()
        assert client.ratelimiter.view(route).in_flight == 1  # the second went out
        gate.set()
        assert await second == {}


def test_import_does_not_load_aiohttp() -> None:
    code = (
        "import sys, discobase.http, discobase.http.client; "
        "assert 'aiohttp' not in sys.modules, 'aiohttp imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_sorted_and_exported() -> None:
    import discobase.http as package
    from discobase.http import errors

    for module in (package, errors, routes):
        names = module.__all__
        assert sorted(names, key=str.lower) == sorted(names, key=str.lower)
        for name in names:
            assert hasattr(module, name), name


def test_routes_compile_keys_and_majors() -> None:
    compiled = routes.DELETE_MESSAGE.compile("young", channel_id=12, message_id=34)
    assert compiled.path == "/channels/12/messages/34"
    assert compiled.key == "DELETE /channels/{channel_id}/messages/{message_id}:young"
    assert compiled.majors == (("channel_id", "12"),)
    assert routes.GET_MY_USER.compile().majors == ()
    assert routes.channel_edit_variant({"name": "x"}) == "name"
    assert routes.channel_edit_variant({"position": 1}) == ""
    now = 1_800_000_000_000
    old = (now - 2 * 3_600_000 - routes.DISCORD_EPOCH_MS) << 22
    assert routes.message_edit_variant(old, now) == "old"
    assert routes.message_delete_variant(old, now) == ""
    assert not routes.CREATE_MESSAGE.is_idempotent
    assert routes.BULK_DELETE_MESSAGES.is_idempotent


async def test_close_while_queued_raises_client_closed(clock: ManualClock) -> None:
    gate = asyncio.Event()

    async def handler(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> RawResponse:
        await gate.wait()
        return respond(200, {})

    client = HTTPClient(TOKEN, transport=MockTransport(handler), clock=clock)
    await client.open()
    route = routes.GET_CHANNEL.compile(channel_id=1)
    first = asyncio.ensure_future(client.request(route))
    queued = asyncio.ensure_future(client.request(route))
    await clock.settle()
    await client.close()
    gate.set()
    assert await first == {}
    with pytest.raises(ClientClosed):
        await queued


async def test_user_agent_and_orjson_body(clock: ManualClock) -> None:
    """``User-Agent: DiscordBot (url, version)``; bodies are orjson's compact bytes."""
    import re

    import orjson

    client, seen = make_client(clock, lambda *_: respond(200, {}))
    async with client:
        route = routes.UPDATE_CHANNEL.compile(channel_id=1)
        await drive(clock, client.request(route, json={"position": 2, "topic": "é"}))
    _, _, headers, body = seen[0]
    assert re.fullmatch(r"DiscordBot \(https?://[^ ,]+, \d+\.\d+\.\d+\S*\)", headers["User-Agent"])
    assert body == orjson.dumps({"position": 2, "topic": "é"})
    assert headers["Content-Type"] == "application/json"


async def test_backoff_is_jittered_and_grows(clock: ManualClock) -> None:
    """Retries wait a full-jitter backoff: uniform in [0, 0.5 s * 2^n], drawn from the rng."""
    times: list[float] = []

    def answer(i: int, *_: Any) -> RawResponse:
        times.append(clock.now())
        return respond(503, {"message": "busy", "code": 0}) if i < 3 else respond(200, {})

    client, _ = make_client(clock, answer)
    async with client:
        assert await drive(clock, client.fetch_channel(1)) == {}
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3
    assert all(0 <= gap <= 0.5 * 2**n + 1e-9 for n, gap in enumerate(gaps)), gaps
    expected = random.Random(4)
    assert gaps == pytest.approx([expected.uniform(0.0, 0.5 * 2**n) for n in range(3)])


@pytest.mark.parametrize("timeout", [True, False])
async def test_timeouts_and_drops_are_retried_for_idempotent_routes_only(
    clock: ManualClock, timeout: bool
) -> None:
    failure = TransportFailure("timed out" if timeout else "reset", timeout=timeout)

    def answer(i: int, method: str, url: str, body: bytes | None) -> RawResponse | Exception:
        return failure if method == "POST" or i == 0 else respond(200, {})

    client, seen = make_client(clock, answer)
    async with client:
        assert await drive(clock, client.fetch_channel(1)) == {}
        assert len(seen) == 2
        route = routes.CREATE_MESSAGE.compile(channel_id=1)
        with pytest.raises(TransportError):
            # A create without enforce_nonce might have been stored: never sent twice.
            await drive(clock, client.request(route, json={"content": "x", "nonce": "1"}))
    assert len(seen) == 3


async def test_token_never_leaks_on_any_path(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug logging on, through 429s, a sub-limit, 5xx, a dropped connection and errors."""
    import logging

    caplog.set_level(logging.DEBUG)
    sublimit = {"message": "slow", "code": 30046, "retry_after": 1.0, "global": False}
    answers: list[RawResponse | Exception] = [
        respond(429, sublimit, {"retry-after": "1", "x-ratelimit-scope": "user"}),
        respond(500, {"message": "x", "code": 0}),
        TransportFailure("reset"),
        respond(200, {"id": "1"}),
        respond(404, {"message": "Unknown Channel", "code": 10003}),
    ]
    client, _ = make_client(clock, lambda i, *_: answers[min(i, len(answers) - 1)])
    errors: list[BaseException] = []
    async with client:
        await drive(clock, client.edit_channel(1, name="x"))
        try:
            await drive(clock, client.fetch_channel(1))
        except NotFound as exc:
            errors.append(exc)
    texts = [repr(client), repr(client.ratelimiter), caplog.text, str(client.stats)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    assert errors and caplog.records
    for text in texts:
        assert TOKEN not in text and "secret-part" not in text


def bucket_429(remaining: int) -> RawResponse:
    headers = {
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset-after": "1.0",
        "x-ratelimit-bucket": "b",
        "x-ratelimit-scope": "user",
        "retry-after": "1",
    }
    return respond(429, {"message": "limited", "retry_after": 1.0, "global": False}, headers)


async def test_drained_429s_do_not_exhaust_the_retries(clock: ManualClock) -> None:
    """Another process keeps winning the bucket: eight drained 429s in a row (the cap on other
    429s is five), and the request still goes through."""
    answers = [bucket_429(0)] * 8 + [respond(200, {"id": "1"})]
    client, seen = make_client(clock, lambda i, *_: answers[min(i, len(answers) - 1)])
    async with client:
        assert await drive(clock, client.fetch_channel(1)) == {"id": "1"}
    assert len(seen) == 9
    assert client.stats.ratelimited == 8
    assert client.ratelimiter.stats.drained == 8  # none the limiter could have foreseen


async def test_sublimit_429s_still_end_in_rate_limited(clock: ManualClock) -> None:
    """429s with room left in the bucket (a sub-limit) are not the drained kind: six of them
    end in ``RateLimited`` rather than a request that retries without end."""
    client, seen = make_client(clock, lambda i, *_: bucket_429(3))
    async with client:
        with pytest.raises(RateLimited, match="still rate limited"):
            await drive(clock, client.fetch_channel(1))
    assert len(seen) == 6
    assert client.ratelimiter.stats.drained == 0


def test_every_route_has_a_typed_method() -> None:
    import inspect

    # The typed methods live in the client's endpoint groups (discobase/http/endpoints/).
    source = "".join(
        inspect.getsource(cls)
        for cls in HTTPClient.__mro__
        if cls.__module__.startswith("discobase")
    )
    constants = [n for n in routes.__all__ if isinstance(getattr(routes, n), routes.Route)]
    assert constants
    missing = [n for n in constants if f"routes.{n}." not in source]
    assert not missing, missing


def test_rate_limit_docs_name_only_real_tests() -> None:
    """docs/rate-limits.md's "How this is tested" table names tests that exist."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "rate-limits.md").read_text(encoding="utf-8")
    section = page.split("## How this is tested", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+)`", section))
    files = [
        root / "tests" / "unit" / "test_http_ratelimit.py",
        root / "tests" / "unit" / "test_http_client.py",
        root / "tests" / "integration" / "test_http_adversarial.py",
        root / "tests" / "integration" / "test_http_emulator.py",
        root / "tests" / "integration" / "test_http_contention.py",
    ]
    defined = {m for f in files for m in re.findall(r"def (test_\w+)", f.read_text("utf-8"))}
    assert len(named) > 40
    assert not named - defined, sorted(named - defined)
