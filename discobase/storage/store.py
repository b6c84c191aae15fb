"""TableStore: one open table, its live records, its writer and its read position (storage
layer: uses the HTTP client and gateway *events*; knows nothing of pydantic models, the
Database object or the gateway connection itself).

Opening a table loads its newest snapshot and replays the log after it. After that, reads
never call Discord. Entries written by other processes arrive as gateway dispatches
(``ingest(..., live=True)``), which are best effort; so each table also reads its log over
REST from its read position (``check``) every ``gap_check_interval`` and whenever an entry
shows that one before it was missed (see ``position.py`` and docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import Awaitable, Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol

from discobase.errors import DatabaseError, StorageCorrupted
from discobase.http import HTTPClient
from discobase.http.errors import HTTPException
from discobase.storage import codec
from discobase.storage.batch import current_batch
from discobase.storage.catalog import TableSpec
from discobase.storage.codec import Op
from discobase.storage.ids import IdGenerator
from discobase.storage.own import OwnWrites
from discobase.storage.position import ReadPosition
from discobase.storage.reader import BatchAssembler, fetch_stream, page_forward
from discobase.storage.repair import (
    Chain,
    from_snapshot,
    int_field,
    post_repair,
    prev_of,
    records_as_of,
)
from discobase.storage.snapshot import (
    SnapshotInfo,
    decode_records,
    gc_paused,
    pause_gc,
    replay_from,
    resume_gc,
    version_floor,
)
from discobase.storage.snapshots import Snapshots
from discobase.storage.state import TableState, check_wire
from discobase.storage.writer import Group, Limits, Writer

__all__ = ["GAP_CHECK_INTERVAL", "StoreHost", "TableStore"]

_log = logging.getLogger("discobase.storage")

#: Discord seconds between two gap checks of a table (one request each when nothing is new).
GAP_CHECK_INTERVAL = 15.0
# Entries remembered for repairs and audits (the oldest are forgotten past this).
_KNOWN_MAX = 100_000
_DONE_BATCHES_MAX = 1024
# Every this many gap checks, the log since the newest snapshot is read again (``audit``).
_AUDIT_EVERY = 4
# The newest entries an audit looks for (about ten pages of history at the most).
_AUDIT_MAX = 1000
# Discord seconds: the first retry of a failed gap check (doubling up to the interval).
_CHECK_RETRY = 0.25
# Discord seconds a process that holds nothing of a deleted entry waits for another's
# repair before it notes the entry as lost in the catalog.
_LOSS_NOTE_WAIT = 5.0
# Messages of the channel this process read that are not entries (chat, others' snapshots),
# remembered so that one deleted later is not taken for an entry this process never saw.
_OTHERS_MAX = 10_000
# Discord seconds: the longest random wait before repairing a deleted entry.
_REPAIR_JITTER = 1.0
# Rows of a large batch read from the log applied per slice (see TableStore._apply_rows).
_APPLY_SLICE = 4096
# Applying a row costs about four times what forking costs per live record.
_FORK_RATIO = 4


class StoreHost(Protocol):
    """What a table needs of the engine that opened it."""

    http: HTTPClient
    bot_id: int
    ids: IdGenerator
    limits: Limits
    time_scale: float
    snapshot_ops: int
    snapshot_messages: int
    gap_check_interval: float
    own: OwnWrites

    @property
    def closing(self) -> bool: ...

    def check_usable(self) -> None: ...

    def report_damage(self, what: str) -> None: ...

    def post_catalog(self, kind: str, body: dict[str, Any]) -> Awaitable[None]: ...

    def catalog_snapshot(self, table: str) -> SnapshotInfo | None: ...

    def loss_noted(self, table: str, message_id: int) -> bool: ...


class TableStore:
    """One open table: its live records, indexes and writer.

    Attributes:
        spec: what the database layer declared.
        channel_id: the table's channel.
        state: the live records and their indexes.
        writer: the table's group-commit writer.
        position: how far the log was read over REST, and what was applied beyond.
        snapshots: finds, writes and pins the table's snapshots.
    """

    def __init__(
        self, engine: StoreHost, spec: TableSpec, channel_id: int, state: TableState
    ) -> None:
        self.spec = spec
        self.channel_id = channel_id
        self.state = state
        self.engine = engine
        self.writer = Writer(
            engine.http,
            channel_id,
            state,
            engine.limits,
            time_scale=engine.time_scale,
            on_sent=engine.own.remember,
            on_applied=self._on_applied,
            own_nonces=engine.own.nonces,
            prev=lambda: self.position.newest,
            on_unsure=self.request_check,
        )
        self.snapshots = Snapshots(
            engine.http,
            channel_id,
            spec.name,
            bot_id=engine.bot_id,
            limits=engine.limits,
            own=engine.own,
            post_catalog=engine.post_catalog,
        )
        self.assembler = BatchAssembler()
        self.position = ReadPosition()
        # Entries this process applied, part or whole -> the version their records carry (a
        # batch's last part, a repair's "at"): what a repair writes again, what an audit
        # looks for.
        self._known: dict[int, int] = {}
        # The newest entry forgotten from _known (past _KNOWN_MAX).
        self._forgot_upto = 0
        # Messages read or received that are not entries (see _OTHERS_MAX), oldest first.
        self._others: dict[int, None] = {}
        # Where this process's read of the log began (the loaded snapshot's replay
        # position): older messages it never read, and their deletion is no news.
        self._opened_from: int | None = None
        # Multi-part batches applied lately (batch id -> version), so that reading their
        # parts again does not start them over.
        self._done_batches: dict[str, int] = {}
        # Deleted entries that a repair entry stands for.
        self._restored: set[int] = set()
        # Deleted entries reported lost: audits and events that find them again say nothing.
        self._given_up: set[int] = set()
        self._repairs: set[asyncio.Task[None]] = set()
        self._repairing: set[int] = set()
        # Repair entry -> the deleted entries it stands for.
        self._stands_for: dict[int, list[int]] = {}
        # While opening: which entries name which as their prev (deleted ones show).
        self._chain = Chain()
        self._check_now = asyncio.Event()
        self._check_lock = asyncio.Lock()
        self._checks = 0
        self._audit_mark = 0
        self._checker: asyncio.Task[None] | None = None
        self._opening = True
        self._buffer: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._tail_ops = 0
        self._tail_messages = 0
        self._snapshot_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<TableStore {self.spec.name!r} channel={self.channel_id} records={self.count()}>"

    @property
    def snapshots_written(self) -> int:
        """Return how many snapshots this process wrote of the table."""
        return self.snapshots.written

    # ------------------------------------------------------------------ reads

    def new_id(self) -> int:
        """Return a fresh record id, unique across processes, known before any write."""
        return self.engine.ids.new_id()

    def new_ids(self, count: int) -> list[int]:
        """Return ``count`` fresh record ids, ascending."""
        return self.engine.ids.new_ids(count)

    def get(self, record_id: int) -> dict[str, Any] | None:
        """Return a record's JSON-mode data, or ``None``."""
        return self.state.get(record_id)

    def records(self) -> Mapping[int, dict[str, Any]]:
        """Return a read-only view of the live records, keyed by id."""
        return self.state.records

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        """Return the ids whose ``field`` equals ``value`` (JSON-mode); ``None`` if not indexed."""
        return self.state.lookup(field, value)

    def column(self, field: str) -> Mapping[int, Any] | None:
        """Return ``{record id: stored value}`` of ``field`` for the live records that have it,
        or ``None`` where scanning the records is cheaper (see ``TableState.column``)."""
        return self.state.column(field)

    def count(self) -> int:
        """Return how many records are live."""
        return self.state.count()

    # ------------------------------------------------------------------ writes

    def submit(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Write a group of operations atomically.

        Unique indexes are checked at once, against live and pending records. The operations
        become visible when the returned future resolves, which is when Discord acknowledged
        the message carrying them. Inside ``engine.batch()`` the group is held until the block
        ends and sent with the block's other groups for this table, all or nothing.

        Raises:
            UniqueViolation: a unique index would hold a value twice.
            NotConnected: the engine is closed.
        """
        self.engine.check_usable()
        ops = list(ops)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not ops:
            future.set_result(None)
            return future
        self.state.check(ops)
        token = self.state.hold(ops)
        group = Group(ops=ops, tokens=[token], futures=[future])
        batch = current_batch(self.engine)
        if batch is not None:
            batch.add(self, group)
        else:
            self.writer.enqueue(group)
        return future

    def submit_later(self, chunks: Iterator[list[Op]], count: int) -> asyncio.Future[None]:
        """Write ``count`` operations made a slice at a time, atomically, as :meth:`submit`.

        A large ``save_many`` hands its records over as JSON slices that ``chunks`` decodes:
        without a unique index nothing needs the operations before the writer sends them, so
        the writer makes them, yielding to the event loop between slices. With a unique index
        (or inside ``engine.batch()``) they are made at once and checked as ``submit`` does.

        Raises:
            UniqueViolation: a unique index would hold a value twice.
            NotConnected: the engine is closed.
        """
        in_batch = current_batch(self.engine) is not None
        if self.state.has_unique or in_batch or count <= 0:
            with gc_paused():  # decoding builds thousands of dicts; nothing awaits here
                ops = [op for chunk in chunks for op in chunk]
            return self.submit(ops)
        self.engine.check_usable()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        token = self.state.hold(())  # nothing to claim without a unique index
        self.writer.enqueue(Group(ops=[], tokens=[token], futures=[future], later=chunks))
        return future

    # ------------------------------------------------------------------ applying entries

    async def ingest(
        self, message: dict[str, Any], *, live: bool = False, strict: bool = True
    ) -> None:
        """Apply one message of the table's channel (anything but an entry is ignored).

        Args:
            message: the message, from a dispatch or a REST read.
            live: it came from the gateway. A live entry never moves the read position
                (dispatches can be lost), and one that cannot be applied asks for a gap
                check instead of failing.
            strict: for a REST read, raise ``StorageCorrupted`` for an unreadable entry;
                otherwise report it and read on.
        """
        if self._opening and live:
            self._buffer.append(message)
            return
        async with self._lock:
            if live:
                await self._ingest_live(message)
            else:
                await self._ingest_read(message, strict=strict)

    async def _ingest_live(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        engine = self.engine
        if engine.own.is_echo(message):
            return  # our own write: the writer applies it
        try:
            header = await self._apply_message(message, message_id, strict=False, live=True)
        except HTTPException as exc:
            # The attachment could not be downloaded (the CDN is a separate service). The
            # read position has not passed this entry, so the gap check reads it again.
            _log.warning(
                "table %s: live entry %d (channel %d) could not be downloaded (%s); reading "
                "it again from the log",
                self.spec.name,
                message_id,
                self.channel_id,
                exc,
            )
            self.request_check()
            return
        if header is None or header.kind != "log":
            self._note_other(message_id)
        prev = prev_of(header)
        if prev and not self.position.is_applied(prev) and prev not in self.assembler.part_ids():
            # The writer had applied an entry this process has not: a dispatch was lost.
            self.request_check()

    async def _ingest_read(self, message: dict[str, Any], *, strict: bool) -> None:
        message_id = int(message["id"])
        # A REST read applies this process's own entries too: one whose answer is late (or
        # was lost to a 5xx) is stored all the same, and the read position must not pass
        # an entry the state lacks.
        header = await self._apply_message(message, message_id, strict=strict)
        if self._opening:
            self._chain.note(message_id, prev_of(header))
        if header is None and not self.position.is_applied(message_id):
            # Someone else's message (chat, another bot): every open reads it again until a
            # snapshot starts after it, so it counts toward the next snapshot as an entry does.
            self._tail_messages += 1
        if header is None or header.kind != "log":
            self._note_other(message_id)
        self.position.advance(message_id)

    async def _apply_message(
        self, message: dict[str, Any], message_id: int, *, strict: bool, live: bool = False
    ) -> codec.Header | None:
        """Apply an entry unless it is held already; return its header (``None``: not one).

        Raises:
            HTTPException: its attachments could not be downloaded (nothing was applied).
            StorageCorrupted: with ``strict``, the entry is unreadable.
        """
        engine = self.engine
        try:
            header = codec.parse_header(message, engine.bot_id)
            if header is None or header.kind != "log":
                return header
            if header.batch is not None:
                if header.batch in self._done_batches:
                    return header  # a part of a batch applied already, read again
                parts = self.assembler.add(header)
                if parts is None:
                    return header
            else:
                parts = [header]
            version = max(part.message_id for part in parts)
            # A repair entry carries records as of the deleted entry it stands for.
            at = int_field(header.body, "at") or version
            # Held, unless it is a dispatch below the read floor that was never applied: a
            # late one, whose entry a REST read did not find (it was deleted before, or slow
            # to appear). Applying it again is harmless (versions), and it may be the only
            # copy this process gets: a repair needs it.
            if self.position.is_applied(version) and not (live and self._missed(version)):
                self._finish(parts, version, None, at)
                return header
            restored = header.body.get("gone")
            if isinstance(restored, list):
                gone = [int(m) for m in restored if str(m).isdigit()]
                self._restored.update(gone)
                # A repair of this repair must stand for these too.
                self._stands_for[version] = gone
            ops = parts[0].ops if len(parts) == 1 else None
            if ops is not None:
                count = len(ops)
                self.state.apply(at, ops)
            else:
                stream = await fetch_stream(engine.http, self.channel_id, parts)
                # Decoded and checked in full before anything is applied: a corrupt batch
                # changes nothing, and readers never see half of one. The decoding yields
                # to the event loop between pieces, and so does applying a large batch.
                # The cyclic collector stays off across the yields: the rows are a growing
                # heap of tuples each collection would walk again.
                rows: list[tuple[int, int, dict[str, Any] | None]] = []
                pieces = codec.iter_stream(stream)
                pause_gc()
                try:
                    for chunk in pieces:
                        rows.extend(check_wire(at, chunk))
                        await asyncio.sleep(0)
                finally:
                    resume_gc()
                del stream, pieces
                count = len(rows)
                await self._apply_rows(rows)
        except StorageCorrupted as exc:
            where = f"table {self.spec.name!r} (channel {self.channel_id}), message {message_id}"
            if strict:
                raise StorageCorrupted(f"{where}: {exc}") from exc
            self.engine.report_damage(f"{where} could not be read and was skipped: {exc}")
            return None
        self._finish(parts, version, count, at)
        return header

    async def _apply_rows(self, rows: list[tuple[int, int, dict[str, Any] | None]]) -> None:
        """Apply a checked batch so that readers see all of it or none of it.

        A large batch (a million records take about a second) is applied a slice at a time,
        yielding to the event loop in between: while the table opens, to the state itself
        (nobody sees it yet); once it is open, to a fork of the state that is adopted in one
        step, as the writer applies a large acknowledged entry (see ``Writer._apply``). A
        batch much smaller than its table is applied at once: forking would cost more.
        """
        state = self.state
        if len(rows) <= _APPLY_SLICE or (
            not self._opening and len(rows) * _FORK_RATIO < state.count()
        ):
            with gc_paused():
                state.apply_checked(rows)
            return
        target = state if self._opening else state.fork()
        pause_gc()
        try:
            for start in range(0, len(rows), _APPLY_SLICE):
                target.apply_checked(rows[start : start + _APPLY_SLICE])
                await asyncio.sleep(0)
        finally:
            resume_gc()
        if target is not state and not state.adopt(target):
            # The state changed meanwhile (the writer applied an entry): apply it there.
            with gc_paused():
                state.apply_checked(rows)

    def _finish(self, parts: list[codec.Header], version: int, count: int | None, at: int) -> None:
        """Record an applied entry (``count`` is ``None`` when it was held already) whose
        records carry version ``at`` (its own id, or for a repair entry the deleted one's)."""
        batch = parts[0].batch
        if batch is not None:
            self._done_batches[batch] = version
            if len(self._done_batches) > _DONE_BATCHES_MAX:
                del self._done_batches[next(iter(self._done_batches))]
            self.assembler.discard(batch)
        for part in parts:
            self._known[part.message_id] = at
        if count is not None:
            self._on_applied(version, count)

    def _report_broken_chain(self, start: int) -> None:
        where = f"table {self.spec.name!r} (channel {self.channel_id})"
        for prev, follower in self._chain.missing(start, self._restored):
            self.engine.report_damage(
                f"{where}: entry {prev} is missing from the log (deleted?); entry {follower} "
                "follows it. Records it wrote that no later entry changed are lost"
            )
        self._chain = Chain()

    def _on_applied(self, message_id: int, op_count: int) -> None:
        self.position.mark_applied(message_id)
        self._known.setdefault(message_id, message_id)
        if len(self._known) > _KNOWN_MAX:
            for old in sorted(self._known)[: _KNOWN_MAX // 4]:
                del self._known[old]
                self._forgot_upto = max(self._forgot_upto, old)
        self._tail_ops += op_count
        self._tail_messages += 1
        self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        engine = self.engine
        if self._opening or engine.closing or self._snapshot_task is not None:
            return
        if self._tail_ops >= engine.snapshot_ops or self._tail_messages >= engine.snapshot_messages:
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())

    async def load(self, catalog_snapshot: SnapshotInfo | None) -> None:
        """Load the newest snapshot and replay the log after it; then apply buffered events."""
        engine = self.engine
        http = engine.http
        start = 0
        skip: frozenset[int] = frozenset()
        # The snapshot whose replay starts last; one that cannot be read (a part deleted, an
        # attachment refused) gives way to the next, and the log holds everything anyway.
        for header, info in await self.snapshots.find(catalog_snapshot):
            try:
                parts = await self.snapshots.parts(header)
                stream = await fetch_stream(http, self.channel_id, parts)
                await self._load_snapshot(stream, info.replay_from)
                del stream
            except (StorageCorrupted, HTTPException) as exc:
                # Slower, not wrong: the log after the table's start holds everything.
                self.state.clear()
                _log.warning(
                    "table %s: snapshot %d could not be read (%s); %s",
                    self.spec.name,
                    info.message_id,
                    exc,
                    "trying an older one or the whole log",
                )
            else:
                start = info.replay_from
                skip = info.skip
                break
        self.position = ReadPosition(start, skip)
        self._opened_from = start
        async for page in page_forward(http, self.channel_id, after=start):
            for message in page:
                await self.ingest(message)
        self._report_broken_chain(start)
        self._opening = False
        buffered, self._buffer = self._buffer, []
        for message in buffered:
            await self.ingest(message, live=True)
        self._checker = asyncio.get_running_loop().create_task(
            self._run_checks(), name=f"discobase gap check {self.spec.name}"
        )
        # The replay counted the tail: a long one is snapshotted now, so the next open is short.
        self._maybe_snapshot()

    async def _load_snapshot(self, stream: bytes, replay_from: int) -> None:
        """Load a snapshot's records, a piece at a time, yielding in between.

        A million-record snapshot takes a second or two to load, and the gateway's heartbeat
        must still go out. The table is not visible until it is open, so no reader sees a
        part. The cyclic collector stays off across the yields (as while a large write is
        encoded): collections triggered by the pieces' allocations would walk everything
        loaded so far, again and again. Whatever runs in between only keeps its cyclic
        garbage a little longer.

        Raises:
            StorageCorrupted: the stream is not a snapshot.
        """
        chunks = decode_records(stream)
        pause_gc()
        try:
            first = True
            while True:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                # Dicts about to grow grow first, each in a turn of its own (20 ms apiece
                # past 700,000 records).
                for _ in self.state.grow_steps(len(chunk)):
                    await asyncio.sleep(0)
                self.state.load_snapshot(version_floor(replay_from), chunk)
                if first:
                    # The records' dict joined the collector's youngest generation with its
                    # first record; collections of the young generations are frequent, and
                    # each walks every entry of the containers in them (45 ms for a million
                    # records, once the load is done). Made old now, while it is small.
                    gc.collect(1)
                    first = False
                await asyncio.sleep(0)
        finally:
            resume_gc()

    # ------------------------------------------------------------------ gap checks

    def repaired(self, message_id: int) -> bool:
        """Return whether a repair entry this process read or wrote stands for the entry."""
        return message_id in self._restored

    def request_check(self) -> None:
        """Ask for a gap check now (a dispatch looked lost, or a write's outcome is unknown)."""
        self._check_now.set()

    async def check(self) -> None:
        """Read the log over REST from the read position and apply what is not held yet.

        This is what makes a table complete whatever the gateway delivered: a lost, late or
        undownloadable dispatch is read here. An entry that cannot be read is reported and
        passed; one whose attachments cannot be downloaded stops the read before it (the
        next check tries again).

        Raises:
            HTTPException: Discord refused a read or a download.
        """
        async with self._check_lock:
            after = self.position.read_from
            async for page in page_forward(self.engine.http, self.channel_id, after=after):
                for message in page:
                    await self.ingest(message, strict=False)

    async def audit(self) -> None:
        """Read the log since the newest snapshot again, to find entries deleted while no
        delete event reached this process (its session was replaced, the guild was down):
        each is reported and written again as ``on_deleted`` does.

        Raises:
            HTTPException: Discord refused a read.
        """
        async with self._check_lock:
            # Only entries read back at the previous audit or before are missed when absent:
            # that long ago, no slow write can still be on its way to the history. Entries
            # before another process's snapshot still count: that process may have missed
            # a deleted entry this one holds. The newest ones bound the read.
            upto, self._audit_mark = self._audit_mark, self.position.contiguous
            expected = set(sorted(m for m in self._known if m <= upto)[-_AUDIT_MAX:])
            if not expected:
                return
            present: set[int] = set()
            after = min(expected) - 1
            async for page in page_forward(self.engine.http, self.channel_id, after=after):
                present.update(int(m["id"]) for m in page)
                if int(page[-1]["id"]) >= upto:
                    break
        missing = sorted(expected - present - self._restored - self._given_up)
        if missing:
            self.on_deleted(missing)

    async def _run_checks(self) -> None:
        engine = self.engine
        interval = engine.gap_check_interval * engine.time_scale
        delay = interval
        failures = 0
        while not engine.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), timeout=delay)
            self._check_now.clear()
            # Python 3.11's wait_for swallows a cancel that comes as the event is set (a failed
            # write sets it): close() also clears _checker, so the loop ends all the same.
            if engine.closing or self._checker is None:
                return
            try:
                await self.check()
                self._checks += 1
                if self._checks % _AUDIT_EVERY == 0:
                    await self.audit()
            except HTTPException as exc:
                failures += 1
                delay = min(interval, _CHECK_RETRY * 2 ** min(failures, 6) * engine.time_scale)
                _log.warning(
                    "table %s: gap check failed (%s); trying again in %.2f s",
                    self.spec.name,
                    exc,
                    delay,
                )
                continue
            except Exception:  # noqa: BLE001 - the loop must outlive a bug in one check
                _log.exception("table %s: gap check failed", self.spec.name)
            failures = 0
            delay = interval

    # ------------------------------------------------------------------ deleted messages

    def on_deleted(self, message_ids: Collection[int]) -> None:
        """React to messages of the table's channel deleted by someone.

        A deleted snapshot is written again (the log still holds everything). A deleted log
        entry is written again from the records this process holds as of that entry, in a
        repair entry that stands for it (its records keep their version, so a newer change
        made meanwhile is not undone); the loss and the repair are reported by name.
        """
        for message_id in message_ids:
            if self.snapshots.forget(message_id):
                self.engine.report_damage(
                    f"table {self.spec.name!r} (channel {self.channel_id}): snapshot "
                    f"{message_id} was deleted; a new one is written (the log holds "
                    "everything)"
                )
                self._tail_messages = self.engine.snapshot_messages
                self._maybe_snapshot()
                continue
            if message_id in self._restored or message_id in self._repairing:
                continue
            if message_id in self._given_up:
                continue
            if message_id not in self._known and self._never_seen(message_id):
                # Deleted before this process read it: nothing here to write again, but the
                # entry's writer may have (it repairs it), or a snapshot may hold it.
                self._repairing.add(message_id)
                track(
                    self._repairs,
                    asyncio.get_running_loop().create_task(self._recover_unseen(message_id)),
                )
                continue
            # An entry this process did not apply itself (it opened from a snapshot after it,
            # or forgot it) may still be the last change of records it holds: look for them
            # (quietly: most deleted messages are chat).
            version = self._known.get(message_id)
            self._repairing.add(message_id)
            track(
                self._repairs,
                asyncio.get_running_loop().create_task(
                    self._repair(message_id, version or message_id, known=version is not None)
                ),
            )

    async def _repair(self, gone: int, version: int, *, known: bool) -> None:
        engine = self.engine
        # Every live process may repair; a short random wait lets the first one's repair
        # reach the others, who then leave it (a second repair would be harmless).
        try:
            await asyncio.sleep(random.random() * _REPAIR_JITTER * engine.time_scale)
            if gone not in self._restored and not engine.closing:
                await self._write_repair(gone, version, known=known)
        finally:
            self._repairing.discard(gone)

    def _note_other(self, message_id: int) -> None:
        others = self._others
        others[message_id] = None
        if len(others) > _OTHERS_MAX:
            del others[next(iter(others))]

    def _missed(self, entry: int) -> bool:
        """Return whether an entry this process's REST reads passed was never applied here.

        Only entries after the snapshot it opened from (older ones the snapshot holds, and
        records it dropped since keep no trace that would stop an old entry's puts) and not
        forgotten: for those, the versions held tell which of its changes are still news.
        """
        opened_from = self._opened_from
        return (
            opened_from is not None
            and entry > max(opened_from, self._forgot_upto)
            and entry not in self._known
        )

    def _never_seen(self, message_id: int) -> bool:
        """Return whether a deleted message of the channel is one this process never saw
        (nor could have: it predates the snapshot it opened from, or was forgotten)."""
        opened_from = self._opened_from
        return (
            opened_from is not None
            and message_id > max(opened_from, self._forgot_upto)
            and message_id not in self._others
            and message_id not in self.snapshots.posted
            and message_id not in self.assembler.part_ids()
        )

    async def _recover_unseen(self, gone: int) -> None:
        """Deal with a message deleted before this process read it, which may be an entry.

        Its writer, or any process that read it, writes it again (``_repair``); a gap check
        after a while reads that repair entry. If none came, a snapshot of the table written
        since may hold what the entry changed: then this process writes that again. Else the
        loss is noted in the catalog, so that every process that opens the table reports it
        (a deleted chat message is reported too: one cannot tell them apart once deleted,
        and the table channels deny members the right to send messages).
        """
        engine = self.engine
        where = f"table {self.spec.name!r} (channel {self.channel_id})"
        try:
            await asyncio.sleep((_REPAIR_JITTER + _LOSS_NOTE_WAIT) * engine.time_scale)
            if engine.closing:
                return
            with contextlib.suppress(HTTPException):
                await self.check()
            if gone in self._restored or engine.closing:
                return
            if gone in self._known:  # its dispatch came late, after the delete's
                await self._write_repair(gone, self._known[gone], known=True)
                return
            ops = await self._ops_from_snapshot(gone)
            if ops is not None:
                if not ops:
                    engine.report_damage(
                        f"{where}: entry {gone} was deleted before this process read it; "
                        "the newest snapshot shows that every record it wrote changed since"
                    )
                    return
                async with self._lock:
                    self.state.apply(gone, ops)
                what = f"the {len(ops)} records a snapshot holds of it"
                await self._post_repair(gone, gone, ops, what=what)
                return
            engine.report_damage(
                f"{where}: message {gone} was deleted before any process that could write it "
                "again read it; if it was a log entry, records it wrote that no later entry "
                "changed are missing"
            )
            await self._note_loss(gone)
        finally:
            self._repairing.discard(gone)

    async def _note_loss(self, gone: int) -> None:
        """Note in the catalog that the entry ``gone`` could not be written again, so that
        every process that opens the table reports it (once, whoever notes it first)."""
        engine = self.engine
        self._given_up.add(gone)
        if engine.loss_noted(self.spec.name, gone):
            return
        body = {"table": self.spec.name, "channel": str(self.channel_id), "message": str(gone)}
        with contextlib.suppress(HTTPException):
            await engine.post_catalog("loss", body)

    async def _ops_from_snapshot(self, gone: int) -> list[Op] | None:
        """Return what the snapshot a fresh process would open from holds of what the
        deleted entry ``gone`` changed last; ``None`` when it does not say."""
        engine = self.engine
        try:
            found = await self.snapshots.find(engine.catalog_snapshot(self.spec.name))
            for candidate in found:
                # The first readable one is what a fresh process loads.
                with contextlib.suppress(StorageCorrupted, HTTPException):
                    return await from_snapshot(
                        engine.http, self.channel_id, self.snapshots, candidate, gone
                    )
        except HTTPException:
            pass
        return None

    async def _write_repair(self, gone: int, version: int, *, known: bool) -> None:
        engine = self.engine
        ops = records_as_of(self.state, version)
        where = f"table {self.spec.name!r} (channel {self.channel_id})"
        if not ops and not known:
            return  # not an entry this process knows of, nor one whose records it holds
        if not ops:
            # Every record it wrote changed since, here; but this process may lack what
            # another holds, and an empty repair would stand for the entry and keep that
            # process from repairing it. Leave it to the others; if none repairs it in a
            # while, say so in the catalog, so that every later open reports it as this
            # process does.
            engine.report_damage(
                f"{where}: entry {gone} was deleted; this process holds nothing it wrote "
                "that was not changed since"
            )
            await asyncio.sleep(_LOSS_NOTE_WAIT * engine.time_scale)
            if gone not in self._restored and not engine.closing:
                await self._note_loss(gone)
            return
        await self._post_repair(gone, version, ops, what=f"its {len(ops)} records")

    async def _post_repair(self, gone: int, version: int, ops: list[Op], *, what: str) -> None:
        """Write the deleted entry ``gone`` again: ``ops`` at ``version``, its records'."""
        engine = self.engine
        where = f"table {self.spec.name!r} (channel {self.channel_id})"
        try:
            repaired = await post_repair(
                engine.http,
                self.channel_id,
                limits=engine.limits,
                own=engine.own,
                gone=[gone, *self._stands_for.get(gone, ())],
                version=version,
                ops=ops,
            )
        except HTTPException as exc:
            engine.report_damage(
                f"{where}: entry {gone} was deleted and could not be written again ({exc}); "
                f"{len(ops)} records it held are missing for processes that open the table "
                "later"
            )
            return
        self._restored.add(gone)
        # Held already (its records are this process's), and itself repairable at once.
        self.position.mark_applied(repaired)
        self._known[repaired] = version
        self._stands_for[repaired] = [gone, *self._stands_for.get(gone, ())]
        engine.report_damage(
            f"{where}: entry {gone} was deleted; {what} were written again in entry {repaired}"
        )

    # ------------------------------------------------------------------ snapshots

    async def _snapshot(self) -> None:
        try:
            records = _copy(self.state.records)
            # Replay starts before the first entry not read back over REST: every entry up
            # to there is held, whatever the gateway delivered (own writes included, since
            # a REST read applies those too).
            position = replay_from(self.position.contiguous, self.assembler.first_ids())
            recent = self.state.versions_after(version_floor(position))
            # Content holds at most 2000 characters: list the newest entries only.
            skip = self.position.applied_after(position)[-60:]
            self._tail_ops = 0
            self._tail_messages = 0
            await self.snapshots.write(records, recent, position, skip)
        except (HTTPException, DatabaseError):
            _log.exception(
                "table %s: snapshot failed (the log still holds everything)", self.spec.name
            )
        finally:
            self._snapshot_task = None

    async def close(self) -> None:
        """Flush pending writes, then let a snapshot in progress finish (the next open is
        faster for it; cancelling one half-way would lose nothing either)."""
        await self.writer.close()
        checker, self._checker = self._checker, None
        if checker is not None:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)
        task = self._snapshot_task
        if task is not None:
            await asyncio.shield(task)
        if self._repairs:
            await asyncio.gather(*self._repairs, return_exceptions=True)


def _copy(records: Mapping[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Return a copy of a mapping of records, in C when it is a dict's read-only view.

    dict() of a view goes through the mapping protocol record by record: 80 to 300 ms for a
    million records, in the event loop; the view's own copy() copies the dict (25 ms).
    """
    copy = getattr(records, "copy", None)
    if copy is not None:
        copied = copy()
        if type(copied) is dict:
            return copied
    return dict(records)


def track(tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
    """Keep ``task`` in ``tasks`` until it is done (so close() can wait for it)."""
    tasks.add(task)
    task.add_done_callback(tasks.discard)
