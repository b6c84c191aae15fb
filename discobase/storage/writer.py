"""The group-commit writer of one table (storage layer: sends through the HTTP client; knows
nothing of pydantic models, the gateway or other tables).

Theory
------
Discord lets a channel take about five messages per five seconds, so the cost of a write is the
request, not the bytes. The writer keeps one message in flight at a time and, whenever the
channel's bucket has room, packs *every* operation pending at that moment into the next
message: inline in ``content`` while it fits, as a compressed attachment beyond, as a
multi-part batch when even ten attachments cannot hold it. When idle, a lone save goes out at
once; under load, batches grow by themselves. One message in flight keeps a table's writes in
submission order (two messages in flight could be numbered by Discord in either order).

This module decides what goes into each message and when; how a message is laid out (inline,
attachments, a batch's parts) and posted is ``storage.outgoing``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from discobase import _json
from discobase._collector import gc_paused, pause_gc, resume_gc
from discobase.errors import DatabaseError
from discobase.http import HTTPClient, routes
from discobase.http.errors import HTTPException, PayloadTooLarge
from discobase.storage.codec import Op, Put
from discobase.storage.outgoing import Limits, Outgoing, next_part, plan_blob, post, with_prev
from discobase.storage.state import TableState

__all__ = ["Group", "Writer", "encode_blob", "encode_group", "encode_lines"]

_log = logging.getLogger("discobase.storage")

# Above this many bytes, compression runs in a thread so the event loop keeps serving.
_THREAD_BYTES = 256 * 1024
# Discord seconds the writer waits for room in the bucket before handing the request to the
# HTTP client's queue anyway.
_ROOM_PATIENCE = 30.0


@dataclass(slots=True)
class Group:
    """Operations that stand or fall together, and who waits for them.

    The operations are encoded by the writer, not when the group is made: a ``save_many`` of
    100,000 records then costs its caller no encoding, and the writer encodes a large group
    a slice at a time, letting the event loop run in between.
    """

    ops: list[Op]
    tokens: list[int]
    futures: list[asyncio.Future[None]]
    #: The operations as newline-terminated JSON lines, once encoded.
    blob: bytes | None = None
    #: Further operations still to be made, a slice at a time (a large ``save_many`` hands
    #: its records over as JSON: the writer decodes them, yielding in between).
    later: Iterator[list[Op]] | None = None

    def materialize(self) -> list[Op]:
        """Make the operations still to be made now, and return them all."""
        if self.later is not None:
            later, self.later = self.later, None
            for chunk in later:
                self.ops.extend(chunk)
        return self.ops

    @property
    def size(self) -> int:
        """Return the encoded length in bytes (encoding the group if it is not yet)."""
        if self.blob is None:
            self.blob = encode_blob(self.materialize())
        return len(self.blob)


# Operations encoded per slice: each line is joined and freed before the next slice, so the
# allocator reuses the same memory (100,000 live small bytes objects cost ten times as much to
# allocate), and the writer yields to the event loop between slices.
_ENCODE_SLICE = 2048
# Operations of a large acknowledged entry applied per slice (see Writer._apply): about 3 ms
# of the event loop's time each on the development machine.
_APPLY_SLICE = 2048
# Applying an operation costs about four times what forking costs per live record.
_FORK_RATIO = 4
# Groups encoded, or resolved once written, between two turns of the event loop.
_SETTLE_SLICE = 1000
# From this many operations on, a round holds the cyclic collector off from its encoding to
# its settling (see Writer._run and _CollectorHold).
_HOLD_OPS = 4 * _ENCODE_SLICE


def encode_lines(ops: Sequence[Op]) -> list[bytes]:
    """Encode operations as UTF-8 JSON lines (attachments need no escaping)."""
    dumps = _json.dumps
    return [
        dumps(["p", str(op.id), op.data]) if isinstance(op, Put) else dumps(["d", str(op.id)])
        for op in ops
    ]


def encode_blob(ops: Sequence[Op]) -> bytes:
    """Encode operations as newline-terminated JSON lines in one bytes object."""
    if not ops:
        return b""
    return b"".join(_encode_slices(ops))


def _encode_slices(ops: Sequence[Op]) -> Iterator[bytes]:
    for start in range(0, len(ops), _ENCODE_SLICE):
        yield b"\n".join(encode_lines(ops[start : start + _ENCODE_SLICE])) + b"\n"


async def encode_group(group: Group) -> None:
    """Make and encode a group's operations, yielding to the event loop between slices."""
    if group.blob is not None:
        return
    if group.later is None and len(group.ops) <= _ENCODE_SLICE:
        group.blob = encode_blob(group.ops)
        return
    later, group.later = group.later, None
    slices = []
    # The cyclic collector stays off across the yields, unlike gc_paused(): each slice makes
    # thousands of containers, and the collections they would trigger walk every live record
    # (0.3 s for 100,000 records, as long as the decoding itself). Whatever runs in between
    # only keeps its cyclic garbage a few hundred milliseconds longer.
    pause_gc()
    try:
        for piece in _encode_slices(group.ops):
            slices.append(piece)
            await asyncio.sleep(0)
        for chunk in later or ():
            group.ops.extend(chunk)
            slices.extend(_encode_slices(chunk))
            await asyncio.sleep(0)
    finally:
        resume_gc()
    group.blob = b"".join(slices)


class _CollectorHold:
    """The cyclic collector held off while a large round is encoded, sent and applied.

    A large write (a ``save_many`` of 100,000 records) makes an operation object per record
    that lives until the entry is applied. While they live, every collection walks them, and
    once two collections have promoted them, their number sets off a full collection that
    walks every object of the process (a table of 100,000 records is half a million: 50 to
    100 ms of stalled event loop, seen during such writes). Held off from the round's encoding
    to its end, the collector never sees them: they are freed when the round ends, as they
    were made. The hold ends after the writer's ``collector_hold`` real seconds in any case (a
    slow or retried request), so that the program's own cyclic garbage waits no longer than
    that; the collector then runs as it would have.
    """

    __slots__ = ("_timer",)

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        pause_gc()
        self._timer: asyncio.TimerHandle | None = loop.call_later(seconds, self.release)

    @classmethod
    def for_round(cls, queue: Sequence[Group], seconds: float) -> _CollectorHold | None:
        """Return a hold of at most ``seconds`` when the queued groups are a large round, else
        ``None``."""
        count = 0
        for group in queue:
            if group.later is not None:
                count += _HOLD_OPS  # a large save_many: its count is not known yet
            count += len(group.ops)
            if count >= _HOLD_OPS:
                return cls(asyncio.get_running_loop(), seconds)
        return None

    def release(self) -> None:
        """End the hold (once; later calls do nothing)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            resume_gc()


class Writer:
    """Send a table's pending operation groups, many per message, one message at a time.

    Args:
        http: the open HTTP client.
        channel_id: the table's channel.
        state: the table's state; acknowledged operations are applied to it.
        limits: size limits shared by the engine's writers.
        time_scale: real seconds per Discord second (for the idle poll).
        on_sent: called with each acknowledged message id, before it is applied, so gateway
            echoes of it can be skipped.
        on_applied: called after an acknowledged entry was applied, with its operation count.
        own_nonces: the set in which in-flight nonces are registered for the same purpose.
        prev: returns the newest entry the table holds; each message names it (``prev``),
            so a reader that lacks it knows it missed an entry, and a deleted entry leaves
            a visible hole.
        on_unsure: called when a write failed: unless it was refused before its first
            attempt, Discord may have stored it (a 5xx, a lost answer), so the table reads
            its log to find out.
        collector_hold: the real seconds a large round may hold the cyclic garbage collector
            off at most (see ``_CollectorHold``).
    """

    def __init__(
        self,
        http: HTTPClient,
        channel_id: int,
        state: TableState,
        limits: Limits,
        *,
        time_scale: float = 1.0,
        on_sent: Callable[[int], None] | None = None,
        on_applied: Callable[[int, int], None] | None = None,
        own_nonces: set[str] | None = None,
        prev: Callable[[], int] | None = None,
        on_unsure: Callable[[], None] | None = None,
        collector_hold: float = 3.0,
    ) -> None:
        self._http = http
        self.channel_id = channel_id
        self._state = state
        self._limits = limits
        self._time_scale = time_scale
        self._on_sent = on_sent
        self._on_applied = on_applied
        self._own_nonces = own_nonces if own_nonces is not None else set()
        self._prev = prev
        self._on_unsure = on_unsure
        self._collector_hold = collector_hold
        self._last_posted = 0
        self._route = routes.CREATE_MESSAGE.compile(channel_id=channel_id)
        self._queue: deque[Group] = deque()
        self._kick = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.messages_sent = 0

    def enqueue(self, group: Group) -> None:
        """Queue a group; its futures resolve once Discord acknowledged it."""
        if self._closing:
            raise DatabaseError("the table's writer is closed")
        queue = self._queue
        queue.append(group)
        if len(queue) == 1:
            # Was empty: the writer may be idle, waiting for a kick. With groups queued
            # already, the idle flag is clear (the writer sets it only at an empty queue) and
            # a kick could only cut short a wait for room in the bucket, which more work does
            # not make: a burst of saves skips both calls.
            self._idle.clear()
            self._kick.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        """Wait until every queued group was sent (or failed)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Send what is queued, then stop."""
        self._closing = True
        self._kick.set()
        if self._task is not None:
            await self._task
            self._task = None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                if self._closing:
                    return
                self._kick.clear()
                await self._kick.wait()
                continue
            await self._wait_for_room()
            hold = _CollectorHold.for_round(self._queue, self._collector_hold)
            try:
                if hold is not None:
                    # A large round follows the turn that queued it (a save_many, a burst of
                    # saves, both long already): let the loop's timers run in between.
                    await asyncio.sleep(0)
                await self._encode_queued()
                if not self._queue:
                    continue  # every queued group failed to encode
                groups = self._take()
                await self._send(groups)
                # Nothing of the round is kept until the next one: its operations and bytes
                # are garbage now, and die young while the collector is held.
                del groups
            finally:
                if hold is not None:
                    hold.release()

    async def _wait_for_room(self) -> None:
        limiter = self._http.ratelimiter
        loop = asyncio.get_running_loop()
        # Past this, the request is sent anyway and the HTTP client's own queue decides (it
        # raises at once for a refused token or an open Cloudflare breaker, which leave no
        # capacity forever).
        give_up = loop.time() + _ROOM_PATIENCE * self._time_scale
        while limiter.capacity(self._route) <= 0 and not limiter.token_invalid:
            now = loop.time()
            if now >= give_up:
                return
            delay = limiter.next_slot(self._route)
            # An unanswered probe or someone else's queued request leaves no timer to wait
            # for; poll at a fraction of a Discord second then.
            if not 0 < delay < float("inf"):
                delay = 0.05 * self._time_scale
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=min(delay, give_up - now))

    async def _encode_queued(self) -> None:
        # Only this task takes groups off the queue; others may append while it yields.
        # A burst of saves queues thousands of small groups: the loop runs meanwhile.
        i = 0
        while i < len(self._queue):
            if i and not i % _SETTLE_SLICE:
                await asyncio.sleep(0)
            group = self._queue[i]
            try:
                await encode_group(group)
            except Exception as exc:  # noqa: BLE001 - a bug must fail the futures, not hang them
                _log.exception("storage writer could not encode a write")
                del self._queue[i]
                self._fail([group], DatabaseError(f"the write failed: {type(exc).__name__}"))
                continue
            i += 1

    def _take(self) -> list[Group]:
        taken = [self._queue.popleft()]
        size = taken[0].size
        budget = self._limits.take_budget
        while self._queue and size + self._queue[0].size <= budget:
            group = self._queue.popleft()
            taken.append(group)
            size += group.size
        return taken

    async def _send(self, groups: list[Group]) -> None:
        blob = b"".join(group.blob or encode_blob(group.ops) for group in groups)
        try:
            last_id = await self._post_all(blob)
        except (HTTPException, DatabaseError) as exc:
            self._fail(groups, exc)
            if self._on_unsure is not None:
                # Even a refusal may follow an attempt the HTTP client retried after a 5xx or
                # a lost answer, which Discord may have stored: one read settles it.
                self._on_unsure()
            return
        except asyncio.CancelledError:
            self._fail(groups, DatabaseError("the database was closed during the write"))
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must fail the futures, not hang them
            _log.exception("storage writer failed")
            self._fail(groups, DatabaseError(f"the write failed: {type(exc).__name__}"))
            return
        ops = [op for group in groups for op in group.ops]
        try:
            await self._apply(last_id, ops)
        except asyncio.CancelledError:
            # Only a large entry yields while it is applied; it is stored, so the state and
            # its writers must have it even though the writer stops (applying twice is
            # harmless).
            with gc_paused():
                self._state.apply(last_id, ops)
            self._settle(groups, last_id, len(ops))
            raise
        if len(groups) <= _SETTLE_SLICE:
            self._settle(groups, last_id, len(ops))
            return
        # Thousands of saves in one entry: each resolved future wakes its caller's task, and
        # asyncio runs every callback made ready in one turn. In slices, the loop turns in
        # between. Every group of the entry is applied already; only the wake-ups wait.
        done = 0
        try:
            while len(groups) - done > _SETTLE_SLICE:
                self._resolve(groups[done : done + _SETTLE_SLICE])
                done += _SETTLE_SLICE
                await asyncio.sleep(0)
        finally:
            self._settle(groups[done:], last_id, len(ops))

    async def _apply(self, version: int, ops: list[Op]) -> None:
        """Apply an acknowledged entry so that readers see all of it or none of it.

        A small entry is applied at once. A large one (about 1.5 s per million operations) is
        applied to a fork of the state a slice at a time, yielding to the event loop in
        between, and the fork is adopted in one step; if the state changed meanwhile (an
        entry from another process arrived), the entry is applied to it at once after all.
        Forking copies the table's dicts (0.15 to 0.4 s per million records), so an entry
        much smaller than its table is applied at once: that holds the loop for less.
        """
        state = self._state
        if len(ops) <= _APPLY_SLICE or len(ops) * _FORK_RATIO < state.count():
            with gc_paused():
                state.apply(version, ops)
            return
        twin = state.fork()
        pause_gc()  # across the yields, as in encode_group
        try:
            for start in range(0, len(ops), _APPLY_SLICE):
                twin.apply(version, ops[start : start + _APPLY_SLICE])
                await asyncio.sleep(0)
        finally:
            resume_gc()
        if not state.adopt(twin):
            with gc_paused():
                state.apply(version, ops)

    def _settle(self, groups: list[Group], last_id: int, count: int) -> None:
        """Release the applied groups' claims, resolve their futures, report the entry."""
        self._resolve(groups)
        if self._on_applied is not None:
            self._on_applied(last_id, count)

    def _resolve(self, groups: list[Group]) -> None:
        """Release the applied groups' claims and resolve their futures."""
        for group in groups:
            for token in group.tokens:
                self._state.release(token, group.ops)
            for future in group.futures:
                if not future.done():
                    future.set_result(None)

    async def _post_all(self, blob: bytes) -> int:
        """Post the messages carrying the encoded operations and return the last one's id."""
        while True:
            if len(blob) > _THREAD_BYTES:
                plan = await asyncio.to_thread(plan_blob, blob, self._limits)
            else:
                plan = plan_blob(blob, self._limits)
            try:
                posted: list[int] = []
                while len(posted) < len(plan):
                    posted.append(await self._post(next_part(plan, posted)))
                return posted[-1]
            except PayloadTooLarge:
                # A part may already be stored; it stays an incomplete batch, which readers
                # never apply, and the batch is written again under a new id.
                largest = max((len(f.data) for m in plan for f in m.files), default=0)
                if not largest or not self._limits.lower(largest):
                    raise
                _log.warning(
                    "Discord refused a %d-byte attachment; files are now cut at %d bytes",
                    largest,
                    self._limits.file_limit,
                )

    async def _post(self, message: Outgoing) -> int:
        nonce = str(secrets.randbits(63))
        self._own_nonces.add(nonce)
        if self._prev is not None:
            message = with_prev(message, max(self._prev(), self._last_posted))
        try:
            result = await post(self._http, self.channel_id, message, nonce)
        finally:
            self._own_nonces.discard(nonce)
        message_id = int(result["id"])
        self._last_posted = message_id
        self.messages_sent += 1
        if self._on_sent is not None:
            self._on_sent(message_id)
        return message_id

    def _fail(self, groups: list[Group], exc: BaseException) -> None:
        for group in groups:
            for token in group.tokens:
                self._state.release(token, group.ops)
            for future in group.futures:
                if not future.done():
                    future.set_exception(exc)
