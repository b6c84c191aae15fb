"""A database serves only the event loop it logged in from (shared leaf).

Its tasks and futures belong to that loop: a call from another one (a second thread's
``asyncio.run``) would queue work whose task never completes there, and a call from code with
no loop at all has nothing to run its task. Every public call that needs the loop checks here
first, so the refusal reads the same from a table and from the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discobase.errors import UsageError

if TYPE_CHECKING:
    import asyncio

__all__ = ["check_loop"]


def check_loop(
    call: str, owner: object, expected: asyncio.AbstractEventLoop | None, undone: str = ""
) -> None:
    """Refuse ``call`` unless it runs in ``expected`` (any running loop when ``None``).

    Args:
        call: what was called, as the user wrote it (``"User.save"``, ``"db.batch"``).
        owner: the database, as its repr names it.
        expected: the loop it logged in from, if known.
        undone: what the refusal left undone, said at the end (``". Nothing was written"``).

    Raises:
        UsageError: no running loop, or another one than ``expected``.
    """
    import asyncio  # loaded on use: `import discobase` stays light

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            f"{call}() was called with no running event loop (from synchronous code, or a "
            f"thread without asyncio); call it from a coroutine running in the event loop "
            f"{owner!r} logged in from{undone}"
        ) from None
    if expected is not None and running is not expected:
        raise UsageError(
            f"{call}() was called from another event loop than the one {owner!r} logged in "
            "from (a second thread's asyncio.run?); a database serves only that loop: hand "
            f"the call to it (for example with asyncio.run_coroutine_threadsafe){undone}"
        )
