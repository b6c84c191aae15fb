"""The log-entry codec: escaping, inline limits, attachments, multi-part layout, headers."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from discobase import _json
from discobase.errors import StorageCorrupted
from discobase.storage import codec
from discobase.storage.codec import Delete, Put
from discobase.storage.outgoing import PREV_ROOM, Limits, plan_messages, with_prev
from discobase.storage.writer import encode_lines

BOT = 42


def message(
    content: str, *, mid: int = 100, author: int = BOT, type_: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(mid),
        "type": type_,
        "author": {"id": str(author)},
        "content": content,
        **extra,
    }


def test_escape_json_leaves_only_printable_ascii() -> None:
    text = _json.dumps_str({"s": "é😀\x7f\x00\n\u2028 @everyone **bold** `code`"})
    escaped = codec.escape_json(text)
    assert escaped.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in escaped)
    assert _json.loads(escaped) == _json.loads(text)
    # An astral character is a surrogate pair of escapes.
    assert "\\ud83d\\ude00" in escaped


@pytest.mark.parametrize(
    "value",
    [
        "@everyone @here <@123> <#1> <@&2>",
        "emoji 😀🎉👩‍👩‍👧 and flags 🇫🇷",
        "control \x00\x01\x07\x1b\x7f and \r\n\t",
        "**markdown** __under__ ~~strike~~ ||spoiler|| `x` ```py\nprint()\n``` > quote # h1",
        "  leading and trailing whitespace  ",
        "\ud7ff\ue000\ufffd",
        "",
    ],
)
def test_inline_entry_round_trips_exactly(value: str) -> None:
    ops = [Put(7, {"text": value, "n": 1.5, "none": None, "list": [1, "a"], "b": True}), Delete(8)]
    [out] = plan_messages(encode_lines(ops), sum(len(x) + 1 for x in encode_lines(ops)), Limits())
    assert out.files == ()
    assert out.content.isascii() and len(out.content) <= codec.CONTENT_LIMIT
    header = codec.parse_header(message(out.content), BOT)
    assert header is not None and header.kind == "log" and header.version == codec.FORMAT_VERSION
    assert header.ops == ops


def _record_of_encoded_length(target: int) -> list[Put]:
    base = [Put(123456789012345678, {"s": ""})]
    overhead = codec.INLINE_OVERHEAD + len(codec.encode_op(base[0]))
    return [Put(123456789012345678, {"s": "x" * (target - overhead)})]


# Inline entries keep room for the "prev" the writer adds (outgoing.with_prev).
_INLINE_MAX = codec.CONTENT_LIMIT - PREV_ROOM


@pytest.mark.parametrize("target", [_INLINE_MAX - 1, _INLINE_MAX, _INLINE_MAX + 1])
def test_content_limit_boundary(target: int) -> None:
    ops = _record_of_encoded_length(target)
    assert len(codec.inline_content([codec.encode_op(op) for op in ops])) == target
    lines = encode_lines(ops)
    plan = plan_messages(lines, sum(len(x) + 1 for x in lines), Limits())
    assert len(plan) == 1
    if target <= _INLINE_MAX:
        assert plan[0].files == () and len(plan[0].content) == target
    else:
        assert len(plan[0].files) == 1 and len(plan[0].content) < 100
    # The largest snowflake a "prev" can name still fits within Discord's limit.
    named = with_prev(plan[0], 2**64 - 1)
    assert len(named.content) <= codec.CONTENT_LIMIT
    assert _json.loads(named.content)["prev"] == str(2**64 - 1)
    header = codec.parse_header(message(plan[0].content, attachments=_attachments(plan[0])), BOT)
    assert header is not None
    ops_back = header.ops if header.ops is not None else _ops_from_files(plan[0])
    assert ops_back == ops


def test_escaping_counts_code_points_not_bytes() -> None:
    # 300 emoji: 1200 UTF-8 bytes, 3600 escaped characters: must not go inline.
    ops = [Put(1, {"s": "😀" * 300})]
    lines = encode_lines(ops)
    plan = plan_messages(lines, sum(len(x) + 1 for x in lines), Limits())
    assert plan[0].files, "escaped length exceeds 2000, so an attachment is needed"
    assert _ops_from_files(plan[0]) == ops


def _attachments(out: Any) -> list[dict[str, Any]]:
    return [{"filename": f.filename, "url": f"http://cdn/{f.filename}"} for f in out.files]


def _ops_from_files(*outs: Any) -> list[codec.Op]:
    stream = b"".join(f.data for out in outs for f in sorted(out.files, key=lambda f: f.filename))
    return [codec.op_from_wire(raw) for raw in codec.decode_stream(stream)]


def test_five_megabyte_record_goes_in_one_attachment() -> None:
    big = {"blob": "ab\u00e9\U0001f600" * (5 * 1024 * 1024 // 10), "n": 1}
    ops = [Put(5, big)]
    lines = encode_lines(ops)
    plan = plan_messages(lines, sum(len(x) + 1 for x in lines), Limits())
    assert len(plan) == 1 and len(plan[0].files) == 1
    assert _ops_from_files(plan[0]) == ops


def test_large_batch_splits_into_parts_with_batch_id_and_count() -> None:
    limits = Limits(file_limit=1000, max_files=3, request_limit=3000)
    ops = [Put(i, {"v": i * 7919 % 10007, "s": str(i * 31337)}) for i in range(3000)]
    lines = encode_lines(ops)
    plan = plan_messages(lines, sum(len(x) + 1 for x in lines), limits)
    assert len(plan) > 1
    headers = [
        codec.parse_header(message(out.content, mid=100 + i, attachments=_attachments(out)), BOT)
        for i, out in enumerate(plan)
    ]
    assert all(h is not None for h in headers)
    batch_ids = {h.batch for h in headers if h is not None}
    assert len(batch_ids) == 1 and None not in batch_ids
    assert [h.part for h in headers if h] == list(range(len(plan)))
    assert {h.parts for h in headers if h} == {len(plan)}
    for out in plan:
        assert len(out.files) <= 3 and all(len(f.data) <= 1000 for f in out.files)
    assert _ops_from_files(*plan) == ops


def test_foreign_messages_are_not_entries() -> None:
    good = codec.encode_header("log", ops=[])
    assert codec.parse_header(message(good), BOT) is not None
    assert codec.parse_header(message(good, author=7), BOT) is None  # another bot or a human
    assert codec.parse_header(message(good, type_=6), BOT) is None  # pin system message
    assert codec.parse_header(message("hello"), BOT) is None  # the bot, but no marker
    assert codec.parse_header({"id": "1", "content": good}, BOT) is None  # no author


def test_newer_format_and_malformed_entries_are_refused() -> None:
    with pytest.raises(StorageCorrupted, match="upgrade"):
        codec.parse_header(message('{"discobase":99,"t":"log","ops":[]}'), BOT)
    with pytest.raises(StorageCorrupted):
        codec.parse_header(message('{"discobase":1,"t":"log","ops":[["x"]]}'), BOT)
    with pytest.raises(StorageCorrupted):
        codec.parse_header(message('{"discobase":1,"t":"log","files":2}'), BOT)
    with pytest.raises(StorageCorrupted):
        codec.parse_header(message('{"discobase":1, broken'), BOT)


def test_decode_stream_rejects_garbage_and_truncation() -> None:
    data = codec.encode_stream([b'["d","1"]'])
    with pytest.raises(StorageCorrupted):
        codec.decode_stream(data[:-3])
    with pytest.raises(StorageCorrupted):
        codec.decode_stream(b"not zlib")
    with pytest.raises(StorageCorrupted):
        codec.decode_stream(zlib.compress(b"{not json\n"))


def test_header_puts_marker_first() -> None:
    content = codec.encode_header("snap", **{"from": "5", "records": 3, "files": 1})
    assert content.startswith('{"discobase":1,"t":"snap"')


@pytest.mark.parametrize("chunk_bytes", [1, 7, 100, 4096, 128 * 1024])
def test_iter_stream_pieces_join_to_the_whole_stream(chunk_bytes: int) -> None:
    # Pieces of any size (a line cut across two pieces, a piece of one byte of input) give
    # every line once, in order; the input goes in a slice at a time (no quadratic copies).
    lines = [_json.dumps(["p", str(i), {"x": "y" * (i % 50), "i": i}]) for i in range(3000)]
    data = zlib.compress(b"\n".join(lines) + b"\n")
    got = [raw for chunk in codec.iter_stream(data, chunk_bytes=chunk_bytes) for raw in chunk]
    assert got == [_json.loads(line) for line in lines]
    with pytest.raises(StorageCorrupted):
        list(codec.iter_stream(data[:-5], chunk_bytes=chunk_bytes))
