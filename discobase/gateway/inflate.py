"""``zlib-stream`` transport decompression (gateway layer: pure, no I/O).

Discord compresses everything it sends on one connection through one zlib stream and ends each
payload with a ``Z_SYNC_FLUSH`` (``00 00 ff ff``). A payload may span several WebSocket frames,
so frames are buffered until the suffix arrives. The stream must never be reused across
connections: make a new :class:`ZlibStreamInflater` for every connection.
"""

from __future__ import annotations

import zlib

__all__ = ["ZLIB_SUFFIX", "InflateError", "ZlibStreamInflater"]

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


class InflateError(ValueError):
    """The compressed stream is corrupt; the connection must be dropped."""


class ZlibStreamInflater:
    """Inflate one connection's ``zlib-stream``."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj()
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        """Add one binary frame; return a whole payload once its suffix has arrived.

        Raises:
            InflateError: the data is not a valid zlib stream.
        """
        self._buffer += data
        if len(self._buffer) < 4 or self._buffer[-4:] != ZLIB_SUFFIX:
            return None
        chunk = bytes(self._buffer)
        self._buffer.clear()
        try:
            return self._inflater.decompress(chunk)
        except zlib.error as exc:
            raise InflateError(str(exc)) from exc
