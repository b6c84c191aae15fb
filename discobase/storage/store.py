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
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from discobase._collector import gc_paused, pause_gc, resume_gc
from discobase.errors import DatabaseError, StorageCorrupted
from discobase.http.errors import HTTPException
from discobase.storage import codec
from discobase.storage.batch import current_batch
from discobase.storage.catalog import TableSpec
from discobase.storage.codec import Op, Row
from discobase.storage.host import StoreHost
from discobase.storage.loading import apply_rows, load_snapshot
from discobase.storage.position import ReadPosition
from discobase.storage.reader import (
    BatchAssembler,
    PartGone,
    fetch_prior,
    fetch_stream,
    page_forward,
)
from discobase.storage.repair import Chain, int_field, prev_of
from discobase.storage.repairs import Repairs
from discobase.storage.snapshot import SnapshotInfo, replay_from, version_floor
from discobase.storage.snapshots import Snapshots
from discobase.storage.state import TableState, check_wire
from discobase.storage.writer import Group, Writer

__all__ = ["AUDIT_EVERY", "GAP_CHECK_INTERVAL", "StoreHost", "TableStore"]

_log = logging.getLogger("discobase.storage")

#: Discord seconds between two gap checks of a table (one request each when nothing is new).
GAP_CHECK_INTERVAL = 15.0
_DONE_BATCHES_MAX = 1024
#: Every this many gap checks, the log's newest entries are read again (``audit``).
AUDIT_EVERY = 4
# The newest entries an audit looks for (about ten pages of history at the most).
_AUDIT_MAX = 1000
# Discord seconds: the first retry of a failed gap check (doubling up to the interval).
_CHECK_RETRY = 0.25


class TableStore:
    """One open table: its live records, indexes and writer.

    Attributes:
        spec: what the database layer declared (its renames follow the catalog's).
        on_renames: called once the engine changed ``spec.renames`` (a rename another
            program recorded): the database layer reads the records again under them.
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
        #: Applying entries, reading the log and repairs take turns (see ``ingest``).
        self.apply_lock = asyncio.Lock()
        self.repairs = Repairs(self)
        # Multi-part batches applied lately (batch id -> version), so that reading their
        # parts again does not start them over.
        self._done_batches: dict[str, int] = {}
        # While opening: which entries name which as their prev (deleted ones show).
        self._chain = Chain()
        self._check_now = asyncio.Event()
        self._check_lock = asyncio.Lock()
        self._checks = 0
        self._audit_mark = 0
        self._checker: asyncio.Task[None] | None = None
        self._opening = True
        self._buffer: list[dict[str, Any]] = []
        self._tail_ops = 0
        self._tail_messages = 0
        self._snapshot_task: asyncio.Task[None] | None = None
        self.on_renames: Callable[[], None] | None = None

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
        async with self.apply_lock:
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
            self.repairs.note_other(message_id)
        prev = prev_of(header)
        if prev:
            self.repairs.suspect(prev)
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
        elif prev := prev_of(header):
            self.repairs.suspect(prev)
        if header is None and not self.position.is_applied(message_id):
            # Someone else's message (chat, another bot): every open reads it again until a
            # snapshot starts after it, so it counts toward the next snapshot as an entry does.
            self._tail_messages += 1
        if header is None or header.kind != "log":
            self.repairs.note_other(message_id)
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
                    try:
                        parts = await fetch_prior(
                            engine.http, self.channel_id, engine.bot_id, self.assembler, header
                        )
                    except PartGone as gone:
                        # Before where this read began: no chain check sees it missing.
                        engine.report_damage(
                            f"table {self.spec.name!r} (channel {self.channel_id}): entry "
                            f"{header.message_id} ends a batch whose {gone} (deleted?); the "
                            "batch is never applied: the records it wrote are missing"
                        )
                        return header
                if parts is None:
                    return header
            else:
                parts = [header]
            version = max(part.message_id for part in parts)
            # A repair entry carries records as of the deleted entry it stands for.
            at = int_field(header.body, "at") or version
            # What a repair entry stands for counts even when its records are held already (a
            # snapshot lists it as applied): else the entry it repaired reads as lost.
            restored = header.body.get("gone")
            if isinstance(restored, list):
                self.repairs.note_repair_entry(
                    version, [int(m) for m in restored if str(m).isdigit()]
                )
            # Held, unless it is a dispatch below the read floor that was never applied: a
            # late one, whose entry a REST read did not find (it was deleted before, or slow
            # to appear). Applying it again is harmless (versions), and it may be the only
            # copy this process gets: a repair needs it.
            if self.position.is_applied(version) and not (live and self.repairs.missed(version)):
                self._finish(parts, version, None, at)
                return header
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
                rows: list[Row] = []
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
                await apply_rows(self.state, rows, opening=self._opening)
        except StorageCorrupted as exc:
            where = f"table {self.spec.name!r} (channel {self.channel_id}), message {message_id}"
            if strict:
                raise StorageCorrupted(f"{where}: {exc}") from exc
            self.engine.report_damage(f"{where} could not be read and was skipped: {exc}")
            return None
        self._finish(parts, version, count, at)
        return header

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
            self.repairs.known[part.message_id] = at
        if count is not None:
            self._on_applied(version, count)

    def _report_broken_chain(self, start: int) -> None:
        where = f"table {self.spec.name!r} (channel {self.channel_id})"
        for prev, follower in self._chain.missing(start, self.repairs.restored):
            if self.repairs.reclaim(prev):
                # The snapshot it opened from holds what the entry wrote (with its version):
                # written again (and reported so), or a process that opens from the log
                # alone, or an older snapshot, would never hold it.
                continue
            self.engine.report_damage(
                f"{where}: entry {prev} is missing from the log (deleted?); entry {follower} "
                "follows it. Records it wrote that no later entry changed are lost"
            )
        self._chain = Chain()

    def _on_applied(self, message_id: int, op_count: int) -> None:
        self.position.mark_applied(message_id)
        self.repairs.note_applied(message_id)
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
                await load_snapshot(self.state, stream, info.replay_from)
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
        self.repairs.opened_from = start
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

    # ------------------------------------------------------------------ gap checks

    def repaired(self, message_id: int) -> bool:
        """Return whether a repair entry this process read or wrote stands for the entry."""
        return message_id in self.repairs.restored

    def on_deleted(self, message_ids: Collection[int]) -> None:
        """React to messages of the table's channel deleted by someone (see ``Repairs``)."""
        self.repairs.on_deleted(message_ids)

    def snapshot_soon(self) -> None:
        """Write a snapshot as soon as none is being written (one was deleted)."""
        self._tail_messages = self.engine.snapshot_messages
        self._maybe_snapshot()

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
            # Entries named as a prev that the read passed without finding are gone.
            self.repairs.after_read(self.position.read_from)

    async def audit(self) -> None:
        """Read the log since the newest snapshot again, to find entries deleted while no
        delete event reached this process (its session was replaced, the guild was down):
        each is reported and written again as ``on_deleted`` does.

        Raises:
            HTTPException: Discord refused a read.
        """
        async with self._check_lock:
            # Only entries a slow write cannot still be on its way for are missed when
            # absent: those at or below the read floor (the last gap check read past them by
            # more than that takes), and those read back by the previous audit, an audit
            # period ago (a log nobody writes to keeps its floor). Entries before another
            # process's snapshot still count: that process may have missed a deleted entry
            # this one holds. The newest ones bound the read.
            upto = max(self.position.read_from, self._audit_mark)
            self._audit_mark = self.position.contiguous
            expected = self.repairs.audit_expected(upto, _AUDIT_MAX)
            if not expected:
                return
            present: set[int] = set()
            after = min(expected) - 1
            async for page in page_forward(self.engine.http, self.channel_id, after=after):
                present.update(int(m["id"]) for m in page)
                if int(page[-1]["id"]) >= upto:
                    break
        missing = self.repairs.missing(expected, present)
        if missing:
            self.repairs.on_deleted(missing)

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
                if self._checks % AUDIT_EVERY == 0:
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

    # ------------------------------------------------------------------ snapshots

    async def _snapshot(self) -> None:
        try:
            # The rows as they are now, decoded as the snapshot's encoding (in a thread
            # for a large table) reads them: a copy of the rows' dict, 2.5 ms per 100,000.
            records = self.state.frozen_records()
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
        await self.repairs.close()
