"""Table state: message-id ordering, idempotent re-apply, indexes and unique enforcement."""

from __future__ import annotations

import itertools

import pytest

from discobase.errors import StorageCorrupted, UniqueViolation
from discobase.storage.codec import Delete, Put
from discobase.storage.ids import IdGenerator, snowflake_at, snowflake_ms
from discobase.storage.state import TableState


def make() -> TableState:
    return TableState("user", {"name": False, "email": True}, defaults={"name": "anon"})


def test_apply_put_get_count_lookup() -> None:
    state = make()
    state.apply(
        10, [Put(1, {"name": "Peter", "email": "p@x"}), Put(2, {"name": "Peter", "email": "q@x"})]
    )
    assert state.count() == 2
    assert state.get(1) == {"name": "Peter", "email": "p@x"}
    assert set(state.lookup("name", "Peter") or ()) == {1, 2}
    assert list(state.lookup("email", "q@x") or ()) == [2]
    assert state.lookup("unindexed", 1) is None
    assert list(state.lookup("name", "nobody") or ()) == []


def test_later_entry_wins_whatever_the_arrival_order() -> None:
    entries = [
        (10, [Put(1, {"name": "a", "email": "1"})]),
        (20, [Put(1, {"name": "b", "email": "1"})]),
        (30, [Delete(1)]),
        (40, [Put(2, {"name": "c", "email": "2"})]),
        (50, [Put(2, {"name": "d", "email": "2"}), Put(3, {"name": "d", "email": "3"})]),
    ]
    results = set()
    for order in itertools.permutations(entries):
        state = make()
        for version, ops in order:
            state.apply(version, ops)
        for version, ops in order:  # applying twice changes nothing
            state.apply(version, ops)
        results.add(tuple(sorted((k, tuple(sorted(v.items()))) for k, v in state.records.items())))
        assert set(state.lookup("name", "d") or ()) == {2, 3}
        assert list(state.lookup("name", "a") or ()) == []
    assert len(results) == 1


def test_ops_in_one_entry_apply_in_order() -> None:
    state = make()
    state.apply(
        5, [Put(1, {"name": "a", "email": "x"}), Put(1, {"name": "b", "email": "x"}), Delete(1)]
    )
    assert state.get(1) is None and state.count() == 0
    state.apply(5, [Delete(1), Put(1, {"name": "z", "email": "x"})])
    assert state.get(1) == {"name": "z", "email": "x"}


def test_missing_field_is_indexed_under_its_default() -> None:
    state = make()
    state.apply(1, [Put(1, {"email": "a"})])
    assert list(state.lookup("name", "anon") or ()) == [1]


def test_index_keys_keep_json_types_apart() -> None:
    state = TableState("t", {"v": False})
    state.apply(
        1,
        [
            Put(1, {"v": 1}),
            Put(2, {"v": 1.0}),
            Put(3, {"v": True}),
            Put(4, {"v": "1"}),
            Put(5, {"v": [1]}),
            Put(6, {"v": None}),
        ],
    )
    assert list(state.lookup("v", 1) or ()) == [1]
    assert list(state.lookup("v", 1.0) or ()) == [2]
    assert list(state.lookup("v", True) or ()) == [3]
    assert list(state.lookup("v", "1") or ()) == [4]
    assert list(state.lookup("v", [1]) or ()) == [5]
    assert list(state.lookup("v", None) or ()) == [6]
    state.apply(2, [Put(7, {"v": {"a": 1, "b": [2, 3]}})])
    assert list(state.lookup("v", {"b": [2, 3], "a": 1}) or ()) == [7]


def test_unique_checked_against_live_and_pending() -> None:
    state = make()
    state.apply(1, [Put(1, {"name": "a", "email": "taken"})])
    with pytest.raises(UniqueViolation) as info:
        state.check([Put(2, {"name": "b", "email": "taken"})])
    assert info.value.field == "email" and info.value.value == "taken"
    state.check([Put(1, {"name": "renamed", "email": "taken"})])  # same record: fine
    ops = [Put(3, {"name": "c", "email": "new"})]
    state.check(ops)
    token = state.hold(ops)
    with pytest.raises(UniqueViolation):
        state.check([Put(4, {"name": "d", "email": "new"})])
    state.release(token, ops)
    state.check([Put(4, {"name": "d", "email": "new"})])


def test_unique_freed_by_pending_change_and_within_group() -> None:
    state = make()
    state.apply(1, [Put(1, {"name": "a", "email": "e"})])
    move = [Put(1, {"name": "a", "email": "other"})]
    state.check(move)
    token = state.hold(move)
    state.check([Put(2, {"name": "b", "email": "e"})])  # record 1 is leaving "e"
    state.release(token, move)
    state.check([Delete(1), Put(2, {"name": "b", "email": "e"})])  # freed in the same group
    with pytest.raises(UniqueViolation):
        state.check([Put(5, {"name": "x", "email": "dup"}), Put(6, {"name": "y", "email": "dup"})])


def test_load_snapshot_then_replay_older_entries() -> None:
    state = make()
    state.load(100, [(1, {"name": "snap", "email": "1"})])
    state.apply(90, [Put(1, {"name": "old", "email": "1"})])  # before the replay point
    assert state.get(1) == {"name": "snap", "email": "1"}
    state.apply(110, [Put(1, {"name": "new", "email": "1"})])
    assert state.get(1) == {"name": "new", "email": "1"}


def test_ids_increase_and_follow_the_clock() -> None:
    now = [1_700_000_000_000]
    gen = IdGenerator(clock_ms=lambda: now[0], seed=5)
    ids = [gen.new_id() for _ in range(10_000)]
    assert ids == sorted(set(ids))
    assert all(0 < i < 2**63 for i in ids)
    assert snowflake_ms(ids[0]) == now[0]
    now[0] += 1000
    later = gen.new_id()
    assert later > ids[-1] and snowflake_ms(later) == now[0]
    now[0] -= 5000  # a clock stepping back never repeats an id
    assert gen.new_id() > later
    assert snowflake_at(0) == 0


def test_two_generators_started_together_differ() -> None:
    a = IdGenerator(clock_ms=lambda: 1_700_000_000_000, seed=1)
    b = IdGenerator(clock_ms=lambda: 1_700_000_000_000, seed=1_000)
    assert {a.new_id() for _ in range(100)}.isdisjoint({b.new_id() for _ in range(100)})


def test_a_malformed_entry_changes_nothing() -> None:
    state = make()
    with pytest.raises(StorageCorrupted):
        state.apply_wire(5, [["p", "1", {"name": "a", "email": "x"}], ["p", "2", "not a dict"]])
    assert state.count() == 0 and state.version(1) is None


def test_versioned_rows_share_their_version_and_refuse_a_bad_one() -> None:
    state = make()
    state.apply_wire(
        5,
        [["p", "1", {"email": "a"}, "700"], ["p", "2", {"email": "b"}, "700"], ["p", "3", {}]],
        versioned=True,
    )
    assert state.version(1) == state.version(2) == 700 and state.version(3) == 5
    assert state.version(1) is state.version(2)
    for bad in (None, "x", [700]):
        fresh = make()
        with pytest.raises(StorageCorrupted):
            fresh.apply_wire(5, [["p", "9", {"email": "z"}, bad]], versioned=True)
        assert fresh.count() == 0


def test_a_column_follows_every_change_after_it_is_made() -> None:
    import random

    state = make()
    rng = random.Random(7)

    def expected(field: str) -> dict[int, object]:
        return {i: d[field] for i, d in state.records.items() if field in d}

    state.apply(1, [Put(i, {"name": f"n{i % 3}", "age": i}) for i in range(20)])
    # The first scan reads a column made for it only (from the rows); the second keeps one.
    assert dict(state.column("age") or {"not": "built"}) == expected("age")
    assert "age" not in state._columns
    assert dict(state.column("age") or {"not": "built"}) == expected("age")
    for version in range(2, 300):
        record_id = rng.randrange(30)
        kind = rng.random()
        if kind < 0.3:
            state.apply(version, [Delete(record_id)])
        elif kind < 0.5:
            state.apply(version, [Put(record_id, {"name": "no age"})])
        elif kind < 0.6:
            state.apply_wire(version, [["p", str(record_id), {"age": [version]}]])
        else:
            state.apply(version, [Put(record_id, {"name": "x", "age": version % 7})])
        if version == 150:
            state.apply(1, [Put(record_id, {"age": "older entry: skipped"})])
        assert dict(state.column("age") or {"not": "built"}) == expected("age")
    assert dict(state.column("name") or {"not": "built"}) == expected("name")
    assert dict(state.column("name") or {"not": "built"}) == expected("name")
    state.clear()
    assert state.column("age") == {} == state.column("name")


def test_new_ids_continue_the_sequence() -> None:
    now = [1_700_000_000_000]
    gen = IdGenerator(clock_ms=lambda: now[0], seed=5)
    before = gen.new_id()
    block = gen.new_ids(1000)
    assert block == list(range(before + 1, before + 1001))
    assert gen.new_id() == block[-1] + 1
    assert gen.new_ids(0) == []


def test_a_fork_changes_nothing_until_it_is_adopted() -> None:
    state = make()
    state.apply(10, [Put(1, {"name": "Peter", "email": "p"}), Put(2, {"name": "Peter"})])
    state.column("email")
    state.column("email")  # the second call makes the column the fork must keep current
    twin = state.fork()
    twin.apply(20, [Put(3, {"name": "Peter", "email": "r"}), Delete(1)])
    twin.apply(20, [Put(2, {"name": "Paul", "email": "q"})])
    # The live state, its set-valued index entry and its column are as they were.
    assert state.count() == 2 and state.get(3) is None and state.get(1) is not None
    assert set(state.lookup("name", "Peter") or ()) == {1, 2}
    assert dict(state.column("email") or {}) == {1: "p"}
    assert state.adopt(twin)
    assert state.count() == 2 and state.get(1) is None and state.version(1) == 20
    assert set(state.lookup("name", "Peter") or ()) == {3}
    assert list(state.lookup("name", "Paul") or ()) == [2]
    assert dict(state.column("email") or {}) == {2: "q", 3: "r"}
    assert dict(state.records) == {2: {"name": "Paul", "email": "q"}, 3: twin.get(3)}


def test_a_fork_is_refused_once_the_state_changed_after_it() -> None:
    state = make()
    twin = state.fork()
    twin.apply(20, [Put(1, {"name": "a"})])
    state.apply(30, [Put(2, {"name": "b"})])
    assert not state.adopt(twin)
    assert state.get(1) is None and state.get(2) == {"name": "b"}


def test_fill_missing_gives_each_old_record_one_value_and_indexes_it() -> None:
    state = TableState("user", {"code": False})
    made = itertools.count(1)
    state.apply(10, [Put(1, {"name": "a"}), Put(2, {"name": "b", "code": "x"})])
    state.column("code")
    state.column("code")  # the second scan builds the column

    def fill(lacking: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{"code": f"c{next(made)}"} for _ in lacking]

    filled = state.fill_missing(["code"], fill)

    assert filled == 1
    assert state.get(1) == {"name": "a", "code": "c1"}
    assert state.get(1) == {"name": "a", "code": "c1"}  # made once, not per read
    assert list(state.lookup("code", "c1") or ()) == [1]
    assert dict(state.column("code") or {}) == {1: "c1", 2: "x"}
    # Records applied later are filled as they come; ones that have the field are kept.
    state.apply(11, [Put(3, {"name": "c"}), Put(4, {"name": "d", "code": "y"})])
    assert state.get(3) == {"name": "c", "code": "c2"}
    assert state.get(4) == {"name": "d", "code": "y"}
    assert list(state.lookup("code", "c2") or ()) == [3]


def test_fill_missing_invalidates_a_fork_made_before_it() -> None:
    state = TableState("user", {})
    state.apply(10, [Put(1, {"name": "a"})])
    twin = state.fork()
    state.fill_missing(["code"], lambda lacking: [{"code": "c"} for _ in lacking])
    twin.apply(11, [Put(2, {"name": "b"})])
    assert not state.adopt(twin)
