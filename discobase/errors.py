"""The root of discobase's exception tree (shared leaf layer: imports nothing from discobase).

Every error discobase raises derives from `DiscobaseError`; nothing from aiohttp or
asyncio escapes a public call. Each layer defines its own branch next to its code and
``discobase/__init__.py`` re-exports them all:

```text
DiscobaseError
├── UsageError                   the caller used the API wrongly (this module)
│   └── ...                      NotConnected, TableNotBuilt, TableNotRegistered,
│                                TableRegistrationError, RecordStateError, InvalidQuery,
│                                UnstorableRecord (a value a reader could not read back)
├── HTTPException                discobase.http.errors: a request failed (status, code, route)
│   └── ...                      BadRequest, Unauthorized/InvalidToken, Forbidden, NotFound,
│                                ServerError, RateLimited, CloudflareBanned, TransportError
├── GatewayError                 discobase.gateway.errors: the gateway connection failed
│   └── ...                      GatewayClosed (with may_reconnect), handshake timeouts,
│                                identify budget exhausted
└── DatabaseError                this module: the database cannot do what was asked
    └── ...                      GuildNotFound, AmbiguousGuild, MissingPermissions,
                                 StartTimeout, SchemaMismatch (UniqueConflict: a unique
                                 index over duplicates), MigrationFailed, UniqueViolation,
                                 WatchOverflow (discobase.watch), RecordNotFound,
                                 MultipleRecordsFound, StorageDamaged (a channel or the
                                 catalog gone), StorageCorrupted
                                 └── UnreadableRecord (one stored record, skipped)
```

A token never appears in an error's message or repr.

The names of discobase 1.0.0's errors still catch what they caught: `DatabaseTableError`,
`DatabaseStorageError`, `DatabaseLookupError` and `DatabaseCorruptionError` are bases of the
errors that replaced them (docs/versus-original.md maps them), and `NotConnectedError` is
`NotConnected`.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousGuild",
    "DatabaseCorruptionError",
    "DatabaseError",
    "DatabaseLookupError",
    "DatabaseStorageError",
    "DatabaseTableError",
    "DiscobaseError",
    "GuildNotFound",
    "InvalidQuery",
    "MigrationFailed",
    "MissingPermissions",
    "MultipleRecordsFound",
    "NotConnected",
    "NotConnectedError",
    "RecordNotFound",
    "RecordStateError",
    "SchemaMismatch",
    "StartTimeout",
    "StorageCorrupted",
    "StorageDamaged",
    "TableNotBuilt",
    "TableNotRegistered",
    "TableRegistrationError",
    "UniqueConflict",
    "UniqueViolation",
    "UnreadableRecord",
    "UnstorableRecord",
    "UsageError",
]


class DiscobaseError(Exception):
    """Base class of every error discobase raises."""


class UsageError(DiscobaseError):
    """The API was used in a way it does not allow; the message says the right call."""


class DatabaseError(DiscobaseError):
    """The database could not do what was asked (missing guild, schema conflict, ...)."""


# -- discobase 1.0.0's names, kept as bases of what replaced them ---------------------------


class DatabaseTableError(DiscobaseError):
    """discobase 1.0.0's table error: TableRegistrationError, TableNotRegistered, TableNotBuilt."""


class DatabaseStorageError(DiscobaseError):
    """discobase 1.0.0's record state error: RecordStateError."""


class DatabaseLookupError(DiscobaseError):
    """discobase 1.0.0's lookup error: RecordNotFound, MultipleRecordsFound, InvalidQuery."""


class DatabaseCorruptionError(DiscobaseError):
    """discobase 1.0.0's corruption error: StorageCorrupted (and UnreadableRecord)."""


# -- the tree -------------------------------------------------------------------------------


class NotConnected(UsageError):
    """The database is not logged in (or was closed); use ``conn()``, ``login()`` first."""


#: discobase 1.0.0's name.
NotConnectedError = NotConnected


class TableNotBuilt(UsageError, DatabaseTableError):
    """A table was registered after login and not built; ``await db.build_tables()``."""


class TableNotRegistered(UsageError, DatabaseTableError):
    """A ``Table`` subclass was used without ``@db.table``; decorate it first."""


class InvalidQuery(UsageError, DatabaseLookupError):
    """A query names an unknown field, gives a value the field cannot hold, or is empty."""


class TableRegistrationError(UsageError, DatabaseTableError):
    """``@db.table`` was given something it cannot register (not a Table, duplicate name, ...)."""


class RecordStateError(UsageError, DatabaseStorageError):
    """A record operation does not fit its state (``save()`` on a saved record, ...)."""


class UnstorableRecord(UsageError):
    """A record holds a value that could not be read back once stored; nothing was written.

    Every record is encoded as it will be stored and checked to decode and validate again
    before a write is queued: a lone surrogate (``"\\ud800"``), values nested more than 200
    deep, an integer of more than 4300 digits, or a value the model's own validators refuse.

    Attributes:
        table: the table's name.
        field: the offending field, when it is known (``None`` otherwise).
        reason: why the value cannot be stored.
    """

    def __init__(self, message: str, *, table: str, field: str | None, reason: str) -> None:
        super().__init__(message)
        self.table = table
        self.field = field
        self.reason = reason


class GuildNotFound(DatabaseError):
    """No guild the bot is in matches the database; the message carries the invite link."""


class MissingPermissions(DatabaseError):
    """The bot lacks permissions discobase needs in its guild; found at start-up, before
    anything is read or written (without Read Message History, Discord answers reads with
    nothing at all, which would look like an empty database).

    Attributes:
        missing: every missing permission's name (``"Read Message History"``, ...).
        places: where each is missing: ``{"#notes (table 'note')": ["Pin Messages"], ...}``;
            ``"the server"`` when a channel must be created (Manage Channels, or the
            permissions a new channel inherits).
    """

    def __init__(self, message: str, *, missing: list[str], places: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.missing = missing
        self.places = places


class StartTimeout(DatabaseError):
    """The gateway did not become ready within the database's ``start_timeout``."""


class AmbiguousGuild(DatabaseError):
    """Several guilds share the database's name; pass ``guild_id``."""


class SchemaMismatch(DatabaseError):
    """The stored schema of a table is incompatible with its class.

    Attributes:
        table: the table's name.
        fields: the names of the offending fields.
        also: the other tables of the same login (or ``build_tables()``) that could not open
            either, one error each (their messages are in this one's too).
    """

    def __init__(self, message: str, *, table: str, fields: list[str]) -> None:
        super().__init__(message)
        self.table = table
        self.fields = fields
        self.also: list[SchemaMismatch] = []


class UniqueConflict(SchemaMismatch):
    """A unique index was declared on a field that stored records already hold twice.

    Nothing was recorded: the table did not open. Make the values unique first (with the
    index left out, or with ``db.migrate``), then declare the index again.

    Attributes:
        table: the table's name.
        fields: the fields concerned.
        duplicates: field -> {value (JSON-mode, as text): ids of the records holding it}.
    """

    def __init__(
        self, message: str, *, table: str, duplicates: dict[str, dict[str, list[int]]]
    ) -> None:
        super().__init__(message, table=table, fields=sorted(duplicates))
        self.duplicates = duplicates


class MigrationFailed(DatabaseError):
    """A migration could not rewrite a table; nothing was written (see ``db.migrate``).

    Attributes:
        table: the table's name.
        record_id: the record whose transform or validation failed, if one.
        reason: why.
    """

    def __init__(self, message: str, *, table: str, record_id: int | None, reason: str) -> None:
        super().__init__(message)
        self.table = table
        self.record_id = record_id
        self.reason = reason


class UniqueViolation(DatabaseError):
    """A write would give two records the same value of a unique index.

    Attributes:
        table: the table's name.
        field: the indexed field.
        value: the duplicated value (as stored, JSON-mode).
    """

    def __init__(self, message: str, *, table: str, field: str, value: object) -> None:
        super().__init__(message)
        self.table = table
        self.field = field
        self.value = value


class RecordNotFound(DatabaseError, DatabaseLookupError):
    """``find_unique(strict=True)`` or ``get`` found no record."""


class MultipleRecordsFound(DatabaseError, DatabaseLookupError):
    """``find_unique(strict=True)`` found more than one record."""


class StorageCorrupted(DatabaseError, DatabaseCorruptionError):
    """Stored data could not be decoded (an entry or snapshot is malformed)."""


class StorageDamaged(DatabaseError):
    """Someone removed what the database needs (a table's channel, the catalog channel): the
    message names the table and channel. discobase stops rather than start over beside it,
    which would hide the data that is still there.

    Attributes:
        table: the table concerned, if one.
        channel_id: the channel concerned, if one.
    """

    def __init__(
        self, message: str, *, table: str | None = None, channel_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.table = table
        self.channel_id = channel_id


class UnreadableRecord(StorageCorrupted):
    """One stored record does not fit its model (written by an older version, another program
    or by hand). Queries skip it and log a warning; ``get()`` of its id raises this, and
    ``Table.delete_id(id)`` deletes it.

    Attributes:
        table: the table's name.
        record_id: the record's id.
        channel_id: the table's channel, when known.
        message_id: the message holding the record's last write, when known.
        reason: why it cannot be read.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str,
        record_id: int,
        channel_id: int | None,
        message_id: int | None,
        reason: str,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.record_id = record_id
        self.channel_id = channel_id
        self.message_id = message_id
        self.reason = reason
