"""The catalog: which tables exist, where, with which schema (storage layer: pure; no I/O).

The catalog is the channel named ``discobase`` (the only channel ever found by name; every
other is found by the id stored here). Its entries are messages like every discobase message:

- ``{"discobase":1,"t":"db"}``: the database's format version, written first.
- ``{"discobase":1,"t":"table","name":..,"channel":"<id>","hash":..,"fields":{..},
  "indexes":{..},"schema":{..}}``: a table and its schema. The first entry of a name fixes the
  channel (two processes creating one table at once both adopt the earlier entry); the latest
  fixes the schema. An entry too long for ``content`` says ``"files":1`` and its attachment
  holds the whole entry as one zlib-compressed JSON line.
- ``{"discobase":1,"t":"snapref","table":..,"channel":"<id>","message":"<id>","from":"<id>",
  "records":N}``: a snapshot of a table, pinned in its channel.
- ``{"discobase":1,"t":"loss","table":..,"channel":"<id>","message":"<id>"}``: a log entry a
  live process saw deleted and could not write again; every later open reports it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from discobase.errors import SchemaMismatch, StorageCorrupted
from discobase.storage import codec
from discobase.storage.snapshot import SnapshotInfo

__all__ = [
    "CATALOG_CHANNEL",
    "Catalog",
    "TableEntry",
    "TableSpec",
    "check_schema",
    "schema_hash",
    "table_entry_body",
]

#: The catalog channel's name.
CATALOG_CHANNEL = "discobase"

_COSMETIC = frozenset({"title", "description", "default", "examples"})


@dataclass(frozen=True)
class TableSpec:
    """What the database layer declares about a table.

    Attributes:
        name: the lower-case table name.
        schema: pydantic's ``model_json_schema()`` of the table class.
        fields: field name -> has a default (for schema compatibility).
        indexes: indexed field name -> unique?
    """

    name: str
    schema: dict[str, Any]
    fields: Mapping[str, bool]
    indexes: Mapping[str, bool] = field(default_factory=dict)


@dataclass(slots=True)
class TableEntry:
    """A table as the catalog knows it.

    Attributes:
        name: the table's name.
        channel_id: its channel (from the first entry of the name).
        schema: its latest recorded schema.
        schema_hash: the hash of that schema.
        fields: field name -> has a default, as recorded.
        indexes: indexed field name -> unique?, as recorded.
        first_id: the message id of the first entry (which fixed the channel).
        latest_id: the message id of the entry the schema comes from.
    """

    name: str
    channel_id: int
    schema: dict[str, Any]
    schema_hash: str
    fields: dict[str, bool]
    indexes: dict[str, bool]
    first_id: int
    latest_id: int


def schema_hash(schema: Mapping[str, Any]) -> str:
    """Return a stable hash of a JSON schema (key order does not matter)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def table_entry_body(spec: TableSpec, channel_id: int) -> dict[str, Any]:
    """Return the catalog entry describing ``spec`` in ``channel_id`` (without the marker)."""
    return {
        "name": spec.name,
        "channel": str(channel_id),
        "hash": schema_hash(spec.schema),
        "fields": dict(spec.fields),
        "indexes": dict(spec.indexes),
        "schema": spec.schema,
    }


def _resolve(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline ``$ref`` targets and drop cosmetic keys, so only the shape of a type remains."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 16:
            target = defs.get(ref.removeprefix("#/$defs/"))
            if target is not None:
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return _resolve(merged, defs, depth + 1)
        return {k: _resolve(v, defs, depth) for k, v in node.items() if k not in _COSMETIC}
    if isinstance(node, list):
        return [_resolve(v, defs, depth) for v in node]
    return node


def _field_types(schema: Mapping[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs") or {}
    props = schema.get("properties") or {}
    return {name: _resolve(prop, defs) for name, prop in props.items()}


def check_schema(entry: TableEntry, spec: TableSpec) -> bool:
    """Check that ``spec`` may open a table stored with ``entry``'s schema.

    Returns:
        Whether the catalog should record the new schema (fields added, indexes changed).

    Raises:
        SchemaMismatch: a field was removed, changed type, or was added without a default;
            the error names every such field.
    """
    if entry.schema_hash == schema_hash(spec.schema) and entry.indexes == dict(spec.indexes):
        return False
    old_types = _field_types(entry.schema)
    new_types = _field_types(spec.schema)
    removed = sorted(name for name in entry.fields if name not in spec.fields)
    changed = sorted(
        name
        for name in entry.fields
        if name in spec.fields and old_types.get(name) != new_types.get(name)
    )
    bare = sorted(
        name for name, default in spec.fields.items() if name not in entry.fields and not default
    )
    problems: list[str] = []
    if removed:
        problems.append("removed: " + ", ".join(removed))
    if changed:
        problems.append("changed type: " + ", ".join(changed))
    if bare:
        problems.append("added without a default: " + ", ".join(bare))
    if problems:
        raise SchemaMismatch(
            f"table {spec.name!r} does not match its stored schema ({'; '.join(problems)}); "
            "keep the stored fields and types, or give new fields a default",
            table=spec.name,
            fields=removed + changed + bare,
        )
    return True


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
        )
        known = self.tables.get(name)
        if known is None:
            self.tables[name] = entry
            return
        if message_id < known.first_id:
            known.channel_id, known.first_id = entry.channel_id, message_id
        if message_id > known.latest_id and entry.channel_id == known.channel_id:
            known.schema, known.schema_hash = entry.schema, entry.schema_hash
            known.fields, known.indexes = entry.fields, entry.indexes
            known.latest_id = message_id

    def ingest_header(self, header: codec.Header, body: Mapping[str, Any] | None = None) -> None:
        """Fold a decoded catalog message (``body`` replaces the header for long entries)."""
        self.ingest(header.message_id, header.kind, body if body is not None else header.body)
