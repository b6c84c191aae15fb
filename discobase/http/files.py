"""File uploads and their multipart body (http layer: pure bytes, no aiohttp).

Discord takes uploads as ``multipart/form-data``: the JSON body in a ``payload_json`` part and
each file in a ``files[n]`` part, ``n`` matching ``attachments[].id`` in the JSON.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from discobase import _json

__all__ = ["File", "encode_multipart"]


@dataclass(frozen=True, slots=True)
class File:
    """A file to attach to a message.

    Attributes:
        filename: the name Discord shows and serves it under.
        data: the content.
        content_type: the part's MIME type.
        description: the attachment's alt text (at most 1024 characters).
    """

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    description: str | None = None

    def __repr__(self) -> str:
        return f"File(filename={self.filename!r}, size={len(self.data)})"


def _quote(value: str) -> str:
    # Quotes and line breaks would end the header early; escape as browsers do.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_multipart(payload: dict[str, Any], files: Sequence[File]) -> tuple[bytes, str]:
    """Build a multipart body carrying ``payload`` as ``payload_json`` and the files.

    ``payload["attachments"]`` is filled in (ids ``0..n-1``) unless the caller gave one.

    Args:
        payload: the JSON body.
        files: the files, in order.

    Returns:
        The body and its ``Content-Type`` header value (with the boundary).
    """
    payload = dict(payload)
    if "attachments" not in payload:
        attachments: list[dict[str, Any]] = []
        for index, file in enumerate(files):
            entry: dict[str, Any] = {"id": index, "filename": file.filename}
            if file.description is not None:
                entry["description"] = file.description
            attachments.append(entry)
        payload["attachments"] = attachments
    boundary = "discobase" + secrets.token_hex(16)
    parts: list[bytes] = []
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'
        "Content-Type: application/json\r\n\r\n"
    )
    parts.append(head.encode() + _json.dumps(payload) + b"\r\n")
    for index, file in enumerate(files):
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="files[{index}]"; filename="{_quote(file.filename)}"\r\n'
            f"Content-Type: {file.content_type}\r\n\r\n"
        )
        parts.append(head.encode() + bytes(file.data) + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
