"""Messages: create, limits, nonces, uploads, history order and paging, edit, delete, bulk delete.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md sections 2.1, 2.2, 2.5-2.7, 5 and facts 1-3, 10.
"""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import call, post_messages
from tests.conformance.openapi import CheckedSession

MIB = 1024 * 1024


def multipart(payload: dict[str, Any], files: dict[int, tuple[str, bytes]]) -> aiohttp.FormData:
    """Build Discord's multipart body: ``payload_json`` plus ``files[n]`` parts."""
    # quote_fields=False keeps the brackets of files[n] literal, as Discord expects.
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for n, (name, data) in files.items():
        # A stream, not bytes: aiohttp warns (an error here) on large raw byte bodies.
        form.add_field(
            f"files[{n}]", io.BytesIO(data), filename=name, content_type="application/octet-stream"
        )
    return form


async def create(api: CheckedSession, channel: str, **body: Any) -> Any:
    return await call(api, "POST", f"/channels/{channel}/messages", json=body)


async def history(api: CheckedSession, channel: str, **params: Any) -> list[str]:
    query = {k: str(v) for k, v in params.items()}
    reply = await call(api, "GET", f"/channels/{channel}/messages", params=query)
    assert reply.status == 200, reply.body
    return [m["id"] for m in reply.json()]


# -- create --------------------------------------------------------------------------------


async def test_create_is_200_with_the_message(
    api: CheckedSession, bot: Any, channel_id: str
) -> None:
    reply = await create(api, channel_id, content="hello", allowed_mentions={"parse": []})
    assert reply.status == 200
    message = reply.json()
    assert message["content"] == "hello"
    assert message["channel_id"] == channel_id
    assert message["author"]["id"] == bot.id
    assert message["type"] == 0
    assert message["edited_timestamp"] is None
    assert message["pinned"] is False


async def test_2000_code_points_pass_even_astral(api: CheckedSession, channel_id: str) -> None:
    # U+1F600 is one code point but two UTF-16 units: Discord counts code points.
    content = "\N{GRINNING FACE}" * 2000
    reply = await create(api, channel_id, content=content)
    assert reply.status == 200
    assert reply.json()["content"] == content


async def test_2001_code_points_are_a_nested_form_error(
    api: CheckedSession, channel_id: str
) -> None:
    reply = await create(api, channel_id, content="a" * 2001)
    assert reply.status == 400
    body = reply.json()
    assert body["code"] == 50035
    leaf = body["errors"]["content"]["_errors"][0]
    assert leaf["code"] == "BASE_TYPE_MAX_LENGTH"
    assert isinstance(leaf["message"], str)


@pytest.mark.parametrize("body", [{}, {"content": ""}, {"allowed_mentions": {"parse": []}}])
async def test_empty_message_is_50006(
    api: CheckedSession, channel_id: str, body: dict[str, Any]
) -> None:
    reply = await create(api, channel_id, **body)
    assert reply.status == 400
    assert reply.json()["code"] == 50006


async def test_allowed_mentions_parse_and_list_of_one_kind_conflict(
    api: CheckedSession, channel_id: str
) -> None:
    mentions = {"parse": ["users"], "users": ["198622483471925248"]}
    reply = await create(api, channel_id, content="hi", allowed_mentions=mentions)
    assert reply.status == 400
    assert reply.json()["code"] == 50035


async def test_embeds_are_rich_and_limited(api: CheckedSession, channel_id: str) -> None:
    ok = await create(api, channel_id, embeds=[{"title": "t", "description": "d"}])
    assert ok.status == 200
    assert ok.json()["embeds"][0]["type"] == "rich"
    assert ok.json()["embeds"][0]["title"] == "t"
    too_many = await create(api, channel_id, embeds=[{"title": str(i)} for i in range(11)])
    assert too_many.status == 400
    long_title = await create(api, channel_id, embeds=[{"title": "t" * 257}])
    assert long_title.status == 400
    # 6000 characters in total across all embeds of a message.
    heavy = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    assert (await create(api, channel_id, embeds=heavy)).status == 400


async def test_suppress_notifications_flag_is_kept(api: CheckedSession, channel_id: str) -> None:
    reply = await create(api, channel_id, content="quiet", flags=4096)
    assert reply.status == 200
    assert reply.json()["flags"] & 4096


async def test_enforced_nonce_returns_the_existing_message(
    api: CheckedSession, channel_id: str
) -> None:
    first = await create(api, channel_id, content="once", nonce="n-1", enforce_nonce=True)
    again = await create(api, channel_id, content="once", nonce="n-1", enforce_nonce=True)
    assert first.status == again.status == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["nonce"] == "n-1"
    assert await history(api, channel_id) == [first.json()["id"]]


async def test_enforced_nonce_is_per_author(
    emu: Any, api: CheckedSession, bot: Any, guild_id: str, channel_id: str
) -> None:
    other = emu.create_bot("second-writer")
    emu.add_bot_to_guild(guild_id, other)
    mine = await create(api, channel_id, content="a", nonce="shared", enforce_nonce=True)
    theirs = await create(
        api.with_token(other.token), channel_id, content="b", nonce="shared", enforce_nonce=True
    )
    assert theirs.status == 200
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["author"]["id"] == other.id


async def test_nonce_without_enforcement_does_not_dedupe(
    api: CheckedSession, channel_id: str
) -> None:
    first = await create(api, channel_id, content="twice", nonce="n-2")
    again = await create(api, channel_id, content="twice", nonce="n-2")
    assert again.json()["id"] != first.json()["id"]


async def test_integer_nonce_is_accepted(api: CheckedSession, channel_id: str) -> None:
    first = await create(api, channel_id, content="int", nonce=12345, enforce_nonce=True)
    again = await create(api, channel_id, content="int", nonce=12345, enforce_nonce=True)
    assert first.status == 200
    assert again.json()["id"] == first.json()["id"]


async def test_nonce_over_25_chars_is_refused(api: CheckedSession, channel_id: str) -> None:
    reply = await create(api, channel_id, content="x", nonce="n" * 26)
    assert reply.status == 400
    assert reply.json()["code"] == 50035


async def test_category_is_not_a_text_channel(api: CheckedSession, guild_id: str) -> None:
    category = (
        await call(api, "POST", f"/guilds/{guild_id}/channels", json={"name": "c", "type": 4})
    ).json()
    reply = await create(api, category["id"], content="x")
    assert reply.status in (400, 403)
    assert reply.json()["code"] == 50008


async def test_missing_channel_is_10003(api: CheckedSession) -> None:
    reply = await api.post("/channels/123456789012345678/messages", json={"content": "x"})
    assert reply.status == 404
    assert reply.json()["code"] == 10003
    listing = await api.get("/channels/123456789012345678/messages")
    assert listing.status == 404
    assert listing.json()["code"] == 10003


# -- uploads --------------------------------------------------------------------------------


async def test_multipart_upload_with_payload_json(api: CheckedSession, channel_id: str) -> None:
    form = multipart(
        {"content": "with files", "attachments": [{"id": 0, "filename": "a.bin"}]},
        {0: ("a.bin", b"\x00\x01binary"), 42: ("b.txt", b"text")},
    )
    reply = await api.post(f"/channels/{channel_id}/messages", data=form)
    assert reply.status == 200, reply.body
    message = reply.json()
    assert message["content"] == "with files"
    by_name = {a["filename"]: a for a in message["attachments"]}
    assert set(by_name) == {"a.bin", "b.txt"}
    assert by_name["a.bin"]["size"] == 8
    assert by_name["b.txt"]["size"] == 4
    for attachment in message["attachments"]:
        assert isinstance(attachment["id"], str)


async def test_attachment_request_fields_spoiler_and_description(
    api: CheckedSession, channel_id: str
) -> None:
    form = multipart(
        {"content": "s", "attachments": [{"id": 0, "is_spoiler": True, "description": "one"}]},
        {0: ("a.png", b"png")},
    )
    message = (await api.post(f"/channels/{channel_id}/messages", data=form)).json()
    attachment = message["attachments"][0]
    assert attachment["flags"] & (1 << 3)  # IS_SPOILER
    assert attachment["description"] == "one"
    # Since 2026-06-24 an attachment's description can be edited through the list.
    edited = await api.patch(
        f"/channels/{channel_id}/messages/{message['id']}",
        json={"attachments": [{"id": attachment["id"], "description": "two"}]},
    )
    assert edited.json()["attachments"][0]["description"] == "two"


async def test_files_alone_are_not_an_empty_message(api: CheckedSession, channel_id: str) -> None:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("files[0]", b"only a file", filename="f.bin")
    reply = await api.post(f"/channels/{channel_id}/messages", data=form)
    assert reply.status == 200
    assert reply.json()["content"] == ""


async def test_ten_files_pass_eleven_fail(api: CheckedSession, channel_id: str) -> None:
    ten = multipart({"content": "ten"}, {n: (f"f{n}.bin", b"x") for n in range(10)})
    ok = await api.post(f"/channels/{channel_id}/messages", data=ten)
    assert ok.status == 200 and len(ok.json()["attachments"]) == 10
    eleven = multipart({"content": "eleven"}, {n: (f"f{n}.bin", b"x") for n in range(11)})
    refused = await api.post(f"/channels/{channel_id}/messages", data=eleven)
    assert refused.status == 400
    assert refused.json()["code"] in (30015, 50035)


async def test_10_mib_per_file(api: CheckedSession, channel_id: str) -> None:
    exact = multipart({"content": "max"}, {0: ("max.bin", b"\x07" * (10 * MIB))})
    ok = await api.post(f"/channels/{channel_id}/messages", data=exact)
    assert ok.status == 200
    assert ok.json()["attachments"][0]["size"] == 10 * MIB
    over = multipart({"content": "over"}, {0: ("over.bin", b"\x07" * (10 * MIB + 1))})
    refused = await api.post(f"/channels/{channel_id}/messages", data=over)
    assert refused.status in (400, 413)
    assert refused.json()["code"] in (40005, 50045)


async def test_25_mib_per_request(api: CheckedSession, channel_id: str) -> None:
    files = {n: (f"part{n}.bin", b"\x01" * (9 * MIB)) for n in range(3)}
    refused = await api.post(
        f"/channels/{channel_id}/messages", data=multipart({"content": "big"}, files)
    )
    assert refused.status in (400, 413)
    assert refused.json()["code"] == 40005


# -- history --------------------------------------------------------------------------------


async def test_history_is_newest_first(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 6)
    assert await history(api, channel_id) == ids[::-1]


async def test_after_is_still_newest_first(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 6)
    # The two messages just after ids[0], newest first: walk forward with page[0].
    assert await history(api, channel_id, after=ids[0], limit=2) == [ids[2], ids[1]]
    assert await history(api, channel_id, after=ids[2], limit=100) == ids[3:][::-1]


async def test_paging_forward_and_backward_covers_everything(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 7)
    forward: list[str] = []
    cursor = "0"
    while page := await history(api, channel_id, after=cursor, limit=3):
        forward += page[::-1]
        cursor = page[0]
    assert forward == ids
    backward: list[str] = []
    cursor = str(int(ids[-1]) + 1)
    while page := await history(api, channel_id, before=cursor, limit=3):
        backward += page
        cursor = page[-1]
    assert backward == ids[::-1]


async def test_before_and_around(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 7)
    assert await history(api, channel_id, before=ids[4], limit=2) == [ids[3], ids[2]]
    around = await history(api, channel_id, around=ids[3], limit=3)
    assert around == sorted(around, key=int, reverse=True)
    assert ids[3] in around and len(around) == 3
    assert set(around) <= set(ids[1:6])


async def test_default_limit_is_50(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 52)
    page = await history(api, channel_id)
    assert page == ids[::-1][:50]


@pytest.mark.parametrize("limit", ["0", "101", "-1"])
async def test_limit_out_of_1_to_100_is_refused(
    api: CheckedSession, channel_id: str, limit: str
) -> None:
    reply = await api.get(f"/channels/{channel_id}/messages", params={"limit": limit})
    assert reply.status == 400
    assert reply.json()["code"] == 50035


async def test_limit_100_is_accepted(api: CheckedSession, channel_id: str) -> None:
    reply = await api.get(f"/channels/{channel_id}/messages", params={"limit": "100"})
    assert reply.status == 200
    assert reply.json() == []


# -- get, edit, delete ----------------------------------------------------------------------


async def test_get_one_and_unknown(api: CheckedSession, channel_id: str) -> None:
    created = (await create(api, channel_id, content="find me")).json()
    got = await api.get(f"/channels/{channel_id}/messages/{created['id']}")
    assert got.status == 200 and got.json()["content"] == "find me"
    missing = await api.get(f"/channels/{channel_id}/messages/{int(created['id']) + 1}")
    assert missing.status == 404
    assert missing.json()["code"] == 10008


async def test_message_of_another_channel_is_unknown(
    api: CheckedSession, guild_id: str, channel_id: str
) -> None:
    created = (await create(api, channel_id, content="here")).json()
    elsewhere = (await call(api, "POST", f"/guilds/{guild_id}/channels", json={"name": "e"})).json()
    reply = await api.get(f"/channels/{elsewhere['id']}/messages/{created['id']}")
    assert reply.status == 404
    assert reply.json()["code"] == 10008


async def test_edit_by_author(api: CheckedSession, channel_id: str) -> None:
    created = (await create(api, channel_id, content="v1")).json()
    reply = await api.patch(
        f"/channels/{channel_id}/messages/{created['id']}", json={"content": "v2"}
    )
    assert reply.status == 200
    edited = reply.json()
    assert edited["id"] == created["id"]
    assert edited["content"] == "v2"
    assert edited["edited_timestamp"] is not None


async def test_edit_by_someone_else_is_50005(emu: Any, api: CheckedSession, bot: Any) -> None:
    other = emu.create_bot("intruder")
    shared = str(emu.create_guild("shared", bots=[bot, other]))
    channel = (await call(api, "POST", f"/guilds/{shared}/channels", json={"name": "c"})).json()
    created = (await create(api, channel["id"], content="mine")).json()
    intruder = api.with_token(other.token)
    reply = await intruder.patch(
        f"/channels/{channel['id']}/messages/{created['id']}", json={"content": "theirs"}
    )
    assert reply.status == 403
    assert reply.json()["code"] == 50005
    untouched = await api.get(f"/channels/{channel['id']}/messages/{created['id']}")
    assert untouched.json()["content"] == "mine"


async def test_edit_attachments_keeps_listed_drops_others(
    api: CheckedSession, channel_id: str
) -> None:
    form = multipart({"content": "two files"}, {0: ("keep.bin", b"k"), 1: ("drop.bin", b"d")})
    message = (await api.post(f"/channels/{channel_id}/messages", data=form)).json()
    keep = next(a for a in message["attachments"] if a["filename"] == "keep.bin")
    path = f"/channels/{channel_id}/messages/{message['id']}"

    untouched = (await api.patch(path, json={"content": "edited"})).json()
    assert len(untouched["attachments"]) == 2

    trimmed = (await api.patch(path, json={"attachments": [{"id": keep["id"]}]})).json()
    assert [a["id"] for a in trimmed["attachments"]] == [keep["id"]]

    added_form = multipart(
        {"attachments": [{"id": keep["id"]}, {"id": 0, "filename": "new.bin"}]},
        {0: ("new.bin", b"new")},
    )
    added = (await api.patch(path, data=added_form)).json()
    assert sorted(a["filename"] for a in added["attachments"]) == ["keep.bin", "new.bin"]

    emptied = (await api.patch(path, json={"attachments": []})).json()
    assert emptied["attachments"] == []


async def test_delete_is_204_then_unknown(api: CheckedSession, channel_id: str) -> None:
    created = (await create(api, channel_id, content="bye")).json()
    path = f"/channels/{channel_id}/messages/{created['id']}"
    reply = await api.delete(path)
    assert reply.status == 204 and reply.body == b""
    assert (await api.get(path)).json()["code"] == 10008
    again = await api.delete(path)
    assert again.status == 404 and again.json()["code"] == 10008


# -- bulk delete ----------------------------------------------------------------------------


async def bulk(api: CheckedSession, channel: str, ids: list[str]) -> Any:
    return await call(
        api, "POST", f"/channels/{channel}/messages/bulk-delete", json={"messages": ids}
    )


async def test_bulk_delete_is_204(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 4)
    reply = await bulk(api, channel_id, ids[:3])
    assert reply.status == 204 and reply.body == b""
    assert await history(api, channel_id) == [ids[3]]


async def test_bulk_delete_unknown_ids_count(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 1)
    reply = await bulk(api, channel_id, [ids[0], str(int(ids[0]) + 1)])
    assert reply.status == 204
    assert await history(api, channel_id) == []


@pytest.mark.parametrize("count", [0, 1, 101])
async def test_bulk_delete_needs_2_to_100(api: CheckedSession, channel_id: str, count: int) -> None:
    base = 1_300_000_000_000_000_000
    reply = await bulk(api, channel_id, [str(base + i) for i in range(count)])
    assert reply.status == 400
    assert reply.json()["code"] in (50016, 50035)


async def test_bulk_delete_accepts_100(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 3)
    padding = [str(int(ids[-1]) + 1 + i) for i in range(97)]
    reply = await bulk(api, channel_id, ids + padding)
    assert reply.status == 204
    assert await history(api, channel_id) == []


async def test_bulk_delete_duplicates_fail_the_whole_request(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 2)
    reply = await bulk(api, channel_id, [ids[0], ids[1], ids[0]])
    assert reply.status == 400
    assert await history(api, channel_id) == ids[::-1]


async def test_bulk_delete_older_than_14_days_is_50034(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    old = await post_messages(api, channel_id, 1, prefix="old")
    emu.advance(15 * 86_400)
    fresh = await post_messages(api, channel_id, 2, prefix="new")
    reply = await bulk(api, channel_id, fresh + old)
    assert reply.status == 400
    assert reply.json()["code"] == 50034
    assert await history(api, channel_id) == (old + fresh)[::-1]
    # Single deletes still work on old messages.
    assert (await call(api, "DELETE", f"/channels/{channel_id}/messages/{old[0]}")).status == 204


async def test_upload_limits_are_configurable(start_emulator: Any) -> None:
    _, _, api, guild = await start_emulator(
        time_scale=0.01, max_file_size=1024, max_request_size=4096
    )
    channel = (await call(api, "POST", f"/guilds/{guild}/channels", json={"name": "small"})).json()
    path = f"/channels/{channel['id']}/messages"
    ok = await api.post(path, data=multipart({"content": "a"}, {0: ("a", b"x" * 1024)}))
    assert ok.status == 200
    big_file = await api.post(path, data=multipart({"content": "b"}, {0: ("b", b"x" * 1025)}))
    assert big_file.json()["code"] in (40005, 50045)
    files = {n: (f"f{n}", b"x" * 1000) for n in range(5)}
    big_request = await api.post(path, data=multipart({"content": "c"}, files))
    assert big_request.json()["code"] == 40005


async def test_bulk_delete_judges_age_by_snowflake_even_for_unknown_ids(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 1)
    fifteen_days_ms = 15 * 86_400 * 1000
    ancient = str(((int(ids[0]) >> 22) - fifteen_days_ms) << 22)
    reply = await bulk(api, channel_id, [ids[0], ancient])
    assert reply.status == 400
    assert reply.json()["code"] == 50034


async def test_edit_keeps_content_rules(api: CheckedSession, channel_id: str) -> None:
    created = (await create(api, channel_id, content="keep")).json()
    path = f"/channels/{channel_id}/messages/{created['id']}"
    empty = await call(api, "PATCH", path, json={"content": ""})
    assert empty.status == 400 and empty.json()["code"] == 50006
    long = await call(api, "PATCH", path, json={"content": "a" * 2001})
    assert long.status == 400 and long.json()["code"] == 50035
    assert "content" in long.json()["errors"]
    suppressed = await call(api, "PATCH", path, json={"flags": 4})
    assert suppressed.status == 200 and suppressed.json()["flags"] & 4


async def test_multipart_with_plain_form_fields(api: CheckedSession, channel_id: str) -> None:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("content", "plain field")
    form.add_field("files[0]", io.BytesIO(b"abc"), filename="a.bin")
    reply = await api.post(f"/channels/{channel_id}/messages", data=form)
    assert reply.status == 200
    assert reply.json()["content"] == "plain field"
    assert reply.json()["attachments"][0]["filename"] == "a.bin"


@pytest.mark.parametrize(
    ("allowed", "user_mentioned", "everyone"),
    [
        (None, True, True),  # ordinary messages parse all three kinds by default
        ({"parse": []}, False, False),  # what a database should send
        ({"parse": ["users"]}, True, False),
        ({"users": ["<other>"]}, True, False),
    ],
)
async def test_allowed_mentions_decide_what_is_parsed(
    emu: Any,
    api: CheckedSession,
    guild_id: str,
    channel_id: str,
    allowed: dict[str, Any] | None,
    user_mentioned: bool,
    everyone: bool,
) -> None:
    other = emu.create_bot("mentioned")
    emu.add_bot_to_guild(guild_id, other)
    body: dict[str, Any] = {"content": f"hi <@{other.id}> @everyone"}
    if allowed is not None:
        body["allowed_mentions"] = {
            k: [other.id if v == "<other>" else v for v in vs] for k, vs in allowed.items()
        }
    message = (await create(api, channel_id, **body)).json()
    assert ([u["id"] for u in message["mentions"]] == [other.id]) is user_mentioned
    assert message["mention_everyone"] is everyone


async def test_around_with_limit_1_is_the_message_itself(
    api: CheckedSession, channel_id: str
) -> None:
    ids = await post_messages(api, channel_id, 3)
    assert await history(api, channel_id, around=ids[1], limit=1) == [ids[1]]
