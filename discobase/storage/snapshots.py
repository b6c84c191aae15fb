"""One table's snapshots: finding the newest at open, writing new ones, keeping the pins
(storage layer: uses the HTTP client; the snapshot's bytes are ``snapshot.py``'s).

A snapshot is found through the table's pins and the catalog's ``snapref`` entries (whichever
starts replay later); a new one is posted in the table's channel, pinned, and recorded in the
catalog. Discord keeps at most 250 pins per channel, so only the newest few stay pinned.

A snapshot too large for one message (ten files, the request limit) is written as the parts
of one batch, in order; the zlib stream runs across the parts' files. Only the last part is
pinned and recorded in the catalog, and only it names the others (``prior``, their message
ids in part order): a snapshot whose writer died before its last part is found by no reader,
and the parts already posted are passed over like any message that is not a log entry. A
reader that cannot fetch every part (one was deleted) takes the next snapshot, or the log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from discobase.errors import DatabaseError, StorageCorrupted
from discobase.http import File, HTTPClient
from discobase.http.errors import HTTPException, NotFound
from discobase.storage import codec
from discobase.storage.outgoing import Limits, Outgoing, post
from discobase.storage.own import OwnWrites
from discobase.storage.reader import fetch_part, named_parts
from discobase.storage.snapshot import SnapshotInfo, encode_records, header_info

__all__ = ["Candidate", "LastPart", "Snapshots", "plan_snapshot", "prior_parts"]

_log = logging.getLogger("discobase.storage")

# Snapshots kept pinned per table; older ones are unpinned (the catalog still names them).
_KEEP_PINNED = 2
# Above this many records a snapshot is encoded in a thread, so the event loop keeps serving.
_THREAD_RECORDS = 2000

#: A snapshot to open from: the message that makes it valid (its only part, or its last)
#: and what it covers.
Candidate = tuple[codec.Header, SnapshotInfo]


@dataclass(frozen=True, slots=True)
class LastPart:
    """The last part of a multi-part snapshot, before the ids of the other parts are known.

    Attributes:
        fields: its header's fields but ``prior``.
        files: its attachments.
    """

    fields: dict[str, Any]
    files: tuple[File, ...]

    def naming(self, prior: list[int]) -> Outgoing:
        """Return the message, naming the parts before it (``prior``, in part order).

        Entries of ``skip`` are dropped, newest kept, while the content is too long: they
        only save downloads.

        Raises:
            DatabaseError: even without them the part ids do not fit the content.
        """
        fields = dict(self.fields, prior=[str(m) for m in prior])
        skip = list(fields.pop("skip", None) or ())
        while True:
            content = codec.encode_header("snap", **fields, skip=skip or None)
            if len(content) <= codec.CONTENT_LIMIT:
                return Outgoing(content, self.files)
            if not skip:
                raise DatabaseError(f"a snapshot of {len(prior) + 1} parts cannot name them all")
            skip = skip[len(skip) // 2 + 1 :]


def plan_snapshot(
    stream: bytes, limits: Limits, fields: dict[str, Any]
) -> tuple[list[Outgoing], LastPart | None]:
    """Lay out a snapshot's compressed stream as messages.

    Returns:
        ``([message], None)`` for a snapshot that fits one message; otherwise the parts but
        the last, and the last, which names them once they are posted.
    """
    pieces = codec.split_stream(
        stream,
        file_limit=limits.file_limit,
        max_files=limits.max_files,
        request_limit=limits.request_limit,
    )

    def files_of(piece: list[bytes]) -> tuple[File, ...]:
        return tuple(File(codec.file_name(i), data) for i, data in enumerate(piece))

    if len(pieces) == 1:
        header = codec.encode_header("snap", **fields, files=len(pieces[0]))
        return [Outgoing(header, files_of(pieces[0]))], None
    batch = secrets.token_hex(8)
    count = len(pieces)
    # Every part says where replay starts, so each reads as what it is; only the last
    # lists the entries already held (``skip``) and the other parts.
    common = {k: v for k, v in fields.items() if k != "skip"}
    parts = [
        Outgoing(
            codec.encode_header(
                "snap", **common, files=len(piece), batch=batch, part=i, parts=count
            ),
            files_of(piece),
        )
        for i, piece in enumerate(pieces[:-1])
    ]
    last = dict(fields, files=len(pieces[-1]), batch=batch, part=count - 1, parts=count)
    return parts, LastPart(last, files_of(pieces[-1]))


def prior_parts(header: codec.Header) -> list[int]:
    """Return the message ids of a snapshot's parts before ``header`` (its last part).

    Raises:
        StorageCorrupted: ``header`` is a part of a snapshot but not its valid last part.
    """
    if header.parts == 1 and header.batch is None:
        return []
    prior = named_parts(header, "snapshot")
    if prior is None:
        raise StorageCorrupted(
            f"snapshot {header.message_id} is part {header.part} of {header.parts} without "
            "the ids of the parts before it"
        )
    return prior


class Snapshots:
    """Find, write and pin one table's snapshots.

    Args:
        http: the open HTTP client.
        channel_id: the table's channel.
        table: the table's name (for messages).
        bot_id: the bot (snapshots by anyone else are ignored).
        limits: size limits for the attachments.
        own: where the snapshot's message id is noted, so its gateway echo is skipped.
        post_catalog: posts a catalog entry (``kind``, ``body``).
    """

    def __init__(
        self,
        http: HTTPClient,
        channel_id: int,
        table: str,
        *,
        bot_id: int,
        limits: Limits,
        own: OwnWrites,
        post_catalog: Callable[[str, dict[str, Any]], Awaitable[None]],
    ) -> None:
        self._http = http
        self._channel_id = channel_id
        self._table = table
        self._bot_id = bot_id
        self._limits = limits
        self._own = own
        self._post_catalog = post_catalog
        #: Snapshot messages known to be pinned, oldest first.
        self.pinned: list[int] = []
        #: How many snapshots this process wrote.
        self.written = 0
        #: The messages of the snapshots this process posted (parts included).
        self.posted: set[int] = set()
        # The parts but the last of multi-part snapshots known -> the last part.
        self._parts: dict[int, int] = {}

    async def find(self, catalog_snapshot: SnapshotInfo | None) -> list[Candidate]:
        """Return the snapshots to open from, the one whose replay starts last first.

        The pinned ones, and the catalog's when it starts later than all of them. A part of a
        multi-part snapshot that is not its valid last part is passed over (with a warning).
        """
        found: list[Candidate] = []
        try:
            pins = await self._http.fetch_pins(self._channel_id)
        except HTTPException:
            _log.warning("table %s: pins could not be read", self._table)
            pins = None
        items = pins.get("items", []) if isinstance(pins, dict) else []
        for item in items:
            message = item.get("message") if isinstance(item, dict) else None
            if not isinstance(message, dict):
                continue
            try:
                header = codec.parse_header(message, self._bot_id)
                if header is None or header.kind != "snap":
                    continue
                if header.message_id not in self.pinned:  # find() runs again after deletions
                    self.pinned.append(header.message_id)
                candidate = self._candidate(header)
            except StorageCorrupted as exc:
                _log.warning("table %s: a pinned snapshot is unreadable: %s", self._table, exc)
                continue
            found.append(candidate)
        self.pinned.sort()
        newest = max((info.replay_from for _, info in found), default=-1)
        if catalog_snapshot is not None and catalog_snapshot.replay_from > newest:
            try:
                message = await self._http.fetch_message(
                    self._channel_id, catalog_snapshot.message_id
                )
                header = codec.parse_header(message, self._bot_id)
                if header is not None and header.kind == "snap":
                    found.append(self._candidate(header))
            except HTTPException:
                _log.warning("table %s: the catalog's snapshot is gone", self._table)
            except StorageCorrupted as exc:
                _log.warning("table %s: the catalog's snapshot is unreadable: %s", self._table, exc)
        found.sort(key=lambda c: c[1].replay_from, reverse=True)
        return found

    def _candidate(self, header: codec.Header) -> Candidate:
        info = header_info(header, self._channel_id)
        for part in prior_parts(header):
            self._parts[part] = header.message_id
        return header, info

    async def parts(self, header: codec.Header) -> list[codec.Header]:
        """Return every part of the snapshot whose only or last part is ``header``, in order.

        Raises:
            StorageCorrupted: a part is missing (deleted) or is not a part of this snapshot.
            HTTPException: Discord refused a read.
        """
        prior = prior_parts(header)
        headers: list[codec.Header] = []
        for index, message_id in enumerate(prior):
            try:
                part = await fetch_part(
                    self._http,
                    self._channel_id,
                    self._bot_id,
                    header,
                    index,
                    message_id,
                    same=("from",),
                )
            except NotFound as exc:
                raise StorageCorrupted(
                    f"snapshot {header.message_id}: its part {index} (message {message_id}) is gone"
                ) from exc
            headers.append(part)
        headers.append(header)
        return headers

    async def write(
        self,
        records: Mapping[int, dict[str, Any]],
        recent: Mapping[int, int],
        position: int,
        skip: list[int],
    ) -> bool:
        """Post, pin and record a snapshot of ``records`` replaying after ``position``.

        A snapshot too large for one message is posted as several (see the module's
        docstring): nothing makes it visible before its last part is posted.

        Returns:
            Whether it was written.

        Raises:
            HTTPException: Discord refused the snapshot or its catalog entry.
            DatabaseError: Discord answered a create without a message, or a snapshot has
                too many parts to name.
        """
        if len(records) > _THREAD_RECORDS:
            stream = await asyncio.to_thread(encode_records, records, recent)
        else:
            stream = encode_records(records, recent)
        fields: dict[str, Any] = {
            "from": str(position),
            "records": len(records),
            "skip": [str(m) for m in skip],
        }
        before, last = plan_snapshot(stream, self._limits, fields)
        del stream
        prior: list[int] = []
        for outgoing in before:
            message = await post(self._http, self._channel_id, outgoing)
            prior.append(int(message["id"]))
            self._own.remember(prior[-1])
            self.posted.add(prior[-1])
        if last is not None:
            message = await post(self._http, self._channel_id, last.naming(prior))
        message_id = int(message["id"])
        self._own.remember(message_id)
        self.posted.add(message_id)
        for part in prior:
            self._parts[part] = message_id
        try:
            await self._http.pin_message(self._channel_id, message_id)
        except HTTPException:
            _log.warning("table %s: snapshot %d could not be pinned", self._table, message_id)
        else:
            self.pinned.append(message_id)
            await self._unpin_old()
        body = {
            "table": self._table,
            "channel": str(self._channel_id),
            "message": str(message_id),
            "from": fields["from"],
            "records": len(records),
        }
        await self._post_catalog("snapref", body)
        self.written += 1
        return True

    def forget(self, message_id: int) -> bool:
        """Drop a deleted snapshot (or a part of one) from the pins; return whether it was
        one of the pinned snapshots."""
        whole = self._parts.pop(message_id, message_id)
        if whole not in self.pinned:
            return False
        self.pinned.remove(whole)
        for part in [p for p, w in self._parts.items() if w == whole]:
            del self._parts[part]
        return True

    async def _unpin_old(self) -> None:
        # Discord keeps at most 250 pins per channel: keep the newest snapshots pinned only.
        while len(self.pinned) > _KEEP_PINNED:
            old = self.pinned.pop(0)
            for part in [p for p, w in self._parts.items() if w == old]:
                del self._parts[part]
            try:
                await self._http.unpin_message(self._channel_id, old)
            except HTTPException:
                _log.warning("table %s: old snapshot %d stays pinned", self._table, old)
