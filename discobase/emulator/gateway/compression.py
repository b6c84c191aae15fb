"""Transport compression for the gateway's outgoing frames (emulator layer, gateway side).

Layer: the emulator's gateway. Pure byte transforms; knows nothing of websockets or sessions.

Discord's transport compression shares one compression context across every payload of one
connection: ``zlib-stream`` ends each payload with a ``Z_SYNC_FLUSH`` (so the client sees the
``00 00 ff ff`` suffix and can inflate), ``zstd-stream`` flushes each payload without ending
the zstd frame. Discord serves both. Runtime dependencies may not grow for zstd, so it is
served with whichever zstd module the process can import: the standard library's
``compression.zstd`` (Python 3.14+), its backport ``backports.zstd`` (what hikari's ``zstd`` and
``speedups`` extras install) or ``zstandard`` (what discord.py prefers). A client that can
decode zstd brings one of them, so its default compression is served; with none, zstd-stream
closes with 4000.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

__all__ = [
    "SUPPORTED",
    "ZSTD_AVAILABLE",
    "ZSTD_MODULE",
    "StreamCompressor",
    "UnsupportedCompression",
    "ZlibStream",
    "new_compressor",
]

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


# compression.zstd and its backport share one API (PEP 784); zstandard has its own.
_ZSTD_MODULES = ("compression.zstd", "backports.zstd", "zstandard")


def _load_zstd() -> Any:
    for name in _ZSTD_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_zstd = _load_zstd()
ZSTD_AVAILABLE = _zstd is not None
ZSTD_MODULE: str | None = _zstd.__name__ if _zstd is not None else None


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
        self._zstandard = ZSTD_MODULE == "zstandard"
        if self._zstandard:
            self._context = _zstd.ZstdCompressor().compressobj()
            self._flush_mode = _zstd.COMPRESSOBJ_FLUSH_BLOCK
        else:
            self._context = _zstd.ZstdCompressor()
            self._flush_mode = _zstd.ZstdCompressor.FLUSH_BLOCK

    def compress(self, payload: bytes) -> bytes:
        """Compress ``payload`` and flush the block without ending the zstd frame."""
        if self._zstandard:
            data: bytes = self._context.compress(payload) + self._context.flush(self._flush_mode)
        else:
            data = self._context.compress(payload, self._flush_mode)
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
