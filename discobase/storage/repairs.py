"""What one table does when messages of its channel are deleted (storage layer: uses the
HTTP client; the store in ``store.py`` feeds it what it applies and reads).

A deleted log entry is written again, by every live process that holds what it changed, in a
*repair entry* (``repair.py``) that keeps the records' versions, so a newer change made
meanwhile is not undone. A process that holds nothing of it waits for another's repair, then
looks in the snapshot a fresh process would open from, and failing that notes the loss in the
catalog, so that every later open names it. A deleted snapshot is written again. See
docs/guarantees.md, "Damage".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Collection, Coroutine
from typing import Any, Protocol

from discobase.errors import StorageCorrupted
from discobase.http.errors import HTTPException, NotFound
from discobase.storage.catalog import TableSpec
from discobase.storage.codec import Op
from discobase.storage.host import StoreHost
from discobase.storage.position import ReadPosition
from discobase.storage.reader import BatchAssembler
from discobase.storage.repair import from_snapshot, post_repair, records_as_of
from discobase.storage.snapshots import Snapshots
from discobase.storage.state import TableState

__all__ = ["RepairedTable", "Repairs", "track"]


# Entries remembered for repairs and audits (the oldest are forgotten past this).
_KNOWN_MAX = 100_000
# Messages of the channel this process read that are not entries (chat, others' snapshots),
# remembered so that one deleted later is not taken for an entry this process never saw.
_OTHERS_MAX = 10_000
# Discord seconds a process that holds nothing of a deleted entry waits for another's
# repair before it notes the entry as lost in the catalog.
_LOSS_NOTE_WAIT = 5.0
# Discord seconds: the longest random wait before repairing a deleted entry.
_REPAIR_JITTER = 1.0


def track(tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
    """Keep a reference to ``task`` in ``tasks`` until it is done."""
    tasks.add(task)
    task.add_done_callback(tasks.discard)


class RepairedTable(Protocol):
    """What the repairs need of the table's store."""

    engine: StoreHost
    spec: TableSpec
    channel_id: int
    state: TableState
    position: ReadPosition
    snapshots: Snapshots
    assembler: BatchAssembler
    apply_lock: asyncio.Lock

    async def check(self) -> None: ...

    async def ingest(self, message: dict[str, Any], *, strict: bool = True) -> None: ...

    def snapshot_soon(self) -> None: ...


class Repairs:
    """One table's deleted messages: repairs, lost entries and what tells them apart.

    Attributes:
        known: entries this process applied, part or whole -> the version their records
            carry (a batch's last part, a repair's "at"): what a repair writes again, what
            an audit looks for.
        restored: deleted entries that a repair entry stands for.
        stands_for: repair entry -> the deleted entries it stands for.
        opened_from: where this process's read of the log began (the loaded snapshot's
            replay position): older messages it never read, and their deletion is no news.
    """

    def __init__(self, table: RepairedTable) -> None:
        self._table = table
        self._engine = table.engine
        self.known: dict[int, int] = {}
        self.restored: set[int] = set()
        self.stands_for: dict[int, list[int]] = {}
        self.opened_from: int | None = None
        # The newest entry forgotten from known (past _KNOWN_MAX).
        self._forgot_upto = 0
        # Messages read or received that are not entries (see _OTHERS_MAX), oldest first.
        self._others: dict[int, None] = {}
        # Deleted entries reported lost: audits and events that find them again say nothing.
        self._given_up: set[int] = set()
        self._repairs: set[asyncio.Task[None]] = set()
        self._repairing: set[int] = set()
        # Entries a later entry names as its writer's newest that this process never applied
        # (see suspect); each is looked for once a gap check has read past it.
        self._suspects: set[int] = set()

    # ------------------------------------------------------------------ what was applied

    def note_applied(self, message_id: int) -> None:
        """Note an entry applied as itself (a repair entry's version is noted by the store)."""
        known = self.known
        known.setdefault(message_id, message_id)
        if message_id in self._given_up:
            # Its loss was noted, and then its late dispatch brought its records here: write
            # it again, so that later opens hold them (the repair stands for the loss note).
            self._given_up.discard(message_id)
            self._start(message_id, self._repair(message_id, message_id, known=True))
        if len(known) > _KNOWN_MAX:
            for old in sorted(known)[: _KNOWN_MAX // 4]:
                del known[old]
                self._forgot_upto = max(self._forgot_upto, old)

    def reclaim(self, entry: int) -> bool:
        """Write again an entry the catalog notes as lost if this process holds what it
        changed (the snapshot it opened from kept their versions); return whether it does.

        Another process noted the loss holding nothing of it, while a snapshot written by
        one that held it, and that this process loaded, still has its records.
        """
        if not self._unresolved(entry) or not records_as_of(self._table.state, entry):
            return False
        self._start(entry, self._repair(entry, entry, known=True))
        return True

    def note_repair_entry(self, version: int, gone: list[int]) -> None:
        """Note a repair entry read: it stands for the deleted entries ``gone``."""
        self.restored.update(gone)
        # A repair of this repair must stand for these too.
        self.stands_for[version] = gone

    def audit_expected(self, upto: int, most: int) -> set[int]:
        """Return the newest ``most`` entries up to ``upto`` that must still be in the log."""
        return set(sorted(m for m in self.known if m <= upto)[-most:])

    def missing(self, expected: set[int], present: set[int]) -> list[int]:
        """Return the expected entries gone from the log that nobody repaired or gave up on."""
        return sorted(expected - present - self.restored - self._given_up)

    def suspect(self, entry: int) -> None:
        """Note an entry a later one names as its prev: if this process never applied it and
        the log does not hold it, it was deleted before anyone here read it, and its delete
        event was lost too (see ``after_read``)."""
        if self._unresolved(entry) and self.missed(entry):
            self._suspects.add(entry)

    def after_read(self, floor: int) -> None:
        """A gap check read the log past ``floor``: suspects up to there are still missing."""
        due = [m for m in self._suspects if m <= floor]
        for entry in due:
            self._suspects.discard(entry)
            if self._unresolved(entry) and self.missed(entry):
                self._start(entry, self._recover_named(entry))

    @property
    def _where(self) -> str:
        """The table and its channel, as every damage report names them."""
        return f"table {self._table.spec.name!r} (channel {self._table.channel_id})"

    def _start(self, entry: int, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the deleted (or missing) entry ``entry``: one at a time per entry,
        each task kept until done so that ``close`` can wait for it."""
        self._repairing.add(entry)
        track(self._repairs, asyncio.get_running_loop().create_task(work))

    def _unresolved(self, entry: int) -> bool:
        return not (entry in self.restored or entry in self._given_up or entry in self._repairing)

    async def _recover_named(self, entry: int) -> None:
        """Look for an entry named but never read; if it is gone, recover it as a deleted
        entry never seen (it is read if it is there: one a snapshot listed, say)."""
        table = self._table
        try:
            message = await self._engine.http.fetch_message(table.channel_id, entry)
        except NotFound:
            await self._recover_unseen(entry)
            return
        except HTTPException:
            self._repairing.discard(entry)  # named again by a later read, it is looked for again
            return
        try:
            await table.ingest(message, strict=False)
        finally:
            self._repairing.discard(entry)

    async def close(self) -> None:
        """Wait for the repairs in progress."""
        if self._repairs:
            await asyncio.gather(*self._repairs, return_exceptions=True)

    # ------------------------------------------------------------------ deleted messages

    def on_deleted(self, message_ids: Collection[int]) -> None:
        """React to messages of the table's channel deleted by someone.

        A deleted snapshot is written again (the log still holds everything). A deleted log
        entry is written again from the records this process holds as of that entry, in a
        repair entry that stands for it (its records keep their version, so a newer change
        made meanwhile is not undone); the loss and the repair are reported by name.
        """
        for message_id in message_ids:
            if self._table.snapshots.forget(message_id):
                self._engine.report_damage(
                    f"{self._where}: snapshot "
                    f"{message_id} was deleted; a new one is written (the log holds "
                    "everything)"
                )
                self._table.snapshot_soon()
                continue
            if message_id in self.restored or message_id in self._repairing:
                continue
            if message_id in self._given_up:
                continue
            if message_id not in self.known and self._never_seen(message_id):
                # Deleted before this process read it: nothing here to write again, but the
                # entry's writer may have (it repairs it), or a snapshot may hold it.
                self._start(message_id, self._recover_unseen(message_id))
                continue
            # An entry this process did not apply itself (it opened from a snapshot after it,
            # or forgot it) may still be the last change of records it holds: look for them
            # (quietly: most deleted messages are chat).
            version = self.known.get(message_id)
            repair = self._repair(message_id, version or message_id, known=version is not None)
            self._start(message_id, repair)

    async def _repair(self, gone: int, version: int, *, known: bool) -> None:
        engine = self._engine
        # Every live process may repair; a short random wait lets the first one's repair
        # reach the others, who then leave it (a second repair would be harmless).
        try:
            await asyncio.sleep(random.random() * _REPAIR_JITTER * engine.time_scale)
            if gone not in self.restored and not engine.closing:
                await self._write_repair(gone, version, known=known)
        finally:
            self._repairing.discard(gone)

    def note_other(self, message_id: int) -> None:
        """Note a message of the channel that is not an entry (see ``_OTHERS_MAX``)."""
        others = self._others
        others[message_id] = None
        if len(others) > _OTHERS_MAX:
            del others[next(iter(others))]

    def missed(self, entry: int) -> bool:
        """Return whether an entry this process's REST reads passed was never applied here.

        Only entries after the snapshot it opened from (older ones the snapshot holds, and
        records it dropped since keep no trace that would stop an old entry's puts) and not
        forgotten: for those, the versions held tell which of its changes are still news.
        """
        opened_from = self.opened_from
        return (
            opened_from is not None
            and entry > max(opened_from, self._forgot_upto)
            and entry not in self.known
        )

    def _never_seen(self, message_id: int) -> bool:
        """Return whether a deleted message of the channel is one this process never saw
        (nor could have: it predates the snapshot it opened from, or was forgotten)."""
        opened_from = self.opened_from
        return (
            opened_from is not None
            and message_id > max(opened_from, self._forgot_upto)
            and message_id not in self._others
            and message_id not in self._table.snapshots.posted
            and message_id not in self._table.assembler.part_ids()
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
        engine = self._engine
        where = self._where
        try:
            await asyncio.sleep((_REPAIR_JITTER + _LOSS_NOTE_WAIT) * engine.time_scale)
            if engine.closing:
                return
            with contextlib.suppress(HTTPException):
                await self._table.check()
            if gone in self.restored or engine.closing:
                return
            if gone in self.known:  # its dispatch came late, after the delete's
                await self._write_repair(gone, self.known[gone], known=True)
                return
            ops = await self._ops_from_snapshot(gone)
            if ops is not None:
                if not ops:
                    engine.report_damage(
                        f"{where}: entry {gone} was deleted before this process read it; "
                        "the newest snapshot shows that every record it wrote changed since"
                    )
                    return
                async with self._table.apply_lock:
                    self._table.state.apply(gone, ops)
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
        engine = self._engine
        self._given_up.add(gone)
        if engine.loss_noted(self._table.spec.name, gone):
            return
        body = {
            "table": self._table.spec.name,
            "channel": str(self._table.channel_id),
            "message": str(gone),
        }
        with contextlib.suppress(HTTPException):
            await engine.post_catalog("loss", body)

    async def _ops_from_snapshot(self, gone: int) -> list[Op] | None:
        """Return what the snapshot a fresh process would open from holds of what the
        deleted entry ``gone`` changed last; ``None`` when it does not say."""
        engine = self._engine
        try:
            found = await self._table.snapshots.find(engine.catalog_snapshot(self._table.spec.name))
            for candidate in found:
                # The first readable one is what a fresh process loads.
                with contextlib.suppress(StorageCorrupted, HTTPException):
                    return await from_snapshot(
                        engine.http, self._table.channel_id, self._table.snapshots, candidate, gone
                    )
        except HTTPException:
            pass
        return None

    async def _write_repair(self, gone: int, version: int, *, known: bool) -> None:
        engine = self._engine
        ops = records_as_of(self._table.state, version)
        where = self._where
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
            if gone not in self.restored and not engine.closing:
                await self._note_loss(gone)
            return
        await self._post_repair(gone, version, ops, what=f"its {len(ops)} records")

    async def _post_repair(self, gone: int, version: int, ops: list[Op], *, what: str) -> None:
        """Write the deleted entry ``gone`` again: ``ops`` at ``version``, its records'."""
        engine = self._engine
        where = self._where
        try:
            repaired = await post_repair(
                engine.http,
                self._table.channel_id,
                limits=engine.limits,
                own=engine.own,
                gone=[gone, *self.stands_for.get(gone, ())],
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
        self.restored.add(gone)
        # Held already (its records are this process's), and itself repairable at once.
        self._table.position.mark_applied(repaired)
        self.known[repaired] = version
        self.stands_for[repaired] = [gone, *self.stands_for.get(gone, ())]
        engine.report_damage(
            f"{where}: entry {gone} was deleted; {what} were written again in entry {repaired}"
        )
