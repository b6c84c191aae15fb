"""Reading entries back from Discord (storage layer: REST reads; knows nothing of models or the
gateway).

History is paged forward with ``after=``: Discord returns each page newest first even then, so
the next cursor is the page's *largest* id. Attachments are downloaded from the URLs a message
carries; a refused download (the signed URL expired) fetches the message again for fresh ones.
Multi-part batches are held until their last part is seen; a last part that names the parts
before it (``prior``) has those fetched by id when they were not read (they lie before where
the read began).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from discobase.errors import StorageCorrupted
from discobase.http import HTTPClient
from discobase.http.errors import Forbidden, NotFound
from discobase.storage import codec

__all__ = [
    "BatchAssembler",
    "PartGone",
    "fetch_part",
    "fetch_prior",
    "fetch_stream",
    "named_parts",
    "page_forward",
]

PAGE = 100


async def page_forward(
    http: HTTPClient, channel_id: int, after: int = 0
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield a channel's messages after ``after``, oldest first, one page at a time."""
    cursor = after
    while True:
        page = await http.fetch_messages(channel_id, after=cursor, limit=PAGE)
        if not isinstance(page, list) or not page:
            return
        page = sorted(page, key=lambda m: int(m["id"]))
        cursor = int(page[-1]["id"])
        yield page
        if len(page) < PAGE:
            return


async def _download(http: HTTPClient, channel_id: int, header: codec.Header) -> list[bytes]:
    attachments = header.attachments
    try:
        return [await http.download_attachment(url) for _, url in attachments]
    except (Forbidden, NotFound):
        # Signed attachment URLs expire; a fresh fetch of the message signs them anew.
        message = await http.fetch_message(channel_id, header.message_id)
        fresh = sorted(
            (str(a["filename"]), str(a["url"])) for a in message.get("attachments") or ()
        )
        return [await http.download_attachment(url) for _, url in fresh]


async def fetch_stream(http: HTTPClient, channel_id: int, headers: list[codec.Header]) -> bytes:
    """Download the attachments of entries (parts in order) and join them into one stream."""
    chunks: list[bytes] = []
    for header in headers:
        files = await _download(http, channel_id, header)
        if len(files) < header.files:
            raise StorageCorrupted(f"entry {header.message_id} lost attachments")
        chunks.extend(files[: header.files])
    return b"".join(chunks)


@dataclass(slots=True)
class _Pending:
    parts: dict[int, codec.Header] = field(default_factory=dict)
    count: int = 1


class BatchAssembler:
    """Hold the parts of multi-part batches until each batch is complete."""

    def __init__(self) -> None:
        self._batches: dict[str, _Pending] = {}

    def add(self, header: codec.Header) -> list[codec.Header] | None:
        """Add a part; return every part in order once the batch is complete."""
        assert header.batch is not None
        pending = self._batches.setdefault(header.batch, _Pending(count=header.parts))
        if header.parts != pending.count:
            raise StorageCorrupted(f"entry {header.message_id} disagrees on its batch's size")
        pending.parts.setdefault(header.part, header)
        if len(pending.parts) < pending.count:
            return None
        del self._batches[header.batch]
        return [pending.parts[i] for i in range(pending.count)]

    def missing(self, header: codec.Header) -> list[int]:
        """Return the part indexes of ``header``'s batch not held yet."""
        assert header.batch is not None
        pending = self._batches.get(header.batch)
        held = pending.parts if pending is not None else {header.part: header}
        return [i for i in range(header.parts) if i not in held]

    def part_ids(self) -> frozenset[int]:
        """Return the message ids of the parts held for incomplete batches."""
        return frozenset(h.message_id for p in self._batches.values() for h in p.parts.values())

    def discard(self, batch: str) -> None:
        """Forget a batch's parts (it was applied from elsewhere)."""
        self._batches.pop(batch, None)

    def first_ids(self) -> list[int]:
        """Return the smallest part id of every incomplete batch."""
        return [min(h.message_id for h in p.parts.values()) for p in self._batches.values()]


class PartGone(Exception):
    """A part a batch's last part names is gone: the batch can never be applied.

    Attributes:
        part: the part's index.
        message_id: the message that held it.
    """

    def __init__(self, part: int, message_id: int) -> None:
        super().__init__(f"part {part} (message {message_id}) is gone")
        self.part = part
        self.message_id = message_id


def named_parts(header: codec.Header, what: str = "entry") -> list[int] | None:
    """Return the message ids of the parts before ``header`` that it names (``prior``, in
    part order), or ``None`` when it is not a last part naming them.

    Raises:
        StorageCorrupted: it names a wrong number of parts, or ids that are not ids.
    """
    prior = header.body.get("prior")
    if header.part != header.parts - 1 or not isinstance(prior, list):
        return None
    if len(prior) != header.parts - 1:
        raise StorageCorrupted(f"{what} {header.message_id} names a wrong number of parts")
    try:
        return [int(m) for m in prior]
    except (TypeError, ValueError) as exc:
        raise StorageCorrupted(f"{what} {header.message_id} names bad parts") from exc


async def fetch_part(
    http: HTTPClient,
    channel_id: int,
    bot_id: int,
    last: codec.Header,
    index: int,
    message_id: int,
    *,
    same: tuple[str, ...] = (),
) -> codec.Header:
    """Fetch part ``index`` of the batch whose last part is ``last``, from the message its
    ``prior`` names, and check that it is that part (of the same kind and batch, and with the
    same header ``same`` fields).

    Raises:
        NotFound: the message is gone.
        StorageCorrupted: the message is not that part.
        HTTPException: Discord refused the read.
    """
    message = await http.fetch_message(channel_id, message_id)
    part = codec.parse_header(message, bot_id)
    if (
        part is None
        or part.kind != last.kind
        or (part.batch, part.part, part.parts) != (last.batch, index, last.parts)
        or any(part.body.get(key) != last.body.get(key) for key in same)
    ):
        what = "snapshot" if last.kind == "snap" else "entry"
        raise StorageCorrupted(
            f"{what} {last.message_id}: message {message_id} is not its part {index}"
        )
    return part


async def fetch_prior(
    http: HTTPClient,
    channel_id: int,
    bot_id: int,
    assembler: BatchAssembler,
    header: codec.Header,
) -> list[codec.Header] | None:
    """Fetch the parts a batch's last part names (``prior``) that are not held; return the
    batch's parts once complete (``None``: not a last part naming them).

    The parts before it may lie before where the reader's read of the log began: a snapshot
    taken while the batch was incomplete for longer than ``BATCH_WINDOW_MS`` replays from
    after them. A part that is gone (deleted) leaves the batch incomplete.

    Raises:
        PartGone: a part it names is gone (nothing was added).
        StorageCorrupted: ``prior`` names a message that is not the part it says.
        HTTPException: Discord refused a read (nothing was added).
    """
    prior = named_parts(header)
    if prior is None:
        return None
    found: list[codec.Header] = []
    for index in assembler.missing(header):
        try:
            part = await fetch_part(http, channel_id, bot_id, header, index, prior[index])
        except NotFound:
            raise PartGone(index, prior[index]) from None
        found.append(part)
    parts = None
    for part in found:  # added once all are fetched: a failed fetch leaves the assembler as it was
        parts = assembler.add(part)
    return parts
