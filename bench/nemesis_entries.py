"""The bot's entries in the local Discord's state, as the nemesis reads them.

Holds what ``bench/nemesis.py`` reads of the channels discobase writes to: the bot's
messages of a kind (log entries, snapshots, catalog entries), the writes a log entry held
(inline, in its attachments, or, for a part of a multi-part entry, in every part's files seen
before it was deleted), the record ids' keys, the catalog and table channels (a raced
table's too, once the catalog names it), the run's multi-part figures and the
``channels.jsonl`` dump of what the channels hold at the end.

It only reads the local Discord's state, never changes it (``nemesis_damage`` does), and must
not know the fault kinds, the schedule, the processes or how a run is judged: it fills
``Run``'s maps (record ids, batches' files, tables) and the ``nemesis_check.Deleted`` records
handed to it.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

from nemesis_check import CATALOG  # discobase's catalog channel name
from nemesis_run import Run


def body_of(message: Any, bot_id: str) -> dict[str, Any] | None:
    """Return a discobase message's decoded content, or ``None`` for any other message."""
    if str(message.author_id) != str(bot_id) or not message.content.startswith('{"discobase"'):
        return None
    with contextlib.suppress(ValueError):
        body = json.loads(message.content)
        return body if isinstance(body, dict) else None
    return None


def entries_in(run: Run, channel_id: str, kind: str = "log") -> list[tuple[Any, dict[str, Any]]]:
    """Return the bot's messages of ``kind`` in a channel, oldest first, with their content."""
    state = run.emu.state
    channel = state.channels.get(channel_id)
    if channel is None:
        return []
    out = []
    for message_id in channel.message_ids:
        message = state.messages.get(message_id)
        body = None if message is None else body_of(message, run.bot.id)
        if body is not None and body.get("t") == kind:
            out.append((message, body))
    return out


def _files_of(run: Run, message: Any) -> list[bytes] | None:
    """Return a message's attachments' bytes in filename order (``None``: one is gone)."""
    blobs = run.emu.state.blobs
    files = sorted(message.attachments, key=lambda a: a.filename)
    if any(a.id not in blobs for a in files):
        return None
    return [blobs[a.id] for a in files]


def _note_batches(run: Run, channel_id: str) -> None:
    """Remember the files of every part of a multi-part entry now in the channel: a part
    deleted later is decoded from them (the local Discord forgets a deleted one's files)."""
    for message, body in entries_in(run, channel_id):
        batch = body.get("batch")
        if batch is None:
            continue
        files = run.batch_files.setdefault(str(batch), {})
        part = int(body.get("part", 0))
        if part not in files:
            got = _files_of(run, message)
            if got is not None:
                files[part] = got


def writes_of(
    run: Run, table: str, body: dict[str, Any], message: Any = None
) -> list[tuple[str, int | None]] | None:
    """Return a log entry's writes as ``[("table/key", value or None)]``.

    Inline operations, or those of its attachments (a repair entry's); for a part of a
    multi-part entry, those of the whole batch, decoded from every part's files seen
    (``_note_batches``): ``None`` while a part was never seen. A delete names only a record
    id: its key comes from the entries seen before.
    """
    ops = body.get("ops")
    if not isinstance(ops, list):
        from discobase.storage import codec

        batch = body.get("batch")
        if batch is not None:
            seen = run.batch_files.get(str(batch), {})
            parts = int(body.get("parts", 1))
            if any(part not in seen for part in range(parts)):
                return None
            data = b"".join(piece for part in range(parts) for piece in seen[part])
        elif message is None or not message.attachments:
            return None
        else:
            files = _files_of(run, message)
            if files is None:
                return None
            data = b"".join(files)
        try:
            ops = codec.decode_stream(data)
        except Exception:  # noqa: BLE001 (unreadable: not decoded)
            return None
    writes: list[tuple[str, int | None]] = []
    for op in ops:
        if op[0] == "p":
            key = f"{table}/{op[2]['key']}"
            run.id_keys[str(op[1])] = key
            writes.append((key, int(op[2]["value"])))
        elif str(op[1]) in run.id_keys:
            writes.append((run.id_keys[str(op[1])], None))
    return writes


def learn_ids(run: Run) -> None:
    """Map record ids to keys from every entry now in the tables' channels."""
    for table, channel_id in run.tables.items():
        _note_batches(run, channel_id)
        for message, body in entries_in(run, channel_id):
            writes_of(run, table, body, message)


def resolve_parts(run: Run) -> None:
    """Decode the deleted parts whose batch was not yet whole when they were deleted (its
    writer was still posting it): its later parts are in the channel now."""
    for channel_id in run.tables.values():
        _note_batches(run, channel_id)
    for record, table, body in run.unresolved:
        writes = writes_of(run, table, body)
        if writes is not None:
            record.writes, record.inline = writes, True
    run.unresolved = [(r, t, b) for r, t, b in run.unresolved if not r.inline]


def names_of(body: dict[str, Any]) -> set[str]:
    """Return the entries an entry names: its ``prev``, and a last part's ``prior``."""
    prior = body.get("prior")
    return {str(body.get("prev", "")), *(map(str, prior) if isinstance(prior, list) else ())}


def note_race_tables(run: Run) -> None:
    """Add each raced table to ``run.tables`` once the catalog names its channel: the
    earliest of its entries whose channel still exists (the race's winner)."""
    state = run.emu.state
    for name in run.races:
        if name in run.tables:
            continue
        for _, body in entries_in(run, run.catalog_id, "table"):
            channel = str(body.get("channel", ""))
            if str(body.get("name", "")).lower() == name and channel in state.channels:
                run.tables[name] = channel
                break


def dump_channels(run: Run) -> None:
    """Write every entry left in the tables' channels (headers, no operations) to
    ``channels.jsonl``, to see what a failed run left behind."""
    with (run.workdir / "channels.jsonl").open("w") as f:
        for table, channel_id in [("catalog", run.catalog_id), *run.tables.items()]:
            for kind in ("log", "snap", "table", "loss"):
                for message, body in entries_in(run, channel_id, kind):
                    head = {k: v for k, v in body.items() if k != "ops"}
                    ops = body.get("ops")
                    f.write(json.dumps({"table": table, "id": str(message.id), **head,
                                        "inline": len(ops) if isinstance(ops, list) else None})
                            + "\n")  # fmt: skip


def multi_part_figures(run: Run) -> list[str]:
    """Return what the run wrote in several parts and what its table races did."""
    out = []
    batches: dict[str, set[str]] = {"log": set(), "snap": set()}
    parts: Counter[str] = Counter()
    for channel_id in run.tables.values():
        for kind in batches:
            for _, body in entries_in(run, channel_id, kind):
                if int(body.get("parts", 1)) > 1:
                    batches[kind].add(str(body.get("batch", body.get("prior", ""))))
                    parts[kind] += 1
    out.append(
        f"  multi-part ({'small' if run.config.small else 'default'} message limits): "
        f"log batches {len(batches['log'])} ({parts['log']} parts), snapshots "
        f"{len(batches['snap'])} ({parts['snap']} parts) in the channels at the end"
    )
    if run.races or run.race_kills:
        raced = sum(1 for t in run.races if len(run.race_channels.get(t, ())) > 1)
        kills = ", ".join(f"{k} {n}" for k, n in sorted(run.race_kills.items())) or "none"
        out.append(
            f"  table races: {len(run.races)} ({', '.join(run.races)}); with two channels "
            f"made (seen) {raced}; {kills}"
        )
    return out


def discover(run: Run) -> None:
    """Find the catalog channel and each table's channel (from the catalog's table entries)."""
    state = run.emu.state
    guild = state.guilds[run.guild_id]
    for channel_id in guild.channel_ids:
        if state.channels[channel_id].name == CATALOG:
            run.catalog_id = channel_id
    for _, body in entries_in(run, run.catalog_id, "table"):
        name = str(body.get("name", "")).lower()
        if name in ("owned", "shared") and name not in run.tables:
            run.tables[name] = str(body["channel"])
