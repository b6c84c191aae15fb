"""Fixtures shared by every test folder."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

# Real seconds per Discord second in integration tests: a 5-second window lasts 50 ms.
TIME_SCALE = 0.01


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    """A fresh local Discord on a free loopback port, time-scaled for tests."""
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _isolate_discobase_logging() -> Iterator[None]:
    """Give every test the ``discobase`` logger as it found it (handlers, level, propagation).

    ``Database(logging=True)`` and ``enable_logging()`` attach one process-wide handler bound to
    the ``sys.stderr`` of the moment, which under pytest is one test's capture file. Left in
    place, it writes into a closed capture in later tests ("--- Logging error ---" on stderr)
    and makes a later ``logging=True`` print nowhere that test can see, so whether a test
    passed depended on which tests ran before it.
    """
    logger = logging.getLogger("discobase")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    logs = sys.modules.get("discobase._logging")  # not imported here: tests check imports
    own_handler = getattr(logs, "_handler", None)
    yield
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate
    logs = sys.modules.get("discobase._logging")
    if logs is not None:
        logs._handler = own_handler
