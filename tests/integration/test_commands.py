"""The slash commands end to end: a server member types them in the local Discord.

Layer: integration tests. The member side is the emulator's interaction API
(``invoke_command``, ``click``, ``autocomplete``); the bot is a ``Database`` with
``AdminCommands`` registered. Every command runs with valid and invalid input, as a member
with and without permission, with a handler that is late or fails; what the commands wrote is
read back by a fresh process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import pytest

import discobase
from discobase.commands import COMMAND_NAMES, AdminCommands
from tests.integration.child_process import start_child

# The 3-second deadline lasts 750 ms here: room for a loaded machine, yet every deferral and
# follow-up path is taken for real.
TIME_SCALE = 0.25
# For a test whose handler outlasts the bot's deferral guard (1.5 s): the guard's deferral
# must reach Discord in the 1.5 s left before the deadline, 750 ms here. At TIME_SCALE that
# is 375 ms, and a stalled event loop on a busy machine took longer (the guard's timer fired
# after the deadline: "did not respond").
GUARD_SCALE = 0.5
WAIT = 60.0
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
VIEW_AND_SEND = (1 << 10) | (1 << 11)


class World:
    """A running emulator, a ready database with its commands, and two members."""

    def __init__(self, emu: Any, bot: Any, guild_id: str, db: discobase.Database) -> None:
        self.emu = emu
        self.time_scale: float = emu.time_scale
        self.bot = bot
        self.guild_id = guild_id
        self.db = db
        self.admin = emu.create_member(guild_id, "admin", permissions=MANAGE_GUILD | VIEW_AND_SEND)
        self.member = emu.create_member(guild_id, "member", permissions=VIEW_AND_SEND)
        self.commands: AdminCommands | None = None

    async def run(self, name: str, member: str | None = None, **options: Any) -> Any:
        return await self.emu.invoke_command(
            self.guild_id, self.admin if member is None else member, name, options
        )


@pytest.fixture
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """The world at TIME_SCALE, or at the time scale a test passes (indirect parametrize)."""
    from discobase.emulator import Emulator

    scale = float(getattr(request, "param", TIME_SCALE))
    async with Emulator(time_scale=scale) as emu:
        bot = emu.create_bot("db")
        guild_id = str(emu.create_guild("Commands db", bots=[bot]))
        db = discobase.Database("Commands db", api_url=emu.url, time_scale=scale)

        @db.table
        class User(discobase.Table):
            name: Annotated[str, discobase.Index()]
            email: Annotated[str, discobase.Index(unique=True)]
            age: int
            joined: date | None = None
            tags: list[str] = []

        @db.table
        class Note(discobase.Table):
            text: str

        commands = AdminCommands(db)
        async with asyncio.timeout(WAIT), db.conn(bot.token):
            state = World(emu, bot, guild_id, db)
            state.commands = commands
            await commands.register()
            yield state
            await commands.wait_idle()


def user_table(world: World) -> Any:
    return world.db.tables["user"]


async def insert(world: World, **values: Any) -> Any:
    result = await world.run("insert", table="user", values=json.dumps(values))
    assert result.responded and result.ephemeral, result
    assert "Inserted into user" in result.text(), result.text()
    return result


# -- registration -----------------------------------------------------------------------------


async def test_commands_are_guild_commands_of_the_database_guild_only(world: World) -> None:
    names = {c["name"] for c in world.emu.guild_commands(world.guild_id, world.bot)}
    assert names == set(COMMAND_NAMES)
    assert world.emu.state.commands.get(world.bot.application_id, {}) == {}  # never global
    writes = {
        c["name"]: c["default_member_permissions"]
        for c in world.emu.guild_commands(world.guild_id, world.bot)
    }
    assert writes["insert"] == writes["clear"] == writes["find"] == str(MANAGE_GUILD)

    assert world.commands is not None
    await world.commands.remove()
    assert world.emu.guild_commands(world.guild_id, world.bot) == []
    await world.commands.register()
    assert len(world.emu.guild_commands(world.guild_id, world.bot)) == len(COMMAND_NAMES)


async def test_the_cli_lists_and_removes_the_commands(
    world: World, monkeypatch: Any, capsys: Any
) -> None:
    from discobase.cli import main

    monkeypatch.setenv("DISCOBASE_TOKEN", world.bot.token)
    monkeypatch.setenv("DISCOBASE_API_URL", world.emu.url)
    monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
    argv = ["--guild-id", world.guild_id]
    assert await asyncio.to_thread(main, ["commands", *argv, "list"]) == 0
    assert "/clear: Delete every record of a table" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["commands", *argv, "remove"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and world.bot.token not in out
    assert world.emu.guild_commands(world.guild_id) == []


async def test_nothing_is_registered_unless_asked() -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE) as emu:
        bot = emu.create_bot("db")
        guild_id = str(emu.create_guild("Quiet", bots=[bot]))
        db = discobase.Database("Quiet", api_url=emu.url, time_scale=TIME_SCALE)
        AdminCommands(db)
        async with asyncio.timeout(WAIT), db.conn(bot.token):
            assert emu.guild_commands(guild_id) == []
            assert emu.state.commands == {}


# -- writes -----------------------------------------------------------------------------------


async def test_insert_validates_like_save_and_writes_through_the_table(world: World) -> None:
    user = user_table(world)
    result = await insert(world, name="Peter", email="p@x", age="41", joined="2024-05-01")
    stored = user.find_unique(name="Peter")
    peter = await stored
    assert peter.age == 41 and peter.joined == date(2024, 5, 1)  # coerced as save() would
    assert f"id {peter.id}" in result.text()

    bad_json = await world.run("insert", table="user", values="{name: Peter")
    assert "must be a JSON object" in bad_json.text() and bad_json.ephemeral
    not_object = await world.run("insert", table="user", values="[1, 2]")
    assert "JSON object" in not_object.text()
    invalid = await world.run(
        "insert", table="user", values=json.dumps({"name": "Ann", "email": "a@x", "age": "old"})
    )
    assert "Invalid record" in invalid.text() and "age" in invalid.text()
    missing = await world.run("insert", table="user", values=json.dumps({"name": "Ann"}))
    assert "email" in missing.text() and "Field required" in missing.text()
    duplicate = await world.run(
        "insert", table="user", values=json.dumps({"name": "P2", "email": "p@x", "age": 1})
    )
    assert "Not saved" in duplicate.text() and "p@x" in duplicate.text()
    unknown = await world.run("insert", table="nope", values="{}")
    assert "Unknown table" in unknown.text() and "user" in unknown.text()
    assert user.count() == 1


async def test_update_changes_only_valid_fields(world: World) -> None:
    user = user_table(world)
    await insert(world, name="Peter", email="p@x", age=41)
    peter = await user.find_unique(name="Peter")
    result = await world.run("update", table="user", id=str(peter.id), changes='{"age": "42"}')
    assert "Updated in user" in result.text(), result.text()
    assert (await user.get(peter.id)).age == 42

    for changes, expected in (
        ('{"age": "forty"}', "Invalid change"),
        ('{"colour": "red"}', "Unknown field"),
        ("{}", "Nothing to change"),
        ("42", "JSON object"),
    ):
        refused = await world.run("update", table="user", id=str(peter.id), changes=changes)
        assert expected in refused.text(), (changes, refused.text())
    missing = await world.run("update", table="user", id="12345", changes='{"age": 1}')
    assert "No such record" in missing.text()
    assert (await user.get(peter.id)).age == 42


async def test_delete_removes_by_id(world: World) -> None:
    user = user_table(world)
    await insert(world, name="Peter", email="p@x", age=41)
    peter = await user.find_unique(name="Peter")
    not_an_id = await world.run("delete", table="user", id="peter")
    assert "not a record id" in not_an_id.text()
    result = await world.run("delete", table="user", id=str(peter.id))
    assert f"Record {peter.id} is deleted" in result.text()
    assert user.count() == 0
    again = await world.run("delete", table="user", id=str(peter.id))
    assert "No such record" in again.text()


async def test_clear_asks_for_confirmation_from_the_same_member(world: World) -> None:
    user = user_table(world)
    for i in range(3):
        await insert(world, name=f"u{i}", email=f"u{i}@x", age=i)
    asked = await world.run("clear", table="user")
    assert "Delete every record of user?" in asked.text()
    assert [b["label"] for b in asked.buttons()] == ["Delete 3 record(s)", "Cancel"]
    yes, no = (b["custom_id"] for b in asked.buttons())
    assert user.count() == 3  # nothing happens before the click

    cancelled = await world.emu.click(asked, no)
    assert "Cancelled" in cancelled.text() and cancelled.buttons() == []
    assert user.count() == 3

    asked = await world.run("clear", table="user")
    yes = asked.buttons()[0]["custom_id"]
    done = await world.emu.click(asked, yes)
    assert "Deleted 3 record(s) of user" in done.text(), done.text()
    assert user.count() == 0
    empty = await world.run("clear", table="user")
    assert "user is empty" in empty.text()


# -- reads ------------------------------------------------------------------------------------


async def test_find_pages_with_buttons_and_uses_the_librarys_operators(world: World) -> None:
    user = user_table(world)
    await user.save_many(
        [
            user(name=f"n{i:02}", email=f"{i}@x", age=i, tags=["even" if i % 2 else "odd"])
            for i in range(12)
        ]
    )
    every = await world.run("find", table="user")
    assert every.ephemeral and "Page 1 of 3 · 12 records" in every.text()
    assert every.text().endswith("[◀ Previous (disabled)] [Next ▶]")
    nxt = every.buttons()[1]["custom_id"]
    second = await world.emu.click(every, nxt)
    assert "Page 2 of 3" in second.text() and second.message["id"] == every.message["id"]
    third = await world.emu.click(second, second.buttons()[1]["custom_id"])
    assert "Page 3 of 3" in third.text() and third.buttons()[1]["disabled"]

    older = await world.run("find", table="user", field="age", operator="ge", value="10")
    assert "records where age >= 10" in older.text() and "2 records" in older.text()
    assert older.buttons() == []  # one page: no arrows
    named = await world.run("find", table="user", field="name", value="n03")
    assert "1 record" in named.text() and '"email":"3@x"' in named.text()
    prefix = await world.run("find", table="user", field="name", operator="startswith", value="n1")
    assert "2 records" in prefix.text()
    some = await world.run("find", table="user", field="age", operator="one_of", value="1, 2, 99")
    assert "2 records" in some.text()
    tagged = await world.run("find", table="user", field="tags", operator="contains", value="odd")
    assert "6 records" in tagged.text()
    # An int column matches a typed number (the original's /find never did).
    exact = await world.run("find", table="user", field="age", value="7")
    assert "1 record" in exact.text()

    bad = await world.run("find", table="user", field="age", operator="gt", value="old")
    assert "Invalid query" in bad.text()
    no_value = await world.run("find", table="user", field="age")
    assert "Value needed" in no_value.text()
    no_field = await world.run("find", table="user", field="colour", value="x")
    assert "Unknown field" in no_field.text()
    public = await world.run("find", table="user", field="age", value="7", public=True)
    assert not public.ephemeral


async def test_table_column_schema_and_stats_are_embeds(world: World) -> None:
    user = user_table(world)
    await user.save_many([user(name=f"n{i}", email=f"{i}@x", age=i) for i in range(25)])
    table = await world.run("table", table="user")
    assert "user: records" in table.text() and "Page 1 of 5 · 25 records" in table.text()
    column = await world.run("column", table="user", field="age")
    assert "user.age" in column.text() and "Page 1 of 2 · 25 record(s)" in column.text()
    last = await world.emu.click(column, column.buttons()[1]["custom_id"])
    assert "Page 2 of 2" in last.text()
    schema = await world.run("schema", table="user")
    text = schema.text()
    assert "**Schema of user**" in text
    assert "name: `str` · required · index" in text
    assert "email: `str` · required · unique index" in text
    assert "joined: `date | None` · default: `None`" in text
    stats = await world.run("tablestats", table="user")
    assert "Records: 25" in stats.text() and "Indexes: name, email (unique)" in stats.text()
    note = await world.run("tablestats", table="note")
    assert "Records: 0" in note.text()


async def test_autocomplete_offers_tables_fields_ids_and_indexed_values(world: World) -> None:
    user = user_table(world)
    await user.save_many([user(name=n, email=f"{n}@x", age=1) for n in ("ann", "anna", "bob")])
    emu, gid, admin = world.emu, world.guild_id, world.admin
    tables = await emu.autocomplete(gid, admin, "find", {"table": "u"}, "table")
    assert tables == [{"name": "user", "value": "user"}]
    fields = await emu.autocomplete(gid, admin, "find", {"table": "user", "field": "a"}, "field")
    assert [c["value"] for c in fields] == ["age"]
    values = await emu.autocomplete(
        gid, admin, "find", {"table": "user", "field": "name", "value": "an"}, "value"
    )
    assert [c["value"] for c in values] == ["ann", "anna"]
    unindexed = await emu.autocomplete(
        gid, admin, "find", {"table": "user", "field": "age", "value": ""}, "value"
    )
    assert unindexed == []
    ids = await emu.autocomplete(gid, admin, "delete", {"table": "user", "id": ""}, "id")
    assert len(ids) == 3 and all(c["value"].isdigit() for c in ids)
    # A member who may not read gets no suggestions (not even table names).
    assert await emu.autocomplete(gid, world.member, "find", {"table": ""}, "table") == []


# -- who may run them -------------------------------------------------------------------------


async def test_members_without_manage_server_are_refused_twice(world: World) -> None:
    from discobase.emulator.interactions import InteractionError

    user = user_table(world)
    # Discord hides the commands from them ...
    with pytest.raises(InteractionError):
        await world.run("insert", world.member, table="user", values="{}")
    # ... and if the server's Integrations settings let them through, the bot refuses.
    for name, options in (
        ("insert", {"table": "user", "values": '{"name": "x", "email": "x", "age": 1}'}),
        ("clear", {"table": "user"}),
        ("find", {"table": "user"}),
    ):
        result = await world.emu.invoke_command(
            world.guild_id, world.member, name, options, override_permissions=True
        )
        assert result.responded and result.ephemeral
        assert "Manage Server permission" in result.text(), result.text()
    assert user.count() == 0
    # An administrator passes without the Manage Server bit itself.
    boss = world.emu.create_member(world.guild_id, "boss", permissions=ADMINISTRATOR)
    result = await world.run("tablestats", boss, table="user")
    assert "Records: 0" in result.text()


async def test_only_the_member_who_asked_can_confirm_a_clear(world: World) -> None:
    user = user_table(world)
    await insert(world, name="Peter", email="p@x", age=41)
    asked = await world.run("clear", table="user")
    yes = asked.buttons()[0]["custom_id"]
    # The confirmation is ephemeral, so another member cannot even see it; a forged click
    # from another admin is refused by the bot as well.
    other = world.emu.create_member(world.guild_id, "other", permissions=MANAGE_GUILD)
    from discobase.emulator.interactions import InteractionError

    with pytest.raises(InteractionError):
        await world.emu.click(asked, yes, other)
    assert user.count() == 1


# -- late and failing handlers ----------------------------------------------------------------


@pytest.mark.slow
async def test_a_slow_write_is_deferred_and_still_answered(world: World) -> None:
    user = user_table(world)
    # The message write is refused with a 429 asking for 5 Discord seconds: the write takes
    # far longer than the 3-second deadline, while the interaction routes stay fast.
    world.emu.fail_next("POST", r"/channels/\d+/messages", 429, retry_after=5.0, scope="shared")
    try:
        result = await world.run(
            "insert", table="user", values=json.dumps({"name": "Slow", "email": "s@x", "age": 1})
        )
    finally:
        world.emu.clear_faults()
    assert result.responded and result.response_type == 5, result
    assert "Inserted into user" in result.text() and not result.deferred
    assert user.count() == 1


@pytest.mark.slow
@pytest.mark.parametrize("world", [GUARD_SCALE], indirect=True)
async def test_a_slow_read_is_deferred_for_the_handler(world: World, monkeypatch: Any) -> None:
    assert world.commands is not None
    original = world.commands._cmd_schema

    async def slow(*args: Any) -> None:
        await asyncio.sleep(2.5 * world.time_scale)  # past the guard's 1.5 s, before the 3 s
        await asyncio.sleep(2.5 * world.time_scale)  # and well past the deadline in all
        await original(*args)

    monkeypatch.setattr(world.commands, "_cmd_schema", slow)
    result = await world.run("schema", table="user")
    assert result.responded and result.response_type == 5  # deferred by the guard
    assert "**Schema of user**" in result.text() and result.ephemeral


@pytest.mark.slow
async def test_an_interaction_that_reaches_the_bot_too_late_is_dropped_quietly(
    world: World, caplog: Any
) -> None:
    assert world.commands is not None
    world.emu.gateway.delay_dispatches(4.0, "INTERACTION_CREATE", count=1)
    late = await world.run("tablestats", table="user")
    assert not late.responded and late.error == "The application did not respond"
    await asyncio.sleep(6 * TIME_SCALE)
    await world.commands.wait_idle()
    assert "Unknown interaction" in caplog.text  # logged, without the token
    assert late.interaction["token"] not in caplog.text
    # The bot is fine: the next command is answered.
    again = await world.run("tablestats", table="user")
    assert again.responded and "Records: 0" in again.text()


async def test_a_failing_write_answers_with_a_readable_message(world: World) -> None:
    user = user_table(world)
    world.emu.fail_next("POST", r"/channels/\d+/messages", 403, count=50, code=50013)
    try:
        result = await world.run(
            "insert", table="user", values=json.dumps({"name": "F", "email": "f@x", "age": 1})
        )
    finally:
        world.emu.clear_faults()
    assert result.responded and result.ephemeral
    assert "Not saved" in result.text() or "Something went wrong" in result.text()
    assert "Missing Permissions" in result.text() or "403" in result.text()
    assert user.count() == 0


async def test_a_handler_that_crashes_still_answers(world: World, monkeypatch: Any) -> None:
    assert world.commands is not None

    async def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.commands, "_cmd_schema", broken)
    result = await world.run("schema", table="user")
    assert result.responded and "Something went wrong" in result.text()
    assert "boom" not in result.text()  # internals stay in the bot's log


async def test_no_answer_ever_shows_a_token(world: World) -> None:
    await insert(world, name="Peter", email="p@x", age=41)
    for name, options in (
        ("find", {"table": "user"}),
        ("schema", {"table": "user"}),
        ("tablestats", {"table": "user"}),
        ("table", {"table": "user"}),
    ):
        result = await world.run(name, **options)
        dumped = json.dumps([result.message, result.followups])
        assert world.bot.token not in dumped
        assert result.interaction["token"] not in dumped


@pytest.mark.slow
async def test_two_processes_of_the_bot_write_once(world: World, caplog: Any) -> None:
    # A second database of the same bot (as another process would be) with the commands on:
    # both receive each interaction; one acknowledges it, the other gets 40060 and stands
    # down before writing anything.
    second = discobase.Database("Commands db", api_url=world.emu.url, time_scale=TIME_SCALE)

    @second.table
    class User(discobase.Table):
        name: Annotated[str, discobase.Index()]
        email: Annotated[str, discobase.Index(unique=True)]
        age: int
        joined: date | None = None
        tags: list[str] = []

    other = AdminCommands(second)
    async with asyncio.timeout(WAIT), second.conn(world.bot.token):
        await other.register()
        for i in range(3):
            result = await world.run(
                "insert",
                table="user",
                values=json.dumps({"name": f"n{i}", "email": f"{i}@x", "age": i}),
            )
            assert "Inserted into user" in result.text(), result.text()
        await other.wait_idle()
        assert world.commands is not None
        await world.commands.wait_idle()
        assert user_table(world).count() == 3
        assert "slash command failed" not in caplog.text
        # Both answered each interaction: three of the six callbacks were refused.
        assert world.emu.stats()["responses_by_status"].get(400, 0) == 3


# -- a fresh process reads what the commands wrote -------------------------------------------


CHILD = """
import asyncio, json, os
from datetime import date
from typing import Annotated
import discobase

db = discobase.Database("Commands db")

@db.table
class User(discobase.Table):
    name: Annotated[str, discobase.Index()]
    email: Annotated[str, discobase.Index(unique=True)]
    age: int
    joined: date | None = None
    tags: list[str] = []

async def main():
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        users = sorted(User.find(), key=lambda u: u.name)
        print(json.dumps([[u.name, u.age, str(u.joined)] for u in users]))

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_fresh_process_reads_what_the_commands_wrote(world: World) -> None:
    await insert(world, name="Peter", email="p@x", age=41, joined="2024-05-01")
    await insert(world, name="Ann", email="a@x", age=30)
    await insert(world, name="Gone", email="g@x", age=1)
    user = user_table(world)
    peter = await user.find_unique(name="Peter")
    gone = await user.find_unique(name="Gone")
    await world.run("update", table="user", id=str(peter.id), changes='{"age": 42}')
    await world.run("delete", table="user", id=str(gone.id))
    child = await start_child(CHILD, world.emu, world.bot.token)
    out, err = await asyncio.wait_for(child.communicate(), WAIT)
    assert child.returncode == 0, err.decode()
    assert json.loads(out.decode().strip().splitlines()[-1]) == [
        ["Ann", 30, "None"],
        ["Peter", 42, "2024-05-01"],
    ]
