"""Records through every layer: exact types, unique indexes, batches and group commit."""

from __future__ import annotations

import asyncio
import datetime
import enum
import gc
import uuid
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from tests.conftest import TIME_SCALE
from tests.helpers import WAIT, identify_window


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    tags: list[str] = []


def connect(emu: Any, name: str) -> tuple[discobase.Database, str]:
    bot = emu.create_bot("db")
    emu.create_guild(name, bots=[bot])
    return discobase.Database(name, api_url=emu.url, time_scale=TIME_SCALE), bot.token


async def test_every_json_type_round_trips_through_discord(emulator: Any) -> None:
    db, token = connect(emulator, "types")

    @db.table
    class Everything(discobase.Table):
        text: str = "é\x00\u200b\r\n @everyone <@123> 😀 **bold** `code` https://x.y"
        number: int = -(2**62)
        real: float = 0.1
        flag: bool = False
        nothing: None = None
        items: list[int] = [1, 2, 3]
        mapping: dict[str, Any] = {"a": {"b": [1.5, None, "c", True]}}
        address: Address = Address(street="Main", tags=["x"])
        when: datetime.datetime = datetime.datetime(
            2025, 7, 1, 12, 30, 1, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
        )
        naive: datetime.datetime = datetime.datetime(2025, 7, 1, 12, 30)
        day: datetime.date = datetime.date(2025, 1, 2)
        span: datetime.timedelta = datetime.timedelta(days=1, microseconds=5)
        colour: Colour = Colour.BLUE
        ident: uuid.UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
        blob: bytes = bytes(range(256))
        infinite: float = float("-inf")
        optional: str | None = None

    original = Everything()
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await original.save()
            (found,) = Everything.find()
            assert found == original
        # Read back from Discord by a fresh login, not from this process's memory.
        await identify_window()
        async with db.conn(token):
            (reread,) = Everything.find()
    assert reread == original
    assert reread.when.utcoffset() == datetime.timedelta(hours=-5)
    assert reread.naive.tzinfo is None
    assert reread.text == original.text


async def test_unique_index_refuses_duplicates(emulator: Any) -> None:
    db, token = connect(emulator, "unique")

    @db.table
    class Account(discobase.Table):
        email: Annotated[str, discobase.Index(unique=True)]
        country: Annotated[str, discobase.Index()] = "nl"

    async with asyncio.timeout(WAIT), db.conn(token):
        await Account(email="a@x").save()
        with pytest.raises(discobase.UniqueViolation) as caught:
            await Account(email="a@x").save()
        assert caught.value.field == "email"
        second = await Account(email="b@x", country="be").save()
        second.email = "a@x"
        with pytest.raises(discobase.UniqueViolation):
            second.update()
        assert Account.count() == 2
        assert [a.email for a in Account.find(country="be")] == ["b@x"]


async def test_concurrent_saves_share_messages(emulator: Any) -> None:
    db, token = connect(emulator, "group commit")

    @db.table
    class Event(discobase.Table):
        kind: str
        n: int

    async with asyncio.timeout(WAIT), db.conn(token):
        emulator.reset()
        # 300 saves made over a few loop turns, as a busy program would.
        tasks = []
        for i in range(300):
            tasks.append(Event(kind="tick", n=i).save())
            if i % 50 == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        stats = emulator.stats()
        assert Event.count() == 300
    creates = sum(n for route, n in stats["requests_by_route"].items() if "messages" in str(route))
    assert 1 <= creates < 300 // 5
    assert stats["responses_by_status"].get(429, 0) == 0


async def test_a_batch_spans_tables_and_save_many_is_atomic(emulator: Any) -> None:
    db, token = connect(emulator, "batches")

    @db.table
    class Sensor(discobase.Table):
        name: str

    @db.table
    class Reading(discobase.Table):
        sensor: Annotated[str, discobase.Index()]
        value: float

    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            async with db.batch():
                made = [Sensor(name="t1").save()]
                made += [Reading(sensor="t1", value=v / 10).save() for v in range(20)]
            await asyncio.gather(*made)
            await Reading.save_many([Reading(sensor="t2", value=1.0) for _ in range(500)])
            assert Reading.count(sensor="t2") == 500
        await identify_window()
        async with db.conn(token):
            assert Sensor.count() == 1
            assert Reading.count() == 520
            assert [r.value for r in Reading.find(sensor="t1", order_by="-value", limit=3)] == [
                1.9,
                1.8,
                1.7,
            ]


async def test_awaiting_a_write_inside_its_batch_is_refused_not_a_hang(emulator: Any) -> None:
    """The write is held until the block ends, so awaiting it inside the block would wait
    forever: it raises UsageError, and the same task awaited after the block completes."""
    db, token = connect(emulator, "batch-await")

    @db.table
    class Note(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT), db.conn(token):
        async with db.batch():
            task = Note(text="held").save()
            with pytest.raises(discobase.UsageError, match="after the block"):
                await task
        assert (await task).text == "held"
        assert Note.count(text="held") == 1


async def test_a_batch_left_by_awaiting_inside_it_reports_that_write_once(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Awaiting inside the block raises UsageError; left unhandled, it abandons the batch, so
    the write fails: its awaiter has been told already, the log says nothing more of it."""
    db, token = connect(emulator, "batch-await-left")

    @db.table
    class Note(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT), db.conn(token):
        try:
            async with db.batch():
                await Note(text="held").save()
        except discobase.UsageError:
            pass
        assert Note.count() == 0
    gc.collect()  # the task is collected now: an unretrieved failure would be logged
    assert "nobody awaited" not in caplog.text


async def test_a_write_awaited_in_its_batch_that_fails_later_is_still_reported(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The awaiter handled the UsageError and the block went on: the write is sent at its
    end, and its own failure, which nobody awaited, is logged."""
    db, token = connect(emulator, "batch-await-fails")

    @db.table
    class Note(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT), db.conn(token):
        async with db.batch():
            failing = Note(text="held").save()
            with pytest.raises(discobase.UsageError):
                await failing
            emulator.fail_next("POST", r"/channels/\d+/messages", 403)
        await asyncio.wait([failing])  # done, its outcome not retrieved
        assert failing.done() and Note.count() == 0
        del failing
    gc.collect()
    assert "nobody awaited" in caplog.text and "403" in caplog.text


async def test_a_record_of_an_abandoned_batch_is_unsaved_when_the_block_has_raised(
    emulator: Any,
) -> None:
    """The handler of the block's exception can save the record again at once: it holds no
    id (before, its id went back to None a loop turn later, and save() in the handler was
    refused as 'already saved')."""
    db, token = connect(emulator, "batch-abandoned-retry")

    @db.table
    class Note(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT), db.conn(token):
        note = Note(text="held")
        try:
            async with db.batch():
                lost = note.save()
                raise ValueError("changed my mind")
        except ValueError:
            assert note.id is None
            await note.save()
        with pytest.raises(discobase.DatabaseError, match="abandoned"):
            await lost
        assert note.id is not None and Note.count(text="held") == 1


def user_v1(db: discobase.Database) -> type[Any]:
    @db.table
    class User(discobase.Table):
        name: str
        password: str

    return User


def user_v2(db: discobase.Database) -> type[Any]:
    @db.table
    class User(discobase.Table):
        name: str
        password: str
        age: int = 0  # added, with a default: compatible

    return User


def user_v3(db: discobase.Database) -> type[Any]:
    @db.table
    class User(discobase.Table):
        name: str  # password removed: refused

    return User


async def test_schema_changes_across_logins(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("schemas", bots=[bot])

    def database() -> discobase.Database:
        return discobase.Database("schemas", api_url=emulator.url, time_scale=TIME_SCALE)

    first, grown, shrunk = database(), database(), database()
    v1, v2, _ = user_v1(first), user_v2(grown), user_v3(shrunk)
    async with asyncio.timeout(WAIT):
        async with first.conn(bot.token):
            await v1(name="Peter", password="foobar").save()
        await identify_window()
        async with grown.conn(bot.token):
            (peter,) = v2.find()
            assert (peter.name, peter.age) == ("Peter", 0)
            assert v2.count(age=0) == 1
        await identify_window()
        with pytest.raises(discobase.SchemaMismatch) as caught:
            async with shrunk.conn(bot.token):
                pass
    assert "password" in caught.value.fields


async def test_server_errors_neither_duplicate_nor_lose_a_save(emulator: Any) -> None:
    db, token = connect(emulator, "faults")

    @db.table
    class Order(discobase.Table):
        item: str

    messages = r"/channels/\d+/messages"
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            # Stored, then answered 500: the retry carries the same nonce.
            emulator.fail_next("POST", messages, 500, after_write=True)
            await Order(item="once").save()
            # Refused outright: the task fails with the HTTP error.
            emulator.fail_next("POST", messages, 403)
            with pytest.raises(discobase.HTTPException):
                await Order(item="refused").save()
            assert [o.item for o in Order.find()] == ["once"]
            # Stored, then answered 500 on every retry: the save fails although the entry is
            # in the channel. Saving again reuses the record's id, so it is held once.
            emulator.fail_next("POST", messages, 500, count=4, after_write=True)
            late = Order(item="stored after all")
            with pytest.raises(discobase.HTTPException):
                await late.save()
            assert late.id is None
            await late.save()
            assert [o.item for o in Order.find()] == ["once", "stored after all"]
        async with db.conn(token):
            assert [(o.id, o.item) for o in Order.find()][1] == (late.id, "stored after all")
            assert [o.item for o in Order.find()] == ["once", "stored after all"]
