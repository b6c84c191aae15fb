"""Acceptance checks: the public API as a user meets it, against the local Discord.

Each test exercises one promise of the README and the guide (docs/guide/) through
``discobase.Database`` and ``discobase.Table`` only; the emulator's state is read to check
what reached "Discord", never to drive the library.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import ipaddress
import logging
import math
import os
import pathlib
import uuid
from typing import Annotated, Any, Literal

import pydantic
import pytest

import discobase
from discobase.storage.outgoing import PREV_ROOM
from tests.conftest import TIME_SCALE
from tests.helpers import identify_window, make_db

WAIT = 30.0


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Flag(enum.StrEnum):
    A = "a"
    B = "b"


class Inner(pydantic.BaseModel):
    when: datetime.datetime
    blob: bytes
    ident: uuid.UUID


class Outer(pydantic.BaseModel):
    inner: Inner
    inners: list[Inner] = []
    by_key: dict[str, Inner] = {}


class Street(pydantic.BaseModel):
    street: str


class NumberedStreet(pydantic.BaseModel):
    street: int


def connect(emu: Any, name: str, **kwargs: Any) -> tuple[discobase.Database, Any, str]:
    """A bot in a fresh guild ``name`` and a database on it: (db, bot, guild id)."""
    bot = emu.create_bot("db")
    guild_id = emu.create_guild(name, bots=[bot])
    return make_db(emu, name, **kwargs), bot, guild_id


def two_processes(
    emu: Any, guild: str, table: str, **fields: Any
) -> tuple[discobase.Database, discobase.Database, Any, type[Any], type[Any]]:
    """Two databases (two processes) on one fresh guild, each with its own class of table
    ``table`` holding ``fields`` (name -> type): (first, second, bot, its table, theirs)."""
    first, bot, _ = connect(emu, guild)
    second = make_db(emu, guild)
    columns: Any = {name: (kind, ...) for name, kind in fields.items()}
    tables = [
        db.table(pydantic.create_model(table, __base__=discobase.Table, **columns))
        for db in (first, second)
    ]
    return first, second, bot, tables[0], tables[1]


def channel_messages(emu: Any, guild_id: str, name: str) -> list[Any]:
    """Messages of the guild's channel ``name``, oldest first."""
    state = emu.state
    channel = next(
        c for c in state.channels.values() if str(c.guild_id) == str(guild_id) and c.name == name
    )
    return [state.messages[i] for i in channel.message_ids]


# --------------------------------------------------------------------- connecting


async def test_constructing_does_no_io_and_the_env_var_names_the_server(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("env", bots=[bot])
    monkeypatch.setenv("DISCOBASE_API_URL", emulator.url)
    monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
    before = emulator.stats()
    db = discobase.Database("env")

    @db.table
    class Item(discobase.Table):
        x: int

    await asyncio.sleep(0.05)
    assert emulator.stats() == before
    with pytest.raises(discobase.NotConnected):
        Item.find()
    with pytest.raises(discobase.NotConnected):
        Item(x=1).save()
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):  # reached through DISCOBASE_API_URL alone
            await Item(x=1).save()
        # An explicit api_url wins over the environment.
        monkeypatch.setenv("DISCOBASE_API_URL", "http://127.0.0.1:9")
        explicit = make_db(emulator, "env")

        @explicit.table
        class Item(discobase.Table):  # noqa: F811 - the same table, a second database
            x: int

        await identify_window()
        async with explicit.conn(bot.token):
            assert Item.count() == 1


async def test_login_task_wait_ready_close_and_login_again(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "lifecycle")

    @db.table
    class Item(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.NotConnected):
            await db.wait_ready()  # never logged in: an error, not a hang
        task = db.login_task(bot.token)
        assert isinstance(task, asyncio.Task)
        await db.wait_ready()
        await db.wait_ready()  # ready stays ready
        assert db.is_ready
        with pytest.raises(discobase.UsageError):
            async with db.conn(bot.token):  # already logged in
                pass
        assert db.is_ready
        write = Item(x=1).save()
        assert isinstance(write, asyncio.Task)
        await db.close()
        assert await task is None
        assert write.done() and not write.cancelled() and write.exception() is None
        with pytest.raises(discobase.NotConnected):
            Item.find()
        await identify_window()
        async with db.conn(bot.token):
            assert [i.x for i in Item.find()] == [1]


async def test_a_bad_token_reaches_every_way_of_logging_in(emulator: Any) -> None:
    emulator.create_guild("bad token")
    db = make_db(emulator, "bad token")
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.InvalidToken):
            async with db.conn("not-a-token"):
                pass
        with pytest.raises(discobase.InvalidToken):
            await db.login("not-a-token")
        # wait_ready() called before the login starts still gets the failure.
        waiter = asyncio.create_task(db.wait_ready())
        await asyncio.sleep(0)
        task = db.login_task("not-a-token")
        with pytest.raises(discobase.InvalidToken):
            await waiter
        with pytest.raises(discobase.InvalidToken):
            await task


async def test_a_failed_background_login_is_logged_without_the_token(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db = make_db(emulator, "nowhere")
    with caplog.at_level(logging.ERROR, logger="discobase"):
        async with asyncio.timeout(WAIT):
            task = db.login_task("secret-token-value")
            await asyncio.wait([task])
            await asyncio.sleep(0)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert not any("secret-token-value" in e for e in errors)


async def test_guild_errors_give_the_readme_link_and_both_ids(emulator: Any) -> None:
    from discobase.database import PERMISSIONS

    bot = emulator.create_bot("db")
    db = make_db(emulator, "nowhere")
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.GuildNotFound) as missing:
            async with db.conn(bot.token):
                pass
    message = str(missing.value)
    assert "'nowhere'" in message
    assert "no longer lets bots create servers" in message
    # The very link the README gives, with this bot's application id.
    assert PERMISSIONS == 2251799813794832
    link = (
        f"https://discord.com/oauth2/authorize?client_id={bot.application_id}"
        f"&scope=bot&permissions={PERMISSIONS}"
    )
    assert link in message

    first = emulator.create_guild("twin", bots=[bot])
    second = emulator.create_guild("twin", bots=[bot])
    twin = make_db(emulator, "twin")
    async with asyncio.timeout(WAIT):
        twin.login_task(bot.token)
        with pytest.raises(discobase.AmbiguousGuild) as ambiguous:
            await twin.wait_ready()
    assert "guild_id" in str(ambiguous.value)
    assert first in str(ambiguous.value) and second in str(ambiguous.value)


async def test_a_guild_created_where_allowed_is_created_once(emulator: Any) -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE, allow_guild_create=True) as legacy:
        bot = legacy.create_bot("db")
        db = make_db(legacy, "made here")
        async with asyncio.timeout(WAIT):
            async with db.conn(bot.token):
                pass
            await identify_window()
            async with db.conn(bot.token):
                pass
        assert legacy.stats()["requests_by_route"]["POST /guilds"] == 1
        assert [g.name for g in legacy.state.guilds_for_bot(bot.id)] == ["made here"]


async def test_conn_closes_when_its_block_is_cancelled(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "cancelled")

    @db.table
    class Item(discobase.Table):
        x: int

    entered = asyncio.Event()

    async def body() -> None:
        async with db.conn(bot.token):
            Item(x=1).save()  # not awaited: closing still waits for it
            entered.set()
            await asyncio.sleep(3600)

    async with asyncio.timeout(WAIT):
        task = asyncio.create_task(body())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not db.is_ready
        with pytest.raises(discobase.NotConnected):
            Item.count()
        await identify_window()
        async with db.conn(bot.token):
            assert Item.count() == 1


@pytest.mark.parametrize("permission", [4, 10, 11, 13, 15, 16, 51])
async def test_a_missing_permission_never_hangs_start_up(emulator: Any, permission: int) -> None:
    from discobase.database import PERMISSIONS

    bot = emulator.create_bot("db")
    emulator.create_guild("perms", bots=[bot], permissions=PERMISSIONS & ~(1 << permission))
    db = make_db(emulator, "perms", start_timeout=WAIT)

    @db.table
    class Item(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT):
        db.login_task(bot.token)
        try:
            await db.wait_ready()
        except discobase.DiscobaseError:
            pass  # refused at start-up: fine
        else:
            assert db.is_ready
        finally:
            await db.close()


async def test_awaited_writes_are_durable_before_close(emulator: Any) -> None:
    writer, reader, bot, written, read = two_processes(emulator, "durable", "Item", x=int)
    async with asyncio.timeout(WAIT):
        writer.login_task(bot.token)
        await writer.wait_ready()
        try:
            await written(x=0).save()
            await written.save_many([written(x=i) for i in range(1, 50)])
            # The writer is still open (it could crash now): a new process loads it all.
            await identify_window()
            async with reader.conn(bot.token):
                assert sorted(i.x for i in read.find()) == list(range(50))
        finally:
            await writer.close()


async def test_writes_fail_and_close_returns_when_discord_goes_away() -> None:
    from discobase.emulator import Emulator

    emu = Emulator(time_scale=TIME_SCALE)
    await emu.start()
    try:
        db, bot, _ = connect(emu, "gone")

        @db.table
        class Item(discobase.Table):
            x: int

        async with asyncio.timeout(WAIT):
            db.login_task(bot.token)
            await db.wait_ready()
            emu.fail_next("POST", r"/channels/\d+/messages", 500, count=10_000)
            with pytest.raises(discobase.HTTPException):
                await Item(x=1).save()
            await emu.stop()
            with pytest.raises(discobase.HTTPException):
                await Item(x=2).save()
            await db.close()
            assert not db.is_ready
    finally:
        await emu.stop()


# --------------------------------------------------------------------- tables and records


def test_registration_errors_say_what_is_wrong() -> None:
    db, other = discobase.Database("first"), discobase.Database("second")

    class Plain(pydantic.BaseModel):
        x: int

    for wrong in (Plain, int, discobase.Table):
        with pytest.raises(discobase.TableRegistrationError, match="subclass of discobase.Table"):
            db.table(wrong)  # type: ignore[arg-type]

    @db.table
    class User(discobase.Table):
        name: str

    assert db.tables == {"user": User}
    assert db.table(User) is User  # registering it again on its own database is harmless
    with pytest.raises(discobase.TableRegistrationError, match="already has a table named 'user'"):

        @db.table
        class USER(discobase.Table):
            other: int

    with pytest.raises(discobase.TableRegistrationError, match="one database"):
        other.table(User)

    class Loose(discobase.Table):
        x: int

    with pytest.raises(discobase.TableNotRegistered, match="@db.table"):
        Loose.find()


async def test_record_states_tasks_and_stable_ids(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "states")

    @db.table
    class User(discobase.Table):
        name: str

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            fresh = User(name="a")
            assert fresh.id is None
            with pytest.raises(discobase.RecordStateError, match=r"use save\(\)"):
                fresh.update()
            with pytest.raises(discobase.RecordStateError, match=r"saved with save\(\)"):
                fresh.delete()
            task = fresh.save()
            assert isinstance(task, asyncio.Task)
            first_id = fresh.id
            assert first_id is not None  # at once, before the write is done
            assert await task is fresh and fresh.id == first_id
            with pytest.raises(discobase.RecordStateError, match=r"use update\(\).*commit\(\)"):
                fresh.save()
            (found,) = User.find()
            assert found.id == first_id
            with pytest.raises(discobase.RecordStateError, match=r"update\(\)"):
                found.save()
            with pytest.raises(discobase.RecordStateError):
                User.save_many([User(name="b"), found])
            assert User.count() == 1
            fresh.name = "changed"
            updating = fresh.update()
            assert isinstance(updating, asyncio.Task)
            await updating
            committing = fresh.commit()
            assert isinstance(committing, asyncio.Task)
            await committing
            assert fresh.id == first_id
            deleting = fresh.delete()
            assert isinstance(deleting, asyncio.Task)
            assert await deleting is None
            assert fresh.id is None and User.count() == 0
            await fresh.commit()  # inserts anew, under a new id
            assert fresh.id not in (None, first_id)
            new_id = fresh.id
        async with db.conn(bot.token):
            (back,) = User.find()
            assert back.id == new_id
            assert (await User.get(new_id)).name == "changed"
            assert (await User.get(str(new_id))).name == "changed"


async def test_late_tables_are_refused_everywhere_until_build_tables(emulator: Any) -> None:
    db, bot, guild_id = connect(emulator, "late")

    @db.table
    class Early(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT), db.conn(bot.token):
        await db.build_tables()  # nothing to build: harmless
        await Early(x=1).save()

        @db.table
        class Late(discobase.Table):
            y: int

        fix = r"await db\.build_tables\(\)"
        for call in (
            lambda: Late(y=1).save(),
            lambda: Late.save_many([Late(y=1)]),
            Late.find,
            Late.count,
        ):
            with pytest.raises(discobase.TableNotBuilt, match=fix):
                call()
        with pytest.raises(discobase.TableNotBuilt, match=fix):
            await Late.find_unique(y=1)
        with pytest.raises(discobase.TableNotBuilt, match=fix):
            await Late.get(1)
        await asyncio.gather(db.build_tables(), db.build_tables())
        await db.build_tables()
        await Late(y=2).save()
        assert Early.count() == 1 and Late.count() == 1
    names = [c.name for c in emulator.state.channels.values() if str(c.guild_id) == guild_id]
    assert names.count("late") == 1


async def test_a_write_left_alone_that_fails_is_logged(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db, bot, _ = connect(emulator, "background")

    @db.table
    class Item(discobase.Table):
        x: int

    with caplog.at_level(logging.ERROR, logger="discobase"):
        async with asyncio.timeout(WAIT), db.conn(bot.token):
            emulator.fail_next("POST", r"/channels/\d+/messages", 403, count=50)
            Item(x=1).save()  # not awaited
            while not any(r.name.startswith("discobase") for r in caplog.records):
                await asyncio.sleep(0.01)
    (error,) = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("discobase")
    ]
    assert "save of item" in error.getMessage() and "403" in error.getMessage()


async def test_a_table_named_like_the_catalog_still_works(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "catalog name")

    @db.table
    class Discobase(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Discobase(x=1).save()
        await identify_window()
        async with db.conn(bot.token):
            assert [d.x for d in Discobase.find()] == [1]


# --------------------------------------------------------------------- queries


async def test_find_count_get_and_find_unique_semantics(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "queries")

    @db.table
    class User(discobase.Table):
        name: str
        age: int | None = None
        city: Annotated[str, discobase.Index()] = "x"

    async with asyncio.timeout(WAIT), db.conn(bot.token):
        rows = [("Peter", 30, "A"), ("Peter", 40, "B"), ("Paul", 30, "A"), ("Anna", None, "A")]
        saved = await User.save_many([User(name=n, age=a, city=c) for n, a, c in rows])
        ids = [u.id for u in saved]
        # AND of every field, indexed or not.
        assert [(u.name, u.age) for u in await User.find(name="Peter", age=30)] == [("Peter", 30)]
        assert [u.id for u in User.find(name="Peter", city="A")] == [ids[0]]
        assert User.find(name="Peter", age=99) == []
        assert [u.name for u in User.find(age=None)] == ["Anna"]
        # No argument: everything, in creation order.
        assert [u.id for u in await User.find()] == ids
        # Unknown fields and impossible values.
        for query in (User.find, User.count):
            with pytest.raises(discobase.InvalidQuery, match="nope"):
                query(nope=1)
        with pytest.raises(discobase.InvalidQuery, match="nope"):
            await User.find_unique(nope=1)
        with pytest.raises(discobase.InvalidQuery):
            User.find(age="not a number")
        # count: an int that may be awaited.
        assert User.count() == 4 and await User.count() == 4
        assert User.count(name="Peter") == 2 and await User.count(name="Peter", age=40) == 1
        assert User.count(name="Nobody") == 0
        # order_by, limit, offset.
        assert [u.name for u in User.find(order_by="name")] == ["Anna", "Paul", "Peter", "Peter"]
        assert [u.name for u in User.find(order_by="-name")] == ["Peter", "Peter", "Paul", "Anna"]
        assert [(u.name, u.age) for u in User.find(order_by=["name", "-age"])] == [
            ("Anna", None),
            ("Paul", 30),
            ("Peter", 40),
            ("Peter", 30),
        ]
        assert [u.age for u in User.find(order_by="age")] == [30, 30, 40, None]
        assert [u.age for u in User.find(order_by="-age")] == [40, 30, 30, None]
        assert [u.name for u in User.find(order_by="name", limit=2)] == ["Anna", "Paul"]
        assert [u.name for u in User.find(order_by="name", limit=2, offset=3)] == ["Peter"]
        assert User.find(limit=0) == [] and User.find(offset=10) == []
        assert [u.id for u in User.find(offset=1, limit=1)] == [ids[1]]
        assert [u.id for u in User.find(order_by="-id", limit=1)] == [ids[-1]]
        assert [u.age for u in User.find(name="Peter", order_by="-age", limit=1)] == [40]
        for bad in (dict(order_by="nope"), dict(limit=-1), dict(offset=-1), dict(limit="2")):
            with pytest.raises(discobase.InvalidQuery):
                User.find(**bad)
        # id as a field, get().
        assert [u.name for u in User.find(id=ids[2])] == ["Paul"]
        assert (await User.get(ids[0])).age == 30
        with pytest.raises(discobase.RecordNotFound):
            await User.get(12345)
        # find_unique, strict and not.
        assert (await User.find_unique(name="Paul")).age == 30
        with pytest.raises(discobase.MultipleRecordsFound, match=r"strict=False"):
            await User.find_unique(name="Peter")
        with pytest.raises(discobase.RecordNotFound, match="Nobody"):
            await User.find_unique(name="Nobody")
        assert await User.find_unique(name="Nobody", strict=False) is None
        first = await User.find_unique(name="Peter", strict=False)
        assert first is not None and first.id == ids[0]
        for strict in (True, False):
            with pytest.raises(discobase.InvalidQuery, match=r"find\(\)"):
                await User.find_unique(strict=strict)


async def test_find_is_iterable_without_await_and_awaitable(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "no await")

    @db.table
    class User(discobase.Table):
        name: str

    async with asyncio.timeout(WAIT), db.conn(bot.token):
        await User(name="Peter").save()
        await User(name="Paul").save()
        users = User.find(name="Peter")
        assert [u.name for u in users] == ["Peter"]
        assert [u.name for u in users] == ["Peter"]  # a list: iterable again
        assert len(users) == 1 and users[0].name == "Peter"
        assert [u.name for u in await users] == ["Peter"]
        assert [u.name for u in await User.find(name="Peter")] == ["Peter"]


# --------------------------------------------------------------------- exact round trips


@pytest.mark.parametrize(
    "value",
    [
        -0.0,
        0.0,
        1e308,
        -1e308,
        1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308,
        0.1 + 0.2,
        1 / 3,
        1e16,
        float("inf"),
        float("-inf"),
        2.0**53 + 2,
    ],
)
async def test_float_edge_values_round_trip_exactly(emulator: Any, value: float) -> None:
    db, bot, _ = connect(emulator, "floats")

    @db.table
    class Reading(discobase.Table):
        x: float

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Reading(x=value).save()
            (mine,) = Reading.find()
            assert repr(mine.x) == repr(value)
            assert Reading.count(x=value) == 1
        await identify_window()
        async with db.conn(bot.token):
            (back,) = Reading.find()
    assert type(back.x) is float and repr(back.x) == repr(value)  # repr tells -0.0 from 0.0


async def test_nan_round_trips(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "nan")

    @db.table
    class Reading(discobase.Table):
        x: float

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Reading(x=float("nan")).save()
        await identify_window()
        async with db.conn(bot.token):
            (back,) = Reading.find()
    assert math.isnan(back.x)


async def test_nested_models_and_rich_types_round_trip_and_match(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "rich")
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    inner = Inner(
        when=datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=india),
        blob=b"\x00abc\x7f" * 10,
        ident=uuid.uuid4(),
    )

    @db.table
    class Rich(discobase.Table):
        outer: Outer
        level: Level
        flag: Flag
        utc: datetime.datetime
        naive: datetime.datetime
        moment: datetime.time
        triple: tuple[int, str, float]
        numbers: set[int]
        letters: frozenset[str]
        maybe: int | None
        deep: list[list[dict[str, Any]]]
        empty_bytes: bytes
        empty_text: str
        anything: Any
        keyed: dict[int, str]

    original = Rich(
        outer=Outer(inner=inner, inners=[inner, inner], by_key={"k": inner}),
        level=Level.HIGH,
        flag=Flag.B,
        utc=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
        naive=datetime.datetime(1, 1, 1),
        moment=datetime.time(12, 0, 0, 1),
        triple=(1, "x", 2.5),
        numbers={3, 1, 2},
        letters=frozenset({"a", "b"}),
        maybe=None,
        deep=[[{"a": None, "b": [True, False], "c": {"d": -0.5}}]],
        empty_bytes=b"",
        empty_text="",
        anything={"x": [1, "2", None, -0.0]},
        keyed={1: "one", -2: "minus two"},
    )
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await original.save()
            assert Rich.find() == [original]
        await identify_window()
        async with db.conn(bot.token):
            (back,) = Rich.find()
            for field, value in [
                ("level", Level.HIGH),
                ("flag", Flag.B),
                ("flag", "b"),
                ("utc", datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)),
                ("empty_bytes", b""),
                ("outer", original.outer),
                ("numbers", {1, 2, 3}),
            ]:
                assert Rich.count(**{field: value}) == 1, field
    assert back == original
    assert back.outer.inner.when.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert back.utc.tzinfo is not None and back.naive.tzinfo is None
    assert type(back.level) is Level and type(back.flag) is Flag
    assert math.copysign(1, back.anything["x"][3]) == -1


ROUND_TRIPS: list[tuple[str, Any, Any]] = [
    ("decimal", decimal.Decimal, decimal.Decimal("1.10")),
    ("decimal_long", decimal.Decimal, decimal.Decimal("123456789012345678901234567890.000000001")),
    ("date_min", datetime.date, datetime.date(1, 1, 1)),
    ("date_max", datetime.date, datetime.date(9999, 12, 31)),
    ("datetime_max", datetime.datetime, datetime.datetime.max),
    ("datetime_min_utc", datetime.datetime, datetime.datetime.min.replace(tzinfo=datetime.UTC)),
    (
        "datetime_plus_14",
        datetime.datetime,
        datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=14))),
    ),
    ("time_utc", datetime.time, datetime.time(1, 2, 3, 4, tzinfo=datetime.UTC)),
    ("timedelta_negative", datetime.timedelta, datetime.timedelta(days=-1, microseconds=1)),
    ("timedelta_large", datetime.timedelta, datetime.timedelta(days=999999999)),
    ("path", pathlib.PurePosixPath, pathlib.PurePosixPath("/a/b")),
    ("ipv6", ipaddress.IPv6Address, ipaddress.IPv6Address("::1")),
    ("literal", Literal["a", "b"], "b"),
    ("uuid_nil", uuid.UUID, uuid.UUID(int=0)),
    ("tuple", tuple[int, ...], (1, 2, 3)),
    ("int_u64_max", int, 2**64 - 1),
    ("int_i64_min", int, -(2**63)),
    ("float_keys", dict[float, int], {1.5: 1, -0.0: 2}),
    ("astral_and_nonchars", str, "\U0010ffff\ufffe\uffff"),
    ("bytes_every_value", bytes, bytes(range(256)) * 3),
    ("list_of_bytes", list[bytes], [b"\x00\xff", b""]),
    ("optional_bytes", bytes | None, b"\x80"),
]


@pytest.mark.parametrize(
    ("annotation", "value"), [c[1:] for c in ROUND_TRIPS], ids=[c[0] for c in ROUND_TRIPS]
)
async def test_field_types_round_trip_exactly(emulator: Any, annotation: Any, value: Any) -> None:
    db, bot, _ = connect(emulator, "types")
    model = type("Value", (discobase.Table,), {"__annotations__": {"v": annotation}})
    db.table(model)
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            record = model(v=value)
            expected = record.v
            await record.save()
            (mine,) = model.find()
            assert mine.v == expected and type(mine.v) is type(expected)
            assert model.count(v=expected) == 1
        await identify_window()
        async with db.conn(bot.token):
            (back,) = model.find()
    assert back.v == expected and type(back.v) is type(expected)
    if isinstance(expected, datetime.datetime | datetime.time):
        assert back.v.utcoffset() == expected.utcoffset()


# --------------------------------------------------------------------- content on Discord


@pytest.mark.parametrize("unit", ["x", "é", "😀", "\x00", "\\", '"'])
async def test_records_around_2000_code_points_once_encoded(emulator: Any, unit: str) -> None:
    """Save records whose entry is 1989..2000 code points (inline), then past 2000 (a file)."""
    db, bot, guild_id = connect(emulator, "limit")

    @db.table
    class Note(discobase.Table):
        text: str

    # Code points one character of `unit` takes once escaped into a message's content.
    width = {"\x00": 6, "\\": 2, '"': 2, "é": 6, "😀": 12}.get(unit, 1)
    sizes: dict[int, bool] = {}  # content length -> had attachments
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Note(text="").save()
            empty = len(channel_messages(emulator, guild_id, "note")[-1].content)
            # Each entry keeps PREV_ROOM code points for the entry it names as "prev".
            start = (1990 - PREV_ROOM - empty) // width
            for n in range(start, start + (25 + PREV_ROOM) // width + 2):
                before = len(channel_messages(emulator, guild_id, "note"))
                await Note(text=unit * n).save()
                (message,) = channel_messages(emulator, guild_id, "note")[before:]
                assert len(message.content) <= 2000
                sizes[len(message.content)] = bool(message.attachments)
            expected = {n.id: n.text for n in Note.find()}
        await identify_window()
        async with db.conn(bot.token):
            assert {n.id: n.text for n in Note.find()} == expected
    inline = [size for size, attached in sizes.items() if not attached]
    # The largest inline entries are right at the limit (less the room kept for "prev").
    assert max(inline) > 2000 - PREV_ROOM - width
    assert any(sizes.values())  # and the next ones went into a file


async def test_awkward_text_and_a_five_megabyte_record_are_stored_exactly(emulator: Any) -> None:
    db, bot, guild_id = connect(emulator, "awkward")

    @db.table
    class Note(discobase.Table):
        text: str

    texts = [
        "@everyone @here <@123456789012345678> <@&1> <#1> hi",
        "emoji 😀🎉 👩‍👩‍👧 🇫🇷 CJK 漢字 \U0010ffff",
        "control \x00\x01\x07\x1b\x7f\u2028\u2029\ufeff\u200b and \r\n\t\r",
        "**bold** __u__ ~~s~~ ||spoiler|| `x` ```py\nprint()\n``` > quote\n# heading https://x.y",
        "   spaces around   ",
        "",
        "\n",
        '{"discobase": 1, "t": "log", "ops": []}',
    ]
    big = "0123456789abcdef\u00e9😀\x00" * (5 * 1024 * 1024 // 19)
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            saved = [await Note(text=t).save() for t in texts]
            huge = await Note(text=big).save()
            for message in channel_messages(emulator, guild_id, "note"):
                assert not message.mention_everyone
                assert not message.mentions and not message.mention_roles
        await identify_window()
        async with db.conn(bot.token):
            for record in saved:
                assert (await Note.get(record.id)).text == record.text
            assert (await Note.get(huge.id)).text == big
            assert Note.count(text="") == 1
            assert Note.count() == len(texts) + 1


async def test_the_bots_own_chat_in_a_table_channel_is_ignored(emulator: Any) -> None:
    db, bot, guild_id = connect(emulator, "own chat")

    @db.table
    class Msg(discobase.Table):
        text: str

    state = emulator.state
    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Msg(text="real").save()
            channel = next(
                c
                for c in state.channels.values()
                if str(c.guild_id) == guild_id and c.name == "msg"
            )
            # The same bot account posts for another feature of the program.
            state.create_message(channel, bot.id, content="hello from another feature")
            state.create_message(channel, bot.id, content="{not json")
            state.create_message(channel, bot.id, content='{"discobase": 1, "t": "nonsense"}')
            await Msg(text="after").save()
            assert sorted(m.text for m in Msg.find()) == ["after", "real"]
        await identify_window()
        async with db.conn(bot.token):
            assert sorted(m.text for m in Msg.find()) == ["after", "real"]


# --------------------------------------------------------------------- indexes and batches


async def test_a_unique_index_refuses_every_way_of_writing_a_duplicate(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "unique")

    @db.table
    class Account(discobase.Table):
        email: Annotated[str, discobase.Index(unique=True)]
        country: Annotated[str | None, discobase.Index()] = None

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            first = await Account(email="a@x", country="NL").save()
            with pytest.raises(discobase.UniqueViolation, match="email.*'a@x'") as caught:
                Account(email="a@x").save()
            assert (caught.value.table, caught.value.field, caught.value.value) == (
                "account",
                "email",
                "a@x",
            )
            second = await Account(email="b@x").save()
            second.email = "a@x"
            with pytest.raises(discobase.UniqueViolation):
                second.update()
            with pytest.raises(discobase.UniqueViolation):
                second.commit()
            assert (await Account.get(second.id)).email == "b@x"
            first.country = "BE"  # an update keeping its own unique value
            await first.update()
            assert Account.count(country="NL") == 0 and Account.count(country="BE") == 1
            with pytest.raises(discobase.UniqueViolation):
                Account.save_many([Account(email="c@x"), Account(email="c@x")])
            with pytest.raises(discobase.UniqueViolation):
                Account.save_many([Account(email="d@x"), Account(email="a@x")])
            pending = Account(email="e@x").save()
            with pytest.raises(discobase.UniqueViolation):
                Account(email="e@x").save()  # the first is not even written yet
            await pending
            await first.delete()
            await Account(email="a@x").save()  # a deleted record frees its value
            with pytest.raises(discobase.UniqueViolation):
                async with db.batch():
                    Account(email="f@x").save()
                    Account(email="f@x").save()
            assert sorted(a.email for a in Account.find()) == ["a@x", "b@x", "e@x"]
        await identify_window()
        async with db.conn(bot.token):
            assert sorted(a.email for a in Account.find()) == ["a@x", "b@x", "e@x"]
            with pytest.raises(discobase.UniqueViolation):
                Account(email="b@x").save()


async def test_a_batch_is_all_or_nothing_across_tables(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "batch")

    @db.table
    class Left(discobase.Table):
        x: int

    @db.table
    class Right(discobase.Table):
        y: int

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            tasks: list[asyncio.Task[Any]] = []
            with pytest.raises(RuntimeError):
                async with db.batch():
                    tasks += [Left(x=1).save(), Right(y=1).save()]
                    raise RuntimeError("abandon the batch")
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(o, discobase.DatabaseError) for o in outcomes)
            assert Left.count() == 0 and Right.count() == 0
            async with db.batch():
                tasks = [Left(x=i).save() for i in range(5)] + [Right(y=i).save() for i in range(5)]
                assert Left.count() == 0  # nothing is visible inside the block
            await asyncio.gather(*tasks)
            assert Left.count() == 5 and Right.count() == 5
            changed = Left.find()[0]
            async with db.batch():
                changed.x = 100
                tasks = [changed.update(), Right.find()[0].delete()]
            await asyncio.gather(*tasks)
        await identify_window()
        async with db.conn(bot.token):
            assert Left.count() == 5 and Left.count(x=100) == 1 and Right.count() == 4


# aiohttp warns (ResourceWarning) about every attachment body over 1 MiB it is handed as raw
# bytes; under this suite's filterwarnings=error that warning fails the write itself.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_another_process_sees_a_large_save_many_all_at_once(emulator: Any) -> None:
    writer, reader, bot, written, read = two_processes(
        emulator, "atomic", "Row", payload=str, n=int
    )
    total = 3000  # about 15 MB of incompressible text: a batch of several messages
    seen: set[int] = set()
    async with asyncio.timeout(WAIT), writer.conn(bot.token), reader.conn(bot.token):
        done = False

        async def watch() -> None:
            while not done:
                seen.add(read.count())
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        rows = [written(payload=os.urandom(2500).hex(), n=i) for i in range(total)]
        saved = await written.save_many(rows)
        assert len(saved) == total and all(r.id is not None for r in saved)
        while read.count() != total:
            await asyncio.sleep(0.01)
        done = True
        await watcher
    assert seen <= {0, total}
    assert emulator.stats()["requests_by_route"]["POST /channels/{channel_id}/messages"] >= 3


async def test_save_many_refuses_strangers_and_repeats_before_writing(emulator: Any) -> None:
    db, bot, _ = connect(emulator, "save many")

    @db.table
    class Left(discobase.Table):
        x: int

    @db.table
    class Right(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT), db.conn(bot.token):
        assert await Left.save_many([]) == []
        with pytest.raises(discobase.UsageError, match=r"call save_many\(\) on that record"):
            Left.save_many([Left(x=1), Right(x=2)])
        record = Left(x=1)
        with pytest.raises(discobase.UsageError, match="twice"):
            Left.save_many([record, record])
        assert Left.count() == 0 and record.id is None
        made = await Left.save_many(Left(x=i) for i in range(3))
        assert [m.x for m in made] == [0, 1, 2] == [m.x for m in Left.find()]


# --------------------------------------------------------------------- schemas


def catalog_size(emu: Any, guild_id: str) -> int:
    return len(channel_messages(emu, guild_id, "discobase"))


@pytest.mark.slow
async def test_schema_changes_are_recorded_or_refused_by_field(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    guild_id = emulator.create_guild("schemas", bots=[bot])

    def open_as(**fields: Any) -> tuple[discobase.Database, type[Any]]:
        db = make_db(emulator, "schemas")
        annotations = {name: annotation for name, (annotation, _) in fields.items()}
        defaults = {name: d for name, (_, d) in fields.items() if d is not ...}
        user = type("User", (discobase.Table,), {"__annotations__": annotations, **defaults})
        return db, db.table(user)

    base: dict[str, Any] = {"name": (str, ...), "age": (int, ...)}
    grown = {**base, "admin": (bool, False), "tags": (list[str], pydantic.Field(default=[]))}
    async with asyncio.timeout(WAIT):
        db, user = open_as(**base)
        async with db.conn(bot.token):
            await user(name="Peter", age=3).save()
        size = catalog_size(emulator, guild_id)
        db, user = open_as(**base)
        await identify_window()
        async with db.conn(bot.token):  # unchanged: nothing written
            assert user.count() == 1
        assert catalog_size(emulator, guild_id) == size
        db, user = open_as(**grown)
        await identify_window()
        async with db.conn(bot.token):  # fields with defaults: accepted, and recorded
            (peter,) = user.find()
            assert (peter.admin, peter.tags) == (False, [])
            assert user.count(admin=False) == 1 and user.count(tags=[]) == 1
            await user(name="Paul", age=1, admin=True, tags=["a"]).save()
        recorded = catalog_size(emulator, guild_id)
        assert recorded > size
        db, user = open_as(**grown)
        await identify_window()
        async with db.conn(bot.token):
            assert user.count() == 2
        assert catalog_size(emulator, guild_id) == recorded
        db, user = open_as(**base)  # fields with defaults left out: the others keep them
        await identify_window()
        async with db.conn(bot.token):
            assert user.count() == 2
        assert catalog_size(emulator, guild_id) == recorded
        refused = [
            ({"name": (str, ...)}, {"age"}, "removed"),
            ({**grown, "age": (str, ...)}, {"age"}, "changed type"),
            ({**grown, "tags": (list[int], pydantic.Field(default=[]))}, {"tags"}, "changed"),
            ({**grown, "email": (str, ...)}, {"email"}, "without a default"),
        ]
        for fields, names, words in refused:
            await identify_window()
            db, user = open_as(**fields)
            with pytest.raises(discobase.SchemaMismatch) as caught:
                async with db.conn(bot.token):
                    pass
            assert caught.value.table == "user"
            assert set(caught.value.fields) == names
            assert words in str(caught.value) and all(n in str(caught.value) for n in names)
        db, user = open_as(**grown)
        await identify_window()
        async with db.conn(bot.token):  # the refusals left the records alone
            assert sorted(u.name for u in user.find()) == ["Paul", "Peter"]


async def test_a_docstring_is_not_a_schema_change_but_a_nested_type_is(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("nested", bots=[bot])

    first = make_db(emulator, "nested")

    @first.table
    class Place(discobase.Table):
        address: Street

    documented = make_db(emulator, "nested")

    @documented.table
    class Place(discobase.Table):  # noqa: F811 - the same table, a newer class
        """Where someone lives."""

        address: Street = pydantic.Field(description="the street")

    retyped = make_db(emulator, "nested")

    @retyped.table
    class Place(discobase.Table):  # noqa: F811
        address: NumberedStreet

    async with asyncio.timeout(WAIT):
        async with first.conn(bot.token):
            await first.tables["place"](address=Street(street="Main")).save()
        await identify_window()
        async with documented.conn(bot.token):  # descriptions are not fields
            assert documented.tables["place"].count() == 1
        await identify_window()
        with pytest.raises(discobase.SchemaMismatch) as caught:
            async with retyped.conn(bot.token):
                pass
    assert list(caught.value.fields) == ["address"]


# --------------------------------------------------------------------- live sync


async def test_every_kind_of_write_reaches_another_process(emulator: Any) -> None:
    first, second, bot, mine, theirs = two_processes(emulator, "live", "Msg", text=str)

    async def until(check: Any) -> None:
        while not check():
            await asyncio.sleep(0.005)

    async with asyncio.timeout(WAIT), first.conn(bot.token):
        await identify_window()
        async with second.conn(bot.token):
            record = await mine(text="hello").save()
            await until(lambda: theirs.count(text="hello") == 1)
            record.text = "edited"
            await record.update()
            await until(lambda: theirs.count(text="edited") == 1 and theirs.count() == 1)
            await record.delete()
            await until(lambda: theirs.count() == 0)
            await mine.save_many([mine(text="many") for _ in range(500)])
            await until(lambda: theirs.count(text="many") == 500)
            async with first.batch():
                batched = [mine(text="batched").save() for _ in range(3)]
            await asyncio.gather(*batched)
            await until(lambda: theirs.count(text="batched") == 3)
            await theirs(text="back").save()
            await until(lambda: mine.count(text="back") == 1)
            assert [m.id for m in mine.find()] == [m.id for m in theirs.find()]
