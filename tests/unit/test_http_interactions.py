"""The interaction routes of the HTTP client: keys, the global-limit exemption, no secrets.

Layer: unit tests over ``MockTransport`` and a manual clock (no sockets, no sleeps).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from discobase import _json
from discobase.http import HTTPClient, ManualClock, MockTransport, RawResponse, routes
from discobase.http.errors import NotFound
from tests.unit.test_http_client import drive

TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.secret-part.xyz"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246secret-interaction-token"
JSON = {"content-type": "application/json", "via": "1.1 google"}


def test_the_callback_is_keyed_by_its_interaction_and_exempt_from_the_global_limit() -> None:
    compiled = routes.CREATE_INTERACTION_RESPONSE.compile(
        interaction_id=12, interaction_token=INTERACTION_TOKEN
    )
    assert compiled.route.global_exempt and not compiled.route.is_idempotent
    assert compiled.majors == (("interaction_id", "12"), ("interaction_token", INTERACTION_TOKEN))
    assert INTERACTION_TOKEN not in str(compiled) and INTERACTION_TOKEN not in repr(compiled)
    followup = routes.CREATE_FOLLOWUP_MESSAGE.compile(webhook_id=7, webhook_token=INTERACTION_TOKEN)
    assert followup.route.global_exempt
    assert followup.majors == (("webhook_id", "7"), ("webhook_token", INTERACTION_TOKEN))
    for route in (
        routes.GET_ORIGINAL_INTERACTION_RESPONSE,
        routes.EDIT_ORIGINAL_INTERACTION_RESPONSE,
        routes.DELETE_ORIGINAL_INTERACTION_RESPONSE,
        routes.EDIT_FOLLOWUP_MESSAGE,
        routes.DELETE_FOLLOWUP_MESSAGE,
    ):
        assert route.global_exempt, route
    # Registering commands is an ordinary route: it counts.
    assert not routes.BULK_OVERWRITE_GUILD_APPLICATION_COMMANDS.global_exempt


def make_client(
    clock: ManualClock, status: int = 204, body: Any = None
) -> tuple[HTTPClient, list[tuple[str, str, bytes | None]]]:
    seen: list[tuple[str, str, bytes | None]] = []

    async def handler(
        method: str, url: str, headers: Mapping[str, str], data: bytes | None
    ) -> RawResponse:
        seen.append((method, url, data))
        payload = b"" if body is None else _json.dumps(body)
        return RawResponse(status, "", JSON, payload)

    client = HTTPClient(
        TOKEN,
        api_url="http://discord.test",
        transport=MockTransport(handler),
        clock=clock,
        rng=random.Random(1),
        global_limit=1,
    )
    return client, seen


async def test_callbacks_do_not_wait_for_the_global_limit() -> None:
    clock = ManualClock()
    client, seen = make_client(clock)
    async with client:
        start = clock.now()
        for i in range(5):  # five times a global limit of one per second
            await drive(
                clock,
                client.create_interaction_response(
                    i + 1, f"{INTERACTION_TOKEN}{i}", 4, {"content": "hi"}
                ),
            )
        assert clock.now() == start
        for i in range(3):  # an ordinary route does wait (the control)
            await drive(clock, client.fetch_channel(i + 1))
        assert clock.now() > start
    method, url, data = seen[0]
    assert method == "POST" and url.endswith(f"/interactions/1/{INTERACTION_TOKEN}0/callback")
    assert _json.loads(data or b"") == {
        "type": 4,
        "data": {"content": "hi", "allowed_mentions": {"parse": []}},
    }


async def test_an_unknown_interaction_error_does_not_show_the_token() -> None:
    clock = ManualClock()
    client, _ = make_client(clock, 404, {"message": "Unknown interaction", "code": 10062})
    async with client:
        with pytest.raises(NotFound) as caught:
            await drive(clock, client.create_interaction_response(1, INTERACTION_TOKEN, 5))
    assert caught.value.code == 10062
    assert INTERACTION_TOKEN not in str(caught.value) and INTERACTION_TOKEN not in repr(
        caught.value
    )


async def test_followups_and_edits_use_the_webhook_routes() -> None:
    clock = ManualClock()
    client, seen = make_client(clock, 200, {"id": "5"})
    async with client:
        await drive(clock, client.create_followup_message(7, INTERACTION_TOKEN, content="a"))
        await drive(
            clock, client.edit_original_interaction_response(7, INTERACTION_TOKEN, content="b")
        )
        await drive(clock, client.edit_followup_message(7, INTERACTION_TOKEN, 5, content="c"))
    paths = [(m, u.split("/api/v10", 1)[1]) for m, u, _ in seen]
    assert paths == [
        ("POST", f"/webhooks/7/{INTERACTION_TOKEN}"),
        ("PATCH", f"/webhooks/7/{INTERACTION_TOKEN}/messages/@original"),
        ("PATCH", f"/webhooks/7/{INTERACTION_TOKEN}/messages/5"),
    ]


async def test_a_success_that_is_not_json_names_no_token_in_its_error() -> None:
    from discobase.http import HTTPClient
    from discobase.http.errors import NotJSON
    from discobase.http.transport import MockTransport, RawResponse

    token = "aW50ZXJhY3Rpb246c2VjcmV0"

    async def handler(*_: object) -> RawResponse:
        return RawResponse(200, "OK", {"content-type": "text/html"}, b"<html></html>")

    client = HTTPClient("bot-token", api_url="http://127.0.0.1:9", transport=MockTransport(handler))
    async with client:
        with pytest.raises(NotJSON) as caught:
            await client.create_interaction_response("1", token, {"type": 1})
    assert token not in str(caught.value) and token not in caught.value.url
    assert "{interaction_token}" in caught.value.url
