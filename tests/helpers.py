"""Helpers shared by the test folders: waiting for a condition, a database on the emulator.

One copy of each, so that a fix to how the suite waits reaches every test. Tests import them
from here (``from tests.helpers import eventually``), never from another test module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import discobase
from tests.conftest import TIME_SCALE

# A deadline, never a duration: generous, since the suite must pass on a loaded 2-core machine.
WAIT = 30.0


async def eventually(
    check: Callable[[], object], what: str | float = "the condition", timeout: float = WAIT
) -> None:
    """Poll ``check()`` every 10 ms until it is true; fail naming ``what`` after ``timeout`` s.

    Live sync has no completion signal to await, so tests wait for its effect; they never
    assert how long it took.

    Args:
        check: What must come true.
        what: Named in the failure (``"the reader to catch up"``). A number in its place is
            the timeout, the short form some tests use (``eventually(check, 10.0)``).
        timeout: How long to wait at most, in seconds.
    """
    if not isinstance(what, str):
        what, timeout = "the condition", what
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


def make_db(emu: Any, name: str = "My discord database", **kwargs: Any) -> discobase.Database:
    """Return a database on guild ``name`` of the emulator ``emu``, at the suite's time scale."""
    return discobase.Database(name, api_url=emu.url, time_scale=TIME_SCALE, **kwargs)
