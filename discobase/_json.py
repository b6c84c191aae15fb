"""JSON encoding and decoding for the whole client (shared leaf layer).

orjson lives here and nowhere else in the client, so the choice of codec is one import.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON bytes."""
    return orjson.dumps(obj)


def dumps_str(obj: Any) -> str:
    """Encode ``obj`` as a compact JSON string."""
    return orjson.dumps(obj).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON bytes or text."""
    return orjson.loads(data)
