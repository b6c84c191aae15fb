"""Keep the emulator's state in a stdlib sqlite3 file so that it survives restarts.

Layer: the emulator. Knows the state's records; nothing of HTTP or the client.

Every change is written through as one row per record (JSON), files as blobs. A channel's
message list is not stored: it is rebuilt from the messages on load, so that appending a
message writes one small row instead of the whole channel history.
"""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .models import Attachment, Bot, Channel, Guild, Member, Message, Role
from .snowflakes import snowflake_time

if TYPE_CHECKING:
    from .cdn import Cdn
    from .state import State

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (kind TEXT, key TEXT, data BLOB, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
"""


def _encode(kind: str, record: Any) -> bytes:
    if kind == "channel":
        data = {
            f.name: getattr(record, f.name)
            for f in dataclasses.fields(record)
            if f.name != "message_ids"
        }
    elif kind == "human":
        data = {"name": record}
    else:
        data = dataclasses.asdict(record)
    return orjson.dumps(data)


class SqliteStore:
    """Write state changes through to a sqlite3 database and load them back.

    Args:
        path: The database file (its directory is created).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit; WAL with synchronous=NORMAL keeps every write durable across a crash
        # of the process (not of the machine) without an fsync per request.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def save(self, kind: str, key: str, record: Any) -> None:
        """Insert or replace one record."""
        self._db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (kind, key, _encode(kind, record))
        )

    def delete(self, kind: str, key: str) -> None:
        """Delete one record."""
        self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

    def save_blob(self, key: str, data: bytes) -> None:
        """Store a file's bytes."""
        self._db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (key, data))

    def delete_blob(self, key: str) -> None:
        """Delete a file's bytes."""
        self._db.execute("DELETE FROM blobs WHERE key = ?", (key,))

    def clear(self) -> None:
        """Delete every record and file (the signing key stays)."""
        self._db.execute("DELETE FROM records")
        self._db.execute("DELETE FROM blobs")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _meta(self, key: str, default: bytes) -> bytes:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return bytes(row[0])
        self._db.execute("INSERT INTO meta VALUES (?, ?)", (key, default))
        return default

    def load_into(self, state: State, cdn: Cdn) -> None:
        """Fill an empty ``state`` from the file and attach this store to it."""
        cdn.key = self._meta("cdn_key", secrets.token_bytes(32))
        rows = self._db.execute("SELECT kind, key, data FROM records").fetchall()
        largest = 0
        messages: list[Message] = []
        for kind, key, raw in rows:
            data = orjson.loads(raw)
            if kind == "bot":
                state.add_bot(Bot(**data))
            elif kind == "human":
                state.humans[key] = data["name"]
            elif kind == "guild":
                guild = Guild(
                    id=data["id"],
                    name=data["name"],
                    owner_id=data["owner_id"],
                    roles={k: Role(**v) for k, v in data["roles"].items()},
                    members={k: Member(**v) for k, v in data["members"].items()},
                    channel_ids=list(data["channel_ids"]),
                )
                state.guilds[guild.id] = guild
            elif kind == "channel":
                data["pins"] = [(float(at), int(mid)) for at, mid in data.get("pins", [])]
                state.channels[key] = Channel(**data)
            elif kind == "message":
                data["attachments"] = [Attachment(**a) for a in data["attachments"]]
                messages.append(Message(**data))
            largest = max(largest, int(key) if key.isdigit() else 0)
        messages.sort(key=lambda m: m.id)
        for message in messages:
            state.messages[message.id] = message
            channel = state.channels.get(message.channel_id)
            if channel is not None:
                channel.message_ids.append(message.id)
                if channel.last_message_id is None or int(channel.last_message_id) < message.id:
                    channel.last_message_id = str(message.id)
        for message in messages:
            for attachment in message.attachments:
                state.blob_types[attachment.id] = attachment.content_type
        for key, blob in self._db.execute("SELECT key, data FROM blobs"):
            state.blobs[key] = bytes(blob)
        state.snowflakes.last = max(state.snowflakes.last, largest)
        if largest:
            # Ids must keep increasing even if the last run's Discord clock ran ahead.
            state.clock.not_before(snowflake_time(largest) + 0.001)
        state.store = self
