"""StorageEngine and TableStore: a guild as a set of logs (storage layer: uses the HTTP client
and gateway *events*; knows nothing of pydantic models, the Database object or the gateway
connection itself).

Opening the engine lists the guild's channels and reads the bot's guild and member (its
roles), to check its permissions before anything is read: without Read Message History
Discord answers every read with an empty list, which would look like an empty database.
Opening a table costs the catalog (read once per engine), the table's pins, one snapshot
download and the tail of the log after the snapshot, paged 100 messages per request. After
that, reads never call Discord: the state lives in memory. Writes go through one group-commit
writer per table; entries written by other processes arrive as gateway MESSAGE_CREATE events
(``on_event``) and, after a connection that could have missed some, over REST (``catch_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from discobase import _json
from discobase import _permissions as perms
from discobase.errors import (
    DatabaseError,
    MissingPermissions,
    NotConnected,
    StorageCorrupted,
    StorageDamaged,
)
from discobase.http import HTTPClient
from discobase.http.errors import HTTPException
from discobase.storage import codec
from discobase.storage.catalog import (
    CATALOG_CHANNEL,
    Catalog,
    TableSpec,
    check_schema,
    table_entry_body,
)
from discobase.storage.codec import Delete, Op, Put
from discobase.storage.ids import IdGenerator
from discobase.storage.position import ReadPosition
from discobase.storage.reader import PAGE, BatchAssembler, fetch_stream, page_forward
from discobase.storage.snapshot import (
    SnapshotInfo,
    decode_records,
    encode_records,
    gc_paused,
    header_info,
    replay_from,
)
from discobase.storage.state import TableState, check_wire
from discobase.storage.writer import (
    Group,
    Limits,
    Outgoing,
    Writer,
    encode_blob,
    plan_stream,
    post,
)

__all__ = ["GAP_CHECK_INTERVAL", "StorageEngine", "TableStore"]

_log = logging.getLogger("discobase.storage")

# Snapshots kept pinned per table; older ones are unpinned (the catalog still names them).
_KEEP_PINNED = 2
# Own entry ids remembered so their gateway echoes are skipped.
_OWN_IDS_MAX = 20_000
# Entries remembered for repairs (a snapshot by this process forgets those before it).
_KNOWN_MAX = 100_000
# Catalog entry kinds: a channel holding one of these (by this bot) is the catalog.
_CATALOG_KINDS = frozenset({"db", "table", "snapref"})
_DAMAGE_MAX = 1000
#: Discord seconds between two gap checks of a table (one request each when nothing is new).
GAP_CHECK_INTERVAL = 15.0
_DONE_BATCHES_MAX = 1024
# Discord seconds: the first retry of a failed gap check (doubling up to the interval).
_CHECK_RETRY = 0.25
# Discord seconds: the longest random wait before repairing a deleted entry.
_REPAIR_JITTER = 1.0

_BATCH: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
    "discobase_storage_batch", default=None
)


class _Batch:
    """Groups submitted inside ``engine.batch()``, held until the block ends."""

    def __init__(self, engine: StorageEngine) -> None:
        self.engine = engine
        self.closed = False
        self.groups: dict[TableStore, list[Group]] = {}

    def add(self, store: TableStore, group: Group) -> None:
        self.groups.setdefault(store, []).append(group)

    def commit(self) -> None:
        self.closed = True
        for store, groups in self.groups.items():
            merged = Group(
                ops=[op for g in groups for op in g.materialize()],
                tokens=[t for g in groups for t in g.tokens],
                futures=[f for g in groups for f in g.futures],
            )
            store.writer.enqueue(merged)

    def abandon(self, exc: BaseException) -> None:
        self.closed = True
        error = DatabaseError(f"the batch was abandoned: {type(exc).__name__}")
        for store, groups in self.groups.items():
            for group in groups:
                for token in group.tokens:
                    store.state.release(token, group.ops)
                for future in group.futures:
                    if not future.done():
                        future.set_exception(error)
                        # The block's own exception is what the caller sees; do not let the
                        # loop complain about these if nobody awaits them.
                        future.exception()


class TableStore:
    """One open table: its live records, indexes and writer.

    Attributes:
        spec: what the database layer declared.
        channel_id: the table's channel.
    """

    def __init__(
        self, engine: StorageEngine, spec: TableSpec, channel_id: int, state: TableState
    ) -> None:
        self.spec = spec
        self.channel_id = channel_id
        self.state = state
        self._engine = engine
        self.writer = Writer(
            engine.http,
            channel_id,
            state,
            engine.limits,
            time_scale=engine.time_scale,
            on_sent=self._on_sent,
            on_applied=self._on_applied,
            own_nonces=engine._own_nonces,
            prev=lambda: self.position.newest,
            on_unsure=self.request_check,
        )
        self._assembler = BatchAssembler()
        # How far the log was read over REST, and what was applied beyond (see position.py).
        self.position = ReadPosition()
        # Entries since the last snapshot this process knows of, part or whole -> the
        # version their records carry (a batch's last part): what a repair writes again.
        self._known: dict[int, int] = {}
        self._snap_position = 0
        # Multi-part batches applied lately (batch id -> version), so that reading their
        # parts again does not start them over.
        self._done_batches: dict[str, int] = {}
        # Deleted entries that a repair entry stands for.
        self._restored: set[int] = set()
        self._repairs: set[asyncio.Task[None]] = set()
        # While opening: every message id read, and (entry, the entry it names as prev).
        self._opened_ids: set[int] = set()
        self._prevs: list[tuple[int, int]] = []
        self._check_now = asyncio.Event()
        self._check_lock = asyncio.Lock()
        self._checker: asyncio.Task[None] | None = None
        self._opening = True
        self._buffer: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._tail_ops = 0
        self._tail_messages = 0
        self._snapshot_task: asyncio.Task[None] | None = None
        # Snapshot messages known to be pinned, oldest first.
        self._pinned: list[int] = []
        self.snapshots_written = 0

    def __repr__(self) -> str:
        return f"<TableStore {self.spec.name!r} channel={self.channel_id} records={self.count()}>"

    # ------------------------------------------------------------------ reads

    def new_id(self) -> int:
        """Return a fresh record id, unique across processes, known before any write."""
        return self._engine.ids.new_id()

    def new_ids(self, count: int) -> list[int]:
        """Return ``count`` fresh record ids, ascending."""
        return self._engine.ids.new_ids(count)

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
        self._engine._check_usable()
        ops = list(ops)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not ops:
            future.set_result(None)
            return future
        self.state.check(ops)
        token = self.state.hold(ops)
        group = Group(ops=ops, tokens=[token], futures=[future])
        batch = _BATCH.get()
        if batch is not None and batch.engine is self._engine and not batch.closed:
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
        batch = _BATCH.get()
        in_batch = batch is not None and batch.engine is self._engine and not batch.closed
        if self.state.has_unique or in_batch or count <= 0:
            with gc_paused():  # decoding builds thousands of dicts; nothing awaits here
                ops = [op for chunk in chunks for op in chunk]
            return self.submit(ops)
        self._engine._check_usable()
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
        engine = self._engine
        if message_id in engine._own_ids:
            engine._own_ids.discard(message_id)
            return
        if message.get("nonce") is not None and str(message["nonce"]) in engine._own_nonces:
            return  # our own write, not answered yet: the writer applies it
        try:
            header = await self._apply_message(message, message_id, strict=False)
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
        prev = _prev_of(header)
        if prev and not self.position.is_applied(prev) and prev not in self._assembler_parts():
            # The writer had applied an entry this process has not: a dispatch was lost.
            self.request_check()

    async def _ingest_read(self, message: dict[str, Any], *, strict: bool) -> None:
        message_id = int(message["id"])
        # A REST read applies this process's own entries too: one whose answer is late (or
        # was lost to a 5xx) is stored all the same, and the read position must not pass
        # an entry the state lacks.
        header = await self._apply_message(message, message_id, strict=strict)
        if self._opening:
            self._note_chain(message_id, header)
        self.position.advance(message_id)

    def _assembler_parts(self) -> frozenset[int]:
        return self._assembler.part_ids()

    async def _apply_message(
        self, message: dict[str, Any], message_id: int, *, strict: bool
    ) -> codec.Header | None:
        """Apply an entry unless it is held already; return its header (``None``: not one).

        Raises:
            HTTPException: its attachments could not be downloaded (nothing was applied).
            StorageCorrupted: with ``strict``, the entry is unreadable.
        """
        engine = self._engine
        try:
            header = codec.parse_header(message, engine.bot_id)
            if header is None or header.kind != "log":
                return header
            if header.batch is not None:
                if header.batch in self._done_batches:
                    return header  # a part of a batch applied already, read again
                parts = self._assembler.add(header)
                if parts is None:
                    return header
            else:
                parts = [header]
            version = max(part.message_id for part in parts)
            if self.position.is_applied(version):
                self._finish(parts, version, None)
                return header
            # A repair entry carries records as of the deleted entry it stands for.
            at = _int_field(header.body, "at") or version
            restored = header.body.get("gone")
            if isinstance(restored, list):
                self._restored.update(int(m) for m in restored if str(m).isdigit())
            ops = parts[0].ops if len(parts) == 1 else None
            if ops is not None:
                count = len(ops)
                self.state.apply(at, ops)
            else:
                stream = await fetch_stream(engine.http, self.channel_id, parts)
                # Decoded and checked in full before anything is applied: a corrupt batch
                # changes nothing, and readers never see half of one. The decoding yields
                # to the event loop between pieces; applying is one quick loop.
                rows: list[tuple[int, int, dict[str, Any] | None]] = []
                pieces = codec.iter_stream(stream)
                while True:
                    with gc_paused():
                        chunk = next(pieces, None)
                        if chunk is None:
                            break
                        rows.extend(check_wire(at, chunk))
                    await asyncio.sleep(0)
                del stream, pieces
                count = len(rows)
                with gc_paused():
                    self.state.apply_checked(rows)
        except StorageCorrupted as exc:
            where = f"table {self.spec.name!r} (channel {self.channel_id}), message {message_id}"
            if strict:
                raise StorageCorrupted(f"{where}: {exc}") from exc
            self._engine.report_damage(f"{where} could not be read and was skipped: {exc}")
            return None
        self._finish(parts, version, count)
        return header

    def _finish(self, parts: list[codec.Header], version: int, count: int | None) -> None:
        """Record an applied entry (``count`` is ``None`` when it was held already)."""
        batch = parts[0].batch
        if batch is not None:
            self._done_batches[batch] = version
            if len(self._done_batches) > _DONE_BATCHES_MAX:
                del self._done_batches[next(iter(self._done_batches))]
            self._assembler.discard(batch)
        for part in parts:
            self._known[part.message_id] = version
        if count is not None:
            self._on_applied(version, count)

    def _note_chain(self, message_id: int, header: codec.Header | None) -> None:
        """Remember, while opening, which messages exist and which entries each names."""
        self._opened_ids.add(message_id)
        prev = _prev_of(header)
        if prev:
            self._prevs.append((message_id, prev))

    def _report_broken_chain(self, start: int) -> None:
        """Report entries that a later entry names as its predecessor but that are gone.

        Each entry names the newest entry its writer held when it wrote (``prev``). One that
        is missing from the log, with no repair entry standing for it, was deleted by
        someone: what it held may be lost, and every process that opens the table says so.
        """
        for message_id, prev in self._prevs:
            if prev > start and prev not in self._opened_ids and prev not in self._restored:
                self._engine.report_damage(
                    f"table {self.spec.name!r} (channel {self.channel_id}): entry {prev} is "
                    f"missing from the log (deleted?); entry {message_id} follows it. Records "
                    "it wrote that no later entry changed are lost"
                )
        self._prevs = []
        self._opened_ids = set()

    def _on_sent(self, message_id: int) -> None:
        own = self._engine._own_ids
        own.add(message_id)
        if len(own) > _OWN_IDS_MAX:
            # Without a gateway, echoes never come to remove them; forgetting old ones costs
            # at most a re-read of our own entries in a catch-up.
            keep = sorted(own)[-_OWN_IDS_MAX // 2 :]
            own.clear()
            own.update(keep)

    def _on_applied(self, message_id: int, op_count: int) -> None:
        self.position.mark_applied(message_id)
        self._known.setdefault(message_id, message_id)
        if len(self._known) > _KNOWN_MAX:
            for old in sorted(self._known)[: _KNOWN_MAX // 4]:
                del self._known[old]
        self._tail_ops += op_count
        self._tail_messages += 1
        self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        engine = self._engine
        if self._opening or engine._closing or self._snapshot_task is not None:
            return
        if self._tail_ops >= engine.snapshot_ops or self._tail_messages >= engine.snapshot_messages:
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())

    async def load(self, catalog_snapshot: SnapshotInfo | None) -> None:
        """Load the newest snapshot and replay the log after it; then apply buffered events."""
        engine = self._engine
        http = engine.http
        start = 0
        skip: frozenset[int] = frozenset()
        snap = await self._find_snapshot(catalog_snapshot)
        if snap is not None:
            header, info = snap
            try:
                stream = await fetch_stream(http, self.channel_id, [header])
                # A piece at a time, yielding in between: a 100,000-record snapshot takes a
                # good part of a second to load, and the gateway's heartbeat must still go
                # out. The table is not visible until it is open, so no reader sees a part.
                chunks = decode_records(stream)
                while True:
                    with gc_paused():
                        chunk = next(chunks, None)
                        if chunk is None:
                            break
                        self.state.apply_wire(info.replay_from, chunk, versioned=True)
                    await asyncio.sleep(0)
                del stream, chunks
            except (StorageCorrupted, HTTPException):
                self.state.clear()
                _log.exception(
                    "table %s: snapshot %d unreadable; replaying the whole log",
                    self.spec.name,
                    info.message_id,
                )
            else:
                start = info.replay_from
                skip = info.skip
        self.position = ReadPosition(start, skip)
        self._snap_position = start
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
            async for page in page_forward(self._engine.http, self.channel_id, after=after):
                for message in page:
                    await self.ingest(message, strict=False)

    async def _run_checks(self) -> None:
        engine = self._engine
        interval = engine.gap_check_interval * engine.time_scale
        delay = interval
        failures = 0
        while not engine._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), timeout=delay)
            self._check_now.clear()
            if engine._closing:
                return
            try:
                await self.check()
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
            if message_id in self._pinned:
                self._pinned.remove(message_id)
                self._engine.report_damage(
                    f"table {self.spec.name!r} (channel {self.channel_id}): snapshot "
                    f"{message_id} was deleted; a new one is written (the log holds "
                    "everything)"
                )
                self._tail_messages = self._engine.snapshot_messages
                self._maybe_snapshot()
                continue
            version = self._known.get(message_id)
            if version is not None and message_id not in self._restored:
                _track(
                    self._repairs,
                    asyncio.get_running_loop().create_task(self._repair(message_id, version)),
                )

    async def _repair(self, gone: int, version: int) -> None:
        engine = self._engine
        # Every live process may repair; a short random wait lets the first one's repair
        # reach the others, who then leave it (a second repair would be harmless).
        await asyncio.sleep(random.random() * _REPAIR_JITTER * engine.time_scale)
        if gone in self._restored or engine._closing:
            return
        ops: list[Op] = []
        for record_id, at in self.state.versions_after(version - 1).items():
            if at != version:
                continue
            data = self.state.get(record_id)
            ops.append(Put(record_id, data) if data is not None else Delete(record_id))
        stream = codec.compress_lines(encode_blob(ops))
        plans = plan_stream("log", stream, engine.limits, at=str(version), gone=[str(gone)])
        try:
            for outgoing in plans:
                message = await post(engine.http, self.channel_id, outgoing)
                engine._own_ids.add(int(message["id"]))
        except (HTTPException, DatabaseError) as exc:
            engine.report_damage(
                f"table {self.spec.name!r} (channel {self.channel_id}): entry {gone} was "
                f"deleted and could not be written again ({exc}); {len(ops)} records it "
                "held are missing for processes that open the table later"
            )
            return
        self._restored.add(gone)
        engine.report_damage(
            f"table {self.spec.name!r} (channel {self.channel_id}): entry {gone} was deleted; "
            f"its {len(ops)} records were written again in entry {message['id']}"
        )

    async def _find_snapshot(
        self, catalog_snapshot: SnapshotInfo | None
    ) -> tuple[codec.Header, SnapshotInfo] | None:
        engine = self._engine
        best: tuple[codec.Header, SnapshotInfo] | None = None
        try:
            pins = await engine.http.fetch_pins(self.channel_id)
        except HTTPException:
            _log.warning("table %s: pins could not be read", self.spec.name)
            pins = None
        items = pins.get("items", []) if isinstance(pins, dict) else []
        for item in items:
            message = item.get("message") if isinstance(item, dict) else None
            if not isinstance(message, dict):
                continue
            header = codec.parse_header(message, engine.bot_id)
            if header is None or header.kind != "snap":
                continue
            self._pinned.append(header.message_id)
            info = header_info(header, self.channel_id)
            if best is None or info.replay_from > best[1].replay_from:
                best = (header, info)
        self._pinned.sort()
        if catalog_snapshot is not None and (
            best is None or catalog_snapshot.replay_from > best[1].replay_from
        ):
            try:
                message = await engine.http.fetch_message(
                    self.channel_id, catalog_snapshot.message_id
                )
                header = codec.parse_header(message, engine.bot_id)
                if header is not None and header.kind == "snap":
                    best = (header, header_info(header, self.channel_id))
            except HTTPException:
                _log.warning("table %s: the catalog's snapshot is gone", self.spec.name)
        return best

    # ------------------------------------------------------------------ snapshots

    async def _snapshot(self) -> None:
        engine = self._engine
        try:
            records = dict(self.state.records)
            # Replay starts before the first entry not read back over REST: every entry up
            # to there is held, whatever the gateway delivered (own writes included, since
            # a REST read applies those too).
            position = replay_from(self.position.contiguous, self._assembler.first_ids())
            recent = self.state.versions_after(position)
            # Content holds at most 2000 characters: list the newest entries only.
            skip = self.position.applied_after(position)[-60:]
            self._tail_ops = 0
            self._tail_messages = 0
            if len(records) > 2000:
                stream = await asyncio.to_thread(encode_records, records, recent)
            else:
                stream = encode_records(records, recent)
            fields: dict[str, Any] = {
                "from": str(position),
                "records": len(records),
                "skip": [str(m) for m in skip],
            }
            plan = plan_stream("snap", stream, engine.limits, **fields)
            if len(plan) > 1:
                _log.warning(
                    "table %s: a snapshot would need %d messages; the log is kept instead",
                    self.spec.name,
                    len(plan),
                )
                return
            message = await post(engine.http, self.channel_id, plan[0])
            message_id = int(message["id"])
            engine._own_ids.add(message_id)
            try:
                await engine.http.pin_message(self.channel_id, message_id)
            except HTTPException:
                _log.warning(
                    "table %s: snapshot %d could not be pinned", self.spec.name, message_id
                )
            else:
                self._pinned.append(message_id)
                await self._unpin_old()
            body = {
                "table": self.spec.name,
                "channel": str(self.channel_id),
                "message": str(message_id),
                "from": fields["from"],
                "records": len(records),
            }
            await engine._post_catalog("snapref", body)
            self.snapshots_written += 1
            self._snap_position = position
            for old in [m for m in self._known if m <= position]:
                del self._known[old]
        except (HTTPException, DatabaseError):
            _log.exception(
                "table %s: snapshot failed (the log still holds everything)", self.spec.name
            )
        finally:
            self._snapshot_task = None

    async def _unpin_old(self) -> None:
        # Discord keeps at most 250 pins per channel: keep the newest snapshots pinned only.
        while len(self._pinned) > _KEEP_PINNED:
            old = self._pinned.pop(0)
            try:
                await self._engine.http.unpin_message(self.channel_id, old)
            except HTTPException:
                _log.warning("table %s: old snapshot %d stays pinned", self.spec.name, old)

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


class StorageEngine:
    """A guild's tables as logs of messages, with their live state in memory.

    Args:
        http: an open HTTP client for the bot.
        guild_id: the database's guild.
        bot_id: the bot's user id (entries by anyone else are ignored).
        time_scale: real seconds per Discord second (emulator tests).
        snapshot_ops: write a snapshot once this many operations follow the last one.
        snapshot_messages: ... or once this many log entries follow it.
        limits: size limits (defaults to Discord's).
        catalog_name: the catalog channel's name.
        gap_check_interval: Discord seconds between two reads of each table's newest
            entries over REST, which find what the gateway did not deliver.
    """

    def __init__(
        self,
        http: HTTPClient,
        *,
        guild_id: int,
        bot_id: int,
        time_scale: float = 1.0,
        snapshot_ops: int = 50_000,
        snapshot_messages: int = 300,
        limits: Limits | None = None,
        catalog_name: str = CATALOG_CHANNEL,
        gap_check_interval: float = GAP_CHECK_INTERVAL,
    ) -> None:
        self.http = http
        self.guild_id = int(guild_id)
        self.bot_id = int(bot_id)
        self.time_scale = time_scale
        self.snapshot_ops = snapshot_ops
        self.snapshot_messages = snapshot_messages
        self.limits = limits or Limits()
        self.catalog_name = catalog_name
        self.ids = IdGenerator()
        self.catalog: Catalog | None = None
        self.tables: dict[str, TableStore] = {}
        self._by_channel: dict[int, TableStore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._own_ids: set[int] = set()
        self._own_nonces: set[str] = set()
        self._closing = False
        self.gap_check_interval = gap_check_interval
        #: Damage found (deleted entries, unreadable ones, ...), newest last, as reported.
        self.damage: list[str] = []
        self._repairs: set[asyncio.Task[None]] = set()
        # The bot's guild-level permissions and role ids (read by open()), and the guild's
        # channels by id as last listed (their permission overwrites).
        self._base_permissions: int | None = None
        self._role_ids: list[str] = []
        self._channels: dict[int, Mapping[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<StorageEngine guild={self.guild_id} tables={sorted(self.tables)}>"

    def _check_usable(self) -> None:
        if self._closing:
            raise NotConnected("the database is closed; open it again to write")

    # ------------------------------------------------------------------ the catalog

    async def open(self, tables: Collection[str] = ()) -> None:
        """Find or create the catalog channel, check the bot's permissions, read the catalog.

        Args:
            tables: the names of the tables about to be opened: their permissions are
                checked too, before anything is created or written.

        Raises:
            MissingPermissions: the bot lacks a permission the catalog or one of ``tables``
                needs (checked before anything the check concerns is read, created or
                written).
            StorageDamaged: the catalog is gone but channels hold this bot's entries.
            HTTPException: Discord refused a request.
        """
        self._check_usable()
        if self.catalog is not None:
            await self.check_tables(tables)
            return
        channel_id, first_page = await self._find_catalog_channel(tables)
        catalog = Catalog(channel_id)
        self.catalog = catalog
        for message in sorted(first_page, key=lambda m: int(m["id"])):
            await self._ingest_catalog(message, strict=True)
        if len(first_page) >= PAGE:
            await self._read_catalog(after=catalog.cursor)
        await self.check_tables(tables)
        if not catalog.has_version:
            await self._post_catalog("db", {})

    async def _find_catalog_channel(
        self, tables: Collection[str]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Return the catalog's channel and its first page of history (oldest first).

        The catalog is found by what it holds, this bot's entries, not by its name alone:
        members can rename channels, and a channel renamed *to* the catalog's name must not
        pass for an empty database. A catalog renamed away is found among the other channels
        (one read each, only when no channel of the name holds the catalog).
        """
        # Three requests at once: the channels (with their overwrites), and the guild's roles
        # and owner and the bot's own roles, from which its permissions follow.
        channels, guild, member = await asyncio.gather(
            self.http.fetch_guild_channels(self.guild_id),
            self.http.fetch_guild(self.guild_id),
            self.http.fetch_guild_member(self.guild_id, self.bot_id),
        )
        self._learn_channels(channels)
        self._role_ids = [str(r) for r in (member or {}).get("roles") or ()]
        self._base_permissions = perms.guild_permissions(
            guild_id=str(self.guild_id),
            owner_id=(guild or {}).get("owner_id"),
            user_id=str(self.bot_id),
            roles=[r for r in (guild or {}).get("roles") or () if isinstance(r, dict)],
            member_roles=self._role_ids,
        )
        named = self._text_channels(named=True)
        for channel_id in named:
            self._require(self._needs(channel_id, perms.CATALOG_NEEDS, "the catalog"))
            page = await self._first_page(channel_id)
            if self._kinds(page) & _CATALOG_KINDS:
                return channel_id, page
        # No channel of the name holds the catalog: it may have been renamed.
        orphans: list[int] = []
        for channel_id in self._text_channels(named=False):
            if any(self._needs(channel_id, perms.CATALOG_NEEDS, "").values()):
                continue  # the bot cannot read it, so it wrote nothing there
            page = await self._first_page(channel_id)
            kinds = self._kinds(page)
            if kinds & _CATALOG_KINDS:
                name = self._channels[channel_id].get("name")
                self.report_damage(
                    f"the catalog channel ({channel_id}) was renamed to #{name}; discobase "
                    f"found it by its entries and uses it (rename it back to "
                    f"#{self.catalog_name} to keep it easy to find)"
                )
                return channel_id, page
            if kinds:
                orphans.append(channel_id)
        if orphans:
            where = ", ".join(f"#{self._channels[c].get('name')} ({c})" for c in orphans)
            raise StorageDamaged(
                f"the catalog channel of guild {self.guild_id} is gone (deleted?), but "
                f"channels {where} hold this bot's discobase entries. discobase stopped "
                "rather than start an empty database beside them; restore the catalog or "
                "move those channels' data out first",
                channel_id=orphans[0],
            )
        return await self._create_catalog(tables), []

    def _text_channels(self, *, named: bool) -> list[int]:
        """Return the guild's text channels named like the catalog (or all others), by id."""
        return sorted(
            cid
            for cid, c in self._channels.items()
            if c.get("type") == 0 and (c.get("name") == self.catalog_name) == named
        )

    async def _first_page(self, channel_id: int) -> list[dict[str, Any]]:
        page = await self.http.fetch_messages(channel_id, after=0, limit=PAGE)
        return [m for m in page or () if isinstance(m, dict) and "id" in m]

    def _kinds(self, page: list[dict[str, Any]]) -> set[str]:
        """Return the kinds of this bot's discobase entries among ``page``."""
        kinds = set()
        for message in page:
            with contextlib.suppress(StorageCorrupted):
                header = codec.parse_header(message, self.bot_id)
                if header is not None:
                    kinds.add(header.kind)
        return kinds

    async def _create_catalog(self, tables: Collection[str]) -> int:
        # No catalog: every table is new too, and each needs a channel.
        need = perms.CATALOG_NEEDS | perms.MANAGE_CHANNELS
        if tables:
            need |= perms.TABLE_NEEDS
        self._require(self._server_needs(need, f"#{self.catalog_name} (the catalog)", tables))
        created = await self.http.create_guild_channel(
            self.guild_id,
            name=self.catalog_name,
            topic="discobase catalog: do not post here",
            permission_overwrites=self._read_only_overwrites(),
        )
        mine = int(created["id"])
        # Two processes may create it at once: both settle on the smaller id.
        channels = await self.http.fetch_guild_channels(self.guild_id)
        self._learn_channels(channels)
        named = self._text_channels(named=True)
        winner = min(named) if named else mine
        if winner != mine:
            with contextlib.suppress(HTTPException):
                await self.http.delete_channel(mine)
            # Made by another process, perhaps with overwrites of its own.
            self._require(self._needs(winner, perms.CATALOG_NEEDS, "the catalog"))
        return winner

    def _read_only_overwrites(self) -> list[dict[str, Any]]:
        """Return overwrites that keep members from posting in a channel discobase makes.

        Chat in a table channel would cost every later open a history read per 100 messages.
        @everyone (whose role id is the guild's id) may read but not send; a member overwrite
        gives the bot back the right to send, and nothing more (its other rights stay its
        roles'). Server owners and administrators are not bound by overwrites, so this stops
        chat, not deliberate damage.
        """
        send = str(perms.SEND_MESSAGES)
        return [
            {"id": str(self.guild_id), "type": 0, "allow": "0", "deny": send},
            {"id": str(self.bot_id), "type": 1, "allow": send, "deny": "0"},
        ]

    # ------------------------------------------------------------------ permissions

    def _learn_channels(self, channels: Any) -> None:
        self._channels = {
            int(c["id"]): c for c in channels or () if isinstance(c, dict) and "id" in c
        }

    def _needs(self, channel_id: int, need: int, what: str) -> dict[str, int]:
        """Return ``{place: bits}`` for what the bot lacks of ``need`` in a channel."""
        base = self._base_permissions
        channel = self._channels.get(channel_id)
        if base is None or channel is None:
            return {}  # not checked (open() not called) or gone: Discord's error will say
        have = perms.channel_permissions(
            base,
            guild_id=str(self.guild_id),
            user_id=str(self.bot_id),
            member_roles=self._role_ids,
            overwrites=[
                o for o in channel.get("permission_overwrites") or () if isinstance(o, dict)
            ],
        )
        return {f"#{channel.get('name', channel_id)} ({what})": need & ~have}

    def _server_needs(self, need: int, what: str, tables: Collection[str]) -> dict[str, int]:
        """Return ``{place: bits}`` for what the bot lacks of ``need`` at the server level,
        to create ``what`` and the channels of ``tables`` (Manage Channels, and what a new
        channel, which starts with no overwrites, inherits)."""
        base = self._base_permissions
        if base is None:
            return {}
        if tables:
            names = ", ".join(repr(name) for name in tables)
            what = f"{what} and the channels of tables {names}" if what else f"tables {names}"
        return {f"the server (to create {what})": need & ~base}

    def _require(self, places: Mapping[str, int]) -> None:
        """Raise ``MissingPermissions`` if any place of ``{place: missing bits}`` lacks some."""
        lacking = {place: bits for place, bits in places.items() if bits}
        if not lacking:
            return
        every = 0
        for bits in lacking.values():
            every |= bits
        missing_names = perms.names(every)
        where = "; ".join(f"{', '.join(perms.names(b))} in {p}" for p, b in lacking.items())
        why = (
            " (without Read Message History, Discord answers every read with nothing, as if "
            "the database were empty)"
            if every & perms.READ_MESSAGE_HISTORY
            else ""
        )
        raise MissingPermissions(
            f"the bot lacks permissions discobase needs in guild {self.guild_id}: {where}. "
            f"discobase stopped before reading or writing any table{why}. Give the bot's role "
            "these permissions in Server Settings > Roles and check the permission overwrites "
            "of the channels named (Edit Channel > Permissions), or add the bot again with an "
            f"invite link carrying permissions={perms.INVITE}",
            missing=missing_names,
            places={p: perms.names(b) for p, b in lacking.items()},
        )

    async def check_tables(self, names: Collection[str]) -> None:
        """Check, before any of them is opened, that the bot may use these tables.

        A table in the catalog needs View Channel, Send Messages, Read Message History,
        Attach Files and Pin Messages in its channel; a new one needs Manage Channels and
        those at the server level. Costs no request unless a table's channel was made after
        the channels were listed (then one, to list them again).

        Raises:
            MissingPermissions: naming every permission missing, and where.
        """
        catalog = self._require_catalog()
        if self._base_permissions is None:
            return
        entries = [(name, catalog.tables.get(name)) for name in names]
        if any(e is not None and e.channel_id not in self._channels for _, e in entries):
            self._learn_channels(await self.http.fetch_guild_channels(self.guild_id))
        for name, entry in entries:
            if entry is not None and entry.channel_id not in self._channels:
                raise StorageDamaged(
                    f"the channel of table {name!r} ({entry.channel_id}) is gone (deleted?): "
                    f"the catalog (channel {catalog.channel_id}, entry {entry.first_id}) "
                    "names it. discobase stopped rather than start the table empty in a new "
                    "channel",
                    table=name,
                    channel_id=entry.channel_id,
                )
        places: dict[str, int] = {}
        new = [name for name, entry in entries if entry is None]
        if new:
            need = perms.TABLE_NEEDS | perms.MANAGE_CHANNELS
            places.update(self._server_needs(need, "", new))
        for name, entry in entries:
            if entry is not None:
                places.update(self._needs(entry.channel_id, perms.TABLE_NEEDS, f"table {name!r}"))
        self._require(places)

    async def _read_catalog(self, after: int) -> None:
        catalog = self._require_catalog()
        async for page in page_forward(self.http, catalog.channel_id, after=after):
            for message in page:
                await self._ingest_catalog(message, strict=True)

    async def _ingest_catalog(self, message: dict[str, Any], *, strict: bool) -> None:
        catalog = self._require_catalog()
        try:
            header = codec.parse_header(message, self.bot_id)
            if header is None:
                catalog.cursor = max(catalog.cursor, int(message["id"]))
                return
            body: dict[str, Any] | None = None
            if header.files:
                raw = codec.decode_stream(
                    await fetch_stream(self.http, catalog.channel_id, [header])
                )
                if not raw or not isinstance(raw[0], dict):
                    raise StorageCorrupted(f"catalog entry {header.message_id} is empty")
                body = raw[0]
            catalog.ingest_header(header, body)
        except StorageCorrupted:
            if strict:
                raise
            _log.exception("catalog entry %s could not be read", message.get("id"))

    async def _post_catalog(self, kind: str, body: dict[str, Any]) -> None:
        catalog = self._require_catalog()
        content = codec.encode_header(kind, **body)
        if len(content) <= codec.CONTENT_LIMIT:
            outgoing = Outgoing(content)
        else:
            # Too long for content (a large schema): the whole entry goes in an attachment
            # and the content keeps only what identifies it.
            stream = codec.encode_stream([_json.dumps(body)])
            short = {k: v for k, v in body.items() if k in ("name", "table", "channel")}
            plans = plan_stream(kind, stream, self.limits, **short)
            if len(plans) > 1:
                raise DatabaseError(f"a catalog entry of {len(stream)} bytes is too large")
            outgoing = plans[0]
        message = await post(self.http, catalog.channel_id, outgoing)
        await self._ingest_catalog(message, strict=True)

    def _require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise NotConnected("the storage engine is not open; call open() first")
        return self.catalog

    # ------------------------------------------------------------------ tables

    async def open_table(self, spec: TableSpec) -> TableStore:
        """Open (creating if new) a table and load its state.

        Raises:
            MissingPermissions: the bot may not use the table's channel (or create it).
            SchemaMismatch: the stored schema is incompatible with ``spec``.
            StorageCorrupted: the table's entries cannot be read.
            HTTPException: Discord refused a request.
        """
        self._check_usable()
        catalog = self._require_catalog()
        if spec.name not in self.tables:
            await self.check_tables([spec.name])
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:
            store = self.tables.get(spec.name)
            if store is not None:
                return store
            entry = catalog.tables.get(spec.name)
            if entry is None:
                channel_id = await self._create_table(spec)
                entry = catalog.tables[spec.name]
                if entry.channel_id != channel_id:
                    # Another process created the table first; adopt its channel.
                    with contextlib.suppress(HTTPException):
                        await self.http.delete_channel(channel_id)
                    if check_schema(entry, spec):
                        await self._post_catalog("table", table_entry_body(spec, entry.channel_id))
            elif check_schema(entry, spec):
                await self._post_catalog("table", table_entry_body(spec, entry.channel_id))
            defaults = {
                name: prop["default"]
                for name, prop in (spec.schema.get("properties") or {}).items()
                if isinstance(prop, dict) and "default" in prop
            }
            state = TableState(spec.name, spec.indexes, defaults)
            store = TableStore(self, spec, entry.channel_id, state)
            self._by_channel[entry.channel_id] = store
            try:
                await store.load(catalog.snapshots.get(spec.name))
            except BaseException:
                del self._by_channel[entry.channel_id]
                raise
            self.tables[spec.name] = store
            return store

    async def _create_table(self, spec: TableSpec) -> int:
        catalog = self._require_catalog()
        created = await self.http.create_guild_channel(
            self.guild_id,
            name=spec.name,
            topic=f"discobase table {spec.name}",
            permission_overwrites=self._read_only_overwrites(),
        )
        channel_id = int(created["id"])
        before = catalog.cursor
        await self._post_catalog("table", table_entry_body(spec, channel_id))
        # Entries others posted meanwhile may not have reached us: re-read from before ours
        # (ingesting twice is harmless); the earliest entry of a name wins.
        await self._read_catalog(after=min(before, replay_from(catalog.cursor)))
        return channel_id

    # ------------------------------------------------------------------ live sync

    def report_damage(self, what: str) -> None:
        """Record and log damage found in the database (``damage`` lists it)."""
        self.damage.append(what)
        if len(self.damage) > _DAMAGE_MAX:
            del self.damage[0]
        _log.warning("damage: %s", what)

    async def on_event(self, name: str, data: dict[str, Any]) -> None:
        """Apply a gateway dispatch (entries by other processes, catalog changes)."""
        if not isinstance(data, dict) or self._closing:
            return
        if name in ("MESSAGE_DELETE", "MESSAGE_DELETE_BULK"):
            self._on_messages_deleted(data)
            return
        if name == "CHANNEL_DELETE":
            self._on_channel_deleted(data)
            return
        if name != "MESSAGE_CREATE":
            return
        try:
            channel_id = int(data["channel_id"])
        except (KeyError, TypeError, ValueError):
            return
        guild = data.get("guild_id")
        if guild is not None and str(guild) != str(self.guild_id):
            return
        catalog = self.catalog
        if catalog is not None and channel_id == catalog.channel_id:
            await self._ingest_catalog(data, strict=False)
            return
        store = self._by_channel.get(channel_id)
        if store is not None:
            try:
                await store.ingest(data, live=True)
            except HTTPException:
                _log.exception("table %s: a live entry could not be read", store.spec.name)

    def _on_messages_deleted(self, data: dict[str, Any]) -> None:
        try:
            channel_id = int(data["channel_id"])
            raw = data["ids"] if "ids" in data else [data["id"]]
            ids = [int(m) for m in raw]
        except (KeyError, TypeError, ValueError):
            return
        catalog = self.catalog
        if catalog is not None and channel_id == catalog.channel_id:
            for name, entry in catalog.tables.items():
                store = self.tables.get(name)
                if store is not None and {entry.first_id, entry.latest_id} & set(ids):
                    _track(
                        self._repairs,
                        asyncio.get_running_loop().create_task(self._repair_table_entry(store)),
                    )
            return
        store = self._by_channel.get(channel_id)
        if store is not None:
            store.on_deleted(ids)

    async def _repair_table_entry(self, store: TableStore) -> None:
        # Without its catalog entry a table is unknown to a process that opens the database
        # later, which would make it a second channel: describe it again.
        try:
            await self._post_catalog("table", table_entry_body(store.spec, store.channel_id))
        except (HTTPException, DatabaseError) as exc:
            self.report_damage(
                f"the catalog entry of table {store.spec.name!r} (channel {store.channel_id}) "
                f"was deleted and could not be written again: {exc}"
            )
        else:
            self.report_damage(
                f"the catalog entry of table {store.spec.name!r} (channel {store.channel_id}) "
                "was deleted; it was written again"
            )

    def _on_channel_deleted(self, data: dict[str, Any]) -> None:
        try:
            channel_id = int(data["id"])
        except (KeyError, TypeError, ValueError):
            return
        store = self._by_channel.get(channel_id)
        catalog = self.catalog
        if store is not None:
            self.report_damage(
                f"the channel of table {store.spec.name!r} ({channel_id}) was deleted: its "
                "records live only in the processes that have it open; writes to it fail"
            )
        elif catalog is not None and channel_id == catalog.channel_id:
            self.report_damage(
                f"the catalog channel ({channel_id}) was deleted: processes that open the "
                "database later will not find its tables"
            )

    async def catch_up(self) -> None:
        """Read what the gateway may have missed (after a connection that did not resume)."""
        if self._closing or self.catalog is None:
            return
        # The cursor may be one of our own entries, posted while events were missed: read a
        # little further back (ingesting an entry twice is harmless).
        await self._read_catalog(after=replay_from(self.catalog.cursor))
        for store in list(self.tables.values()):
            await store.check()

    def open_batch_check(self) -> Callable[[], bool] | None:
        """Return, when a batch block is open here, a check that says whether the code calling
        it runs inside that block still (None outside any block)."""
        batch = _BATCH.get()
        if batch is None or batch.engine is not self or batch.closed:
            return None

        def inside() -> bool:
            return _BATCH.get() is batch and not batch.closed

        return inside

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the groups submitted inside the block and send them on exit, atomically per
        table.

        Call ``submit`` inside the block (not from a task that starts later) and await the
        futures after it: they resolve only once the block's batch is written.
        """
        return self._batch()

    @contextlib.asynccontextmanager
    async def _batch(self) -> AsyncIterator[None]:
        current = _BATCH.get()
        if current is not None and current.engine is self and not current.closed:
            yield  # nested: the outer block sends everything
            return
        batch = _Batch(self)
        token = _BATCH.set(batch)
        try:
            yield
        except BaseException as exc:
            batch.abandon(exc)
            raise
        finally:
            _BATCH.reset(token)
        batch.commit()

    async def flush(self) -> None:
        """Wait until every write submitted so far was sent (or failed)."""
        for store in list(self.tables.values()):
            await store.writer.flush()

    async def close(self) -> None:
        """Send pending writes, then stop the writers and snapshots."""
        if self._closing:
            return
        self._closing = True
        for store in list(self.tables.values()):
            await store.close()
        if self._repairs:
            await asyncio.gather(*self._repairs, return_exceptions=True)


def _int_field(body: Mapping[str, Any], key: str) -> int:
    """Return ``body[key]`` as a snowflake, or 0 when absent or not one."""
    value = body.get(key)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _prev_of(header: codec.Header | None) -> int:
    """Return the entry a log entry names as its writer's newest when it was written."""
    if header is None or header.kind != "log":
        return 0
    return _int_field(header.body, "prev")


def _track(tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
    """Keep ``task`` in ``tasks`` until it is done (so close() can wait for it)."""
    tasks.add(task)
    task.add_done_callback(tasks.discard)
