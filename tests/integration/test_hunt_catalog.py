"""Hunting lost writes around the catalog: tables created by two processes at once, catalog
entries deleted afterwards."""

from __future__ import annotations

from typing import Any

from discobase.storage import Put, codec
from discobase.storage.catalog import table_entry_body
from discobase.storage.outgoing import Outgoing, post
from tests.helpers import eventually
from tests.integration.storage_world import SPEC, World, gather, user


def _table_entries(world: World, catalog_id: int) -> list[Any]:
    return [
        m
        for m in world.channel_messages(catalog_id)
        if '"t":"table"' in m.content and '"name":"user"' in m.content
    ]


async def test_a_lost_table_race_leaves_no_entry_that_outlives_the_winners(emulator: Any) -> None:
    """B read the catalog before A made the table, so B makes a channel and records it too,
    then adopts A's (the earlier entry) and deletes its own. B's entry names a deleted channel:
    when a member deletes A's entry and a live process writes it again, a fresh process must
    still find the table's channel, with its records, not stop at B's."""
    world = World(emulator)
    async with world.node(gateway=True) as a, world.node() as b:
        store_a = await a.open_table(SPEC)  # B's catalog, read before, lacks it
        store_b = await b.open_table(SPEC)
        assert store_b.channel_id == store_a.channel_id
        assert a.catalog is not None
        catalog_id = a.catalog.channel_id
        first = _table_entries(world, catalog_id)[0]  # A's: the earliest, which won
        rid = store_a.new_id()
        await gather([store_a.submit([Put(rid, user(1))])])
        # A member deletes the table's first entry; A, live, writes it again.
        emulator.state.delete_message(first)
        await eventually(lambda: any("was written again" in d for d in a.damage))
        await eventually(lambda: _table_entries(world, catalog_id)[-1].id > first.id)
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.channel_id == store_a.channel_id
        assert store.get(rid) == user(1)


async def _record_and_a_stray(world: World, node: Any) -> tuple[int, int, int]:
    """Save one record in the table, then leave what a loser of the race killed right after
    recording its channel leaves: a second, later entry for the table, naming a channel of
    its own (empty, not deleted). Returns the record's id, the table's channel and the
    catalog's."""
    store = await node.open_table(SPEC)
    assert node.catalog is not None
    catalog_id = node.catalog.channel_id
    rid = store.new_id()
    await gather([store.submit([Put(rid, user(1))])])
    created = await node.http.create_guild_channel(world.guild_id, name="user")
    body = table_entry_body(SPEC, int(created["id"]))
    await post(node.http, catalog_id, Outgoing(codec.encode_header("table", **body)))
    return rid, store.channel_id, catalog_id


async def test_a_dead_losers_entry_does_not_take_the_table_over(emulator: Any) -> None:
    """A live process that writes the table's deleted entry again deletes the stray first:
    written later than it, the table's entry would lose to it, and fresh opens would read the
    stray's empty channel without a word."""
    world = World(emulator)
    async with world.node(gateway=True) as a:
        rid, _, catalog_id = await _record_and_a_stray(world, a)
        first = _table_entries(world, catalog_id)[0]
        emulator.state.delete_message(first)
        await eventually(lambda: any("was written again" in d for d in a.damage))
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(rid) == user(1)


async def test_an_open_deletes_a_dead_losers_entry_before_it_can_take_over(emulator: Any) -> None:
    """With nothing running when the table's entry is deleted, nobody writes it again: the
    next open finds the table's channel by its entries, unless a stray entry is there to be
    taken for the table's. Opening the table while its entry stands deletes the stray."""
    world = World(emulator)
    async with world.node() as a:
        rid, channel_id, catalog_id = await _record_and_a_stray(world, a)
    assert len(_table_entries(world, catalog_id)) == 2
    async with world.node() as b:
        await b.open_table(SPEC)
    assert len(_table_entries(world, catalog_id)) == 1
    emulator.state.delete_message(_table_entries(world, catalog_id)[0])
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.channel_id == channel_id
        assert store.get(rid) == user(1)
