"""The storage engine under the database (storage layer: between the public API and http).

Each table is an append-only log of messages in its own channel, its state lives in memory,
snapshots bound the log, and a group-commit writer packs concurrent writes into as few
messages as the rate limit allows. ``docs/storage-format.md`` describes the bytes. This package
knows nothing of pydantic models or of the ``Database`` object; it takes JSON-mode dicts.
"""

from __future__ import annotations

from discobase.storage.catalog import TableSpec
from discobase.storage.codec import FORMAT_VERSION, Delete, Put
from discobase.storage.engine import StorageEngine
from discobase.storage.outgoing import Limits
from discobase.storage.store import TableStore

__all__ = ["FORMAT_VERSION", "Delete", "Limits", "Put", "StorageEngine", "TableSpec", "TableStore"]
