"""The end of a batch block (discobase.storage.batch) when its code raises."""

from __future__ import annotations

import types
from collections.abc import Generator

from discobase.storage.batch import batch_block, current_batch


@types.coroutine
def suspended() -> Generator[None, None, None]:
    yield  # where a coroutine waits on the loop


def test_a_block_whose_coroutine_is_closed_ends_without_waiting() -> None:
    # A coroutine closed while suspended inside the block (a task collected before it ends,
    # coro.close()) must not wait on the loop while the GeneratorExit passes: Python then
    # raises RuntimeError('coroutine ignored GeneratorExit') and the block's end is skipped.
    owner = object()

    async def body() -> None:
        async with batch_block(owner):
            assert current_batch(owner) is not None
            await suspended()

    coro = body()
    coro.send(None)
    coro.close()
    assert current_batch(owner) is None
