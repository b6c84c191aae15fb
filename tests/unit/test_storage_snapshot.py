"""Snapshots and the catalog: encoding, replay positions, schema compatibility."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

import pytest

from discobase._collector import gc_paused, pause_gc, resume_gc
from discobase.errors import SchemaMismatch, StorageCorrupted
from discobase.storage import codec
from discobase.storage.catalog import Catalog, TableEntry, TableSpec, schema_hash
from discobase.storage.codec import Delete, Put
from discobase.storage.evolution import check_schema
from discobase.storage.ids import snowflake_at, snowflake_ms
from discobase.storage.snapshot import (
    BATCH_WINDOW_MS,
    REPLAY_LAG_MS,
    decode_records,
    encode_records,
    replay_from,
)
from discobase.storage.state import TableState


def load(stream: bytes, position: int) -> TableState:
    state = TableState("t", {"v": False})
    for chunk in decode_records(stream):
        state.apply_wire(position, chunk, versioned=True)
    return state


def test_snapshot_round_trip_in_small_chunks() -> None:
    records = {i: {"v": i % 10, "s": "é" * (i % 5)} for i in range(1, 5000)}
    stream = encode_records(records, {})
    chunks = list(codec.iter_stream(stream, chunk_bytes=1000))
    assert len(chunks) > 10
    state = load(stream, 100)
    assert dict(state.records) == records
    assert len(state.lookup("v", 3) or ()) == 500


def test_replayed_older_entries_cannot_undo_what_the_snapshot_holds() -> None:
    # The writer had applied: put 1 at 200, put 2 at 150, delete 3 at 180; replay from 100.
    live = TableState("t", {"v": False})
    live.apply(50, [Put(1, {"v": 0}), Put(2, {"v": 0}), Put(3, {"v": 0}), Put(4, {"v": 0})])
    live.apply(150, [Put(2, {"v": 2})])
    live.apply(180, [Delete(3)])
    live.apply(200, [Put(1, {"v": 1})])
    stream = encode_records(live.records, live.versions_after(100))
    reader = load(stream, 100)
    # Entries after 100 come again (one of them, 120, was missed by the writer).
    reader.apply(120, [Put(1, {"v": "missed"}), Put(3, {"v": "missed"}), Put(5, {"v": 5})])
    reader.apply(150, [Put(2, {"v": 2})])
    reader.apply(180, [Delete(3)])
    reader.apply(200, [Put(1, {"v": 1})])
    assert reader.get(1) == {"v": 1}
    assert reader.get(3) is None  # the newer delete holds
    assert reader.get(5) == {"v": 5}  # the missed entry is not lost
    assert reader.get(4) == {"v": 0}


def test_replay_position_lags_and_respects_incomplete_batches() -> None:
    last = snowflake_at(1_700_000_000_000) | 123
    position = replay_from(last)
    assert snowflake_ms(last) - snowflake_ms(position) == REPLAY_LAG_MS
    assert replay_from(last, [position - 10]) == position - 11
    abandoned = snowflake_at(snowflake_ms(last) - BATCH_WINDOW_MS - 1)
    assert replay_from(last, [abandoned]) == position
    assert replay_from(0) == 0


def test_snapshot_rejects_non_operations() -> None:
    bad = codec.encode_stream([b'{"not": "an op"}'])
    with pytest.raises(StorageCorrupted):
        list(decode_records(bad))


SCHEMA: dict[str, Any] = {
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "pet": {"$ref": "#/$defs/Pet"},
    },
    "$defs": {
        "Pet": {"title": "Pet", "type": "object", "properties": {"kind": {"type": "string"}}}
    },
}


def entry(schema: dict[str, Any], fields: dict[str, bool]) -> TableEntry:
    return TableEntry("t", 1, schema, schema_hash(schema), fields, {}, 1, 1)


def test_schema_identical_is_free_and_cosmetic_changes_are_compatible() -> None:
    spec = TableSpec("t", SCHEMA, {"name": False, "pet": False})
    stored = entry(SCHEMA, {"name": False, "pet": False})
    assert check_schema(stored, spec) is False
    retitled = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "name": {"type": "string", "description": "x"}},
    }
    # Allowed and not recorded: two programs that differ in descriptions only would
    # otherwise record their schemas in turn on every open.
    assert check_schema(stored, TableSpec("t", retitled, spec.fields)) is False


def test_schema_changes_that_lose_data_are_refused_by_name() -> None:
    stored = entry(SCHEMA, {"name": False, "pet": False})
    nested = {
        **SCHEMA,
        "$defs": {"Pet": {"type": "object", "properties": {"kind": {"type": "integer"}}}},
    }
    with pytest.raises(SchemaMismatch) as info:
        check_schema(stored, TableSpec("t", nested, {"name": False, "pet": False}))
    assert info.value.fields == ["pet"] and info.value.table == "t"
    with pytest.raises(SchemaMismatch) as info:
        check_schema(
            stored, TableSpec("t", {"properties": {"name": {"type": "string"}}}, {"name": False})
        )
    assert info.value.fields == ["pet"]
    added = {**SCHEMA, "properties": {**SCHEMA["properties"], "age": {"type": "integer"}}}
    with pytest.raises(SchemaMismatch, match="without a default"):
        check_schema(stored, TableSpec("t", added, {"name": False, "pet": False, "age": False}))
    assert check_schema(stored, TableSpec("t", added, {"name": False, "pet": False, "age": True}))


def test_catalog_first_entry_fixes_the_channel_latest_the_schema() -> None:
    catalog = Catalog(9)
    body = {"name": "t", "channel": "20", "hash": "h2", "fields": {"a": False}, "schema": {"v": 2}}
    catalog.ingest(30, "table", body)
    catalog.ingest(10, "table", {**body, "channel": "11", "hash": "h1", "schema": {"v": 1}})
    catalog.ingest(40, "table", {**body, "channel": "11", "hash": "h3", "schema": {"v": 3}})
    table = catalog.tables["t"]
    assert table.channel_id == 11 and table.schema == {"v": 3}
    catalog.ingest(50, "snapref", {"table": "t", "channel": "11", "message": "45", "from": "44"})
    catalog.ingest(60, "snapref", {"table": "t", "channel": "11", "message": "35", "from": "34"})
    assert catalog.snapshots["t"].message_id == 45
    with pytest.raises(StorageCorrupted):
        catalog.ingest(70, "table", {"name": "x"})


def test_overlapping_gc_pauses_restore_the_collector_only_when_the_last_ends() -> None:
    # Two large writes pause the collector across awaits and may end in either order.
    was = gc.isenabled()
    gc.enable()
    try:
        pause_gc()
        pause_gc()
        resume_gc()
        assert not gc.isenabled(), "one write still holds the collector off"
        resume_gc()
        assert gc.isenabled()
        gc.disable()  # a program that runs without the collector keeps it off
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_holds_from_several_threads_give_the_collector_back() -> None:
    # Databases in two threads hold it too; unguarded, one could take the other's "off" for
    # the program's own and leave the collector off for good.
    was, interval = gc.isenabled(), sys.getswitchinterval()
    gc.enable()
    sys.setswitchinterval(1e-6)
    try:

        def hold_often() -> None:
            for _ in range(3000):
                with gc_paused():
                    pass

        threads = [threading.Thread(target=hold_often) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert gc.isenabled()
    finally:
        sys.setswitchinterval(interval)
        if not was:
            gc.disable()
