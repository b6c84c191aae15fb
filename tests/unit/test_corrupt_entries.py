"""A corrupt entry's error names where it is: the entry, its channel and, once a table applies
it, the table."""

from __future__ import annotations

import pytest

from discobase.errors import StorageCorrupted
from discobase.storage import codec
from discobase.storage.state import TableState

BOT = 42


def message(content: str) -> dict[str, object]:
    return {
        "id": "900",
        "channel_id": "77",
        "type": 0,
        "author": {"id": str(BOT)},
        "content": content,
    }


@pytest.mark.parametrize(
    "content",
    [
        '{"discobase":1,"t":"log","ops":[["p"',  # not JSON
        '{"discobase":1,"t":"log","ops":[["x","1"]]}',  # not an operation
        '{"discobase":1,"t":"log","ops":[["p","1",{}]],"parts":0,"batch":"b"}',  # bad part
    ],
)
def test_a_corrupt_entry_names_itself_and_its_channel(content: str) -> None:
    with pytest.raises(StorageCorrupted, match="entry 900 in channel 77"):
        codec.parse_header(message(content), BOT)


def test_a_malformed_operation_names_the_table_and_the_entry() -> None:
    state = TableState("notes", {})
    with pytest.raises(StorageCorrupted, match=r"table 'notes': entry 900 holds a malformed"):
        state.apply_wire(900, [["p", "1", {}], ["p", "not an id", {}]])
    assert state.count() == 0  # nothing of it was applied
