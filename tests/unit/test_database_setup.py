"""Database construction, table registration and the errors of using tables too early."""

from __future__ import annotations

import pytest

import discobase
from discobase.database import PERMISSIONS, invite_url
from discobase.errors import (
    NotConnected,
    TableNotBuilt,
    TableNotRegistered,
    TableRegistrationError,
    UsageError,
)
from tests.unit.tablefakes import FakeEngine


def test_construction_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCOBASE_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("DISCOBASE_TIME_SCALE", "0.25")
    db = discobase.Database("x")
    assert db.api_url == "http://127.0.0.1:9"
    assert db.time_scale == 0.25
    explicit = discobase.Database("x", api_url="http://h:1", time_scale=2, guild_id="42")
    assert (explicit.api_url, explicit.time_scale, explicit.guild_id) == ("http://h:1", 2.0, 42)


def test_construction_defaults_to_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISCOBASE_API_URL", raising=False)
    monkeypatch.delenv("DISCOBASE_TIME_SCALE", raising=False)
    db = discobase.Database("x")
    assert db.api_url == "https://discord.com" and db.time_scale == 1.0


def test_bad_arguments_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError):
        discobase.Database("")
    with pytest.raises(UsageError):
        discobase.Database("x", time_scale=0)
    monkeypatch.setenv("DISCOBASE_TIME_SCALE", "fast")
    with pytest.raises(UsageError, match="DISCOBASE_TIME_SCALE"):
        discobase.Database("x")


def test_the_table_name_is_the_class_name_in_lower_case() -> None:
    db = discobase.Database("x")

    @db.table
    class UserProfile(discobase.Table):
        name: str

    assert db.tables == {"userprofile": UserProfile}


def test_registering_something_that_is_not_a_table() -> None:
    db = discobase.Database("x")
    with pytest.raises(TableRegistrationError, match="subclass of discobase.Table"):
        db.table(int)  # type: ignore[type-var]
    with pytest.raises(TableRegistrationError):
        db.table(discobase.Table)


def test_two_tables_of_one_name_are_refused() -> None:
    db = discobase.Database("My discord database")

    @db.table
    class User(discobase.Table):
        name: str
        password: str

    with pytest.raises(TableRegistrationError, match="already has a table named 'user'"):

        @db.table
        class User(discobase.Table):  # type: ignore[no-redef]
            some_other_field: str


def test_one_class_on_two_databases_is_refused() -> None:
    first, second = discobase.Database("a"), discobase.Database("b")

    @first.table
    class Note(discobase.Table):
        text: str

    assert first.table(Note) is Note  # registering twice on the same database is harmless
    with pytest.raises(TableRegistrationError, match="one database"):
        second.table(Note)


def test_a_subclass_of_a_table_is_its_own_table() -> None:
    db = discobase.Database("x")

    @db.table
    class Base(discobase.Table):
        a: int

    class Child(Base):
        b: int

    with pytest.raises(TableNotRegistered):
        Child.find()
    db.table(Child)
    assert set(db.tables) == {"base", "child"}


async def test_using_a_table_before_login_says_how_to_connect() -> None:
    db = discobase.Database("x")

    @db.table
    class User(discobase.Table):
        name: str

    with pytest.raises(NotConnected, match=r"db\.conn"):
        User.find()
    with pytest.raises(NotConnected):
        User(name="a").save()
    with pytest.raises(NotConnected, match=r"login_task"):
        await db.wait_ready()
    with pytest.raises(NotConnected):
        await db.build_tables()
    with pytest.raises(NotConnected):
        db.batch()


async def test_unregistered_table_says_to_decorate_it() -> None:
    class Loose(discobase.Table):
        name: str

    with pytest.raises(TableNotRegistered, match="@db.table"):
        Loose.find()


async def test_late_table_is_refused_until_build_tables() -> None:
    db = discobase.Database("x")
    engine = FakeEngine()
    await db._use_storage(engine)  # type: ignore[arg-type]
    try:

        @db.table
        class User(discobase.Table):
            name: str
            password: str

        with pytest.raises(TableNotBuilt, match=r"await db\.build_tables\(\)"):
            await User(name="Peter", password="foobar").save()
        await db.build_tables()
        await db.build_tables()  # idempotent
        await User(name="Peter", password="foobar").save()
        assert User.count() == 1
        assert list(engine.stores) == ["user"]
    finally:
        await db.close()
    assert engine.closed
    with pytest.raises(NotConnected):
        User.find()


async def test_a_field_named_id_is_refused() -> None:
    db = discobase.Database("x")
    with pytest.warns(UserWarning), pytest.raises(TableRegistrationError, match="'id'"):

        @db.table
        class Thing(discobase.Table):
            id: int


def test_spec_parts_of_a_table() -> None:
    db = discobase.Database("x")
    from typing import Annotated

    @db.table
    class Item(discobase.Table):
        sku: Annotated[str, discobase.Index(unique=True)]
        name: Annotated[str, discobase.Index()]
        price: float = 0.0

    binding = Item.__discobase_binding__
    assert binding is not None
    assert binding.indexes == {"sku": True, "name": False}
    assert binding.has_default() == {"sku": False, "name": False, "price": True}
    assert binding.schema()["properties"]["price"]["type"] == "number"


def test_invite_url_carries_the_needed_permissions() -> None:
    url = invite_url(1234)
    assert url.startswith("https://discord.com/oauth2/authorize?client_id=1234&scope=bot")
    assert url.endswith(f"permissions={PERMISSIONS}")
    for bit in (4, 10, 11, 13, 15, 16, 51):
        assert PERMISSIONS & (1 << bit)


def test_repr_never_shows_secrets() -> None:
    db = discobase.Database("x", guild_id=5)
    assert repr(db) == "<Database name='x' guild_id=5 state=new>"


def test_login_task_outside_an_event_loop_is_a_usage_error() -> None:
    db = discobase.Database("x")
    with pytest.raises(UsageError, match="event loop"):
        db.login_task("token")
    with pytest.raises(UsageError, match="token"):
        discobase.Database("x").conn("")


def test_a_field_type_pydantic_cannot_handle_fails_at_registration() -> None:
    class Opaque:
        pass

    db = discobase.Database("x")

    class Holder(discobase.Table):
        thing: Opaque

    with pytest.raises(TableRegistrationError, match="Holder cannot be a table"):
        db.table(Holder)
    assert db.tables == {}


def test_the_logging_handler_writes_to_the_stderr_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import logging
    import sys

    from discobase import _logging

    # The autouse _isolate_discobase_logging fixture removes the handler afterwards.
    monkeypatch.setattr(_logging, "_handler", None)  # made anew by this test
    discobase.Database("x", logging=True)
    assert _logging._handler is not None
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)  # after the handler was made
    logging.getLogger("discobase.storage").warning("written where stderr is now")
    assert "written where stderr is now" in swapped.getvalue()


@pytest.mark.parametrize("bad", ["", "abc", "12.5", 1.5, -3, 0, True, 1 << 64, ["1"]])
def test_guild_id_must_be_a_snowflake(bad: object) -> None:
    """A guild id that cannot be one is refused when the Database is made, with UsageError
    (``True`` is an int to Python, and ``int(1.5)`` would quietly be guild 1)."""
    with pytest.raises(discobase.UsageError, match="guild_id"):
        discobase.Database("db", guild_id=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "kept"), [(123, 123), ("456", 456), (" 789 ", 789)])
def test_guild_id_as_int_or_digits(given: int | str, kept: int) -> None:
    assert discobase.Database("db", guild_id=given).guild_id == kept


@pytest.mark.parametrize("token", [" abc", "abc\n", "a b"])
async def test_login_refuses_a_token_with_whitespace_before_it_starts(token: str) -> None:
    db = discobase.Database("db", api_url="http://127.0.0.1:9")
    with pytest.raises(discobase.UsageError, match="whitespace") as caught:
        db.login_task(token)
    assert token.strip() not in str(caught.value)
    assert not db.is_ready
