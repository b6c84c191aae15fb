"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
