"""The nemesis checker (bench/nemesis_check.py) on hand-made histories: it flags what it must."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "nemesis_check.py"
_spec = importlib.util.spec_from_file_location("nemesis_check", _PATH)
assert _spec is not None and _spec.loader is not None
nc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("nemesis_check", nc)
_spec.loader.exec_module(nc)


class History:
    """Builds history lines: ``h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")``."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.n = 0

    def op(
        self,
        process: str,
        f: str,
        writes: list[tuple[str, int | None]],
        invoke: float,
        complete: float | None,
        outcome: str,
        **extra: Any,
    ) -> str:
        self.n += 1
        op = f"{process}.{self.n}"
        self.lines.append(
            {"type": "invoke", "op": op, "process": process, "f": f, "writes": writes, "t": invoke}
        )
        if complete is not None:
            self.lines.append({"type": outcome, "op": op, "t": complete, **extra})
        return op


def judge(
    h: History,
    final: dict[str, int | list[int]],
    *,
    ends: dict[str, float] | None = None,
    observations: dict[str, list[Any]] | None = None,
    reports: dict[str, dict[str, int]] | None = None,
    quiet_at: float = 100.0,
    bound: float = 10.0,
    damage: Any = None,
    scope: dict[str, tuple[str, ...]] | None = None,
) -> Any:
    records = []
    for i, (key, values) in enumerate(final.items()):
        for j, value in enumerate(values if isinstance(values, list) else [values]):
            records.append({"key": key, "id": f"{i}.{j}", "value": value})
    ops = nc.build_ops(h.lines, ends or {}, grace=0.5)
    return nc.check(
        ops,
        records,
        observations or {},
        reports or {},
        quiet_at=quiet_at,
        bound=bound,
        damage=damage,
        scope=scope,
    )


def counts(verdict: Any) -> dict[str, int]:
    return {k: n for k, n in verdict.counts.items() if n}


def sample(t: float, **changes: int | None) -> Any:
    return nc.Observation(t, {k.replace("__", "/"): v for k, v in changes.items()})


# -- what must pass ----------------------------------------------------------------------


def test_the_last_ok_write_of_each_key_is_what_a_correct_run_ends_with() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 3, "ok")
    h.op("w1", "save", [("t/b", 3)], 4, 5, "ok")
    h.op("w1", "delete", [("t/b", None)], 6, 7, "ok")
    v = judge(h, {"t/a": 2})
    assert v.ok, v.examples
    assert v.operations["ok"] == 4


@pytest.mark.parametrize("present", [True, False])
def test_an_info_write_may_be_there_or_not(present: bool) -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, None, "info")  # killed mid-operation
    h.op("w1", "save", [("t/b", 3)], 2, 3, "info", error="ServerError: 503")
    v = judge(h, {"t/a": 2, "t/b": 3} if present else {"t/a": 1}, ends={"w1": 4})
    assert v.ok, v.examples


def test_an_info_save_many_may_be_there_whole_or_not_at_all() -> None:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2), ("t/c", 3)], 0, 1, "info")
    assert judge(h, {"t/a": 1, "t/b": 2, "t/c": 3}).ok
    assert judge(h, {}).ok


def test_a_fail_write_absent_passes() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "fail", error="BadRequest")
    assert judge(h, {}).ok


def test_shared_keys_allow_any_write_not_superseded() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    # Two concurrent updates: either may win.
    h.op("w1", "update", [("t/a", 2)], 2, 5, "ok")
    h.op("w2", "update", [("t/a", 3)], 3, 4, "ok")
    assert judge(h, {"t/a": 2}).ok
    assert judge(h, {"t/a": 3}).ok
    # A concurrent delete may win too, and an update after it writes the record again.
    h.op("w3", "delete", [("t/a", None)], 2.5, 4.5, "ok")
    assert judge(h, {}).ok


def test_an_info_write_of_a_killed_writer_ends_with_the_process() -> None:
    h = History()
    h.op("w1.0", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1.0", "update", [("t/a", 2)], 2, None, "info")
    h.op("w1.1", "update", [("t/a", 3)], 10, 11, "ok")  # the next incarnation, after the kill
    assert judge(h, {"t/a": 3}, ends={"w1.0": 5}).ok
    lost = judge(h, {"t/a": 2}, ends={"w1.0": 5})
    assert counts(lost) == {"lost": 1}


def test_readers_that_only_move_forward_pass_and_their_convergence_is_measured() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 3, "ok")
    h.op("w1", "delete", [("t/a", None)], 4, 5, "ok")
    h.op("w1", "save_many", [("t/b", 4), ("t/c", 5)], 6, 7, "ok")
    samples = [
        sample(1.5, t__a=1),
        sample(3.5, t__a=2),
        sample(5.5, t__a=None),
        sample(101.0, t__b=4, t__c=5),
    ]
    v = judge(
        h,
        {"t/b": 4, "t/c": 5},
        observations={"r0": samples},
        reports={"r0": {"t/b": 4, "t/c": 5}},
    )
    assert v.ok, v.examples
    assert v.convergence == {"r0": pytest.approx(1.0)}


# -- what must be flagged ----------------------------------------------------------------


def test_a_lost_acknowledged_save_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    v = judge(h, {})
    assert counts(v) == {"lost": 1}
    assert "t/a is absent" in v.examples["lost"][0]


def test_a_lost_acknowledged_update_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 3, "ok")
    assert counts(judge(h, {"t/a": 1})) == {"lost": 1}


def test_a_lost_acknowledged_delete_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "delete", [("t/a", None)], 2, 3, "ok")
    assert counts(judge(h, {"t/a": 1})) == {"lost": 1}


def test_an_earlier_info_write_does_not_excuse_losing_a_later_ok_one() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 3, "info", error="ServerError")
    h.op("w1", "update", [("t/a", 3)], 4, 5, "ok")
    assert counts(judge(h, {"t/a": 2})) == {"lost": 1}


def test_a_doubled_record_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    assert counts(judge(h, {"t/a": [1, 1]})) == {"doubled": 1}


def test_a_doubled_id_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    ops = nc.build_ops(h.lines, {}, grace=0.5)
    records = [{"key": "t/a", "id": "7", "value": 1}, {"key": "t/a", "id": "7", "value": 1}]
    v = nc.check(ops, records, {}, {}, quiet_at=0.0, bound=1.0)
    assert v.counts["doubled"] == 2  # the id twice, and so the key twice


def test_a_partial_save_many_is_flagged() -> None:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2), ("t/c", 3)], 0, 1, "info")
    v = judge(h, {"t/a": 1, "t/b": 2})
    assert counts(v) == {"partial": 1}


def test_a_partial_save_many_seen_by_a_reader_is_flagged() -> None:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2)], 0, 1, "ok")
    samples = [sample(0.5, t__a=1), sample(1.5, t__b=2)]
    v = judge(h, {"t/a": 1, "t/b": 2}, observations={"r0": samples})
    assert counts(v) == {"partial": 1}


def test_a_partial_save_many_explained_by_a_delete_passes() -> None:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2)], 0, 1, "ok")
    h.op("w2", "delete", [("t/b", None)], 2, 3, "ok")
    assert judge(h, {"t/a": 1}).ok


def test_a_failed_write_that_is_stored_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "fail", error="BadRequest")
    assert counts(judge(h, {"t/a": 1})) == {"failed_visible": 1}


def test_a_value_nobody_wrote_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    assert counts(judge(h, {"t/a": 99})) == {"phantom": 1}


def test_a_reader_going_back_to_an_older_value_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 3, "ok")
    samples = [sample(1.5, t__a=1), sample(3.5, t__a=2), sample(4.0, t__a=1)]
    v = judge(h, {"t/a": 2}, observations={"r0": samples})
    assert counts(v) == {"reverted": 1}


def test_a_reader_seeing_a_deleted_key_come_back_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "delete", [("t/a", None)], 2, 3, "ok")
    samples = [sample(1.5, t__a=1), sample(3.5, t__a=None), sample(4.0, t__a=1)]
    v = judge(h, {}, observations={"r0": samples})
    assert counts(v) == {"reverted": 1}


def test_a_reader_losing_a_key_nobody_deleted_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    samples = [sample(1.5, t__a=1), sample(3.5, t__a=None), sample(4.0, t__a=1)]
    v = judge(h, {"t/a": 1}, observations={"r0": samples})
    assert counts(v) == {"reverted": 1}


def test_a_reader_that_diverges_from_the_fresh_load_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "save", [("t/b", 2)], 2, 3, "ok")
    v = judge(
        h,
        {"t/a": 1, "t/b": 2},
        observations={"r0": [sample(1.5, t__a=1)]},
        reports={"r0": {"t/a": 1}, "w1": {"t/a": 1, "t/b": 2}},
    )
    assert counts(v) == {"divergent": 1}
    assert "r0" in v.examples["divergent"][0]
    assert v.convergence["r0"] is None


def test_a_reader_that_converges_after_the_bound_is_flagged() -> None:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    samples = [sample(150.0, t__a=1)]
    v = judge(h, {"t/a": 1}, observations={"r0": samples}, reports={"r0": {"t/a": 1}})
    assert counts(v) == {"late": 1}
    assert v.convergence["r0"] == pytest.approx(50.0)


def test_an_op_without_completion_is_info_and_ends_with_its_process_plus_grace() -> None:
    h = History()
    op = h.op("w1", "update", [("t/a", 2)], 2, None, "info")
    ops = nc.build_ops(h.lines, {"w1": 4.0}, grace=0.5)
    assert ops[op].outcome == "info" and ops[op].end == 4.5
    timed_out = h.op("w2", "update", [("t/a", 3)], 2, 3, "info", pending=True)
    ops = nc.build_ops(h.lines, {}, grace=0.5)
    assert ops[timed_out].end == math.inf


def test_a_reader_holding_a_batch_key_only_from_a_later_update_is_not_partial() -> None:
    # The reader missed the batch's message but got the update (a whole record): a missed
    # message (it shows as divergence), not a torn batch.
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 3)], 2, 3, "ok")
    v = judge(h, {"t/a": 3, "t/b": 2}, observations={"r0": [sample(3.5, t__a=3)]})
    assert v.ok, v.examples


# -- invariant 5: damage is named ----------------------------------------------------------

CHANNEL = "555"


def deleted(message: str, writes: list[tuple[str, int | None]], **extra: Any) -> Any:
    return nc.Deleted(message=message, table="t", channel=CHANNEL, t=10.0, writes=writes, **extra)


def missing_line(message: str, table: str = "t", channel: str = CHANNEL) -> str:
    return (
        f"table '{table}' (channel {channel}): entry {message} is missing from the log "
        "(deleted?); entry 999 follows it. Records it wrote that no later entry changed are lost"
    )


def repaired_line(message: str) -> str:
    return (
        f"table 't' (channel {CHANNEL}): entry {message} was deleted; its 1 records were "
        "written again in entry 1000"
    )


def two_saves() -> History:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "save", [("t/b", 2)], 2, 3, "ok")
    return h


def test_a_live_deletion_written_again_leaves_the_data_intact() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)])],
        lines={"fresh": [], "r0": [repaired_line("77")]},
    )
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["intact"] == 1 and v.damage["repaired"] == 1


def test_a_deleted_entry_whose_write_a_later_one_replaced_is_intact() -> None:
    h = two_saves()
    h.op("w1", "update", [("t/a", 5)], 4, 5, "ok")
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 1)])], lines={"fresh": []})
    v = judge(h, {"t/a": 5, "t/b": 2}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["intact"] == 1


def test_a_loss_the_fresh_loader_names_is_not_a_lost_write() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)])],
        lines={"fresh": [missing_line("77")], "r0": []},
    )
    v = judge(two_saves(), {"t/b": 2}, reports={"r0": {"t/b": 2}}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["lost, reported"] == 1


def test_a_lost_delete_brings_the_key_back_and_is_named() -> None:
    h = two_saves()
    h.op("w1", "delete", [("t/a", None)], 4, 5, "ok")
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", None)])], lines={"fresh": [missing_line("77")]}
    )
    v = judge(h, {"t/a": 1, "t/b": 2}, damage=damage)
    assert v.ok, v.examples


def test_a_missing_entry_no_process_names_is_unreported() -> None:
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 1)])], lines={"fresh": []})
    v = judge(two_saves(), {"t/b": 2}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples


def test_a_live_deletion_only_its_killed_writer_could_repair_is_untraceable() -> None:
    # Named by no later entry, held by no live process, its writer killed before it could
    # write it again: the documented limit (both its events lost to every other process).
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)], named=False)],
        lines={"fresh": []},
        killed={"w1": 11.0},
        repair_window=5.0,
    )
    v = judge(two_saves(), {"t/b": 2}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["untraceable"] == 1


def test_a_live_deletion_is_unreported_if_its_writer_lived_to_repair_it() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)], named=False)],
        lines={"fresh": []},
        killed={"w1": 60.0},
        repair_window=5.0,
    )
    v = judge(two_saves(), {"t/b": 2}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples


def test_a_live_deletion_a_live_process_still_holds_is_never_untraceable() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)], named=False)],
        lines={"fresh": []},
        killed={"w1": 11.0},
        repair_window=5.0,
    )
    v = judge(two_saves(), {"t/b": 2}, reports={"r0": {"t/a": 1, "t/b": 2}}, damage=damage)
    assert v.counts["damage_unreported"] == 1, v.examples


def test_a_line_naming_the_message_of_another_table_does_not_count() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)])],
        lines={"fresh": [missing_line("77", table="u"), missing_line("77", channel="444")]},
    )
    v = judge(two_saves(), {"t/b": 2}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples


def test_a_lost_batch_entry_whose_records_were_updated_since_is_not_partial() -> None:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 3)], 2, 3, "ok")
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1), ("t/b", 2)])], lines={"fresh": [missing_line("77")]}
    )
    v = judge(h, {"t/a": 3}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["lost, reported"] == 1


def test_a_repair_the_fresh_load_does_not_show_is_inconsistent() -> None:
    # A live process said it wrote the entry again; the fresh load holds the older value
    # (a repaired record reverted) and names no loss.
    h = two_saves()
    h.op("w1", "update", [("t/a", 5)], 4, 5, "ok")
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 5)])],
        lines={"fresh": [], "r0": [repaired_line("77")]},
    )
    v = judge(h, {"t/a": 1, "t/b": 2}, damage=damage)
    assert counts(v) == {"damage_inconsistent": 1}, v.examples


def test_a_live_process_still_holding_what_the_loader_reports_lost_is_inconsistent() -> None:
    damage = nc.Damage(
        deleted=[deleted("77", [("t/a", 1)])],
        lines={"fresh": [missing_line("77")], "r0": []},
    )
    v = judge(two_saves(), {"t/b": 2}, reports={"r0": {"t/a": 1, "t/b": 2}}, damage=damage)
    assert counts(v) == {"damage_inconsistent": 1}, v.examples


def test_a_live_process_that_never_read_a_deleted_entry_the_fresh_load_holds() -> None:
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 1)])], lines={"fresh": []})
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, reports={"r0": {"t/b": 2}}, damage=damage)
    assert counts(v) == {"damage_inconsistent": 1}, v.examples


def test_a_lost_key_no_deleted_entry_held_is_still_lost() -> None:
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 1)])], lines={"fresh": []})
    v = judge(two_saves(), {"t/a": 1}, damage=damage)
    assert counts(v) == {"lost": 1}, v.examples


def offline(after: dict[str, int], lines: list[str], **extra: Any) -> Any:
    return nc.Damage(
        deleted=[deleted("88", [("t/b", 2)], offline=True, **extra)],
        lines={"fresh": [], "fresh2": lines},
        after=[{"key": k, "id": k, "value": v} for k, v in after.items()],
    )


def test_an_entry_deleted_while_nobody_runs_is_named_by_the_next_process() -> None:
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=offline({"t/a": 1}, [missing_line("88")]))
    assert v.ok, v.examples
    assert v.damage["lost, reported"] == 1


def test_an_unnamed_offline_deletion_not_reported_is_flagged() -> None:
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=offline({"t/a": 1}, []))
    assert counts(v) == {"damage_unreported": 1}, v.examples


def test_the_newest_entry_deleted_while_nobody_runs_is_untraceable_not_a_failure() -> None:
    damage = offline({"t/a": 1}, [], named=False, newest=True)
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["untraceable"] == 1 and not v.damage["untraceable, not the newest"]
    assert "newest" in v.examples["untraceable"][0]


def test_an_older_entry_no_later_entry_names_is_untraceable_too_and_counted_apart() -> None:
    damage = offline({"t/a": 1}, [], named=False, newest=False)
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["untraceable"] == 1 and v.damage["untraceable, not the newest"] == 1


def test_the_second_load_losing_a_key_no_deletion_held_is_lost() -> None:
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=offline({"t/b": 2}, []))
    assert counts(v) == {"lost": 1}, v.examples


def renamed(lines: list[str]) -> Any:
    return nc.Damage(
        lines={"fresh": [], "w1.1": lines},
        catalog="444",
        renames=[(5.0, "renamed-1"), (20.0, "discobase")],
        opened={"w1.1": (6.0, 8.0), "fresh": (30.0, 31.0)},
    )


def test_a_process_opening_while_the_catalog_is_renamed_reports_it() -> None:
    line = (
        "the catalog channel (444) was renamed to #renamed-1; discobase found it by its "
        "entries and uses it (rename it back to #discobase to keep it easy to find)"
    )
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=renamed([line]))
    assert v.ok, v.examples
    assert v.damage["opened with the catalog renamed"] == 1


def test_a_process_silent_about_a_renamed_catalog_is_flagged() -> None:
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=renamed([]))
    assert counts(v) == {"damage_unreported": 1}, v.examples


def concurrent_updates() -> History:
    h = History()
    h.op("w1", "save", [("t/a", 1)], 0, 1, "ok")
    h.op("w1", "update", [("t/a", 2)], 2, 4, "ok")
    h.op("w2", "update", [("t/a", 3)], 3, 4, "ok")  # concurrent: 2 or 3 may win
    return h


def test_a_deleted_concurrent_write_no_process_holds_leaves_an_allowed_state() -> None:
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 2)])], lines={"fresh": []})
    v = judge(concurrent_updates(), {"t/a": 3}, reports={"r0": {"t/a": 3}}, damage=damage)
    assert v.ok, v.examples


def test_a_deleted_concurrent_write_live_processes_still_hold_is_a_silent_loss() -> None:
    # The fresh load shows the other write (allowed by invariant 1), but the processes hold
    # the deleted entry's: nobody noticed the deletion. Not plain divergence: invariant 5.
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 2)])], lines={"fresh": []})
    v = judge(concurrent_updates(), {"t/a": 3}, reports={"r0": {"t/a": 2}}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples


def test_a_lost_delete_live_processes_applied_is_named_with_them() -> None:
    h = two_saves()
    h.op("w1", "delete", [("t/a", None)], 4, 5, "ok")
    damage = nc.Damage(deleted=[deleted("77", [("t/a", None)])], lines={"fresh": []})
    v = judge(h, {"t/a": 1, "t/b": 2}, reports={"r0": {"t/b": 2}}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples
    assert "['r0'] still hold" in v.examples["damage_unreported"][0]


# -- table races: processes that hold only some tables --------------------------------------


def test_a_process_is_judged_only_on_the_tables_it_holds() -> None:
    h = two_saves()
    h.op("x0a", "save", [("race0/k", 3)], 2, 3, "ok")
    final = {"t/a": 1, "t/b": 2, "race0/k": 3}
    reports = {"w1": {"t/a": 1, "t/b": 2}, "x0a": {"race0/k": 3}}
    scope = {"w1": ("t",), "x0a": ("race0",)}
    assert judge(h, final, reports=reports, scope=scope).ok
    # Without its scope each would lack the other's table; and within it, a racer that
    # lacks its own table's record diverges.
    assert counts(judge(h, final, reports=reports)) == {"divergent": 2}
    reports["x0a"] = {}
    assert counts(judge(h, final, reports=reports, scope=scope)) == {"divergent": 1}


def test_a_deleted_entry_is_not_judged_by_a_process_without_its_table() -> None:
    # r0 holds only table u: that it lacks t/a (a deleted entry's write the fresh load shows)
    # says nothing.
    damage = nc.Damage(deleted=[deleted("77", [("t/a", 1)])], lines={"fresh": []})
    reports = {"r0": {}}
    v = judge(two_saves(), {"t/a": 1, "t/b": 2}, damage=damage, reports=reports)
    assert counts(v) == {"damage_inconsistent": 1, "divergent": 1}, v.examples
    v = judge(
        two_saves(), {"t/a": 1, "t/b": 2}, damage=damage, reports=reports, scope={"r0": ("u",)}
    )
    assert v.ok, v.examples


# -- parts of multi-part batches ------------------------------------------------------------


def batch_of_two() -> History:
    h = History()
    h.op("w1", "save_many", [("t/a", 1), ("t/b", 2)], 0, 1, "ok")
    return h


def parts(*messages: str, named: bool = True, **extra: Any) -> list[Any]:
    """Deleted parts of one batch that held t/a and t/b."""
    return [
        deleted(m, [("t/a", 1), ("t/b", 2)], batch="b1", named=named, **extra) for m in messages
    ]


def test_a_lost_batch_is_named_by_the_part_a_reader_found_gone() -> None:
    # Parts 70 and 71 of one batch deleted; the loader names the first it misses, 70: that
    # names the loss of both.
    damage = nc.Damage(deleted=parts("70", "71"), lines={"fresh": [missing_line("70")]})
    v = judge(batch_of_two(), {}, damage=damage)
    assert v.ok, v.examples
    assert v.damage["lost, reported"] == 2
    assert v.damage["parts of multi-part entries deleted"] == 2


def test_a_lost_batch_part_named_only_by_another_batchs_part_is_unreported() -> None:
    other = deleted("90", [("t/c", 3)], batch="b2")
    h = batch_of_two()
    h.op("w1", "save", [("t/c", 3)], 2, 3, "ok")
    damage = nc.Damage(deleted=[*parts("70"), other], lines={"fresh": [missing_line("90")]})
    v = judge(h, {}, damage=damage)
    assert counts(v) == {"damage_unreported": 1}, v.examples
    assert "entry 70" in v.examples["damage_unreported"][0]


def test_a_batch_part_is_traceable_when_another_deleted_part_is_named() -> None:
    # Offline: the last part (unnamed: no later entry) and part 0 (named by the last part's
    # prior when it was deleted) both gone; the loader says nothing: unreported, not excused.
    first, last = parts("70", offline=True)[0], parts("71", named=False, offline=True)[0]
    damage = nc.Damage(
        deleted=[first, last],
        lines={"fresh": [], "fresh2": []},
        after=[],
    )
    v = judge(batch_of_two(), {"t/a": 1, "t/b": 2}, damage=damage)
    assert counts(v) == {"damage_unreported": 2}, v.examples
    first.named = False
    v = judge(batch_of_two(), {"t/a": 1, "t/b": 2}, damage=damage)
    assert v.ok and v.damage["untraceable"] == 2, v.examples
