"""Hunting lost writes around the catalog: tables created by two processes at once, catalog
entries deleted afterwards."""

from __future__ import annotations

from typing import Any

from discobase.storage import Put
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
