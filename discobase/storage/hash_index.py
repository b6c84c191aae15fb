"""Hash indexes of a table's fields (storage layer: pure; knows nothing of messages or I/O).

An index maps a field's value to the ids of the records holding it. The log may hold
duplicates of a unique value (two processes racing), so even a unique index maps a value to
every id that has it; uniqueness is enforced before a write is sent (see ``TableState.check``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from discobase import _json

__all__ = ["ABSENT", "HashIndex", "held_key", "index_key"]

#: What an indexed field of a record that lacks it, and has no default, is read as: no key.
ABSENT: Any = object()


def index_key(value: Any) -> Any:
    """Return the hashable key of a JSON-mode value (``1``, ``1.0`` and ``True`` stay apart)."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if value is None:
        return None
    if kind is dict or kind is list:
        # Equal dicts with keys in another order must meet: serialise with sorted keys.
        return (kind.__name__, json.dumps(value, sort_keys=True, separators=(",", ":")))
    return (kind.__name__, _json.dumps_str(value))


def held_key(value: Any) -> Any:
    """Return the key an index holds a JSON-mode value under: :func:`index_key`'s, but a
    string's UTF-8 bytes (a bytes object is 16 bytes smaller than the string, and an index
    holds one key per distinct value; no other key is bytes)."""
    if type(value) is str:
        try:
            return value.encode()
        except UnicodeEncodeError:  # a lone surrogate (the same bytes otherwise)
            return value.encode("utf-8", "surrogatepass")
    return index_key(value)


class HashIndex:
    """Map a key to the ids holding it: an int for one id, a set beyond (most keys are one).

    Keys are made by :func:`held_key`.
    """

    __slots__ = ("_map", "_owned")

    def __init__(self) -> None:
        self._map: dict[Any, int | set[int]] = {}
        # In a fork, the keys whose sets are its own (the others are shared with the index
        # it was copied from, and copied before they change); None when every set is.
        self._owned: set[Any] | None = None

    @property
    def map(self) -> dict[Any, int | set[int]]:
        """Return key -> id (or ids) itself (to add a key not in it yet without a call)."""
        return self._map

    def fork(self) -> HashIndex:
        """Return a copy whose changes leave this index as it is (sets copied on write)."""
        twin = HashIndex()
        twin._map = self._map.copy()
        twin._owned = set()
        return twin

    def _own(self, key: Any, held: set[int]) -> set[int]:
        owned = self._owned
        if owned is None or key in owned:
            return held
        owned.add(key)
        mine = self._map[key] = set(held)
        return mine

    def add(self, key: Any, record_id: int) -> None:
        held = self._map.get(key)
        if held is None:
            self._map[key] = record_id
        elif isinstance(held, set):
            self._own(key, held).add(record_id)
        elif held != record_id:
            self._map[key] = {held, record_id}

    def remove(self, key: Any, record_id: int) -> None:
        held = self._map.get(key)
        if held is None:
            return
        if isinstance(held, set):
            held = self._own(key, held)
            held.discard(record_id)
            if len(held) == 1:
                self._map[key] = next(iter(held))
        elif held == record_id:
            del self._map[key]

    def clear(self) -> None:
        self._map.clear()

    def get(self, key: Any) -> Collection[int]:
        held = self._map.get(key)
        if held is None:
            return ()
        if isinstance(held, set):
            return frozenset(held)
        return (held,)
