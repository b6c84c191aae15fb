"""The fixtures of discobase.testing, wired by pytest exactly as a user's conftest would.

Importing the fixtures into this module makes pytest use them here as if
``pytest_plugins = ["discobase.testing"]`` were in a root conftest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import discobase
from discobase import testing
from discobase.testing import LocalDiscord

# pytest finds fixtures by the names they are bound to in the module.
local_discord_fixture = testing._local_discord_fixture
discobase_db_fixture = testing._discobase_db_fixture


@pytest.fixture
def discobase_time_scale() -> float:
    """Override the plugin's time scale, as the docs suggest."""
    return 0.02


async def test_discobase_db_is_connected_and_empty(discobase_db: discobase.Database) -> None:
    assert discobase_db.is_ready
    assert discobase_db.tables == {}

    @discobase_db.table
    class Item(discobase.Table):
        label: str

    await discobase_db.build_tables()
    await Item.save_many([Item(label="a"), Item(label="b")])
    assert sorted(i.label for i in Item.find()) == ["a", "b"]


async def test_each_test_gets_a_fresh_local_discord(local_discord: LocalDiscord) -> None:
    assert local_discord.time_scale == 0.02  # the override above took effect
    db = local_discord.database()

    @db.table
    class Item(discobase.Table):
        label: str

    async with db.conn(local_discord.token):
        assert Item.count() == 0  # nothing left over from the test before
        await Item(label="x").save()
    assert local_discord.emulator.stats()["requests_total"] > 0


async def test_other_guilds_and_the_environment(local_discord: LocalDiscord) -> None:
    local_discord.add_guild("second db")
    db = local_discord.database("second db")
    async with db.conn(local_discord.token):
        assert db.guild_id is not None and str(db.guild_id) != local_discord.guild_id
    env = local_discord.environ()
    assert env["DISCOBASE_API_URL"] == local_discord.url
    assert env["DISCOBASE_DATABASE"] == local_discord.name
    # A database built from the environment alone runs at the local Discord's clock.
    assert float(env["DISCOBASE_TIME_SCALE"]) == local_discord.time_scale
    assert local_discord.token not in repr(local_discord)


def test_the_plugin_works_in_a_users_project(tmp_path: Path) -> None:
    # A user's project: the plugin named in a root conftest, pytest-asyncio in strict mode.
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["discobase.testing"]\n')
    (tmp_path / "test_user_code.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import discobase

            @pytest.mark.asyncio
            async def test_save(discobase_db):
                @discobase_db.table
                class Note(discobase.Table):
                    text: str

                await discobase_db.build_tables()
                await Note(text="hi").save()
                assert Note.count() == 1

            @pytest.mark.asyncio
            async def test_local(local_discord):
                assert local_discord.url.startswith("http://127.0.0.1:")
            """
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
