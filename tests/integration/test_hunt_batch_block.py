"""Hunting hung writes: a ``batch()`` block that ends after the engine began closing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from discobase.errors import DatabaseError
from discobase.storage import Put, TableSpec
from tests.integration.storage_world import SPEC, World, user

OTHER = TableSpec(name="other", schema=SPEC.schema, fields=SPEC.fields, indexes=SPEC.indexes)


async def test_a_block_that_ends_after_close_fails_its_writes_instead_of_hanging(
    emulator: Any,
) -> None:
    """Close runs while a block holds writes of two tables: the block's end finds the writers
    closed. Every write of the block must fail (nothing was sent), none hang, and the unique
    values they claimed must be free again."""
    world = World(emulator)
    async with world.node() as engine:
        a = await engine.open_table(SPEC)
        b = await engine.open_table(OTHER)
        futures = []
        with pytest.raises(DatabaseError):
            async with engine.batch():
                futures.append(a.submit([Put(a.new_id(), user(1))]))
                futures.append(b.submit([Put(b.new_id(), user(2))]))
                await engine.close()
        done, pending = await asyncio.wait(futures, timeout=5)
        assert not pending, "a write of the block never settled"
        assert all(isinstance(f.exception(), DatabaseError) for f in done)
        assert a.state.pending_count == 0 and b.state.pending_count == 0
    assert not [m for m in world.channel_messages(a.channel_id) if '"t":"log"' in m.content]
