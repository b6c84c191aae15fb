"""What a table's store needs of the engine that opened it (storage layer: a protocol only,
so the store and its repairs can both name it without importing the engine)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from discobase.http import HTTPClient
from discobase.storage.ids import IdGenerator
from discobase.storage.outgoing import Limits
from discobase.storage.own import OwnWrites
from discobase.storage.snapshot import SnapshotInfo

__all__ = ["StoreHost"]


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
