"""A table's state holds its records compactly (storage/rows.py): what it hands out, loading a
snapshot with and without the fast path, fills that change the table's shape, snapshots of a
frozen copy."""

from __future__ import annotations

from typing import Any

from discobase.storage.codec import Delete, Put
from discobase.storage.snapshot import decode_records, encode_records
from discobase.storage.state import TableState

FLOOR = 1_000


def snapshot_lines() -> list[list[Any]]:
    lines: list[list[Any]] = [["p", str(i), {"name": f"n{i}", "age": i}] for i in range(1, 80)]
    lines += [["p", str(i), {"name": f"n{i}", "age": i}, "2000"] for i in range(100, 200)]
    lines += [["p", "300", {"age": 3, "name": "other order"}], ["d", "400", "1500"]]
    lines += [["p", str(i), {"name": "dup", "age": [i, {"x": None}]}] for i in range(500, 520)]
    return lines


def loaded(**hooks: Any) -> TableState:
    state = TableState("t", {"name": False, "age": False})
    if hooks.get("column"):
        state.column("age")
        state.column("age")  # asked twice: kept, and kept current by every apply
    if hooks.get("watch"):
        state.watch(lambda changes: None)
    lines = snapshot_lines()
    for start in range(0, len(lines), 64):
        state.load_snapshot(FLOOR, lines[start : start + 64])
    return state


def facts(state: TableState) -> Any:
    ids = range(1, 600)
    return (
        dict(state.records.items()),
        [state.version(i) for i in ids],
        {key: sorted(state.lookup("name", key) or ()) for key in ("n1", "n150", "dup", "x")},
        sorted(state.lookup("age", [505, {"x": None}]) or ()),
        state.versions_after(FLOOR),
    )


def test_the_fast_load_and_the_general_apply_agree() -> None:
    fast = facts(loaded())
    assert facts(loaded(column=True)) == fast
    assert facts(loaded(watch=True)) == fast
    records, versions, names, ages, recent = fast
    assert len(records) == 79 + 100 + 1 + 20 and records[300] == {"age": 3, "name": "other order"}
    assert list(records[300]) == ["age", "name"] and versions[399] == 1500
    assert names == {"n1": [1], "n150": [150], "dup": list(range(500, 520)), "x": []}
    assert ages == [505] and len(recent) == 101


def test_a_record_read_again_unchanged_is_the_same_dict() -> None:
    state = loaded()
    first = state.get(150)
    assert first is state.get(150) is state.records[150] is state.records.get(150)
    state.apply(3000, [Put(150, {"name": "new", "age": 1})])
    assert state.get(150) is not first and first == {"name": "n150", "age": 150}


def test_a_fill_that_every_record_lacks_makes_a_new_shape() -> None:
    state = TableState("t", {"email": False})
    state.apply(1, [Put(i, {"name": f"n{i}"}) for i in range(1, 50)])
    state.apply(2, [Put(60, {"name": "has it", "email": "e60"})])

    def fill(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # One record gets nothing: it is put again as it was, under the new shape.
        return [{} if data["name"] == "n7" else {"email": data["name"] + "@x"} for data in records]

    assert state.fill_missing(["email"], fill) == 49
    assert state._records.shape == ("name", "email")
    assert state.get(1) == {"name": "n1", "email": "n1@x"} and state.get(7) == {"name": "n7"}
    assert state.get(60) == {"name": "has it", "email": "e60"}
    assert sorted(state.lookup("email", "n3@x") or ()) == [3]
    state.apply(3, [Put(70, {"name": "later"})])  # filled as it is applied
    assert state.get(70) == {"name": "later", "email": "later@x"}


def test_a_snapshot_of_a_frozen_copy_holds_the_records_as_they_were() -> None:
    state = loaded()
    frozen = state.frozen_records()
    recent = state.versions_after(FLOOR)
    before = dict(state.records.items())
    state.apply(5000, [Put(1, {"name": "after"}), Delete(2), Put(9999, {"name": "new"})])
    stream = encode_records(frozen, recent)
    again = TableState("t", {"name": False})
    for chunk in decode_records(stream):
        again.load_snapshot(FLOOR, chunk)
    assert dict(again.records.items()) == before
    assert again.versions_after(FLOOR) == recent
    copied = state.records.copy()  # a dict of every record, each a new dict
    assert type(copied) is dict and 2 not in copied and copied[9999] == {"name": "new"}
    assert copied[1] == {"name": "after"} and copied[3] == before[3] and len(copied) == len(before)


def test_a_piece_that_begins_with_a_delete_does_not_set_an_empty_shape() -> None:
    state = TableState("t", {"name": False})
    state.load_snapshot(FLOOR, [["d", "1", "1500"], ["p", "2", {"name": "a", "age": 1}]])
    state.load_snapshot(FLOOR, [["p", str(i), {"name": f"n{i}", "age": i}] for i in range(3, 9)])
    assert state._records.shape == ("name", "age")
    assert not state._records._odd  # every record is held as its values alone
    assert state.get(5) == {"name": "n5", "age": 5} and state.version(1) == 1500
