"""`discobase load` checks every line against the stored schema; `--keep-ids`; `delete`.

A load that wrote a value of the wrong type used to leave a table no program could read, so
each refusal here is followed by a fresh program reading the table. The commands run in a
worker thread (as in a shell) while the local Discord serves them from the test's loop.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pty
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

import discobase
from discobase.cli import main
from discobase.testing import LocalDiscord, local_discord
from tests.helpers import identify_window

TIME_SCALE = 0.02


@pytest.fixture
async def local(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalDiscord]:
    async with local_discord("cli load db", time_scale=TIME_SCALE) as local:
        for key, value in local.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
        yield local


async def run(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 60)


def user_class(db: discobase.Database) -> Any:
    @db.table
    class User(discobase.Table):
        name: str
        age: int = 0

    return User


async def fill(local: LocalDiscord, users: int = 3) -> None:
    db = local.database()
    User = user_class(db)
    async with db.conn(local.token):
        await User.save_many([User(name=f"user{i}", age=i) for i in range(users)])


async def read_users(local: LocalDiscord) -> dict[int, tuple[str, int]]:
    """Read the `user` table as a fresh program would: {id: (name, age)}."""
    db = local.database()
    User = user_class(db)
    await identify_window(TIME_SCALE)  # tests read right after their last login
    async with db.conn(local.token):
        return {u.id: (u.name, u.age) for u in await User.find()}


async def dump(table: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert await run("dump", table) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


class Address(pydantic.BaseModel):
    city: str
    zip: int | None = None


def person_class(db: discobase.Database) -> Any:
    """A table of many types, so a dump's every form must load back."""

    @db.table
    class Person(discobase.Table):
        name: str
        born: datetime.date
        seen: datetime.datetime | None = None
        photo: bytes = b""
        score: float = 0.0
        tags: list[str] = pydantic.Field(default_factory=list)
        home: Address | None = None

    return Person


def write(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


async def test_a_wrong_type_is_refused_by_line_and_nothing_is_written(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local)
    before = await read_users(local)
    path = write(
        tmp_path, '{"name": "ok"}', '{"name": "fine", "age": 4}', '{"name": "x", "age": "seven"}'
    )
    assert await run("load", "user", path) == 1
    err = capsys.readouterr().err
    assert "line 3: age: expected an integer, not the string 'seven'; nothing was written" in err
    assert "Traceback" not in err
    # Nothing was written, and every program can still read the table.
    assert await read_users(local) == before
    assert len(await dump("user", capsys)) == 3


async def test_every_kind_of_bad_line_is_named(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local)
    path = write(
        tmp_path,
        '{"name": "good"}',
        "not json",
        "[1, 2]",
        '{"name": "a", "nom": "typo"}',
        '{"age": 3}',
        '{"name": "b", "age": true}',
        '{"name": 7}',
        '{"name": "c", "age": 2.5}',
    )
    assert await run("load", "user", path) == 1
    err = capsys.readouterr().err
    assert "7 problems" in err and "nothing was written" in err
    for expected in (
        "line 2 is not valid JSON",
        "line 3 is not a JSON object but an array",
        "line 4 has unknown fields: nom",
        "line 5 lacks required fields: name",
        "line 6: age: expected an integer, not true",
        "line 7: name: expected a string, not an integer 7",
        "line 8: age: expected an integer, not a number 2.5",
    ):
        assert expected in err
    assert "line 1" not in err
    assert len(await read_users(local)) == 3


async def test_formats_ranges_and_nested_values_are_checked(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = local.database()

    class Address(pydantic.BaseModel):
        city: str
        zip: int

    @db.table
    class Event(discobase.Table):
        at: datetime.datetime
        seats: Annotated[int, pydantic.Field(ge=1)] = 1
        where: Address | None = None

    async with db.conn(local.token):
        await Event(at=datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)).save()

    path = write(
        tmp_path,
        '{"at": "2024-05-02T10:00:00Z", "where": {"city": "Oslo", "zip": 150}}',
        '{"at": "next tuesday"}',
        '{"at": "2024-05-02T10:00:00Z", "seats": 0}',
        '{"at": "2024-05-02T10:00:00Z", "where": {"city": "Oslo", "zip": "x"}}',
    )
    assert await run("load", "event", path) == 1
    err = capsys.readouterr().err
    assert "line 2: at: the string 'next tuesday' is not a valid date-time" in err
    assert "line 3: seats: 0 is not at least 1" in err
    assert "line 4: where.zip: expected an integer, not the string 'x'" in err
    assert "line 1" not in err
    assert len(await dump("event", capsys)) == 1


async def test_left_out_fields_get_the_default_save_would_store(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local, users=1)
    assert await run("load", "user", write(tmp_path, '{"name": "newcomer"}')) == 0
    assert "loaded 1 record into 'user'" in capsys.readouterr().err
    stored = [r for r in await dump("user", capsys) if r["name"] == "newcomer"]
    assert len(stored) == 1
    assert stored[0]["age"] == 0  # stored, not left for readers to fill in
    assert ("newcomer", 0) in (await read_users(local)).values()


async def test_dump_then_load_keep_ids_restores_ids_and_values(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = local.database()
    Person = person_class(db)
    people = [
        Person(
            name=f"p{i}",
            born=datetime.date(1990, 1, 1 + i),
            seen=datetime.datetime(2024, 1, 1, 12, i, tzinfo=datetime.UTC) if i % 2 else None,
            photo=bytes([i, 255, 0]),
            score=float("inf") if i == 3 else i / 3,
            tags=["a"] * i,
            home=Address(city="Oslo", zip=i) if i % 2 else None,
        )
        for i in range(6)
    ]
    async with db.conn(local.token):
        await Person.save_many(people)
        ids = [p.id for p in people]

    original = await dump("person", capsys)
    assert [r["id"] for r in original] == sorted(ids)
    backup = tmp_path / "person.jsonl"
    backup.write_text("\n".join(json.dumps(r) for r in original) + "\n", encoding="utf-8")

    # Empty the table, then restore the backup under its ids.
    assert await run("delete", "person", *(str(i) for i in ids)) == 0
    assert "deleted 6 records from 'person'" in capsys.readouterr().err
    assert await dump("person", capsys) == []
    assert await run("load", "--keep-ids", "person", str(backup)) == 0
    assert "loaded 6 records into 'person' under their ids" in capsys.readouterr().err
    assert await dump("person", capsys) == original

    reader = local.database()
    Again = person_class(reader)
    async with reader.conn(local.token):
        for person in people:
            again = await Again.get(person.id)
            assert again.model_dump() == person.model_dump()


async def test_keep_ids_refuses_a_taken_id_unless_replace(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await fill(local)
    records = await dump("user", capsys)
    first = records[0]["id"]
    path = write(tmp_path, json.dumps({"id": first, "name": "renamed", "age": 40}))

    assert await run("load", "--keep-ids", "user", path) == 1
    err = capsys.readouterr().err
    assert f"line 1: id {first} is already a record of 'user' (--replace overwrites it)" in err
    assert (await read_users(local))[first] == ("user0", 0)

    assert await run("load", "--keep-ids", "--replace", "user", path) == 0
    capsys.readouterr()
    users = await read_users(local)
    assert users[first] == ("renamed", 40) and len(users) == 3

    # Lines are checked first; ids against each other and the table once every line fits.
    no_id = write(tmp_path, '{"id": 5, "name": "a"}', '{"name": "b"}')
    assert await run("load", "--keep-ids", "user", no_id) == 1
    assert "line 2 has no id" in capsys.readouterr().err
    twice = write(tmp_path, '{"id": 5, "name": "a"}', '{"id": "5", "name": "c"}')
    assert await run("load", "--keep-ids", "user", twice) == 1
    assert "line 2: id 5 is also the id of line 1" in capsys.readouterr().err
    assert await run("load", "--replace", "user", path) == 2
    assert "--replace needs --keep-ids" in capsys.readouterr().err
    assert len(await read_users(local)) == 3


async def test_delete_removes_records_in_one_write(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill(local, users=5)
    ids = sorted(await read_users(local))
    route = "POST /channels/{channel_id}/messages"
    posts = local.emulator.stats()["requests_by_route"].get(route, 0)
    assert await run("delete", "user", str(ids[1]), str(ids[3]), str(ids[1])) == 0
    assert "deleted 2 records from 'user'" in capsys.readouterr().err
    assert local.emulator.stats()["requests_by_route"].get(route, 0) == posts + 1
    users = await read_users(local)
    assert sorted(users) == [ids[0], ids[2], ids[4]]


async def test_delete_of_an_unknown_id_names_it_and_deletes_nothing(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill(local)
    ids = sorted(await read_users(local))
    missing = ids[-1] + 12345
    assert await run("delete", "user", str(ids[0]), str(missing)) == 1
    err = capsys.readouterr().err
    assert f"'user' has no record with the id {missing}; nothing was deleted" in err
    assert "Traceback" not in err
    assert sorted(await read_users(local)) == ids
    assert await run("delete", "user", "seven") == 2
    assert "'seven' is not a record id" in capsys.readouterr().err
    assert await run("delete", "nope", str(ids[0])) == 1
    assert "no table named 'nope'" in capsys.readouterr().err


async def test_load_shows_its_progress_on_a_terminal(local: LocalDiscord, tmp_path: Path) -> None:
    await fill(local, users=1)
    path = write(tmp_path, *(json.dumps({"name": f"n{i}"}) for i in range(1200)))
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "discobase", "load", "user", path, stderr=follower
        )
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        terminal = os.read(leader, 65536).decode()
        assert "1200/1200 records checked" in terminal
        assert "1200/1200 records loaded" in terminal
    finally:
        os.close(leader)
        os.close(follower)


async def test_an_aliased_field_is_stored_under_its_name_as_save_stores_it(
    local: LocalDiscord, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def pet_class(db: discobase.Database) -> Any:
        @db.table
        class Pet(discobase.Table):
            name: str
            nick: str = pydantic.Field(default="none", alias="Nick")
            legs: int = 4

        return Pet

    db = local.database()
    Pet = pet_class(db)
    async with db.conn(local.token):
        await Pet(name="rex", Nick="r").save()

    path = write(tmp_path, '{"name": "tom", "Nick": "t"}', '{"name": "kit", "legs": 3}')
    assert await run("load", "pet", path) == 0
    capsys.readouterr()
    rows = {r["name"]: r for r in await dump("pet", capsys)}
    assert {k: v for k, v in rows["tom"].items() if k != "id"} == {
        "name": "tom",
        "nick": "t",
        "legs": 4,
    }
    assert rows["kit"]["nick"] == "none"

    reader = local.database()
    Again = pet_class(reader)
    async with reader.conn(local.token):
        assert sorted((p.name, p.nick, p.legs) for p in await Again.find()) == [
            ("kit", "none", 3),
            ("rex", "r", 4),
            ("tom", "t", 4),
        ]
