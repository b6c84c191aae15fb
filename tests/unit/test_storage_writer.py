"""The group-commit writer over a fake Discord (the HTTP client's MockTransport seam)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest

from discobase import _json
from discobase.errors import DatabaseError
from discobase.http import HTTPClient, MockTransport, RawResponse
from discobase.http.errors import InvalidToken
from discobase.storage import codec
from discobase.storage.codec import Put
from discobase.storage.outgoing import Limits, plan_blob, plan_messages
from discobase.storage.state import TableState
from discobase.storage.writer import Group, Writer, encode_blob, encode_group, encode_lines

CHANNEL = 555
BOT = 42


class FakeDiscord:
    """Answer message creates; refuse bodies over ``max_body`` with 413/40005, or every call."""

    def __init__(self, *, max_body: int = 1 << 30, status: int = 200) -> None:
        self.max_body = max_body
        self.status = status
        self.bodies: list[bytes] = []
        self.refused = 0
        self._ids = itertools.count(1_000_000)
        self.gate: asyncio.Event | None = None
        #: Creates that reached the gate and wait there.
        self.waiting = 0

    async def __call__(
        self, method: str, url: str, headers: Any, body: bytes | None
    ) -> RawResponse:
        assert method == "POST" and url.endswith(f"/channels/{CHANNEL}/messages")
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        if self.status != 200:
            return _reply(self.status, {"code": 0, "message": "no"})
        data = body or b""
        if len(data) > self.max_body:
            self.refused += 1
            return _reply(413, {"code": 40005, "message": "Request entity too large"})
        self.bodies.append(data)
        return _reply(200, {"id": str(next(self._ids)), "channel_id": str(CHANNEL)})


def _reply(status: int, body: Any) -> RawResponse:
    return RawResponse(status, "", {"content-type": "application/json"}, _json.dumps(body))


def group(state: TableState, ops: list[Put]) -> tuple[Group, asyncio.Future[None]]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    state.check(ops)
    return Group(ops=list(ops), tokens=[state.hold(ops)], futures=[future]), future


async def run(
    fake: FakeDiscord, limits: Limits | None = None, **options: Any
) -> tuple[HTTPClient, TableState, Writer]:
    http = HTTPClient("t0k3n", api_url="http://fake", transport=MockTransport(fake))
    await http.open()
    state = TableState("t", {"k": True})
    writer = Writer(http, CHANNEL, state, limits or Limits(), time_scale=0.001, **options)
    return http, state, writer


async def reaches_discord(fake: FakeDiscord) -> None:
    """Return once a create waits at the fake's gate."""
    while not fake.waiting:
        await asyncio.sleep(0)


async def test_a_lone_write_goes_out_at_once_and_a_crowd_shares_messages() -> None:
    fake = FakeDiscord()
    http, state, writer = await run(fake)
    fake.gate = asyncio.Event()
    g, first = group(state, [Put(1, {"k": "a"})])
    writer.enqueue(g)
    await asyncio.sleep(0)
    futures = []
    for i in range(2, 300):
        g, f = group(state, [Put(i, {"k": str(i)})])
        writer.enqueue(g)
        futures.append(f)
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *futures), 30)
    assert len(fake.bodies) == 2  # the lone write, then everyone who queued behind it
    assert state.count() == 299 and state.pending_count == 0
    assert list(state.lookup("k", "7") or ()) == [7]
    await writer.close()
    await http.close()


async def test_inline_messages_are_silent_and_mention_nobody() -> None:
    fake = FakeDiscord()
    http, state, writer = await run(fake)
    g, f = group(state, [Put(1, {"k": "@everyone"})])
    writer.enqueue(g)
    await asyncio.wait_for(f, 30)
    body = _json.loads(fake.bodies[0])
    assert body["allowed_mentions"] == {"parse": []}
    assert body["flags"] == codec.MESSAGE_FLAGS
    assert body["enforce_nonce"] is True and body["nonce"]
    assert body["content"].startswith('{"discobase":1,"t":"log"')
    await writer.close()
    await http.close()


async def test_a_refused_file_size_is_learned_and_the_batch_split() -> None:
    fake = FakeDiscord(max_body=64 * 1024)
    limits = Limits(min_file_limit=4096)
    http, state, writer = await run(fake, limits)
    rng = random.Random(1)
    ops = [Put(i, {"k": f"{i}", "pad": rng.randbytes(40).hex()}) for i in range(3000)]
    g, f = group(state, ops)
    writer.enqueue(g)
    await asyncio.wait_for(f, 30)
    assert fake.refused >= 1
    assert limits.file_limit < 64 * 1024
    assert len(fake.bodies) >= 2 and all(len(b) <= 64 * 1024 for b in fake.bodies)
    assert state.count() == 3000
    await writer.close()
    await http.close()


async def test_a_refused_token_fails_the_writes_instead_of_hanging() -> None:
    fake = FakeDiscord(status=401)
    http, state, writer = await run(fake)
    g1, f1 = group(state, [Put(1, {"k": "a"})])
    writer.enqueue(g1)
    with pytest.raises(InvalidToken):
        await asyncio.wait_for(f1, 30)
    g2, f2 = group(state, [Put(2, {"k": "a"})])  # the failed write freed its unique claim
    writer.enqueue(g2)
    with pytest.raises(InvalidToken):
        await asyncio.wait_for(f2, 30)
    assert state.count() == 0 and state.pending_count == 0
    await writer.close()
    await http.close()


async def test_groups_are_encoded_in_slices_into_the_same_lines() -> None:
    ops: list[codec.Op] = [Put(i, {"k": f"v{i}", "n": "é\n"}) for i in range(5000)]
    ops.append(codec.Delete(3))
    expected = b"".join(line + b"\n" for line in encode_lines(ops))
    assert encode_blob(ops) == expected
    made = Group(ops=ops, tokens=[], futures=[])
    await encode_group(made)
    assert made.blob == expected and made.size == len(expected)
    assert encode_blob([]) == b""


def test_plan_blob_lays_out_what_plan_messages_does() -> None:
    for count in (1, 3, 400):
        ops: list[codec.Op] = [Put(i, {"k": "x" * 20}) for i in range(count)]
        lines = encode_lines(ops)
        by_lines = plan_messages(lines, sum(len(x) + 1 for x in lines), Limits())
        by_blob = plan_blob(encode_blob(ops), Limits())
        assert [m.content for m in by_blob] == [m.content for m in by_lines]
        assert [[f.data for f in m.files] for m in by_blob] == [
            [f.data for f in m.files] for m in by_lines
        ]


async def test_operations_made_later_are_sent_as_one_entry_and_applied() -> None:
    fake = FakeDiscord()
    http, _, unused = await run(fake)
    await unused.close()
    state = TableState("t", {"k": False})  # no unique index: nothing is needed before sending
    writer = Writer(http, CHANNEL, state, Limits(), time_scale=0.001)
    made: list[int] = []

    def slices() -> Iterator[list[codec.Op]]:
        for start in range(0, 5000, 2048):
            made.append(start)
            yield [Put(i, {"k": str(i % 7)}) for i in range(start, min(start + 2048, 5000))]

    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    writer.enqueue(Group(ops=[], tokens=[state.hold(())], futures=[future], later=slices()))
    assert made == []  # nothing is made before the writer runs
    await asyncio.wait_for(future, 30)
    assert made == [0, 2048, 4096] and len(fake.bodies) == 1
    assert state.count() == 5000 and len(state.lookup("k", "3") or ()) == 714
    await writer.close()
    await http.close()


async def test_operations_that_cannot_be_made_fail_their_write_only() -> None:
    fake = FakeDiscord()
    http, state, writer = await run(fake)

    def broken() -> Iterator[list[codec.Op]]:
        yield [Put(1, {"k": "a"})]
        raise ValueError("not JSON")

    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    writer.enqueue(Group(ops=[], tokens=[state.hold(())], futures=[failed], later=broken()))
    g, fine = group(state, [Put(2, {"k": "b"})])
    writer.enqueue(g)
    with pytest.raises(DatabaseError):
        await asyncio.wait_for(failed, 30)
    await asyncio.wait_for(fine, 30)
    assert state.get(1) is None and state.get(2) == {"k": "b"}
    await writer.close()
    await http.close()


class ForkCounting(TableState):
    """A table state that counts how often the writer forks it."""

    forks = 0

    def fork(self) -> TableState:
        self.forks += 1
        return super().fork()


async def test_a_large_entry_is_applied_in_slices_and_seen_whole_or_not_at_all() -> None:
    from discobase.storage.writer import _APPLY_SLICE

    fake = FakeDiscord()
    http, _, unused = await run(fake)
    await unused.close()
    state = ForkCounting("t", {"k": True})
    writer = Writer(http, CHANNEL, state, Limits(), time_scale=0.001)
    count = 5 * _APPLY_SLICE
    g, future = group(state, [Put(i, {"k": f"v{i}"}) for i in range(1, count + 1)])
    seen: list[int] = []
    turns_after_ack = 0

    async def watch() -> None:
        nonlocal turns_after_ack
        while not future.done():
            seen.append(state.count())
            if fake.bodies and not future.done():
                turns_after_ack += 1
                if turns_after_ack == 3:
                    # Another process's entry arrives while the large one is being applied.
                    state.apply(10**18, [Put(count + 1, {"k": "other"})])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    writer.enqueue(g)
    await asyncio.wait_for(future, 30)
    await watcher
    assert set(seen) <= {0, 1}  # nothing of the large entry was visible before it all was
    assert turns_after_ack >= 5  # the event loop ran while it was applied
    assert state.count() == count + 1 and state.lookup("k", f"v{count}") == (count,)
    assert state.get(count + 1) == {"k": "other"}
    assert state.forks == 1
    await writer.close()
    await http.close()


async def test_an_entry_much_smaller_than_its_table_is_applied_at_once() -> None:
    # Forking copies the whole table: for a small part of a large table that costs more.
    from discobase.storage.writer import _APPLY_SLICE, _FORK_RATIO

    fake = FakeDiscord()
    http, _, unused = await run(fake)
    await unused.close()
    state = ForkCounting("t", {"k": False})
    entry = _APPLY_SLICE + 1
    state.apply(1, [Put(-i, {"k": "old"}) for i in range(1, entry * _FORK_RATIO + 2)])
    writer = Writer(http, CHANNEL, state, Limits(), time_scale=0.001)
    g, future = group(state, [Put(i, {"k": "new"}) for i in range(1, entry + 1)])
    writer.enqueue(g)
    await asyncio.wait_for(future, 30)
    assert state.forks == 0 and len(state.lookup("k", "new") or ()) == entry
    await writer.close()
    await http.close()


async def test_a_large_round_holds_the_collector_off_until_it_is_applied() -> None:
    # Its operations then die young, unseen by any collection (see writer._CollectorHold).
    assert gc.isenabled()
    fake = FakeDiscord()
    http, state, writer = await run(fake)
    fake.gate = asyncio.Event()
    g, small = group(state, [Put(1, {"k": "a"})])
    writer.enqueue(g)
    await reaches_discord(fake)
    assert gc.isenabled()  # a small round does not
    g, large = group(state, [Put(i, {"k": str(i)}) for i in range(2, 20_000)])
    writer.enqueue(g)
    fake.gate.set()
    await asyncio.wait_for(small, 30)
    fake.gate.clear()
    await reaches_discord(fake)
    assert not gc.isenabled()
    fake.gate.set()
    await asyncio.wait_for(large, 30)
    assert gc.isenabled() and state.count() == 19_999
    await writer.close()
    await http.close()


async def test_the_collector_hold_ends_in_time_even_if_discord_never_answers() -> None:
    fake = FakeDiscord()
    http, state, writer = await run(fake, collector_hold=0.0)
    fake.gate = asyncio.Event()
    g, large = group(state, [Put(i, {"k": str(i)}) for i in range(20_000)])
    writer.enqueue(g)
    await reaches_discord(fake)
    for _ in range(3):
        await asyncio.sleep(0)
    assert gc.isenabled() and not large.done()
    fake.gate.set()
    await asyncio.wait_for(large, 30)
    assert gc.isenabled()
    await writer.close()
    await http.close()


async def test_a_collector_the_program_turned_off_stays_off() -> None:
    fake = FakeDiscord()
    http, state, writer = await run(fake)
    gc.disable()
    try:
        g, large = group(state, [Put(i, {"k": str(i)}) for i in range(20_000)])
        writer.enqueue(g)
        await asyncio.wait_for(large, 30)
        assert not gc.isenabled()
    finally:
        gc.enable()
    await writer.close()
    await http.close()


async def test_writes_queued_behind_a_busy_writer_all_go_out_and_flush_waits_for_them() -> None:
    # Only a write into an empty queue wakes the writer; the others ride along.
    fake = FakeDiscord()
    http, state, writer = await run(fake)
    fake.gate = asyncio.Event()
    futures = []
    for i in range(50):
        g, f = group(state, [Put(i, {"k": str(i)})])
        writer.enqueue(g)
        futures.append(f)
        if i == 0:
            await reaches_discord(fake)
    flushed = asyncio.ensure_future(writer.flush())
    await asyncio.sleep(0)
    assert not flushed.done()
    fake.gate.set()
    await asyncio.wait_for(flushed, 30)
    assert all(f.done() for f in futures) and state.count() == 50
    g, last = group(state, [Put(99, {"k": "99"})])  # an idle writer wakes for a new write
    writer.enqueue(g)
    await asyncio.wait_for(last, 30)
    assert len(fake.bodies) == 3
    await writer.close()
    await http.close()
