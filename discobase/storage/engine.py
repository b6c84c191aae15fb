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
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from discobase import _json
from discobase import _permissions as perms
from discobase.errors import DatabaseError, MissingPermissions, NotConnected, StorageCorrupted
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
from discobase.storage.codec import Op
from discobase.storage.ids import IdGenerator
from discobase.storage.reader import BatchAssembler, fetch_stream, page_forward
from discobase.storage.snapshot import (
    SnapshotInfo,
    decode_records,
    encode_records,
    gc_paused,
    header_info,
    replay_from,
)
from discobase.storage.state import TableState, check_wire
from discobase.storage.writer import Group, Limits, Outgoing, Writer, plan_stream, post

__all__ = ["StorageEngine", "TableStore"]

_log = logging.getLogger("discobase.storage")

# Snapshots kept pinned per table; older ones are unpinned (the catalog still names them).
_KEEP_PINNED = 2
# Own entry ids remembered so their gateway echoes are skipped.
_OWN_IDS_MAX = 20_000

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
        )
        self._assembler = BatchAssembler()
        # Ids of entries applied lately: a snapshot lists those after its replay position.
        self._recent: deque[int] = deque(maxlen=256)
        self._skip: frozenset[int] = frozenset()
        # Largest entry id seen through the gateway or REST (catch-up resumes after it).
        self.seen_cursor = 0
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

    async def ingest(self, message: dict[str, Any], *, live: bool = False) -> None:
        """Apply one message of the table's channel (anything but an entry is ignored)."""
        message_id = int(message["id"])
        if self._opening and live:
            self._buffer.append(message)
            return
        async with self._lock:
            await self._ingest(message, message_id, strict=not live)

    async def _ingest(self, message: dict[str, Any], message_id: int, *, strict: bool) -> None:
        self.seen_cursor = max(self.seen_cursor, message_id)
        engine = self._engine
        if message_id in engine._own_ids:
            engine._own_ids.discard(message_id)
            return
        if message.get("nonce") is not None and str(message["nonce"]) in engine._own_nonces:
            return
        try:
            header = codec.parse_header(message, engine.bot_id)
            if header is None or header.kind != "log":
                return
            if header.batch is not None:
                parts = self._assembler.add(header)
                if parts is None:
                    return
            else:
                parts = [header]
            version = max(part.message_id for part in parts)
            if version in self._skip:
                return  # the snapshot this table was loaded from holds it already
            ops = parts[0].ops if len(parts) == 1 else None
            if ops is not None:
                count = len(ops)
                self.state.apply(version, ops)
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
                        rows.extend(check_wire(version, chunk))
                    await asyncio.sleep(0)
                del stream, pieces
                count = len(rows)
                with gc_paused():
                    self.state.apply_checked(rows)
        except StorageCorrupted:
            if strict:
                raise
            _log.exception("table %s: entry %d could not be read", self.spec.name, message_id)
            return
        self._recent.extend(part.message_id for part in parts)
        self._on_applied(version, count)

    def _on_sent(self, message_id: int) -> None:
        own = self._engine._own_ids
        own.add(message_id)
        if len(own) > _OWN_IDS_MAX:
            # Without a gateway, echoes never come to remove them; forgetting old ones costs
            # at most a re-read of our own entries in a catch-up.
            keep = sorted(own)[-_OWN_IDS_MAX // 2 :]
            own.clear()
            own.update(keep)
        self._recent.append(message_id)

    def _on_applied(self, message_id: int, op_count: int) -> None:
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
                self._skip = info.skip
        self.seen_cursor = start
        async for page in page_forward(http, self.channel_id, after=start):
            for message in page:
                await self.ingest(message)
        self._opening = False
        self._skip = frozenset()
        buffered, self._buffer = self._buffer, []
        for message in buffered:
            await self.ingest(message, live=True)
        # The replay counted the tail: a long one is snapshotted now, so the next open is short.
        self._maybe_snapshot()

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
            position = replay_from(self.seen_cursor, self._assembler.first_ids())
            recent = self.state.versions_after(position)
            # Content holds at most 2000 characters: list the newest entries only.
            skip = sorted(m for m in set(self._recent) if m > position)[-60:]
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
        task = self._snapshot_task
        if task is not None:
            await asyncio.shield(task)


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
            HTTPException: Discord refused a request.
        """
        self._check_usable()
        if self.catalog is not None:
            await self.check_tables(tables)
            return
        channel_id = await self._find_catalog_channel(tables)
        catalog = Catalog(channel_id)
        self.catalog = catalog
        await self._read_catalog(after=0)
        await self.check_tables(tables)
        if not catalog.has_version:
            await self._post_catalog("db", {})

    async def _find_catalog_channel(self, tables: Collection[str]) -> int:
        def pick(channels: Any) -> int | None:
            ids = [
                int(c["id"])
                for c in channels or ()
                if isinstance(c, dict) and c.get("type") == 0 and c.get("name") == self.catalog_name
            ]
            return min(ids) if ids else None

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
        found = pick(channels)
        if found is not None:
            self._require(self._needs(found, perms.CATALOG_NEEDS, "the catalog"))
            return found
        # No catalog: every table is new too, and each needs a channel.
        need = perms.CATALOG_NEEDS | perms.MANAGE_CHANNELS
        if tables:
            need |= perms.TABLE_NEEDS
        self._require(self._server_needs(need, f"#{self.catalog_name} (the catalog)", tables))
        created = await self.http.create_guild_channel(
            self.guild_id, name=self.catalog_name, topic="discobase catalog: do not post here"
        )
        mine = int(created["id"])
        # Two processes may create it at once: both settle on the smaller id.
        channels = await self.http.fetch_guild_channels(self.guild_id)
        self._learn_channels(channels)
        winner = pick(channels) or mine
        if winner != mine:
            with contextlib.suppress(HTTPException):
                await self.http.delete_channel(mine)
            # Made by another process, perhaps with overwrites of its own.
            self._require(self._needs(winner, perms.CATALOG_NEEDS, "the catalog"))
        return winner

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
            self.guild_id, name=spec.name, topic=f"discobase table {spec.name}"
        )
        channel_id = int(created["id"])
        before = catalog.cursor
        await self._post_catalog("table", table_entry_body(spec, channel_id))
        # Entries others posted meanwhile may not have reached us: re-read from before ours
        # (ingesting twice is harmless); the earliest entry of a name wins.
        await self._read_catalog(after=min(before, replay_from(catalog.cursor)))
        return channel_id

    # ------------------------------------------------------------------ live sync

    async def on_event(self, name: str, data: dict[str, Any]) -> None:
        """Apply a gateway dispatch (entries by other processes, catalog changes)."""
        if name != "MESSAGE_CREATE" or not isinstance(data, dict) or self._closing:
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

    async def catch_up(self) -> None:
        """Read what the gateway may have missed (after a connection that did not resume)."""
        if self._closing or self.catalog is None:
            return
        # The cursor may be one of our own entries, posted while events were missed: read a
        # little further back (ingesting an entry twice is harmless).
        await self._read_catalog(after=replay_from(self.catalog.cursor))
        for store in list(self.tables.values()):
            async for page in page_forward(self.http, store.channel_id, after=store.seen_cursor):
                for message in page:
                    await store.ingest(message)

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
