"""What the rest of a program sees while db.migrate rewrites a table, which yields to the
event loop: build_tables() leaves the table to the migration, and watchers follow it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discobase
from tests.helpers import WAIT, guild, identify_window, item_db

# More than one turn of the migration's rewrite (it yields every 4,096 records).
MANY = 4200


async def test_build_tables_during_a_failed_migration_leaves_the_table_unbuilt(
    emulator: Any,
) -> None:
    database, token, _ = guild(emulator, "migrating")
    first, script = database(), database()

    @first.table
    class Item(discobase.Table):
        name: str
        price: str

    async with asyncio.timeout(WAIT * 4):
        async with first.conn(token):
            model = first.tables["item"]
            await model.save_many([model(name=f"i{n}", price=str(n)) for n in range(MANY)])
        await identify_window()
        async with script.conn(token):

            @script.table
            class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - retyped
                name: str
                cents: int

            started = asyncio.Event()
            seen = 0

            def transform(record: dict[str, Any]) -> dict[str, Any]:
                nonlocal seen
                seen += 1
                started.set()
                if seen == MANY:
                    raise ValueError("the last one does not convert")
                return {"name": record["name"], "cents": int(record["price"])}

            async def build_meanwhile() -> None:
                await started.wait()
                # Another task of the program (a plugin registering its tables) builds.
                await script.build_tables()
                # It leaves the table being migrated to the migration: its store holds the
                # records as they were, which the class does not read.
                with pytest.raises(discobase.TableNotBuilt, match="being migrated"):
                    Item.count()

            builder = asyncio.create_task(build_meanwhile())
            with pytest.raises(discobase.MigrationFailed):
                await script.migrate(Item, transform=transform)
            await builder
            # The table was not open before the migration, and its class still does not fit.
            with pytest.raises(discobase.TableNotBuilt):
                Item.count()


async def test_a_watcher_still_gets_changes_after_a_failed_migration(emulator: Any) -> None:
    _, token, _ = guild(emulator, "watched")
    db, Item = item_db(emulator, "watched")
    async with asyncio.timeout(WAIT), db.conn(token):
        await Item(key="a").save()
        changes = Item.watch()

        def broken(record: dict[str, Any]) -> dict[str, Any]:
            raise ValueError("no")

        with pytest.raises(discobase.MigrationFailed):
            await db.migrate(Item, transform=broken)
        saved = await Item(key="b").save()
        async with asyncio.timeout(WAIT):
            change = await anext(aiter(changes))
        assert (change.kind, change.id) == ("insert", saved.id)


async def test_a_second_migration_of_a_table_or_one_inside_a_batch_is_refused(
    emulator: Any,
) -> None:
    # Two at once would each close the store the other rewrites; one inside a batch block
    # would wait for its own write, held until the block ends.
    _, token, _ = guild(emulator, "twice")
    db, Item = item_db(emulator, "twice")
    async with asyncio.timeout(WAIT), db.conn(token):
        await Item.save_many([Item(key=f"i{n}") for n in range(MANY)])
        started = asyncio.Event()

        def keep(record: dict[str, Any]) -> dict[str, Any]:
            started.set()
            return record

        first = asyncio.create_task(db.migrate(Item, transform=keep))
        await started.wait()
        with pytest.raises(discobase.UsageError, match="being migrated already"):
            await db.migrate(Item)
        assert await first == MANY
        async with db.batch():
            with pytest.raises(discobase.UsageError, match="inside `async with db.batch"):
                await db.migrate(Item)
        assert Item.count() == MANY
