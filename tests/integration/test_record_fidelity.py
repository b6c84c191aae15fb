"""Records come back exactly as saved: big integers, aliases, computed fields, failed writes,
fields added with a default factory."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Annotated, Any

import pydantic
import pytest
from pydantic.alias_generators import to_camel

import discobase
from tests.conftest import TIME_SCALE
from tests.helpers import identify_window
from tests.integration.test_database_records import WAIT, Address, connect

BIG = 2**64 + 1


async def test_integers_beyond_64_bits_round_trip_exactly(emulator: Any) -> None:
    db, token = connect(emulator, "bigints")

    @db.table
    class Counter(discobase.Table):
        value: int
        tag: Annotated[int, discobase.Index()] = 0
        data: Any = None

    many = [Counter(value=-BIG * i, data={"n": BIG + i}) for i in range(70)]
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Counter(value=BIG, tag=BIG, data={"n": BIG, "m": [-BIG]}).save()
            await Counter.save_many(many)  # large enough to be sent as an attachment
            (found,) = Counter.find(value=BIG)
            assert found.data == {"n": BIG, "m": [-BIG]}
            assert type(found.data["n"]) is int
            assert Counter.count(tag=BIG) == 1
        await identify_window()
        async with db.conn(token):
            reread = Counter.find(order_by="value")
    assert [r.value for r in reread] == [-BIG * i for i in range(69, -1, -1)] + [BIG]
    assert reread[-1].data == {"n": BIG, "m": [-BIG]}
    assert [r.data["n"] for r in reread[:-1]] == [BIG + i for i in range(69, -1, -1)]


async def test_aliased_fields_are_stored_and_read_by_field_name(emulator: Any) -> None:
    db, token = connect(emulator, "aliases")

    @db.table
    class Person(discobase.Table):
        model_config = pydantic.ConfigDict(alias_generator=to_camel, serialize_by_alias=True)
        full_name: str
        nick: Annotated[str, discobase.Index()] = pydantic.Field(default="", alias="handle")
        home: Address = Address(street="Main")

    many = [Person(fullName=f"p{i}", handle="crowd") for i in range(70)]
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Person(fullName="Ann", handle="annie", home=Address(street="Elm")).save()
            await Person.save_many(many)  # the list-adapter path
            (ann,) = Person.find(full_name="Ann")
            assert (ann.nick, ann.home.street) == ("annie", "Elm")
            assert Person.count(nick="crowd") == 70
        await identify_window()
        async with db.conn(token):
            (reread,) = await Person.find(nick="annie")
            assert reread == ann
            ann.full_name = "Ann B"
            await ann.update()
            assert [p.full_name for p in Person.find(nick="annie")] == ["Ann B"]


async def test_computed_fields_are_not_stored(emulator: Any) -> None:
    db, token = connect(emulator, "computed")

    @db.table
    class Box(discobase.Table):
        model_config = pydantic.ConfigDict(extra="forbid")
        width: int

        @pydantic.computed_field  # type: ignore[prop-decorator]
        @property
        def double(self) -> int:
            return self.width * 2

    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Box(width=2).save()
            await Box.save_many([Box(width=i) for i in range(70)])
            assert Box.find(width=2)[0].double == 4
            store = Box.__discobase_binding__.require_store()  # type: ignore[union-attr]
            assert all("double" not in data for data in store.records().values())
        await identify_window()
        async with db.conn(token):
            assert sorted(b.double for b in Box.find(width=2)) == [4, 4]
            assert Box.count() == 71


async def test_a_failed_write_leaves_records_as_stored_and_can_be_retried(emulator: Any) -> None:
    db, token = connect(emulator, "failures")

    @db.table
    class Order(discobase.Table):
        item: str
        code: Annotated[str, discobase.Index(unique=True)]

    messages = r"/channels/\d+/messages"
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            # A save refused outright, and one whose 5xx answers outlast the retries.
            for status, count in ((403, 1), (503, 4)):
                emulator.fail_next("POST", messages, status, count=count)
                order = Order(item="book", code=f"c{status}")
                with pytest.raises(discobase.HTTPException):
                    await order.save()
                assert order.id is None and Order.count(code=f"c{status}") == 0
                # The failed write's unique claim is gone: another record may take the code.
                await Order(item="other", code=f"c{status}").save()
                order.code = f"b{status}"
                await order.save()
                assert Order.find(code=f"b{status}") == [order]

            emulator.fail_next("POST", messages, 403)
            batch = [Order(item="many", code=f"m{i}") for i in range(3)]
            with pytest.raises(discobase.HTTPException):
                await Order.save_many(batch)
            assert [o.id for o in batch] == [None, None, None] and Order.count(item="many") == 0
            await Order.save_many(batch)
            assert Order.count(item="many") == 3

            emulator.fail_next("POST", messages, 403)
            order.item = "changed"
            with pytest.raises(discobase.HTTPException):
                await order.update()
            assert order.id is not None
            assert [o.item for o in Order.find(code="b503")] == ["book"]
            await order.update()

            emulator.fail_next("POST", messages, 403)
            with pytest.raises(discobase.HTTPException):
                await order.delete()
            assert order.id is not None and Order.find(code="b503") == [order]
        await identify_window()
        async with db.conn(token):
            assert sorted(o.item for o in Order.find()) == sorted(
                ["other", "book", "other", "changed", "many", "many", "many"]
            )


async def test_a_field_added_with_a_default_factory_gets_one_stable_value(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("factories", bots=[bot])
    old = discobase.Database("factories", api_url=emulator.url, time_scale=TIME_SCALE)
    new = discobase.Database("factories", api_url=emulator.url, time_scale=TIME_SCALE)

    @old.table
    class Customer(discobase.Table):
        name: str

    @new.table
    class Customer(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - a newer class
        name: str
        tags: list[str] = pydantic.Field(default_factory=list)
        joined: datetime.datetime = pydantic.Field(
            default_factory=lambda: datetime.datetime.now(datetime.UTC)
        )
        code: Annotated[str, discobase.Index()] = pydantic.Field(
            default_factory=lambda: uuid.uuid4().hex
        )

    async with asyncio.timeout(WAIT):
        async with old.conn(bot.token):
            await old.tables["customer"](name="Peter").save()
            await old.tables["customer"].save_many(
                [old.tables["customer"](name=f"c{i}") for i in range(70)]
            )
            await identify_window()
            async with new.conn(bot.token):
                (peter,) = Customer.find(name="Peter")
                await asyncio.sleep(0.05)
                assert Customer.find(name="Peter") == [peter]
                assert Customer.find(joined=peter.joined) == [peter]
                assert Customer.find(code=peter.code) == [peter]
                assert Customer.count(tags=[]) == 71
                assert len({c.code for c in Customer.find()}) == 71
                # A record the old program writes now is filled when it arrives.
                await old.tables["customer"](name="Late").save()
                while not Customer.count(name="Late"):
                    await asyncio.sleep(0.01)
                (late,) = Customer.find(name="Late")
                assert Customer.find(code=late.code, tags=[]) == [late]
                assert Customer.find(name="Late") == [late]


async def test_an_aliased_field_added_with_a_default_is_indexed_for_old_records(
    emulator: Any,
) -> None:
    db, token = connect(emulator, "aliasdefaults")
    newer = discobase.Database("aliasdefaults", api_url=emulator.url, time_scale=TIME_SCALE)

    @db.table
    class Person(discobase.Table):
        model_config = pydantic.ConfigDict(alias_generator=to_camel)
        full_name: str

    @newer.table
    class Person(discobase.Table):  # type: ignore[no-redef]  # noqa: F811 - a newer class
        model_config = pydantic.ConfigDict(alias_generator=to_camel)
        full_name: str
        nick_name: Annotated[str, discobase.Index()] = "anon"
        level: int = pydantic.Field(default=1, alias="lvl")

    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await db.tables["person"](fullName="Ann").save()
        await identify_window()
        async with newer.conn(token):
            (ann,) = Person.find(nick_name="anon")
            assert (ann.full_name, ann.level) == ("Ann", 1)
            assert Person.find(level=1, nick_name="anon") == [ann]
