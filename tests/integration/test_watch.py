"""Change feeds: ``Model.watch()`` and ``db.watch()`` across two processes and through faults.

Two Database objects stand in for two processes. Each test checks what a watcher yields: every
insert, update and delete once, with the previous version, whichever way the entry arrived
(its own write, a gateway event, a gap check, a catch-up).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

import discobase
from discobase.emulator import Emulator
from tests.helpers import item_db, one_bot_guild, running_items

SCALE = 0.01
GUILD = "watching"
WAIT = 30.0


def world() -> AbstractAsyncContextManager[tuple[Emulator, Any]]:
    return one_bot_guild(GUILD, seed=7)


def running(
    emu: Emulator, bot: Any, **options: Any
) -> AbstractAsyncContextManager[tuple[discobase.Database, Any]]:
    return running_items(emu, bot, GUILD, **options)


async def take(changes: Any, count: int) -> list[Any]:
    """The next ``count`` changes (failing after WAIT seconds)."""
    return [await anext(changes) for _ in range(count)]


async def nothing_more(changes: Any, seconds: float = 0.5) -> None:
    """Assert that no further change arrives within ``seconds`` (real time)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            extra = await anext(changes)
            pytest.fail(f"an extra change arrived: {extra}")


async def test_inserts_updates_and_deletes_of_another_process_arrive_with_previous() -> None:
    async with world() as (emu, bot), running(emu, bot) as (reader_db, reader):
        async with running(emu, bot) as (writer_db, writer):
            theirs = reader.watch()
            everything = reader_db.watch()
            mine = writer.watch()
            record = await writer(key="a", n=1).save()
            record_id = record.id
            record.n = 2
            await record.update()
            await record.delete()
            for changes in (theirs, everything, mine):
                insert, update, delete = await take(changes, 3)
                assert [c.kind for c in (insert, update, delete)] == ["insert", "update", "delete"]
                assert {c.id for c in (insert, update, delete)} == {record_id}
                assert insert.previous is None and insert.record.n == 1
                assert update.previous.n == 1 and update.record.n == 2
                assert delete.previous.n == 2 and delete.record.n == 2
                assert insert.position < update.position < delete.position
                assert insert.table.__name__ == "Item"
                assert isinstance(insert.record, insert.table)
            assert theirs.pending == everything.pending == mine.pending == 0
            await nothing_more(theirs)


async def test_a_withheld_event_still_arrives_through_the_gap_check() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            changes = reader.watch()
            # Discord may send an event zero times: only the gap check reads this entry.
            emu.gateway.withhold_dispatches("MESSAGE_CREATE", count=2)
            saved = await writer(key="lost").save()
            (change,) = await take(changes, 1)
            assert (change.kind, change.id, change.record.key) == ("insert", saved.id, "lost")
            await nothing_more(changes)
        assert emu.stats()["gateway"]["faults"]["withheld"] >= 1


async def test_a_change_that_arrives_live_and_again_by_reads_is_yielded_once() -> None:
    async with world() as (emu, bot), running(emu, bot) as (reader_db, reader):
        async with running(emu, bot) as (_, writer):
            changes = reader.watch()
            emu.gateway.duplicate_dispatches("MESSAGE_CREATE")
            records = [await writer(key=f"k{i}", n=i).save() for i in range(5)]
            got = await take(changes, 5)
            # The entries are read again over REST (a gap check, by hand): nothing new.
            for _ in range(3):
                await reader_db.refresh()
            await nothing_more(changes)
        assert [c.id for c in got] == [r.id for r in records]
        assert [c.kind for c in got] == ["insert"] * 5
        assert emu.stats()["gateway"]["faults"]["duplicated"] >= 1


async def test_changes_missed_while_disconnected_arrive_after_the_catch_up() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            changes = reader.watch()
            first = await writer(key="before").save()
            assert [c.id for c in await take(changes, 1)] == [first.id]
            # Every event of a while is lost, as across a session that did not resume.
            emu.gateway.withhold_dispatches("MESSAGE_CREATE", count=20)
            missed = [await writer(key=f"m{i}").save() for i in range(4)]
            first.n = 9
            await first.update()
            got = await take(changes, 5)
            emu.gateway.clear_dispatch_faults()
            await nothing_more(changes)
        assert [c.id for c in got[:4]] == [r.id for r in missed]
        assert (got[4].kind, got[4].previous.n, got[4].record.n) == ("update", 0, 9)


async def test_changes_missed_by_a_lost_session_arrive_with_the_catch_up() -> None:
    async with world() as (emu, bot):
        # No gap check during the test: only the catch-up after the new session reads.
        reader_db, reader = item_db(emu, GUILD, gap_check_interval=1e6)
        async with reader_db.conn(bot.token), running(emu, bot) as (_, writer):
            changes = reader.watch()
            emu.gateway.withhold_dispatches("MESSAGE_CREATE")
            missed = [await writer(key=f"m{i}").save() for i in range(3)]
            await asyncio.sleep(0.3)  # 30 Discord seconds: nothing reached the reader
            assert changes.pending == 0
            emu.gateway.clear_dispatch_faults()
            # The session ends (op 9, not resumable): the reader identifies and catches up.
            await emu.gateway.send_invalid_session(False, bot.id)
            got = await take(changes, 3)
            await nothing_more(changes, 0.3)
        assert [c.id for c in got] == [r.id for r in missed]
        assert emu.stats()["gateway"]["identifies"] >= 3


async def test_a_filter_sees_records_enter_and_leave_it() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            keyed = reader.watch(key="a")
            ranged = reader.watch(n=discobase.ge(10))
            a = await writer(key="a", n=1).save()
            await writer(key="b", n=1).save()  # matches neither
            a.key = "c"  # leaves the first filter
            a.n = 10  # enters the second
            await a.update()
            big = await writer(key="d", n=20).save()
            got = await take(keyed, 2)
            assert [(c.kind, c.record.key) for c in got] == [("insert", "a"), ("update", "c")]
            got = await take(ranged, 2)
            assert [(c.kind, c.id) for c in got] == [("update", a.id), ("insert", big.id)]
            await nothing_more(keyed, 0.2)
            with pytest.raises(discobase.InvalidQuery):
                reader.watch(nope=1)


async def test_a_large_batch_arrives_whole_on_both_sides() -> None:
    # 5,000 records: applied to a fork a slice at a time by the writer and by the reader.
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            theirs, mine = reader.watch(), writer.watch()
            await writer.save_many([writer(key=f"k{i}", n=i) for i in range(5000)])
            for changes in (mine, theirs):
                got = await take(changes, 5000)
                assert sorted(c.record.n for c in got) == list(range(5000))
                assert {c.kind for c in got} == {"insert"}
            await nothing_more(theirs, 0.3)


async def test_a_consumer_that_falls_behind_gets_an_error_after_what_it_holds() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, item):
        changes = db.watch(max_pending=3)
        await item.save_many([item(key=f"k{i}") for i in range(2)])
        await item.save_many([item(key=f"j{i}") for i in range(2)])
        got = await take(changes, 2)
        assert [c.record.key for c in got] == ["k0", "k1"]
        with pytest.raises(discobase.WatchOverflow) as raised:
            await anext(changes)
        assert raised.value.pending == 2
        with pytest.raises(StopAsyncIteration):
            await anext(changes)


async def test_watching_ends_when_the_database_closes_and_can_be_closed() -> None:
    async with world() as (emu, bot):
        db, item = item_db(emu, GUILD)
        async with db.conn(bot.token):
            changes = item.watch()
            async with item.watch() as closed_early:
                pass
            await item(key="x").save()
        assert [c.record.key async for c in changes] == ["x"]
        assert [c async for c in closed_early] == []
        with pytest.raises(discobase.NotConnected):
            item.watch()


async def test_a_database_watch_covers_a_table_opened_later() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, item):
        changes = db.watch()

        class Late(discobase.Table):
            label: str

        late = db.table(Late)
        await db.build_tables()
        await item(key="early").save()
        await late(label="late").save()
        got = await take(changes, 2)
        assert [(c.table.__name__, c.kind) for c in got] == [("Item", "insert"), ("Late", "insert")]
