"""What the warning for a stored record that does not fit its class tells the reader to do.

A record may not fit because it is damaged, or because a newer version of the program wrote
it after widening a type (docs/guide/schemas.md): the older program, still running, cannot
read a ``2.5`` in its ``int`` field. The advice must not be only "delete it": that would
destroy the newer program's data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

import discobase
from discobase.errors import UnreadableRecord
from tests.unit.tablefakes import FakeEngine, FakeStore

database = discobase.Database("unreadable advice")


@database.table
class Member(discobase.Table):
    name: str
    fines: int


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await database._use_storage(fake)  # type: ignore[arg-type]
    yield fake
    await database.close()


async def test_the_warning_names_a_newer_version_before_deleting(
    engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    store: FakeStore = engine.stores["member"]
    store.put_now(9, {"name": "bob", "fines": 1.5})  # as a version with `fines: float` writes
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        assert Member.find() == []
        with pytest.raises(UnreadableRecord) as caught:
            await Member.get(9)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "discobase.table"]
    for text in (warning, str(caught.value)):
        assert "newer version" in text and "schemas.md" in text, text
        assert "Member.delete_id(9)" in text, text  # still there, for a damaged record
