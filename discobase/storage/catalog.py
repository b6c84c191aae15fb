"""The catalog: which tables exist, where, with which schema (storage layer: pure; no I/O).

The catalog is the channel named ``discobase`` (the only channel ever found by name; every
other is found by the id stored here). Its entries are messages like every discobase message:

- ``{"discobase":1,"t":"db"}``: the database's format version, written first.
- ``{"discobase":1,"t":"table","name":..,"channel":"<id>","hash":..,"fields":{..},
  "indexes":{..},"schema":{..},"renames":{..}}``: a table and its schema. The first entry of a
  name fixes the channel (two processes creating one table at once both adopt the earlier
  entry); the latest fixes the schema. An entry too long for ``content`` says ``"files":1``
  and its attachment holds the whole entry as one zlib-compressed JSON line.
- ``{"discobase":1,"t":"snapref","table":..,"channel":"<id>","message":"<id>","from":"<id>",
  "records":N}``: a snapshot of a table, pinned in its channel.
- ``{"discobase":1,"t":"loss","table":..,"channel":"<id>","message":"<id>"}``: a log entry a
  live process saw deleted and could not write again; every later open reports it.

Schemas that several versions of a program share, and renames: ``evolution.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from discobase.errors import StorageCorrupted
from discobase.storage import codec
from discobase.storage.snapshot import SnapshotInfo

__all__ = [
    "CATALOG_CHANNEL",
    "Catalog",
    "TableEntry",
    "TableSpec",
    "entry_body",
    "rename_links",
    "schema_hash",
    "table_entry_body",
]

#: The catalog channel's name.
CATALOG_CHANNEL = "discobase"


@dataclass(frozen=True)
class TableSpec:
    """What the database layer declares about a table.

    Attributes:
        name: the lower-case table name.
        schema: pydantic's ``model_json_schema()`` of the table class.
        fields: field name -> has a default (for schema compatibility).
        indexes: indexed field name -> unique?
        renames: rename links, name -> the name it had before (declared renames; a
            field renamed twice brings two links, ``{"heading": "title", "title": "name"}``).
            Once a table is open, a `FormerNames` of every former name the catalog records
            for its fields.
    """

    name: str
    schema: dict[str, Any]
    fields: Mapping[str, bool]
    indexes: Mapping[str, bool] = field(default_factory=dict)
    renames: Mapping[str, str] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        """Return field name -> the value the schema says a record lacking it is read with."""
        properties = self.schema.get("properties") or {}
        return {
            name: prop["default"]
            for name, prop in properties.items()
            if isinstance(prop, dict) and "default" in prop
        }


@dataclass(slots=True)
class TableEntry:
    """A table as the catalog knows it.

    Attributes:
        name: the table's name.
        channel_id: its channel (from the first entry of the name).
        schema: its latest recorded schema.
        schema_hash: the hash of that schema.
        fields: field name -> whether records may lack it (it had a default when it was
            recorded), as recorded.
        indexes: indexed field name -> unique?, as recorded.
        first_id: the message id of the first entry (which fixed the channel).
        latest_id: the message id of the entry the schema comes from.
        renames: rename links, name -> the name it had before, as recorded.
    """

    name: str
    channel_id: int
    schema: dict[str, Any]
    schema_hash: str
    fields: dict[str, bool]
    indexes: dict[str, bool]
    first_id: int
    latest_id: int
    renames: dict[str, str] = field(default_factory=dict)


def rename_links(renames: Mapping[str, str]) -> dict[str, str]:
    """Return rename links ``{name: name before}`` of ``renames`` (links or `FormerNames`)."""
    links = getattr(renames, "links", None)  # a FormerNames (evolution.py) knows its links
    if callable(links):
        return dict(links())
    return dict(renames)


def schema_hash(schema: Mapping[str, Any]) -> str:
    """Return a stable hash of a JSON schema (key order does not matter)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def table_entry_body(spec: TableSpec, channel_id: int) -> dict[str, Any]:
    """Return the catalog entry describing ``spec`` in ``channel_id`` (without the marker)."""
    body: dict[str, Any] = {
        "name": spec.name,
        "channel": str(channel_id),
        "hash": schema_hash(spec.schema),
        "fields": dict(spec.fields),
        "indexes": dict(spec.indexes),
        "schema": spec.schema,
    }
    if spec.renames:
        body["renames"] = rename_links(spec.renames)
    return body


def entry_body(entry: TableEntry) -> dict[str, Any]:
    """Return the body of a catalog entry that records ``entry`` again (after a deletion)."""
    spec = TableSpec(entry.name, entry.schema, entry.fields, entry.indexes, entry.renames)
    return table_entry_body(spec, entry.channel_id)


class Catalog:
    """The catalog's entries, folded into the current picture of the database.

    Args:
        channel_id: the catalog channel.
    """

    def __init__(self, channel_id: int) -> None:
        self.channel_id = channel_id
        self.has_version = False
        self.tables: dict[str, TableEntry] = {}
        self.snapshots: dict[str, SnapshotInfo] = {}
        #: Table -> log entries a live process saw deleted and could not write again.
        self.losses: dict[str, list[int]] = {}
        self.cursor = 0
        # Table -> {entry id: the channel it names}: every entry, to find strays (see below).
        self._named: dict[str, dict[int, int]] = {}

    def ingest(self, message_id: int, kind: str, body: Mapping[str, Any]) -> None:
        """Fold one entry into the picture (entries may come in any order).

        Raises:
            StorageCorrupted: the entry lacks a field its kind needs.
        """
        self.cursor = max(self.cursor, message_id)
        try:
            if kind == "db":
                self.has_version = True
            elif kind == "table":
                self._ingest_table(message_id, body)
            elif kind == "loss":
                lost = self.losses.setdefault(str(body["table"]), [])
                if int(body["message"]) not in lost:
                    lost.append(int(body["message"]))
            elif kind == "snapref":
                info = SnapshotInfo(
                    message_id=int(body["message"]),
                    channel_id=int(body["channel"]),
                    replay_from=int(body["from"]),
                    records=int(body.get("records", 0)),
                )
                name = str(body["table"])
                known = self.snapshots.get(name)
                if known is None or info.replay_from > known.replay_from:
                    self.snapshots[name] = info
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageCorrupted(f"catalog entry {message_id} is malformed") from exc

    def _ingest_table(self, message_id: int, body: Mapping[str, Any]) -> None:
        name = str(body["name"])
        schema = body["schema"]
        if not isinstance(schema, dict):
            raise TypeError("schema")
        entry = TableEntry(
            name=name,
            channel_id=int(body["channel"]),
            schema=schema,
            schema_hash=str(body["hash"]),
            fields={str(k): bool(v) for k, v in dict(body["fields"]).items()},
            indexes={str(k): bool(v) for k, v in dict(body.get("indexes") or {}).items()},
            first_id=message_id,
            latest_id=message_id,
            renames={str(k): str(v) for k, v in dict(body.get("renames") or {}).items()},
        )
        self._named.setdefault(name, {})[message_id] = entry.channel_id
        known = self.tables.get(name)
        if known is None:
            self.tables[name] = entry
            return
        if message_id < known.first_id:
            known.channel_id, known.first_id = entry.channel_id, message_id
        if message_id > known.latest_id and entry.channel_id == known.channel_id:
            known.schema, known.schema_hash = entry.schema, entry.schema_hash
            known.fields, known.indexes = entry.fields, entry.indexes
            known.renames = entry.renames
            known.latest_id = message_id

    def strays(self, name: str) -> list[int]:
        """Return the ids of table ``name``'s entries that name another channel than its own.

        Only a process that lost the race to create the table writes one, and it deletes it
        at once (then its channel); one that died in between leaves it. Harmless while the
        first entry stands, it takes the table over (its channel, empty) for every later
        open once that entry is deleted and written again, later than it.
        """
        known = self.tables.get(name)
        if known is None:
            return []
        named = self._named.get(name, {})
        return sorted(m for m, channel in named.items() if channel != known.channel_id)

    def forget_entry(self, name: str, message_id: int) -> None:
        """Forget an entry of table ``name`` that was deleted (a stray, see `strays`)."""
        self._named.get(name, {}).pop(message_id, None)

    def ingest_header(self, header: codec.Header, body: Mapping[str, Any] | None = None) -> None:
        """Fold a decoded catalog message (``body`` replaces the header for long entries)."""
        self.ingest(header.message_id, header.kind, body if body is not None else header.body)
