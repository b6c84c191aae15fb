"""Misuse and unreadable data, each refused or reported with a typed error naming its cause:
values a reader could not read back, stored records that do not fit, calls from the wrong
event loop, fields named like Table's attributes, HTML answers and tokens with whitespace."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from discobase.errors import (
    RecordNotFound,
    StorageCorrupted,
    TableRegistrationError,
    UnreadableRecord,
    UnstorableRecord,
    UsageError,
)
from discobase.http import HTTPClient, ManualClock, MockTransport, RawResponse
from discobase.http.errors import HTTPException, NotJSON
from tests.unit.tablefakes import FakeEngine, FakeStore

database = discobase.Database("misuse")


@database.table
class Doc(discobase.Table):
    name: str = ""
    data: Any = None


@database.table
class Flat(discobase.Table):
    name: Annotated[str, discobase.Index()] = ""
    age: int = 0


class Checked(pydantic.BaseModel):
    code: str

    @pydantic.field_validator("code")
    @classmethod
    def short(cls, value: str) -> str:
        if len(value) > 3:
            raise ValueError("a code has at most 3 characters")
        return value


@database.table
class Tagged(discobase.Table):
    tags: list[str] = []
    inner: Checked | None = None


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await database._use_storage(fake)  # type: ignore[arg-type]
    yield fake
    await database.close()


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# ---------------------------------------------------------------- values that cannot be stored


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (nested(200), "nested too deeply"),
        ({"a": nested(400)}, "nested too deeply"),
        ("\ud800", "lone surrogate"),
        (10**5000, "more than 4300 digits"),
        (-(10**4400), "more than 4300 digits"),
    ],
    ids=["200-deep", "400-deep", "surrogate", "5000-digits", "negative-4401-digits"],
)
async def test_a_value_a_reader_could_not_read_is_refused_before_anything_is_written(
    engine: FakeEngine, value: Any, reason: str
) -> None:
    store = engine.stores["doc"]
    record = Doc(name="bad", data=value)
    with pytest.raises(UnstorableRecord, match=reason) as caught:
        record.save()
    assert caught.value.table == "doc" and caught.value.field == "data"
    assert "table 'doc'" in str(caught.value) and "'data'" in str(caught.value)
    assert record.id is None and store.batches == []
    # The same refusal from save_many, per record (small) and by JSON slices (large).
    for batch in ([Doc(), record], [Doc(name=str(i)) for i in range(100)] + [record]):
        with pytest.raises(UnstorableRecord, match=reason):
            Doc.save_many(batch)
        assert all(r.id is None for r in batch) and store.batches == []
    # And from update() of a saved record.
    saved = await Doc(name="ok").save()
    saved.data = value
    with pytest.raises(UnstorableRecord, match=reason):
        saved.update()
    assert Doc.find(name="ok")[0].data is None


async def test_values_at_the_limits_are_stored(engine: FakeEngine) -> None:
    deep, big = await Doc(data=nested(199)).save(), await Doc(data=-(10**4299)).save()
    many = [Doc(data=nested(199)) for _ in range(70)]
    await Doc.save_many(many)  # a slice nests records once more: a false alarm, cleared
    assert (await Doc.get(deep.id or 0)).data == nested(199)
    assert (await Doc.get(big.id or 0)).data == -(10**4299)
    assert Doc.count() == 72


async def test_a_value_changed_in_place_behind_validation_is_refused(engine: FakeEngine) -> None:
    record = await Tagged(tags=["a"]).save()
    record.tags.append(5)  # type: ignore[arg-type]  # no validation sees this
    with pytest.raises(UnstorableRecord, match=r"field 'tags': it would not read back"):
        with pytest.warns(UserWarning):  # pydantic's own complaint while serialising
            record.update()
    record.tags[-1] = "b"
    record.inner = Checked.model_construct(code="toolong")
    with pytest.raises(UnstorableRecord, match="at most 3 characters") as caught:
        record.update()
    assert caught.value.field == "inner"
    many = [Tagged() for _ in range(70)] + [Tagged(inner=Checked.model_construct(code="long"))]
    with pytest.raises(UnstorableRecord, match="at most 3 characters"):
        Tagged.save_many(many)  # a model with its own validators is validated in full


# ---------------------------------------------------------------- stored records that do not fit


async def test_a_stored_record_that_does_not_fit_is_skipped_reported_and_deletable(
    engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    store: FakeStore = engine.stores["flat"]
    await Flat.save_many([Flat(name="a", age=1), Flat(name="b", age=2)])
    store.put_now(7, {"name": "c", "age": "not a number"})  # by hand, or an older version
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        assert [r.name for r in Flat.find(order_by="name")] == ["a", "b"]
        assert [r.name for r in Flat.find(order_by="-age")] == ["b", "a"]  # loads to order
        assert [r.name for r in Flat.find(limit=2)] == ["a", "b"]
        assert Flat.find(name="c") == []
        assert await Flat.find_unique(name="c", strict=False) is None
        with pytest.raises(RecordNotFound):
            await Flat.find_unique(name="c")
        with pytest.raises(UnreadableRecord, match=r"Flat.delete_id\(7\)") as caught:
            await Flat.get(7)
    # Reported once, naming the table, its channel, the record and why.
    (warning,) = [r for r in caplog.records if r.name == "discobase.table"]
    assert warning.levelno == logging.WARNING
    text = warning.getMessage()
    assert "record 7 of table 'flat'" in text and f"channel {store.channel_id}" in text
    assert "age" in text
    error = caught.value
    assert isinstance(error, StorageCorrupted)  # old handlers still catch it
    assert (error.table, error.record_id, error.channel_id) == ("flat", 7, store.channel_id)
    assert Flat.count() == 3  # count() counts what is stored: it reads no record
    await Flat.delete_id(7)
    assert Flat.count() == 2 and store.get(7) is None
    with pytest.raises(RecordNotFound):
        Flat.delete_id(7)
    # A record written anew under that id is read again.
    store.put_now(7, {"name": "c", "age": 3})
    assert [r.name for r in Flat.find(order_by="name")] == ["a", "b", "c"]


# ---------------------------------------------------------------- the event loop


async def test_a_write_from_another_event_loop_is_refused_before_anything_is_written(
    engine: FakeEngine,
) -> None:
    store = engine.stores["flat"]
    failures: list[BaseException] = []

    async def elsewhere() -> None:
        for call in (
            lambda: Flat(name="x").save(),
            lambda: Flat.save_many([Flat(name="y")]),
            lambda: Flat.delete_id(1),
            lambda: Flat.get(1),
            lambda: Flat.find_unique(name="x"),
        ):
            try:
                result = call()
                if asyncio.iscoroutine(result):
                    await result
            except UsageError as exc:
                failures.append(exc)

    thread = threading.Thread(target=lambda: asyncio.run(elsewhere()))
    thread.start()
    thread.join(10)
    assert len(failures) == 5
    assert all("another event loop" in str(exc) for exc in failures)
    assert store.batches == []


def raised_in_a_plain_thread(call: Callable[[], object]) -> BaseException:
    """Return what ``call`` raises in a thread with no event loop."""
    caught: list[BaseException] = []

    def plain_function() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
            caught.append(exc)

    thread = threading.Thread(target=plain_function)
    thread.start()
    thread.join(10)
    (error,) = caught
    return error


async def test_a_write_with_no_event_loop_is_a_usage_error(engine: FakeEngine) -> None:
    error = raised_in_a_plain_thread(lambda: Flat(name="x").save())
    assert type(error) is UsageError and "no running event loop" in str(error)
    assert str(error).endswith("Nothing was written")
    assert engine.stores["flat"].batches == []


async def test_a_read_with_no_event_loop_says_nothing_of_writes(engine: FakeEngine) -> None:
    error = raised_in_a_plain_thread(lambda: Flat.watch())
    assert type(error) is UsageError and "no running event loop" in str(error)
    assert "written" not in str(error)


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize(
    "name", ["save", "find", "find_unique", "delete", "update", "count", "get", "commit",
             "save_many", "delete_id", "schema", "copy"]
)  # fmt: skip
def test_a_field_named_like_a_table_attribute_is_refused(name: str) -> None:
    db = discobase.Database("names")
    with warnings.catch_warnings():  # pydantic's own "shadows an attribute" warning
        warnings.simplefilter("ignore")
        model = pydantic.create_model(
            "Clash", __base__=discobase.Table, **{name: (int, 0), "other": (str, "")}
        )
    with pytest.raises(TableRegistrationError, match=f"field named '{name}'"):
        db.table(model)
    assert db.tables == {}


# ---------------------------------------------------------------- the HTTP client


TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.secret-part.xyz"


def client_answering(status: int, headers: Mapping[str, str], body: bytes) -> HTTPClient:
    async def handler(*_: Any) -> RawResponse:
        return RawResponse(status, "OK", headers, body)

    return HTTPClient(
        TOKEN,
        api_url="http://example.test",
        transport=MockTransport(handler),
        clock=ManualClock(),
        rng=random.Random(1),
    )


@pytest.mark.parametrize(
    ("headers", "body", "shown"),
    [
        ({"content-type": "text/html; charset=utf-8"}, b"<html>Hello</html>", "an HTML page"),
        ({"content-type": "application/json"}, b"{not json", "application/json, not JSON"),
        ({}, b"plain", "no Content-Type"),
    ],
)
async def test_a_success_that_is_not_json_names_the_url_and_content_type(
    headers: Mapping[str, str], body: bytes, shown: str
) -> None:
    async with client_answering(200, headers, body) as client:
        with pytest.raises(NotJSON) as caught:
            await client.fetch_current_user()
    error = caught.value
    assert isinstance(error, HTTPException)
    assert error.url == "http://example.test/api/v10/users/@me"
    assert error.content_type == headers.get("content-type", "")
    assert shown in str(error) and error.url in str(error) and TOKEN not in str(error)


@pytest.mark.parametrize(
    "token",
    [f" {TOKEN}", f"{TOKEN}\n", f"\t{TOKEN} ", f"{TOKEN[:5]} {TOKEN[5:]}", f"{TOKEN}\x00x", ""],
)
def test_a_token_with_whitespace_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(UsageError) as caught:
        HTTPClient(token)
    assert TOKEN not in str(caught.value) and TOKEN[:20] not in repr(caught.value)
    if token.strip() != token:
        assert "whitespace around it" in str(caught.value)
