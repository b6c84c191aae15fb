"""Record writes: tasks, ids, state errors, batches, failures that are logged, not lost."""

from __future__ import annotations

import asyncio
import datetime
import enum
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from discobase.errors import RecordStateError, UniqueViolation, UsageError
from tests.unit.tablefakes import FakeEngine, FakeStore

database = discobase.Database("writes")


@database.table
class User(discobase.Table):
    name: str
    email: Annotated[str | None, discobase.Index(unique=True)] = None


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    tags: list[str] = []


@database.table
class Everything(discobase.Table):
    text: str = "é\x00\u200b @everyone 😀 **bold**"
    number: int = 2**62
    real: float = 0.1
    flag: bool = True
    nothing: None = None
    items: list[int] = [1, 2, 3]
    mapping: dict[str, Any] = {"a": {"b": [1.5, None, "c"]}}
    address: Address = Address(street="Main", tags=["x"])
    when: datetime.datetime = datetime.datetime(2025, 7, 1, 12, 30, 1, 123456, tzinfo=datetime.UTC)
    naive: datetime.datetime = datetime.datetime(2025, 7, 1, 12, 30)
    day: datetime.date = datetime.date(2025, 1, 2)
    span: datetime.timedelta = datetime.timedelta(days=1, microseconds=5)
    colour: Colour = Colour.BLUE
    ident: uuid.UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
    blob: bytes = b"\x00\xff\xfe binary"
    infinite: float = float("inf")
    optional: str | None = None


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await database._use_storage(fake)  # type: ignore[arg-type]
    yield fake
    await database.close()


def store_of(engine: FakeEngine, name: str = "user") -> FakeStore:
    return engine.stores[name]


async def test_save_returns_a_task_and_gives_the_id_at_once(engine: FakeEngine) -> None:
    user = User(name="Peter")
    assert user.id is None
    task = user.save()
    assert isinstance(task, asyncio.Task)
    assert user.id is not None
    assert await task is user
    assert [u.name for u in User.find(id=user.id)] == ["Peter"]


async def test_save_on_a_saved_record_names_update(engine: FakeEngine) -> None:
    user = User(name="Peter")
    await user.save()
    with pytest.raises(RecordStateError, match=r"update\(\)"):
        user.save()


async def test_update_and_delete_on_an_unsaved_record_name_save(engine: FakeEngine) -> None:
    user = User(name="Peter")
    with pytest.raises(RecordStateError, match=r"save\(\)"):
        user.update()
    with pytest.raises(RecordStateError, match=r"save\(\)"):
        user.delete()


async def test_update_writes_the_changed_fields_under_the_same_id(engine: FakeEngine) -> None:
    user = await User(name="Peter").save()
    user.name = "Pete"
    await user.update()
    assert [(u.id, u.name) for u in User.find()] == [(user.id, "Pete")]


async def test_delete_removes_and_leaves_the_record_unsaved(engine: FakeEngine) -> None:
    user = await User(name="Peter").save()
    await user.delete()
    assert User.count() == 0
    assert user.id is None
    await user.save()
    assert User.count() == 1


async def test_an_update_while_the_delete_is_written_is_refused(engine: FakeEngine) -> None:
    # Once stored, the deletion makes the record unsaved: an update queued behind it would
    # write the record again under an id the object no longer holds, and save() a twin.
    user = await User(name="Peter").save()
    other = await User(name="Paul").save()
    deleted = user.delete()
    user.name = "Pete"
    with pytest.raises(RecordStateError, match="being deleted"):
        user.update()
    with pytest.raises(RecordStateError, match="being deleted"):
        user.commit()
    with pytest.raises(RecordStateError, match="being deleted.*nothing was written"):
        discobase.Records([user, other]).update_many(name="x")
    await deleted
    assert user.id is None and [u.name for u in User.find()] == ["Paul"]
    await user.save()
    assert sorted(u.name for u in User.find()) == ["Paul", "Pete"]
    gone = User.find().delete_many()
    with pytest.raises(RecordStateError, match="being deleted"):
        other.update()
    assert await gone == 2 and User.count() == 0


async def test_two_deletions_of_one_record_both_hold_its_updates_off(engine: FakeEngine) -> None:
    user = await User(name="Peter").save()
    (again,) = User.find()  # another object of the same record
    store_of(engine).held = []
    first, second = user.delete(), again.delete()
    store_of(engine).held[0].set_result(None)
    await first
    again.name = "Pete"
    with pytest.raises(RecordStateError, match="being deleted"):
        again.update()  # its own deletion is still being written
    store_of(engine).held[1].set_result(None)
    await second
    assert again.id is None and User.count() == 0


async def test_save_many_of_one_record_says_it_takes_a_list(engine: FakeEngine) -> None:
    with pytest.raises(UsageError, match=r"a list of User records, not one record"):
        User.save_many(User(name="Peter"))  # type: ignore[arg-type]
    assert User.count() == 0


async def test_a_failed_delete_lets_the_record_be_updated(engine: FakeEngine) -> None:
    user = await User(name="Peter").save()
    store_of(engine).fail_next = discobase.DatabaseStorageError("down")
    with pytest.raises(discobase.DatabaseStorageError):
        await user.delete()
    user.name = "Pete"
    await user.update()
    assert [u.name for u in User.find()] == ["Pete"]


async def test_commit_saves_then_updates(engine: FakeEngine) -> None:
    user = User(name="Peter")
    await user.commit()
    first_id = user.id
    user.name = "Paul"
    await user.commit()
    assert user.id == first_id
    assert [u.name for u in User.find()] == ["Paul"]
    assert len(store_of(engine).batches) == 2


async def test_unawaited_saves_complete_in_the_background(engine: FakeEngine) -> None:
    for i in range(5):
        User(name=f"u{i}").save()
    await database.close()  # close waits for pending writes
    assert store_of(engine).count() == 5


async def test_a_failed_background_write_is_logged(
    engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    store_of(engine).fail_next = discobase.DatabaseError("boom")
    with caplog.at_level(logging.ERROR, logger="discobase"):
        User(name="Peter").save()  # not awaited: logged once the task is gone
        await database.close()
        gc.collect()
    assert [r.getMessage() for r in caplog.records if "boom" in r.getMessage()] != []


async def test_a_failed_save_leaves_the_record_unsaved_to_save_again(engine: FakeEngine) -> None:
    store_of(engine).fail_next = discobase.DatabaseError("boom")
    user = User(name="Peter")
    with pytest.raises(discobase.DatabaseError):
        await user.save()
    assert user.id is None and User.count() == 0
    await user.save()
    assert user.id is not None and User.count() == 1
    store_of(engine).fail_next = discobase.DatabaseError("boom")
    other = User(name="Ann")
    with pytest.raises(discobase.DatabaseError):
        await other.commit()
    await other.commit()
    assert other.id is not None and User.count() == 2


async def test_unique_index_refuses_a_duplicate_at_once(engine: FakeEngine) -> None:
    await User(name="a", email="x@y").save()
    with pytest.raises(UniqueViolation):
        User(name="b", email="x@y").save()
    assert User.count() == 1


async def test_cancelling_the_wait_does_not_cancel_the_write(engine: FakeEngine) -> None:
    store = store_of(engine)
    store.held = []
    task = User(name="Peter").save()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store.held[0].cancelled()
    store.held[0].set_result(None)


async def test_save_many_is_one_batch(engine: FakeEngine) -> None:
    users = [User(name=f"u{i}") for i in range(50)]
    saved = await User.save_many(users)
    assert saved == users
    assert len(store_of(engine).batches) == 1
    assert len({u.id for u in users}) == 50
    assert User.count() == 50


async def test_save_many_refuses_saved_foreign_and_repeated_records(engine: FakeEngine) -> None:
    saved = await User(name="a").save()
    with pytest.raises(RecordStateError):
        User.save_many([saved])
    with pytest.raises(UsageError):
        User.save_many([Everything()])  # type: ignore[list-item]
    fresh = User(name="b")
    with pytest.raises(UsageError):
        User.save_many([fresh, fresh])
    assert fresh.id is None


async def test_a_refused_large_save_many_leaves_every_record_unsaved(engine: FakeEngine) -> None:
    # From 64 records on, the checks and ids are done a batch at a time (C loops).
    await User(name="taken", email="x@y").save()
    users = [User(name=f"u{i}", email=f"{i}@y") for i in range(100)]
    with pytest.raises(UsageError, match="twice"):
        User.save_many([*users, users[7]])
    assert all(u.id is None for u in users)
    with pytest.raises(UniqueViolation):
        User.save_many([*users, User(name="late", email="x@y")])
    assert all(u.id is None for u in users)
    saved = await User.save_many(users)
    assert len({u.id for u in saved}) == 100 and None not in {u.id for u in saved}


async def test_a_failed_save_many_leaves_every_record_unsaved_and_its_retry_keeps_the_ids(
    engine: FakeEngine,
) -> None:
    store = store_of(engine)
    users = [User(name=f"u{i}") for i in range(100)]
    store.fail_next = discobase.DatabaseError("boom")
    with pytest.raises(discobase.DatabaseError):
        await User.save_many(users)
    assert all(u.id is None for u in users)
    tried = [op.id for op in store.batches[-1]]
    assert await User.save_many(users) == users
    assert [u.id for u in users] == tried  # a write that did land is overwritten, not doubled
    # Stored now, the records forget those ids: deleted and saved again, one gets a new id.
    await users[0].delete()
    await users[0].save()
    assert users[0].id not in tried


async def test_a_failed_save_many_leaves_a_record_saved_anew_meanwhile_alone(
    engine: FakeEngine,
) -> None:
    store = store_of(engine)
    store.held = []
    users = [User(name=f"u{i}") for i in range(100)]
    task = User.save_many(users)
    first = users[0].id
    deleting = users[0].delete()
    store.held[1].set_result(None)
    await deleting
    again = users[0].save()
    store.held[0].set_exception(discobase.DatabaseError("boom"))
    with pytest.raises(discobase.DatabaseError):
        await task
    store.held[2].set_result(None)
    await again
    assert users[0].id is not None and users[0].id != first
    assert all(u.id is None for u in users[1:])


async def test_a_burst_of_saves_holds_the_collector_off_only_briefly(engine: FakeEngine) -> None:
    # Its tasks are not walked by collections while it runs (see _writes.collector_off_this_turn).
    assert gc.isenabled()
    tasks = [User(name=f"b{i}").save() for i in range(100)]
    assert not gc.isenabled()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert gc.isenabled() and User.count() == 100


async def test_a_large_save_many_stores_what_save_would(engine: FakeEngine) -> None:
    # Batches from 64 records on are serialised by one list adapter call, not one per record.
    single = Everything(text="one ☃", span=datetime.timedelta(seconds=-1.5))
    await single.save()
    many = [
        Everything(text=f"many ☃ {i}", span=datetime.timedelta(seconds=-1.5)) for i in range(100)
    ]
    await Everything.save_many(many)
    store = store_of(engine, "everything")
    expected = store.get(single.id)  # type: ignore[arg-type]
    assert expected is not None
    for i, record in enumerate(many):
        assert store.get(record.id) == {**expected, "text": f"many ☃ {i}"}  # type: ignore[arg-type]
    assert [r.text for r in Everything.find(order_by="id")][1:] == [r.text for r in many]


async def test_save_many_writes_records_as_they_were_when_it_was_called(
    engine: FakeEngine,
) -> None:
    # A large batch is serialised at once but decoded by the store when it needs the dicts.
    store = store_of(engine)
    handed: list[tuple[Iterator[list[Any]], int]] = []
    written: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def later(chunks: Iterator[list[Any]], count: int) -> asyncio.Future[None]:
        handed.append((chunks, count))
        return written

    store.submit_later = later  # type: ignore[method-assign]
    users = [User(name=f"u{i}") for i in range(3000)]
    task = User.save_many(users)
    users[0].name = "changed after save_many"
    ((chunks, count),) = handed
    ops = [op for chunk in chunks for op in chunk]
    assert count == 3000 and [op.id for op in ops] == [u.id for u in users]
    assert [op.data["name"] for op in ops] == [f"u{i}" for i in range(3000)]
    written.set_result(None)
    assert await task == users


async def test_every_json_type_round_trips_exactly(engine: FakeEngine) -> None:
    original = Everything()
    await original.save()
    (found,) = Everything.find()
    assert found == original
    assert found.when.utcoffset() == datetime.timedelta(0)
    assert found.naive.tzinfo is None
    assert found.blob == b"\x00\xff\xfe binary"
    assert found.infinite == float("inf")
    # What storage receives is plain JSON: it survives an encode/decode unchanged.
    from discobase import _json

    data = store_of(engine, "everything").get(original.id)  # type: ignore[arg-type]
    assert _json.loads(_json.dumps(data)) == data
    assert "id" not in data  # type: ignore[operator]


async def test_query_on_every_type(engine: FakeEngine) -> None:
    await Everything().save()
    await Everything(colour=Colour.RED, blob=b"x", items=[]).save()
    assert Everything.count(colour=Colour.RED) == 1
    assert Everything.count(colour="blue") == 1
    assert Everything.count(blob=b"x") == 1
    assert Everything.count(items=[1, 2, 3]) == 1
    assert Everything.count(address={"street": "Main", "tags": ["x"]}) == 2
    assert Everything.count(ident=uuid.UUID("12345678-1234-5678-1234-567812345678")) == 2
    assert Everything.count(infinite=float("inf")) == 2


async def test_batch_uses_the_engine_batch(engine: FakeEngine) -> None:
    async with database.batch():
        first = User(name="a").save()
        second = User(name="b").save()
    await asyncio.gather(first, second)
    assert engine.batches_entered == 1


async def test_a_write_storage_abandons_fails_instead_of_cancelling(engine: FakeEngine) -> None:
    store = store_of(engine)
    store.held = []
    task = User(name="Peter").save()
    await asyncio.sleep(0)
    store.held[0].cancel()
    with pytest.raises(discobase.NotConnected, match="abandoned"):
        await task
