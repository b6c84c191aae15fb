"""Start a Python script as another process that uses discobase against the local Discord.

Layer: integration-test helper. To Discord the child is one more process of the bot: it
imports discobase from this checkout (``PYTHONPATH``) and finds the emulator, its time scale
and the bot's token in its environment (``DISCOBASE_API_URL``, ``DISCOBASE_TIME_SCALE``,
``DISCOBASE_TOKEN``). It knows nothing of the emulator beyond what ``Emulator`` documents.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


async def start_child(script: str, emu: Any, token: str) -> asyncio.subprocess.Process:
    """Start ``python -c script`` pointed at ``emu`` as the bot of ``token``.

    Args:
        script: the child's source; it reads ``DISCOBASE_TOKEN`` for the token.
        emu: the running emulator (its ``url`` and ``time_scale``).
        token: the bot token the child logs in with.

    Returns:
        The process, its stdout and stderr piped for ``communicate()``.
    """
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path),
            "DISCOBASE_API_URL": emu.url,
            "DISCOBASE_TIME_SCALE": str(emu.time_scale),
            "DISCOBASE_TOKEN": token,
        },
    )
