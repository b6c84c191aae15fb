"""One table's snapshots: finding the newest at open, writing new ones, keeping the pins
(storage layer: uses the HTTP client; the snapshot's bytes are ``snapshot.py``'s).

A snapshot is found through the table's pins and the catalog's ``snapref`` entries (whichever
starts replay later); a new one is posted in the table's channel, pinned, and recorded in the
catalog. Discord keeps at most 250 pins per channel, so only the newest few stay pinned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from discobase.http import HTTPClient
from discobase.http.errors import HTTPException
from discobase.storage import codec
from discobase.storage.own import OwnWrites
from discobase.storage.snapshot import SnapshotInfo, encode_records, header_info
from discobase.storage.writer import Limits, plan_stream, post

__all__ = ["Snapshots"]

_log = logging.getLogger("discobase.storage")

# Snapshots kept pinned per table; older ones are unpinned (the catalog still names them).
_KEEP_PINNED = 2
# Above this many records a snapshot is encoded in a thread, so the event loop keeps serving.
_THREAD_RECORDS = 2000


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

    async def find(
        self, catalog_snapshot: SnapshotInfo | None
    ) -> tuple[codec.Header, SnapshotInfo] | None:
        """Return the snapshot to open from (the one whose replay starts last), if any."""
        best: tuple[codec.Header, SnapshotInfo] | None = None
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
            header = codec.parse_header(message, self._bot_id)
            if header is None or header.kind != "snap":
                continue
            self.pinned.append(header.message_id)
            info = header_info(header, self._channel_id)
            if best is None or info.replay_from > best[1].replay_from:
                best = (header, info)
        self.pinned.sort()
        if catalog_snapshot is not None and (
            best is None or catalog_snapshot.replay_from > best[1].replay_from
        ):
            try:
                message = await self._http.fetch_message(
                    self._channel_id, catalog_snapshot.message_id
                )
                header = codec.parse_header(message, self._bot_id)
                if header is not None and header.kind == "snap":
                    best = (header, header_info(header, self._channel_id))
            except HTTPException:
                _log.warning("table %s: the catalog's snapshot is gone", self._table)
        return best

    async def write(
        self,
        records: Mapping[int, dict[str, Any]],
        recent: Mapping[int, int],
        position: int,
        skip: list[int],
    ) -> bool:
        """Post, pin and record a snapshot of ``records`` replaying after ``position``.

        Returns:
            Whether it was written (one too large for a message is not).

        Raises:
            HTTPException: Discord refused the snapshot or its catalog entry.
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
        plan = plan_stream("snap", stream, self._limits, **fields)
        if len(plan) > 1:
            _log.warning(
                "table %s: a snapshot would need %d messages; the log is kept instead",
                self._table,
                len(plan),
            )
            return False
        message = await post(self._http, self._channel_id, plan[0])
        message_id = int(message["id"])
        self._own.remember(message_id)
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
        """Drop a deleted snapshot from the pins; return whether it was one."""
        if message_id not in self.pinned:
            return False
        self.pinned.remove(message_id)
        return True

    async def _unpin_old(self) -> None:
        # Discord keeps at most 250 pins per channel: keep the newest snapshots pinned only.
        while len(self.pinned) > _KEEP_PINNED:
            old = self.pinned.pop(0)
            try:
                await self._http.unpin_message(self._channel_id, old)
            except HTTPException:
                _log.warning("table %s: old snapshot %d stays pinned", self._table, old)
