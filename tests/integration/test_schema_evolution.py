"""Two versions of a program sharing one table while it changes (issue 15).

Each test runs two databases, as two processes of one bot would, with differently defined
classes of the same table: the older program keeps working beside the newer one, widening
is accepted, narrowing is refused with the way to migrate, a rename is declared, a
migration rewrites a table atomically, and indexes are never taken away by a program that
leaves them out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from tests.helpers import WAIT, eventually, guild, identify_window


def title_then_heading(
    database: Callable[[], discobase.Database],
) -> tuple[discobase.Database, discobase.Database, Any, Any]:
    """Two versions of a program sharing the table ``book``: version 2 calls a field
    ``title``, version 3 renames it ``heading``. Returns both databases and their Book."""
    v2, v3 = database(), database()

    @v2.table
    class Book(discobase.Table):
        title: str
        pages: int = 0

    @v3.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - title -> heading
        heading: Annotated[str, discobase.Renamed("title")]
        pages: int = 0

    return v2, v3, v2.tables["book"], v3.tables["book"]


def catalog_size(emu: Any, guild_id: str) -> int:
    state = emu.state
    channel = next(
        c
        for c in state.channels.values()
        if str(c.guild_id) == str(guild_id) and c.name == "discobase"
    )
    return len(channel.message_ids)


def stored_records(emu: Any, guild_id: str, table: str) -> int:
    state = emu.state
    channel = next(
        c for c in state.channels.values() if str(c.guild_id) == str(guild_id) and c.name == table
    )
    return len(channel.message_ids)


async def test_an_older_program_keeps_the_fields_a_newer_one_added(emulator: Any) -> None:
    database, token, _ = guild(emulator, "rolling")
    old_db, new_db = database(), database()

    @old_db.table
    class Room(discobase.Table):
        name: str

    @new_db.table
    class Room(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - version 2
        name: str
        capacity: int = 100

    v1, v2 = old_db.tables["room"], new_db.tables["room"]
    async with asyncio.timeout(WAIT):
        async with old_db.conn(token):
            await v1(name="blue").save()
            # The rolling deploy: version 2 starts while version 1 still runs.
            await identify_window()
            async with new_db.conn(token):
                (blue,) = v2.find()
                assert blue.capacity == 100
                blue.capacity = 12
                await blue.update()
                await v2(name="red", capacity=7).save()
                await eventually(lambda: v1.count() == 2)
                # Version 1 reads, updates and writes records carrying a field it lacks.
                old_blue = await v1.find_unique(name="blue")
                old_blue.name = "navy"
                await old_blue.update()
                await eventually(lambda: v2.count(name="navy") == 1)
                navy = await v2.find_unique(name="navy")
                assert navy.capacity == 12  # kept by version 1's update
                await v1(name="green").save()  # a new record: version 2 reads the default
                await eventually(lambda: v2.count(name="green") == 1)
                assert (await v2.find_unique(name="green")).capacity == 100
        # A rollback: version 1 opens the table again after version 2 recorded its schema.
        rolled_back = database()

        @rolled_back.table
        class Room(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - version 1
            name: str

        await identify_window()
        async with rolled_back.conn(token):
            old = rolled_back.tables["room"]
            red = await old.find_unique(name="red")
            red.name = "crimson"
            await red.update()
        again = database()

        @again.table
        class Room(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - version 2
            name: str
            capacity: int = 100

        await identify_window()
        async with again.conn(token):
            new = again.tables["room"]
            assert (await new.find_unique(name="crimson")).capacity == 7


async def test_a_required_field_cannot_be_left_out(emulator: Any) -> None:
    database, token, _ = guild(emulator, "required")
    first, second = database(), database()

    @first.table
    class Room(discobase.Table):
        name: str
        floor: int

    @second.table
    class Room(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - floor left out
        name: str

    async with asyncio.timeout(WAIT):
        async with first.conn(token):
            await first.tables["room"](name="a", floor=1).save()
        with pytest.raises(discobase.SchemaMismatch) as caught:
            await identify_window()
            async with second.conn(token):
                pass
    assert caught.value.fields == ["floor"]
    assert "db.migrate(Room" in str(caught.value)


async def test_widening_is_accepted_and_narrowing_refused_with_the_way_to_migrate(
    emulator: Any,
) -> None:
    database, token, guild_id = guild(emulator, "widening")
    first, wide, narrow = database(), database(), database()

    @first.table
    class Item(discobase.Table):
        stock: int
        label: str
        price: int

    @wide.table
    class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - widened
        stock: int | None
        label: str | None
        price: float

    @narrow.table
    class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - narrowed again
        stock: int
        label: str
        price: float

    async with asyncio.timeout(WAIT):
        async with first.conn(token):
            await first.tables["item"](stock=1, label="a", price=3).save()
        await identify_window()
        async with wide.conn(token):
            model = wide.tables["item"]
            (item,) = model.find()
            assert (item.stock, item.label, item.price) == (1, "a", 3.0)
            assert type(item.price) is float
            await model(stock=None, label=None, price=2.5).save()
        size = catalog_size(emulator, guild_id)
        with pytest.raises(discobase.SchemaMismatch) as caught:
            await identify_window()
            async with narrow.conn(token):
                pass
        assert catalog_size(emulator, guild_id) == size  # nothing recorded
    assert sorted(caught.value.fields) == ["label", "stock"]
    message = str(caught.value)
    assert "narrowed" in message and "integer | null" in message
    assert "await db.migrate(Item, transform=...)" in message


async def test_a_declared_rename_reads_older_records(emulator: Any) -> None:
    database, token, _ = guild(emulator, "rename")
    first, renamed, later = database(), database(), database()

    @first.table
    class Book(discobase.Table):
        name: str
        pages: int = 0

    @renamed.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - name -> title
        title: Annotated[str, discobase.Renamed("name"), discobase.Index()]
        pages: int = 0

    @later.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - rename dropped
        title: str
        pages: int = 0

    async with asyncio.timeout(WAIT):
        async with first.conn(token):
            await first.tables["book"](name="Dune", pages=412).save()
        await identify_window()
        async with renamed.conn(token):
            model = renamed.tables["book"]
            dune = await model.find_unique(title="Dune")
            assert dune.pages == 412
            dune.pages = 413
            await dune.update()
            await model(title="Emma").save()
            assert sorted(b.title for b in model.find()) == ["Dune", "Emma"]
        # The catalog recorded the rename: a program that no longer declares it reads the
        # older records the same way.
        await identify_window()
        async with later.conn(token):
            model = later.tables["book"]
            assert sorted(b.title for b in model.find()) == ["Dune", "Emma"]
        # Version 1 (still using `name`) is told what happened, not handed broken records.
        old = database()

        @old.table
        class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - version 1
            name: str
            pages: int = 0

        with pytest.raises(discobase.SchemaMismatch) as caught:
            await identify_window()
            async with old.conn(token):
                pass
    assert sorted(caught.value.fields) == ["name", "title"]
    assert "'name' was renamed to 'title'" in str(caught.value)


async def test_a_migration_rewrites_the_table_atomically(emulator: Any) -> None:
    database, token, guild_id = guild(emulator, "migrate")
    first, script = database(), database()

    @first.table
    class Item(discobase.Table):
        name: str
        price: str  # cents as text, to become an int

    async with asyncio.timeout(WAIT):
        async with first.conn(token):
            model = first.tables["item"]
            await model.save_many([model(name=f"i{n}", price=str(n * 100)) for n in range(20)])
        await identify_window()
        async with script.conn(token):

            @script.table
            class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - retyped
                name: str
                cents: int

            with pytest.raises(discobase.TableNotBuilt):
                Item.count()
            messages = stored_records(emulator, guild_id, "item")
            size = catalog_size(emulator, guild_id)

            def broken(record: dict[str, Any]) -> dict[str, Any]:
                if record["name"] == "i13":
                    raise ValueError("not this one")
                return {"name": record["name"], "cents": int(record["price"])}

            with pytest.raises(discobase.MigrationFailed) as caught:
                await script.migrate(Item, transform=broken)
            assert "i13" not in str(caught.value) and caught.value.record_id is not None
            # A record that does not fit the new class stops it too, before anything.
            with pytest.raises(discobase.MigrationFailed, match="does not fit"):
                await script.migrate(Item, transform=lambda r: {"name": r["name"]})
            assert stored_records(emulator, guild_id, "item") == messages
            assert catalog_size(emulator, guild_id) == size
            # A write refused by Discord leaves everything as it was too.
            emulator.fail_next("POST", r"/channels/\d+/messages", 403, count=1)
            with pytest.raises(discobase.MigrationFailed, match="none was"):
                await script.migrate(
                    Item, transform=lambda r: {"name": r["name"], "cents": int(r["price"])}
                )
            emulator.clear_faults()
            assert catalog_size(emulator, guild_id) == size

            def fixed(record: dict[str, Any]) -> dict[str, Any] | None:
                if record["name"] == "i0":
                    return None  # deleted
                return {"name": record["name"], "cents": int(record["price"])}

            assert await script.migrate(Item, transform=fixed) == 19
            assert Item.count() == 19 and (await Item.find_unique(name="i7")).cents == 700
            await Item(name="new", cents=1).save()
        # The old class is refused now, and a fresh program of the new one opens.
        with pytest.raises(discobase.SchemaMismatch):
            await identify_window()
            async with first.conn(token):
                pass
        fresh = database()

        @fresh.table
        class Item(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
            name: str
            cents: int

        await identify_window()
        async with fresh.conn(token):
            assert Item.count() == 20
            assert sorted(i.cents for i in Item.find())[:3] == [1, 100, 200]


async def test_a_program_that_omits_a_unique_index_keeps_it_for_others(emulator: Any) -> None:
    database, token, _ = guild(emulator, "indexes")
    declares, omits, later = database(), database(), database()

    @declares.table
    class User(discobase.Table):
        email: Annotated[str, discobase.Index(unique=True)]

    @omits.table
    class User(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - no index
        email: str

    @later.table
    class User(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        email: Annotated[str, discobase.Index(unique=True)]

    async with asyncio.timeout(WAIT):
        async with declares.conn(token):
            await declares.tables["user"](email="a@x").save()
        await identify_window()
        async with omits.conn(token):
            model = omits.tables["user"]
            # The index another program declared is enforced here too.
            with pytest.raises(discobase.UniqueViolation):
                await model(email="a@x").save()
            await model(email="b@x").save()
        await identify_window()
        async with later.conn(token):
            model = later.tables["user"]
            with pytest.raises(discobase.UniqueViolation):
                await model(email="b@x").save()
            assert model.count() == 2


async def test_a_unique_index_over_duplicates_is_refused_naming_them(emulator: Any) -> None:
    database, token, guild_id = guild(emulator, "duplicates")
    plain, unique = database(), database()

    @plain.table
    class User(discobase.Table):
        email: str
        name: str = ""

    @unique.table
    class User(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        email: Annotated[str, discobase.Index(unique=True)]
        name: str = ""

    async with asyncio.timeout(WAIT):
        async with plain.conn(token):
            model = plain.tables["user"]
            a = await model(email="same@x").save()
            b = await model(email="same@x").save()
            await model(email="other@x").save()
        size = catalog_size(emulator, guild_id)
        with pytest.raises(discobase.UniqueConflict) as caught:
            await identify_window()
            async with unique.conn(token):
                pass
        assert catalog_size(emulator, guild_id) == size  # the index was not recorded
    error = caught.value
    assert isinstance(error, discobase.SchemaMismatch)
    assert error.fields == ["email"]
    assert error.duplicates == {"email": {'"same@x"': sorted([a.id, b.id])}}
    assert str(a.id) in str(error) and str(b.id) in str(error) and "same@x" in str(error)


async def test_a_class_that_forbids_extra_fields_reads_a_newer_programs_records(
    emulator: Any,
) -> None:
    database, token, _ = guild(emulator, "forbid")
    strict, newer = database(), database()

    @strict.table
    class Tag(discobase.Table):
        model_config = pydantic.ConfigDict(extra="forbid")
        name: str

    @newer.table
    class Tag(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        name: str
        colour: str = "red"

    async with asyncio.timeout(WAIT):
        async with strict.conn(token):
            await strict.tables["tag"](name="a").save()
        await identify_window()
        async with newer.conn(token):
            await newer.tables["tag"](name="b", colour="blue").save()
        await identify_window()
        async with strict.conn(token):
            model = strict.tables["tag"]
            assert sorted(t.name for t in model.find()) == ["a", "b"]
            b = await model.find_unique(name="b")
            b.name = "c"
            await b.update()
        await identify_window()
        async with newer.conn(token):
            assert (await newer.tables["tag"].find_unique(name="c")).colour == "blue"


async def test_a_field_renamed_twice_reads_every_older_record(emulator: Any) -> None:
    # Version 1 calls the field `name`, version 2 `title`, version 3 `heading`.
    database, token, _ = guild(emulator, "chain")
    v1, v2, v3 = database(), database(), database()

    @v1.table
    class Book(discobase.Table):
        name: str
        pages: int = 0

    @v2.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - name -> title
        title: Annotated[str, discobase.Renamed("name")]
        pages: int = 0

    @v3.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - title -> heading
        heading: Annotated[str, discobase.Renamed("title"), discobase.Index()]
        pages: int = 0

    first, second, third = v1.tables["book"], v2.tables["book"], v3.tables["book"]
    async with asyncio.timeout(WAIT):
        async with v1.conn(token):
            await first(name="Dune", pages=412).save()
            await first(name="Emma", pages=474).save()
        await identify_window()
        async with v2.conn(token):
            emma = await second.find_unique(title="Emma")
            emma.pages = 475
            await emma.update()  # now stored under `title`
            await second(title="Ulysses", pages=730).save()
            # Version 3 starts while version 2 still runs (a rolling deploy).
            await identify_window()
            async with v3.conn(token):
                assert sorted((b.heading, b.pages) for b in third.find()) == [
                    ("Dune", 412),
                    ("Emma", 475),
                    ("Ulysses", 730),
                ]
                dune = await third.find_unique(heading="Dune")  # stored as `name`
                assert third.count(heading=discobase.startswith("U")) == 1
                dune.pages = 413
                await dune.update()
                # What version 2 writes meanwhile, version 3 reads.
                await second(title="Walden", pages=352).save()
                ulysses = await second.find_unique(title="Ulysses")
                ulysses.pages = 731
                await ulysses.update()
                await eventually(lambda: third.count() == 4)
                await eventually(lambda: third.count(pages=731) == 1)
                assert (await third.find_unique(heading="Walden")).pages == 352
        # A later program reads them all, whether it declares the rename or not: the
        # catalog records both renames.
        for declares in (True, False):
            later = database()
            if declares:

                @later.table
                class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
                    heading: Annotated[str, discobase.Renamed("title")]
                    pages: int = 0

            else:

                @later.table
                class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
                    heading: str
                    pages: int = 0

            await identify_window()
            async with later.conn(token):
                model = later.tables["book"]
                assert sorted((b.heading, b.pages) for b in model.find()) == [
                    ("Dune", 413),
                    ("Emma", 475),
                    ("Ulysses", 731),
                    ("Walden", 352),
                ]
        # Versions 1 and 2 are told what happened to their field.
        for version, field in ((1, "name"), (2, "title")):
            old = database()
            if version == 1:

                @old.table
                class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
                    name: str
                    pages: int = 0

            else:

                @old.table
                class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
                    title: Annotated[str, discobase.Renamed("name")]
                    pages: int = 0

            with pytest.raises(discobase.SchemaMismatch) as caught:
                await identify_window()
                async with old.conn(token):
                    pass
            assert f"{field!r} was renamed to" in str(caught.value)
            assert "'heading'" in str(caught.value)


async def test_several_former_names_declared_at_once(emulator: Any) -> None:
    # Version 1 wrote `name`; version 3 comes straight after it and declares both renames.
    database, token, _ = guild(emulator, "several")
    v1, v3 = database(), database()

    @v1.table
    class Book(discobase.Table):
        name: str

    @v3.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
        heading: Annotated[str, discobase.Renamed("title", "name")]

    async with asyncio.timeout(WAIT):
        async with v1.conn(token):
            await v1.tables["book"](name="Dune").save()
        await identify_window()
        async with v3.conn(token):
            model = v3.tables["book"]
            dune = await model.find_unique(heading="Dune")
            dune.heading = "Dune Messiah"
            await dune.update()
        # A version 2 (`title`, renamed from `name`) is refused now, told the latest name.
        v2 = database()

        @v2.table
        class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
            title: Annotated[str, discobase.Renamed("name")]

        with pytest.raises(discobase.SchemaMismatch, match="'title' was renamed to 'heading'"):
            await identify_window()
            async with v2.conn(token):
                pass


async def test_an_older_program_still_running_reads_what_the_renamed_one_writes(
    emulator: Any,
) -> None:
    database, token, _ = guild(emulator, "rolling-rename")
    v2, v3, second, third = title_then_heading(database)
    async with asyncio.timeout(WAIT):
        async with v2.conn(token):
            await second(title="Dune").save()
            await identify_window()
            async with v3.conn(token):
                await third(heading="Emma", pages=3).save()
                dune = await third.find_unique(heading="Dune")
                dune.pages = 9
                await dune.update()
                await eventually(lambda: second.count(pages=9) == 1)
                assert sorted(b.title for b in second.find()) == ["Dune", "Emma"]


async def test_the_older_programs_updates_are_what_the_renamed_one_reads(emulator: Any) -> None:
    # Once the older program knows of the rename, its updates write only `title`: the
    # renamed program reads them, instead of a stale `heading` the update kept.
    database, token, _ = guild(emulator, "rename-update")
    v2, v3, second, third = title_then_heading(database)
    async with asyncio.timeout(WAIT):
        async with v2.conn(token), v3.conn(token):
            await third(heading="Emma", pages=3).save()
            await third(heading="Dune", pages=412).save()
            await third(heading="Ulysses", pages=730).save()
            await eventually(lambda: second.count() == 3)
            # One update of each kind: update(), update_many() and an update in a batch.
            emma = await second.find_unique(title="Emma")
            emma.title = "Emma, revised"
            await emma.update()
            await second.find(title="Dune").update_many(title="Dune Messiah")
            ulysses = await second.find_unique(title="Ulysses")
            async with v2.batch():
                ulysses.title = "Ulysses, annotated"
                task = ulysses.update()
            await task
            expected = [("Dune Messiah", 412), ("Emma, revised", 3), ("Ulysses, annotated", 730)]
            await eventually(lambda: third.count(heading="Emma, revised") == 1)
            await eventually(lambda: third.count(heading="Dune Messiah") == 1)
            await eventually(lambda: third.count(heading="Ulysses, annotated") == 1)
            assert sorted((b.heading, b.pages) for b in third.find()) == expected
            # And back: the renamed program's update is what the older one reads.
            dune = await third.find_unique(heading="Dune Messiah")
            dune.heading = "Children of Dune"
            await dune.update()
            await eventually(lambda: second.count(title="Children of Dune") == 1)
        # What was stored reads the same in a program that opens afterwards.
        later = database()

        @later.table
        class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811
            heading: str
            pages: int = 0

        await identify_window()
        async with later.conn(token):
            assert sorted((b.heading, b.pages) for b in later.tables["book"].find()) == [
                ("Children of Dune", 412),
                ("Emma, revised", 3),
                ("Ulysses, annotated", 730),
            ]


async def test_an_older_program_finds_by_its_indexed_field_what_the_renamed_one_writes(
    emulator: Any,
) -> None:
    database, token, _ = guild(emulator, "rename-index")
    v2, v3 = database(), database()

    @v2.table
    class Book(discobase.Table):
        title: Annotated[str, discobase.Index(unique=True)]
        pages: int = 0

    @v3.table
    class Book(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - title -> heading
        heading: Annotated[str, discobase.Renamed("title"), discobase.Index(unique=True)]
        pages: int = 0

    second, third = v2.tables["book"], v3.tables["book"]
    async with asyncio.timeout(WAIT):
        async with v2.conn(token):
            await second(title="Dune", pages=412).save()
            await identify_window()
            async with v3.conn(token):
                await third(heading="Emma", pages=3).save()
                await eventually(lambda: second.count() == 2)
                assert [b.pages for b in second.find(title="Emma")] == [3]
                assert (await second.find_unique(title="Dune")).pages == 412
                # The older program's unique index holds the renamed program's values.
                with pytest.raises(discobase.UniqueViolation):
                    second(title="Emma").save()
                dune = await third.find_unique(heading="Dune")
                dune.heading = "Dune Messiah"
                await dune.update()
                await eventually(lambda: second.count(title="Dune Messiah") == 1)
                assert second.count(title="Dune") == 0
