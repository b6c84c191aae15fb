"""What a watched TableState reports after each apply (discobase.storage.changes)."""

from __future__ import annotations

from discobase.storage.changes import Applied
from discobase.storage.codec import Delete, Put
from discobase.storage.state import TableState


def watched() -> tuple[TableState, list[Applied]]:
    state = TableState("t", {"name": False})
    seen: list[Applied] = []
    state.watch(seen.extend)
    return state, seen


def test_inserts_updates_and_deletes_carry_old_and_new() -> None:
    state, seen = watched()
    state.apply(10, [Put(1, {"name": "a"})])
    state.apply(11, [Put(1, {"name": "b"})])
    state.apply(12, [Delete(1)])
    assert seen == [
        Applied(10, 1, None, {"name": "a"}),
        Applied(11, 1, {"name": "a"}, {"name": "b"}),
        Applied(12, 1, {"name": "b"}, None),
    ]


def test_an_entry_applied_again_or_late_reports_nothing() -> None:
    state, seen = watched()
    state.apply(10, [Put(1, {"name": "a"})])
    state.apply_wire(10, [["p", 1, {"name": "a"}]])  # the same entry read again
    state.apply(9, [Put(1, {"name": "older"})])  # older than what the record holds
    state.apply(8, [Delete(2)])  # a record never held
    assert seen == [Applied(10, 1, None, {"name": "a"})]


def test_two_operations_of_one_entry_on_a_record_are_one_change() -> None:
    state, seen = watched()
    state.apply(10, [Put(1, {"name": "a"}), Put(1, {"name": "b"})])
    assert seen == [Applied(10, 1, None, {"name": "b"})]


def test_a_fork_reports_when_adopted_and_not_before() -> None:
    state, seen = watched()
    twin = state.fork()
    twin.apply(10, [Put(1, {"name": "a"})])
    assert seen == []
    assert state.adopt(twin)
    assert seen == [Applied(10, 1, None, {"name": "a"})]


def test_a_fork_made_before_a_watcher_is_not_adopted() -> None:
    state = TableState("t", {})
    twin = state.fork()
    twin.apply(10, [Put(1, {"name": "a"})])
    seen: list[Applied] = []
    state.watch(seen.extend)
    assert not state.adopt(twin)  # the caller applies the entry here instead, watched
    state.apply(10, [Put(1, {"name": "a"})])
    assert seen == [Applied(10, 1, None, {"name": "a"})]


def test_without_a_watcher_nothing_is_noted() -> None:
    state, seen = watched()
    state.watch(None)
    state.apply(10, [Put(1, {"name": "a"})])
    assert seen == [] and state.get(1) == {"name": "a"}
