"""No acknowledged write is lost: the failures Discord really produces, one test each.

Each test drives a documented fault of the local Discord (lost dispatches, CDN failures, 5xx
after the write, guild outages, members deleting messages and renaming channels) through the
public API, and checks what a live process holds and what a fresh process loads. Every one of
them failed before the read position, gap checks, repairs and content-based catalog lookup.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

import discobase
from discobase.emulator import Emulator
from discobase.http import HTTPClient
from tests.helpers import eventually, identify_window, item_db, one_bot_guild, running_items

SCALE = 0.01
GUILD = "guarantees"


def world() -> AbstractAsyncContextManager[tuple[Emulator, Any]]:
    return one_bot_guild(GUILD, seed=13)


def running(
    emu: Emulator, bot: Any, **options: Any
) -> AbstractAsyncContextManager[tuple[discobase.Database, Any]]:
    return running_items(emu, bot, GUILD, **options)


async def fresh_keys(emu: Emulator, bot: Any) -> dict[str, int]:
    """What a process that opens the database now loads: key -> n."""
    async with running(emu, bot) as (_, item):
        return {i.key: i.n for i in item.find()}


def channel_named(emu: Emulator, name: str) -> Any:
    (channel,) = [c for c in emu.state.channels.values() if c.name == name]
    return channel


def entry_ids(emu: Emulator, channel: Any) -> list[str]:
    """The ids of the bot's log entries in ``channel``, oldest first."""
    return [
        str(m)
        for m in channel.message_ids
        if emu.state.messages[m].content.startswith('{"discobase":1,"t":"log"')
    ]


async def test_a_lost_message_create_is_read_by_the_gap_check_and_kept_by_snapshots() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            # Discord may send an event zero times: the reader never hears of this entry.
            emu.gateway.withhold_dispatches("MESSAGE_CREATE", count=2)
            await writer(key="lost").save()
            await eventually(lambda: reader.find(key="lost") != [], "the reader to read it")
        assert emu.stats()["gateway"]["faults"]["withheld"] >= 1
        assert await fresh_keys(emu, bot) == {"lost": 0}


async def test_a_failed_attachment_download_does_not_lose_a_live_batch() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        async with running(emu, bot) as (_, writer):
            # A batch large enough to travel as an attachment; the CDN fails it for longer
            # than the HTTP client's retries (and the fresh URL's download too).
            emu.fail_cdn("server_error", count=12)
            await writer.save_many([writer(key=f"k{i}", n=i) for i in range(300)])
            await eventually(lambda: reader.count() == 300, "the reader to hold the batch")
        assert emu.stats()["cdn"]["faults"]["server_error"] >= 1


async def test_a_500_after_the_write_converges_without_a_retry() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, item):
        kept = item(key="kept")
        await kept.save()
        # Stored, then answered 500, on every retry: the call fails but Discord has it.
        emu.fail_next("POST", r"/channels/\d+/messages", 500, count=20, after_write=True)
        with pytest.raises(discobase.DiscobaseError):
            await item(key="stored anyway").save()
        with pytest.raises(discobase.DiscobaseError):
            await kept.delete()
        emu.clear_faults()
        # The process reads its log to learn what the failed calls did after all.
        await eventually(
            lambda: {i.key for i in item.find()} == {"stored anyway"}, "agreement with Discord"
        )
        assert await fresh_keys(emu, bot) == {"stored anyway": 0}


async def test_a_deleted_entry_is_written_again_by_a_live_process() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, item):
        await item.save_many([item(key=f"k{i}") for i in range(3)])
        await item(key="later").save()
        channel = channel_named(emu, "item")
        first = entry_ids(emu, channel)[0]
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_message(channel.id, first)  # a member with Manage Messages
        await eventually(lambda: any(first in line for line in db.damage), "the report")
        await eventually(lambda: len(entry_ids(emu, channel)) == 2, "the repair entry")
        assert "written again" in db.damage[-1] and "'item'" in db.damage[-1]
        assert sorted(await fresh_keys(emu, bot)) == ["k0", "k1", "k2", "later"]


async def test_an_entry_deleted_while_nobody_runs_is_reported_by_every_opener() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="a").save()
            await item(key="b").save()
            await item(key="c").save()
        channel = channel_named(emu, "item")
        middle = entry_ids(emu, channel)[1]
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_message(channel.id, middle)
        for _ in range(2):
            async with running(emu, bot) as (db, item):
                assert {i.key for i in item.find()} == {"a", "c"}
                (line,) = [line for line in db.damage if middle in line]
                assert f"channel {channel.id}" in line and "'item'" in line


async def test_a_renamed_catalog_is_found_and_a_channel_renamed_to_its_name_is_not() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="kept").save()
        catalog = channel_named(emu, "discobase")
        general = channel_named(emu, "general")
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.edit_channel(catalog.id, name="renamed")
            await member.edit_channel(general.id, name="discobase")  # older: a smaller id
        assert int(general.id) < int(catalog.id)
        channels = len(emu.state.channels)
        async with running(emu, bot) as (db, item):
            assert [i.key for i in item.find()] == ["kept"]
            assert any("renamed to #renamed" in line for line in db.damage)
        assert len(emu.state.channels) == channels  # no second catalog, no second table


async def test_a_deleted_table_channel_is_named_not_replaced() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="kept").save()
        table = channel_named(emu, "item")
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_channel(table.id)
        channels = len(emu.state.channels)
        db, _ = item_db(emu, GUILD)
        await identify_window()
        with pytest.raises(discobase.StorageDamaged) as caught:
            async with db.conn(bot.token):
                pass
        assert caught.value.table == "item" and caught.value.channel_id == int(table.id)
        assert "'item'" in str(caught.value) and table.id in str(caught.value)
        assert len(emu.state.channels) == channels


async def test_a_deleted_catalog_with_tables_left_is_named_not_replaced() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="kept").save()
        catalog, table = channel_named(emu, "discobase"), channel_named(emu, "item")
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_channel(catalog.id)
        db, _ = item_db(emu, GUILD)
        await identify_window()
        with pytest.raises(discobase.StorageDamaged, match=f"#item \\({table.id}\\)"):
            async with db.conn(bot.token):
                pass
        assert not [c for c in emu.state.channels.values() if c.name == "discobase"]


def catalog_of(emu: Emulator) -> Any:
    (catalog,) = [c for c in emu.state.channels.values() if "catalog" in (c.topic or "")]
    return catalog


async def table_named_discobase_then_catalog_deleted(
    emu: Emulator, bot: Any, *, records: int
) -> tuple[discobase.Database, Any]:
    """Open a table named like the catalog with ``records`` records, then delete the catalog
    channel as a member would; return the database and the table."""
    db = discobase.Database(GUILD, api_url=emu.url, time_scale=SCALE)

    @db.table
    class Discobase(discobase.Table):
        x: int

    async with db.conn(bot.token):
        for x in range(records):
            await Discobase(x=x).save()
    async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
        await member.delete_channel(catalog_of(emu).id)
    return db, Discobase


async def test_a_deleted_catalog_beside_a_table_named_like_it_is_named_not_replaced() -> None:
    # The table's channel is a second #discobase; it was taken for the catalog, and the
    # table opened empty (a 404 first, then nothing), its records unseen.
    async with world() as (emu, bot):
        db, _ = await table_named_discobase_then_catalog_deleted(emu, bot, records=1)
        table = channel_named(emu, "discobase")  # the only one left once the catalog is gone
        await identify_window()
        for _ in range(2):  # the first refusal leaves nothing behind that the second would use
            with pytest.raises(discobase.StorageDamaged, match=f"#discobase \\({table.id}\\)"):
                async with db.conn(bot.token):
                    pass
        assert [c.id for c in emu.state.channels.values() if c.name == "discobase"] == [table.id]


async def test_a_members_channel_named_like_the_catalog_does_not_become_it() -> None:
    # Only a channel made as a catalog (two processes may make one each) can be settled on.
    async with world() as (emu, bot):
        chat = next(c for c in emu.state.channels.values() if c.type == 0)
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.edit_channel(chat.id, name="discobase")
            await member.create_message(chat.id, content="hi, this is our chat")
        async with running(emu, bot) as (_, item):
            await item(key="k").save()
        assert [emu.state.messages[m].content for m in chat.message_ids] == ["hi, this is our chat"]
        assert await fresh_keys(emu, bot) == {"k": 0}


async def test_an_empty_table_named_like_the_catalog_is_not_taken_for_it() -> None:
    # Its channel holds no entry (so no data is lost); the catalog gone, it was settled on as
    # the new catalog: a 404 first, then a catalog in a table's channel.
    async with world() as (emu, bot):
        db, Discobase = await table_named_discobase_then_catalog_deleted(emu, bot, records=0)
        await identify_window()
        async with db.conn(bot.token):
            await Discobase(x=5).save()
        await identify_window()
        async with db.conn(bot.token):
            assert [d.x for d in Discobase.find()] == [5]
        assert catalog_of(emu).name == "discobase"


async def test_start_up_waits_for_its_own_guild_only() -> None:
    async with world() as (emu, bot):
        other = emu.create_guild("another", bots=[bot])
        emu.gateway.unavailable_at_ready(other, count=5)  # down, and never back in this test
        async with running(emu, bot) as (_, item):
            await item(key="started").save()


@pytest.mark.slow
async def test_an_outage_of_its_own_guild_delays_ready_until_it_is_back() -> None:
    async with world() as (emu, bot):
        guild_id = next(iter(emu.state.guilds))
        emu.gateway.unavailable_at_ready(guild_id, count=1)
        db, item = item_db(emu, GUILD)
        db.login_task(bot.token)
        await asyncio.sleep(100 * SCALE)
        assert not db.is_ready
        emu.gateway.guild_restore(guild_id)
        await db.wait_ready()
        await item(key="after the outage").save()
        await db.close()


@pytest.mark.slow
async def test_a_lost_guild_create_does_not_stop_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Discord may never send a dispatch, GUILD_CREATE included (discord.js #8726). Before,
    # the start waited for it until StartTimeout; now REST is asked after a grace.
    async with world() as (emu, bot):
        guild_id = next(iter(emu.state.guilds))
        emu.gateway.withhold_dispatches("GUILD_CREATE", guild_id=guild_id, count=1)
        with caplog.at_level(logging.WARNING, logger="discobase"):
            async with running(emu, bot) as (_, item):
                await item(key="started").save()
                assert [i.key for i in item.find()] == ["started"]
        assert any("no GUILD_CREATE" in r.getMessage() for r in caplog.records)


async def test_writes_during_an_outage_reach_a_live_reader_when_the_guild_is_back() -> None:
    async with world() as (emu, bot), running(emu, bot) as (_, reader):
        guild_id = next(iter(emu.state.guilds))
        async with running(emu, bot) as (_, writer):
            emu.gateway.guild_outage(guild_id)
            await writer(key="during").save()
            emu.gateway.guild_restore(guild_id)
            await eventually(lambda: reader.find(key="during") != [], "the reader to catch up")


async def test_start_up_outlasts_a_burst_of_5xx_longer_than_the_http_retries() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="kept").save()
        # More 5xx in a row on history reads than the HTTP client retries by itself.
        emu.fail_next("GET", r"/channels/\d+/messages", 503, count=12)
        async with running(emu, bot) as (_, item):
            assert [i.key for i in item.find()] == ["kept"]
        assert emu.stats()["faults"]["rest_server_error"] == 12


async def test_a_database_refuses_calls_from_another_event_loop_at_once() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, _):

        def elsewhere() -> list[str]:
            async def calls() -> list[str]:
                refused = []
                for call in (db.wait_ready(), db.build_tables(), db.close()):
                    try:
                        await call
                    except discobase.UsageError as exc:
                        refused.append(str(exc))
                try:
                    db.batch()
                except discobase.UsageError as exc:
                    refused.append(str(exc))
                return refused

            return asyncio.run(calls())

        refused = await asyncio.to_thread(elsewhere)
        assert len(refused) == 4 and all("another event loop" in r for r in refused)
        assert db.is_ready


async def test_a_deleted_repair_entry_is_repaired_with_the_records_it_carried() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, item):
        await item.save_many([item(key=f"k{i}") for i in range(3)])
        await item(key="later").save()
        channel = channel_named(emu, "item")
        first = entry_ids(emu, channel)[0]
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_message(channel.id, first)
            await eventually(lambda: len(entry_ids(emu, channel)) == 2, "the first repair")
            repair = entry_ids(emu, channel)[-1]
            await member.delete_message(channel.id, repair)
            await eventually(lambda: len(entry_ids(emu, channel)) == 2, "the second repair")
        assert f"entry {repair} was deleted; its 3 records were written again" in db.damage[-1]
        assert sorted(await fresh_keys(emu, bot)) == ["k0", "k1", "k2", "later"]


@pytest.mark.slow
async def test_an_entry_deleted_while_its_delete_event_was_lost_is_found_and_repaired() -> None:
    async with world() as (emu, bot), running(emu, bot) as (db, item):
        await item.save_many([item(key=f"k{i}") for i in range(3)])
        await item(key="later").save()
        channel = channel_named(emu, "item")
        first = entry_ids(emu, channel)[0]
        emu.gateway.withhold_dispatches(["MESSAGE_DELETE", "MESSAGE_DELETE_BULK"])
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            await member.delete_message(channel.id, first)
        # No event: the audit every few gap checks finds the entry gone from the log.
        await eventually(lambda: any(first in line for line in db.damage), "the audit")
        assert sorted(await fresh_keys(emu, bot)) == ["k0", "k1", "k2", "later"]


async def test_a_table_whose_catalog_entry_was_deleted_offline_keeps_its_channel() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (_, item):
            await item(key="kept").save()
        catalog, table = channel_named(emu, "discobase"), channel_named(emu, "item")
        entries = [
            str(m) for m in catalog.message_ids if '"t":"table"' in emu.state.messages[m].content
        ]
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
            for entry in entries:
                await member.delete_message(catalog.id, entry)
        channels = len(emu.state.channels)
        async with running(emu, bot) as (db, item):
            assert [i.key for i in item.find()] == ["kept"]
            assert any(table.id in line and "'item'" in line for line in db.damage)
        assert len(emu.state.channels) == channels  # no second channel for the table


async def test_a_deletion_no_live_process_could_repair_is_reported_by_every_later_open() -> None:
    async with world() as (emu, bot):
        async with running(emu, bot) as (db, item):
            record = item(key="a")
            await record.save()
            record.n = 1
            await record.update()  # its later entry: nothing of the first is left to hold
            channel = channel_named(emu, "item")
            first = entry_ids(emu, channel)[0]
            async with HTTPClient(bot.token, api_url=emu.url, time_scale=SCALE) as member:
                await member.delete_message(channel.id, first)
            await eventually(lambda: any("holds nothing" in line for line in db.damage), "it")
            catalog = channel_named(emu, "discobase")
            await eventually(
                lambda: any(
                    '"t":"loss"' in emu.state.messages[m].content for m in catalog.message_ids
                ),
                "the note in the catalog",
            )
        for _ in range(2):
            async with running(emu, bot) as (db, item):
                assert [(i.key, i.n) for i in item.find()] == [("a", 1)]
                assert any(first in line and "no process that saw" in line for line in db.damage)
