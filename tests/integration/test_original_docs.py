"""Every example of the original discobase documentation, run against the local Discord.

The examples below are copied verbatim from the original documentation
(``../shared/docs/original-discobase-docs.md``; ``test_examples_are_verbatim`` checks the copy
when that file is present). Only two things change when they run: the token
``"My bot token..."`` becomes the local bot's, and ``DISCOBASE_API_URL`` (with
``DISCOBASE_TIME_SCALE``) points ``discobase.Database("My discord database")`` at the local
Discord. One example is not valid Python as printed (an ``async with`` whose body is only a
comment); it runs with ``pass`` added, the least change that makes it run.

``if __name__ == "__main__": asyncio.run(main())`` is not reached (the test already runs in
an event loop); the test awaits ``main()`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import discobase
from tests.conftest import TIME_SCALE
from tests.helpers import identify_window

WAIT = 30.0
DOC = Path(__file__).resolve().parents[3] / "shared" / "docs" / "original-discobase-docs.md"
NAME = "My discord database"

SERVER_NAME = """\
import discobase

db = discobase.Database("My discord database")
"""

LOGIN = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    await db.login("My bot token...")

if __name__ == "__main__":
    asyncio.run(main())
"""

LOGIN_TASK = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    db.login_task("My bot token...")
    # Do something else, the bot is now running in the background

if __name__ == "__main__":
    asyncio.run(main())
"""

WAIT_READY = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    db.login_task("My bot token...")
    await db.wait_ready()
    # We can now safely use the database!

if __name__ == "__main__":
    asyncio.run(main())
"""

AWAIT_TASK = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    task = db.login_task("My bot token...")
    await db.wait_ready()
    # We can now safely use the database!
    # ...
    await task  # Keeps the connection open

if __name__ == "__main__":
    asyncio.run(main())
"""

CONN = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    async with db.conn("My bot token..."):
        # Do something with the database

if __name__ == "__main__":
    asyncio.run(main())
"""

SCHEMA = """\
import discobase

db = discobase.Database("My discord database")

class User(discobase.Table):
    name: str
    password: str
"""

REGISTERED = """\
import discobase

db = discobase.Database("My discord database")

@db.table
class User(discobase.Table):
    name: str
    password: str
"""

DUPLICATE = """\

import discobase

db = discobase.Database("My discord database")

@db.table
class User(discobase.Table):
    name: str
    password: str


@db.table
class User(discobase.Table):
    some_other_field: str
"""

SAVING = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

@db.table
class User(discobase.Table):
    name: str
    password: str

async def main():
    async with db.conn("My bot token..."):
        user = User(name="Peter", password="foobar")
        await user.save()  # Saves this record to the database

if __name__ == "__main__":
    asyncio.run(main())
"""

QUERYING = """\
async def main():
    async with db.conn("My bot token..."):
        users = User.find(name="Peter")
        for user in users:
            print(f"Name: {user.name}, password: {user.password}")
"""

LATE_ERROR = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    async with db.conn("My bot token..."):
        # By default, this is not allowed!
        @db.table
        class User(discobase.Table):
            name: str
            password: str

        user = User(name="Peter", password="foobar")
        await user.save()  # Error!

if __name__ == "__main__":
    asyncio.run(main())
"""

LATE_FIXED = """\
import discobase
import asyncio

db = discobase.Database("My discord database")

async def main():
    async with db.conn("My bot token..."):
        @db.table
        class User(discobase.Table):
            name: str
            password: str

        await db.build_tables()  # Initialize `User` internally
        user = User(name="Peter", password="foobar")
        await user.save()  # OK!

if __name__ == "__main__":
    asyncio.run(main())
"""

EXAMPLES = [
    SERVER_NAME,
    LOGIN,
    LOGIN_TASK,
    WAIT_READY,
    AWAIT_TASK,
    CONN,
    SCHEMA,
    REGISTERED,
    DUPLICATE,
    SAVING,
    QUERYING,
    LATE_ERROR,
    LATE_FIXED,
]

# The one change that is not token or URL: a comment alone is not a block in Python.
RUNNABLE_CONN = CONN.replace(
    "        # Do something with the database\n",
    "        # Do something with the database\n        pass\n",
)


@pytest.fixture
async def token(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Point discobase at the local Discord and return a bot token for the guild."""
    bot = emulator.create_bot("original-docs")
    emulator.create_guild(NAME, bots=[bot])
    monkeypatch.setenv("DISCOBASE_API_URL", emulator.url)
    monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
    yield bot.token


def run_example(source: str, token: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute an example as a module that is not ``__main__``; return its namespace."""
    ns = namespace if namespace is not None else {"__name__": "original_docs_example"}
    code = compile(source.replace('"My bot token..."', repr(token)), "<original docs>", "exec")
    exec(code, ns)
    return ns


async def stop_when_ready(db: discobase.Database) -> None:
    await db.wait_ready()
    await db.close()


def test_examples_are_verbatim() -> None:
    if not DOC.exists():
        pytest.skip("the original documentation is not next to the repository")
    from tests.docs.blocks import extract_blocks

    assert [block.source for block in extract_blocks(DOC)] == EXAMPLES


async def test_server_name_does_no_io() -> None:
    ns = run_example(SERVER_NAME, "unused")
    assert isinstance(ns["db"], discobase.Database)
    assert not ns["db"].is_ready


async def test_login_runs_until_closed(token: str) -> None:
    ns = run_example(LOGIN, token)
    async with asyncio.timeout(WAIT):
        main = asyncio.create_task(ns["main"]())
        await asyncio.sleep(0)  # let main() start its login
        await ns["db"].wait_ready()
        assert not main.done()
        await ns["db"].close()
        await main  # login() returns once the database is closed


async def test_login_task_runs_in_the_background(token: str) -> None:
    ns = run_example(LOGIN_TASK, token)
    async with asyncio.timeout(WAIT):
        await ns["main"]()  # returns at once; the login goes on
        await stop_when_ready(ns["db"])


async def test_wait_ready(token: str) -> None:
    ns = run_example(WAIT_READY, token)
    async with asyncio.timeout(WAIT):
        await ns["main"]()
        assert ns["db"].is_ready
        await ns["db"].close()


async def test_awaiting_the_task_keeps_the_connection(token: str) -> None:
    ns = run_example(AWAIT_TASK, token)
    async with asyncio.timeout(WAIT):
        main = asyncio.create_task(ns["main"]())
        await asyncio.sleep(0)  # let main() start its login
        await ns["db"].wait_ready()
        await asyncio.sleep(0.05)
        assert not main.done()
        await ns["db"].close()
        await main


async def test_conn(token: str) -> None:
    ns = run_example(RUNNABLE_CONN, token)
    async with asyncio.timeout(WAIT):
        await ns["main"]()
    assert not ns["db"].is_ready


async def test_schemas_and_registration() -> None:
    plain = run_example(SCHEMA, "unused")
    assert issubclass(plain["User"], discobase.Table)
    assert plain["db"].tables == {}
    registered = run_example(REGISTERED, "unused")
    assert registered["db"].tables == {"user": registered["User"]}


async def test_two_tables_of_one_name_do_not_work() -> None:
    with pytest.raises(discobase.TableRegistrationError):
        run_example(DUPLICATE, "unused")


async def test_saving_then_querying(token: str) -> None:
    ns = run_example(SAVING, token)
    async with asyncio.timeout(WAIT):
        await ns["main"]()
        run_example(QUERYING, token, ns)  # the querying fragment reuses db and User
        await identify_window()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await ns["main"]()
    assert out.getvalue() == "Name: Peter, password: foobar\n"


async def test_late_table_is_an_error(token: str) -> None:
    ns = run_example(LATE_ERROR, token)
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.TableNotBuilt, match="build_tables"):
            await ns["main"]()
    assert not ns["db"].is_ready


async def test_late_table_with_build_tables(token: str) -> None:
    ns = run_example(LATE_FIXED, token)
    async with asyncio.timeout(WAIT):
        await ns["main"]()
