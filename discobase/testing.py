"""Test your own code against a fresh local Discord (a pytest plugin; top layer).

Sits above the public API and the emulator and wires them together; nothing in discobase
imports it. The helpers work in any asyncio code; the fixtures need pytest and pytest-asyncio.

Enable the fixtures in your ``conftest.py``:

```python
pytest_plugins = ["discobase.testing"]
```

then ask for ``discobase_db`` (a connected `Database` on a guild of its own)
or ``local_discord`` (the local Discord itself, to connect databases of your own):

```python
async def test_users(discobase_db):
    @discobase_db.table
    class User(discobase.Table):
        name: str

    await discobase_db.build_tables()
    await User(name="Peter").save()
    assert User.count() == 1
```

Every test gets a new local Discord, so tests never see each other's data. The local Discord
runs fast (``time_scale``, default `DEFAULT_TIME_SCALE`): a 5-second rate-limit window
lasts 50 ms. Override the ``discobase_time_scale`` fixture to change it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from discobase.database import Database
    from discobase.emulator import Emulator

__all__ = ["DEFAULT_TIME_SCALE", "LocalDiscord", "local_discord"]

# Real seconds per Discord second: fast, yet with the same ratios as Discord's limits.
DEFAULT_TIME_SCALE = 0.01
DEFAULT_NAME = "discobase tests"


@dataclass
class LocalDiscord:
    """A running local Discord with one bot that has joined one guild.

    Attributes:
        emulator: the `Emulator` (its ``stats()``, ``fail_next()``
            and ``advance()`` help tests of failures and limits).
        bot: the bot (``.id``, ``.token``, ``.application_id``).
        guild_id: the guild's id.
        name: the guild's name.
        time_scale: real seconds per Discord second.
    """

    emulator: Emulator
    bot: Any = field(repr=False)
    guild_id: str
    name: str
    time_scale: float

    @property
    def url(self) -> str:
        """Return the local Discord's origin, ``http://127.0.0.1:PORT``."""
        return str(self.emulator.url)

    @property
    def token(self) -> str:
        """Return the bot's token."""
        return str(self.bot.token)

    def add_guild(self, name: str) -> str:
        """Create another guild the bot is in (for a database of another name); return its id."""
        return str(self.emulator.create_guild(name, bots=[self.bot]))

    def database(self, name: str | None = None, **options: Any) -> Database:
        """Return a new, unconnected `Database` on this local Discord.

        Args:
            name: the database's name; this guild's when omitted. A guild of another name
                must exist first (`add_guild()`).
            **options: further ``Database`` options, such as ``logging=True``.
        """
        from discobase import Database

        if name is None:
            options.setdefault("guild_id", self.guild_id)
        options.setdefault("time_scale", self.time_scale)
        return Database(self.name if name is None else name, api_url=self.url, **options)

    def environ(self) -> dict[str, str]:
        """Return the environment variables that point discobase here.

        ``DISCOBASE_API_URL`` and ``DISCOBASE_TIME_SCALE`` are what a ``Database`` built
        without ``api_url`` and ``time_scale`` uses (without the time scale, its clock would
        run slower than this local Discord's), and with ``DISCOBASE_TOKEN`` and
        ``DISCOBASE_DATABASE`` the command line works too; set them with
        ``monkeypatch.setenv`` to test code that builds its own database.
        """
        return {
            "DISCOBASE_API_URL": self.url,
            "DISCOBASE_TIME_SCALE": repr(self.time_scale),
            "DISCOBASE_TOKEN": self.token,
            "DISCOBASE_DATABASE": self.name,
        }


@asynccontextmanager
async def local_discord(
    name: str = DEFAULT_NAME, *, time_scale: float = DEFAULT_TIME_SCALE
) -> AsyncIterator[LocalDiscord]:
    """Start a local Discord with a bot in a guild named ``name``; stop it on exit.

    Args:
        name: the guild's (database's) name.
        time_scale: real seconds per Discord second.

    Example:
        ```python
        async with local_discord("My db") as local:
            db = local.database()
            async with db.conn(local.token):
                ...
        ```
    """
    from discobase.emulator import Emulator

    async with Emulator(time_scale=time_scale) as emulator:
        bot = emulator.create_bot("discobase-tests")
        guild_id = str(emulator.create_guild(name, bots=[bot]))
        yield LocalDiscord(emulator, bot, guild_id, name, time_scale)


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest
    import pytest_asyncio

    @pytest.fixture(name="discobase_time_scale")
    def _time_scale_fixture() -> float:
        """Real seconds per Discord second of the local Discord (override to change)."""
        return DEFAULT_TIME_SCALE

    @pytest_asyncio.fixture(name="local_discord")
    async def _local_discord_fixture(discobase_time_scale: float) -> AsyncIterator[LocalDiscord]:
        """A fresh local Discord whose bot is in a guild named "discobase tests"."""
        async with local_discord(time_scale=discobase_time_scale) as local:
            yield local

    @pytest_asyncio.fixture(name="discobase_db")
    async def _discobase_db_fixture(local_discord: LocalDiscord) -> AsyncIterator[Database]:
        """A connected Database on a fresh local Discord, with no tables yet.

        Register tables with ``@discobase_db.table``, then ``await
        discobase_db.build_tables()``. The database is closed after the test.
        """
        db = local_discord.database()
        async with db.conn(local_discord.token):
            yield db
