"""discobase: use a Discord bot as a database.

Tables are channels, records are messages. See the README and the documentation site.

This is the public namespace. Importing it loads neither pydantic's models nor aiohttp:
``Table`` (and with it pydantic) is loaded on first access, the HTTP and gateway clients when
a database logs in, and their errors on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discobase.database import Database
from discobase.errors import (
    AmbiguousGuild,
    DatabaseCorruptionError,
    DatabaseError,
    DatabaseLookupError,
    DatabaseStorageError,
    DatabaseTableError,
    DiscobaseError,
    GuildNotFound,
    InvalidQuery,
    MigrationFailed,
    MissingPermissions,
    MultipleRecordsFound,
    NotConnected,
    NotConnectedError,
    RecordNotFound,
    RecordStateError,
    SchemaMismatch,
    StartTimeout,
    StorageCorrupted,
    StorageDamaged,
    TableNotBuilt,
    TableNotRegistered,
    TableRegistrationError,
    UniqueConflict,
    UniqueViolation,
    UnreadableRecord,
    UnstorableRecord,
    UsageError,
)
from discobase.index import Index
from discobase.operators import Operator, contains, ge, gt, le, lt, ne, one_of, startswith
from discobase.results import Count, Records
from discobase.schema import Renamed

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from discobase.gateway.errors import GatewayError
    from discobase.http.errors import Forbidden, HTTPException, InvalidToken
    from discobase.table import Table
    from discobase.watch import Change, Watch, WatchOverflow

from discobase._version import __version__

__all__ = [
    "AmbiguousGuild",
    "Change",
    "Count",
    "Database",
    "DatabaseCorruptionError",
    "DatabaseError",
    "DatabaseLookupError",
    "DatabaseStorageError",
    "DatabaseTableError",
    "DiscobaseError",
    "Forbidden",
    "GatewayError",
    "GuildNotFound",
    "HTTPException",
    "Index",
    "InvalidQuery",
    "InvalidToken",
    "MigrationFailed",
    "MissingPermissions",
    "MultipleRecordsFound",
    "NotConnected",
    "NotConnectedError",
    "Operator",
    "RecordNotFound",
    "RecordStateError",
    "Records",
    "Renamed",
    "SchemaMismatch",
    "StartTimeout",
    "StorageCorrupted",
    "StorageDamaged",
    "Table",
    "TableNotBuilt",
    "TableNotRegistered",
    "TableRegistrationError",
    "UniqueConflict",
    "UniqueViolation",
    "UnreadableRecord",
    "UnstorableRecord",
    "UsageError",
    "Watch",
    "WatchOverflow",
    "__version__",
    "contains",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "one_of",
    "startswith",
]

# Loaded on first access. Errors of the layers below: importing discobase.http or
# discobase.gateway at import time would load asyncio's and aiohttp's neighbours for nothing.
# Table: its module loads pydantic's model machinery (about 100 ms, most of the import), which
# the command line, the emulator and a program that only catches discobase's errors never need.
_LAZY = {
    "Forbidden": "discobase.http.errors",
    "HTTPException": "discobase.http.errors",
    "InvalidToken": "discobase.http.errors",
    "GatewayError": "discobase.gateway.errors",
    "Table": "discobase.table",
    "Change": "discobase.watch",
    "Watch": "discobase.watch",
    "WatchOverflow": "discobase.watch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'discobase' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
