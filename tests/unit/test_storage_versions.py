"""Versions without an entry per record (storage/versions.py): runs loaded from a snapshot, and
the journal that answers versions_after in time proportional to what changed."""

from __future__ import annotations

import random

from discobase.storage.codec import Delete, Put
from discobase.storage.state import TableState
from discobase.storage.versions import RUN_MIN, Journal, scan_after

FLOOR = 1_000
BATCH = 5_000  # the version of the large write a snapshot's run of records came from


def brute_after(state: TableState, ids: range, position: int) -> dict[int, int]:
    found = {}
    for record_id in ids:
        version = state.version(record_id)
        if version is not None and version > position:
            found[record_id] = version
    return found


def with_run(count: int = 100, first: int = 10) -> TableState:
    """A state loaded from a snapshot whose records ``first..`` came from one large write."""
    state = TableState("t", {"name": False})
    lines = [["p", str(i), {"name": f"old{i}"}] for i in range(1, 6)]
    lines += [["p", str(i), {"name": f"n{i}"}, str(BATCH)] for i in range(first, first + count)]
    lines.append(["p", "7", {"name": "changed alone"}, "1200"])
    lines.append(["d", "8", "1300"])
    half = len(lines) // 2  # a run across two pieces of the snapshot is one run
    state.load_snapshot(FLOOR, lines[:half])
    state.load_snapshot(FLOOR, lines[half:])
    return state


def test_a_large_write_in_a_snapshot_keeps_no_version_entry_per_record() -> None:
    state = with_run()
    assert len(state._versions) == 2  # the record changed alone and the delete
    assert len(state._runs) == 1
    assert state.count() == 106
    assert [state.version(i) for i in (1, 7, 8, 10, 109, 110)] == [FLOOR, 1200, 1300, BATCH] + [
        BATCH,
        None,
    ]
    assert list(state.lookup("name", "n50") or ()) == [50]
    expected = {7: 1200, 8: 1300, **{i: BATCH for i in range(10, 110)}}
    assert state.versions_after(FLOOR) == expected
    assert state.versions_after(BATCH) == {}
    assert state.versions_after(FLOOR - 1) == {
        **{i: FLOOR for i in range(1, 6)},
        **expected,
    }


def test_a_run_keeps_the_rules_of_the_log() -> None:
    state = with_run()
    # An entry older than the run's write changes none of its records; one as old does.
    state.apply(BATCH - 1, [Put(20, {"name": "older"}), Delete(21)])
    assert state.get(20) == {"name": "n20"} and state.get(21) == {"name": "n21"}
    state.apply(BATCH, [Put(22, {"name": "same entry"})])
    assert state.get(22) == {"name": "same entry"}
    # Later changes and deletes take versions of their own.
    state.apply(BATCH + 1, [Put(23, {"name": "newer"}), Delete(24)])
    assert state.version(23) == BATCH + 1 and state.version(24) == BATCH + 1
    state.apply(BATCH, [Put(24, {"name": "back from the dead"})])
    assert state.get(24) is None  # the delete is newer than the run's write
    assert state.versions_after(BATCH) == {23: BATCH + 1, 24: BATCH + 1}
    assert list(state.lookup("name", "n23") or ()) == []
    assert list(state.lookup("name", "newer") or ()) == [23]


def test_short_mixed_or_scattered_writes_make_no_run() -> None:
    state = TableState("t", {})
    lines = [["p", str(i), {"v": i}, str(BATCH)] for i in range(1, RUN_MIN)]  # too short
    lines += [["p", str(i), {"v": i}, str(BATCH + 1)] for i in range(100, 200, 2)]  # gaps
    lines += [["p", str(i), {"v": i}, str(BATCH + 2)] for i in range(300, 400)]
    lines.insert(-50, ["d", "350", str(BATCH + 2)])  # a delete inside breaks it
    state.load_snapshot(FLOOR, lines)
    assert len(state._runs) == 0
    assert len(state._versions) == len({line[1] for line in lines})
    assert state.versions_after(FLOOR) == brute_after(state, range(1, 400), FLOOR)


def test_versions_after_agrees_with_every_version_through_forks_and_deletes() -> None:
    rng = random.Random(14)
    state = with_run()
    ids = range(1, 150)
    version = BATCH
    for step in range(600):
        version += rng.choice((1, 1, 1, 50))
        older = version - rng.randrange(3000)  # replayed late: often skipped
        target = state.fork() if step % 50 == 0 else state
        for _ in range(rng.randrange(1, 4)):
            record_id = rng.choice(ids)
            at = older if rng.random() < 0.2 else version
            if rng.random() < 0.25:
                target.apply(at, [Delete(record_id)])
            else:
                target.apply(at, [Put(record_id, {"name": f"v{at}"})])
        if target is not state and not (step % 100 == 0 or state.adopt(target)):
            raise AssertionError("a fork made since the last change is adopted")
        position = version - rng.randrange(4000)
        assert state.versions_after(position) == brute_after(state, ids, position)


def test_the_journal_halves_and_a_position_before_it_is_scanned() -> None:
    state = TableState("t", {})
    for version in range(1, 70_001):
        state.apply(version, [Put(version % 10, {"v": version})])
    journal = state._journal
    assert len(journal.ids) <= 65_536 and journal.base is not None
    assert journal.changed_after(1, state._versions) is None
    assert state.versions_after(1) == {i: 69_990 + i for i in range(1, 10)} | {0: 70_000}
    assert state.versions_after(69_995) == {i: 69_990 + i for i in range(6, 10)} | {0: 70_000}


def test_the_journal_and_the_scan_name_the_same_records() -> None:
    journal = Journal()
    versions: dict[int, int] = {}
    rng = random.Random(3)
    top = 0
    for _ in range(2_000):
        record_id, version = rng.randrange(300), rng.randrange(10_000)
        versions[record_id] = version
        journal.ids.append(record_id)
        top = max(top, version)
        journal.tops.append(top)
    for position in (-1, 0, 5_000, 9_990, 20_000):
        assert journal.changed_after(position, versions) == scan_after(versions, position)
