"""Check the judge itself: the OpenAPI validator finds operations and rejects wrong answers.

Layer: conformance tests. Needs the spec file; one test also drives the emulator to show that
the checked session validates every answer it gets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conformance.openapi import (
    CheckedSession,
    OpenAPISpec,
    SpecCheckingProxy,
    SpecViolation,
    spec_path,
)

JSON = {"Content-Type": "application/json"}

USER = {
    "id": "198622483471925248",
    "username": "bot",
    "discriminator": "0000",
    "avatar": None,
    "global_name": None,
    "public_flags": 0,
    "flags": 0,
    "primary_guild": None,
    "bot": True,
}
MESSAGE = {
    "id": "1200000000000000000",
    "channel_id": "1100000000000000000",
    "author": USER,
    "content": "hello",
    "timestamp": "2026-01-01T00:00:00.000000+00:00",
    "edited_timestamp": None,
    "tts": False,
    "mention_everyone": False,
    "mentions": [],
    "mention_roles": [],
    "attachments": [],
    "embeds": [],
    "components": [],
    "pinned": False,
    "type": 0,
    "flags": 0,
}


def problems(spec: OpenAPISpec, method: str, path: str, status: int, body: Any) -> tuple[str, ...]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return spec.check_response(method, path, status, JSON, raw).problems


def test_spec_is_available(openapi_spec: OpenAPISpec | None) -> None:
    """Report loudly (as a skip) when the schema checks of the whole suite are off."""
    if openapi_spec is None:
        pytest.skip(
            f"no spec at {spec_path()}: every response-schema check in this suite is skipped"
        )


@pytest.mark.openapi
@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/api/v10/users/@me", "get_my_user"),
        ("GET", "/api/v10/users/@me/guilds?limit=2", "list_my_guilds"),
        ("GET", "/api/v9/channels/1/messages/pins", "list_pins"),
        ("PUT", "/api/v10/channels/1/messages/pins/2", "create_pin"),
        ("GET", "/api/v10/channels/1/messages/2", "get_message"),
        ("POST", "/api/v10/channels/1/messages/bulk-delete", "bulk_delete_messages"),
        ("GET", "/api/v10/gateway/bot", "get_bot_gateway"),
    ],
)
def test_operations_are_found_literal_segments_first(
    require_spec: OpenAPISpec, method: str, path: str, operation_id: str
) -> None:
    op = require_spec.find_operation(method, path)
    assert op is not None and op.operation_id == operation_id


@pytest.mark.openapi
def test_removed_guild_creation_has_no_operation(require_spec: OpenAPISpec) -> None:
    assert require_spec.find_operation("POST", "/api/v10/guilds") is None


@pytest.mark.openapi
def test_valid_message_passes_and_broken_ones_fail(require_spec: OpenAPISpec) -> None:
    path = "/api/v10/channels/1100000000000000000/messages"
    assert problems(require_spec, "POST", path, 200, MESSAGE) == ()
    numeric_id = problems(require_spec, "POST", path, 200, {**MESSAGE, "id": 12})
    assert any("$.id" in p for p in numeric_id)
    bad_time = problems(require_spec, "POST", path, 200, {**MESSAGE, "timestamp": "yesterday"})
    assert any("date-time" in p for p in bad_time)
    missing = {k: v for k, v in MESSAGE.items() if k != "edited_timestamp"}
    assert any("edited_timestamp" in p for p in problems(require_spec, "POST", path, 200, missing))


@pytest.mark.openapi
def test_nested_form_errors_with_string_leaf_codes_pass(require_spec: OpenAPISpec) -> None:
    body = {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "x"}]}},
    }
    assert problems(require_spec, "POST", "/api/v10/channels/1/messages", 400, body) == ()
    broken = {**body, "errors": {"content": {"_errors": "nope"}}}
    assert problems(require_spec, "POST", "/api/v10/channels/1/messages", 400, broken)


@pytest.mark.openapi
def test_error_bodies_on_unknown_routes_are_checked(require_spec: OpenAPISpec) -> None:
    ok = {"message": "404: Not Found", "code": 0}
    assert problems(require_spec, "GET", "/api/v10/nowhere", 404, ok) == ()
    assert problems(require_spec, "GET", "/api/v10/nowhere", 404, {"message": "x"})


@pytest.mark.openapi
def test_rate_limited_body_needs_retry_after_and_global(require_spec: OpenAPISpec) -> None:
    path = "/api/v10/channels/1/messages"
    good = {
        "message": "You are being rate limited.",
        "retry_after": 0.5,
        "global": False,
        "code": 0,
    }
    assert problems(require_spec, "POST", path, 429, good) == ()
    assert problems(require_spec, "POST", path, 429, {"message": "x", "code": 0, "global": False})


@pytest.mark.openapi
def test_no_content_statuses_must_have_no_body(require_spec: OpenAPISpec) -> None:
    path = "/api/v10/channels/1/messages/2"
    assert require_spec.check_response("DELETE", path, 204, {}, b"").problems == ()
    assert require_spec.check_response("DELETE", path, 204, {}, b"{}").problems


@pytest.mark.openapi
def test_undocumented_success_status_is_a_problem(require_spec: OpenAPISpec) -> None:
    # Discord answers a message create with 200, never 201.
    found = problems(require_spec, "POST", "/api/v10/channels/1/messages", 201, MESSAGE)
    assert any("not documented" in p for p in found)


@pytest.mark.openapi
def test_rate_limit_headers_are_typed(require_spec: OpenAPISpec) -> None:
    headers = {"X-RateLimit-Reset-After": "soon"}
    result = require_spec.check_response(
        "DELETE", "/api/v10/channels/1/messages/2", 204, headers, b""
    )
    assert any("Reset-After" in p for p in result.problems)


@pytest.mark.openapi
def test_charset_suffix_is_a_problem(require_spec: OpenAPISpec) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    result = require_spec.check_response(
        "GET", "/api/v10/nowhere", 404, headers, b'{"message": "404: Not Found", "code": 0}'
    )
    with pytest.raises(SpecViolation):
        result.raise_for_problems("GET", "/api/v10/nowhere", 404)


@pytest.mark.openapi
async def test_every_api_answer_is_validated(
    require_spec: OpenAPISpec, api: CheckedSession, channel_id: str
) -> None:
    await api.get("/users/@me")
    created = (await api.post(f"/channels/{channel_id}/messages", json={"content": "x"})).json()
    await api.get(f"/channels/{channel_id}/messages")
    await api.delete(f"/channels/{channel_id}/messages/{created['id']}")
    await api.get("/nowhere")
    api_exchanges = [e for e in api.ledger.exchanges if e[1].startswith("/api/")]
    assert len(api_exchanges) == 6
    assert api.ledger.validated == len(api_exchanges)
    assert api.ledger.problems == []


@pytest.fixture
async def lying_upstream() -> AsyncIterator[str]:
    """A tiny server that answers every request with a message whose id is a number."""

    async def answer(request: web.Request) -> web.Response:
        response = web.Response(body=json.dumps({**MESSAGE, "id": 12}).encode())
        response.headers["Content-Type"] = "application/json"
        response.headers["Via"] = "1.1 google"
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    await runner.cleanup()


@pytest.mark.openapi
async def test_proxy_passes_bytes_through_and_records_problems(
    require_spec: OpenAPISpec, lying_upstream: str
) -> None:
    async with SpecCheckingProxy(lying_upstream, require_spec) as proxy:
        async with aiohttp.ClientSession() as session:
            url = f"{proxy.url}/api/v10/channels/1/messages/2"
            async with session.get(url) as response:
                assert response.headers["Content-Type"] == "application/json"
                assert response.headers["Via"] == "1.1 google"
                assert (await response.json())["id"] == 12
    assert proxy.ledger.exchanges == [("GET", "/api/v10/channels/1/messages/2", 200)]
    assert any("$.id" in problem for problem in proxy.ledger.problems)


@pytest.mark.openapi
async def test_checked_session_raises_on_a_lying_server(
    require_spec: OpenAPISpec, lying_upstream: str
) -> None:
    async with aiohttp.ClientSession() as session:
        checked = CheckedSession(session, lying_upstream, require_spec, "token")
        with pytest.raises(SpecViolation, match=r"\$\.id"):
            await checked.get("/channels/1/messages/2")
