"""Transport compression for the gateway's outgoing frames (emulator layer, gateway side).

Layer: the emulator's gateway. Pure byte transforms; knows nothing of websockets or sessions.

Discord's transport compression shares one compression context across every payload of one
connection: ``zlib-stream`` ends each payload with a ``Z_SYNC_FLUSH`` (so the client sees the
``00 00 ff ff`` suffix and can inflate), ``zstd-stream`` flushes each payload without ending
the zstd frame. zstd is offered only where the standard library has it (Python 3.14's
``compression.zstd``); runtime dependencies may not grow for it.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

__all__ = [
    "SUPPORTED",
    "ZSTD_AVAILABLE",
    "StreamCompressor",
    "UnsupportedCompression",
    "ZlibStream",
    "new_compressor",
]

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


def _load_zstd() -> Any:
    try:
        return importlib.import_module("compression.zstd")
    except ImportError:
        return None


_zstd = _load_zstd()
ZSTD_AVAILABLE = _zstd is not None


class StreamCompressor(Protocol):
    """One connection's compression context."""

    def compress(self, payload: bytes) -> bytes:
        """Compress one payload so that the peer can decode it on its own frame's arrival."""
        ...


class ZlibStream:
    """``zlib-stream``: one deflate context per connection, a sync flush after each payload."""

    def __init__(self) -> None:
        self._context = zlib.compressobj()

    def compress(self, payload: bytes) -> bytes:
        """Deflate ``payload`` and flush, so that the frame ends with ``00 00 ff ff``."""
        return self._context.compress(payload) + self._context.flush(zlib.Z_SYNC_FLUSH)


class ZstdStream:
    """``zstd-stream``: one zstd context per connection, each payload flushed as a block."""

    def __init__(self) -> None:
        self._context = _zstd.ZstdCompressor()
        self._flush_mode = _zstd.ZstdCompressor.FLUSH_BLOCK

    def compress(self, payload: bytes) -> bytes:
        """Compress ``payload`` and flush the block without ending the zstd frame."""
        data: bytes = self._context.compress(payload, self._flush_mode)
        return data


class UnsupportedCompression(ValueError):
    """The client asked for a ``compress`` value this emulator cannot serve."""


SUPPORTED = ("zlib-stream", "zstd-stream") if ZSTD_AVAILABLE else ("zlib-stream",)


def new_compressor(name: str | None) -> StreamCompressor | None:
    """Return a fresh context for the ``compress`` query value, or None for plain text frames.

    Raises:
        UnsupportedCompression: ``name`` is not a transport compression served here.
    """
    if not name:
        return None
    if name == "zlib-stream":
        return ZlibStream()
    if name == "zstd-stream" and ZSTD_AVAILABLE:
        return ZstdStream()
    raise UnsupportedCompression(name)
