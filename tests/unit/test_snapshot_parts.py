"""The layout of a snapshot too large for one message (see storage/snapshots.py)."""

from __future__ import annotations

import zlib

import pytest

from discobase.errors import StorageCorrupted
from discobase.storage import Limits, codec
from discobase.storage.snapshots import plan_snapshot, prior_parts

BOT = 42


def header(content: str, mid: int, files: int) -> codec.Header:
    message = {
        "id": str(mid),
        "type": 0,
        "author": {"id": str(BOT)},
        "content": content,
        "attachments": [{"filename": codec.file_name(i), "url": "-"} for i in range(files)],
    }
    parsed = codec.parse_header(message, BOT)
    assert parsed is not None
    return parsed


def test_a_small_snapshot_is_one_message() -> None:
    fields = {"from": "5", "records": 1, "skip": ["7"]}
    messages, last = plan_snapshot(zlib.compress(b'["p","1",{}]\n'), Limits(), fields)
    assert last is None and len(messages) == 1
    parsed = header(messages[0].content, 9, len(messages[0].files))
    assert parsed.batch is None and prior_parts(parsed) == []
    assert parsed.body["skip"] == ["7"]


def test_a_large_snapshot_is_parts_only_the_last_names_the_others() -> None:
    stream = bytes(range(256)) * 40  # 10 KiB
    skip = [str(10**18 + i) for i in range(60)]
    fields = {"from": "5", "records": 3, "skip": skip}
    before, last = plan_snapshot(stream, Limits(file_limit=100, max_files=1), fields)
    assert last is not None and len(before) >= 100  # more parts than ids fit with skip
    parsed = [header(m.content, 1000 + i, len(m.files)) for i, m in enumerate(before)]
    for i, part in enumerate(parsed):
        assert (part.kind, part.part, part.parts, part.body["from"]) == (
            "snap",
            i,
            len(before) + 1,
            "5",
        )
        assert "skip" not in part.body and "prior" not in part.body
        with pytest.raises(StorageCorrupted):
            prior_parts(part)  # not the last part: no reader starts from it
    ids = [p.message_id for p in parsed]
    message = last.naming(ids)
    assert len(message.content) <= codec.CONTENT_LIMIT
    end = header(message.content, 5000, len(message.files))
    assert prior_parts(end) == ids and end.batch == parsed[0].batch
    # skip made room for the ids: what is left of it is its newest entries.
    kept = end.body.get("skip") or []
    assert kept == skip[len(skip) - len(kept) :]
    assert b"".join(f.data for m in [*before, message] for f in m.files) == stream
