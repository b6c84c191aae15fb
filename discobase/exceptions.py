"""discobase 1.0.0's error module, kept so that its imports still work (a shared leaf: it
re-exports discobase.errors and knows nothing else).

The original defined its errors here, and programs written for it import them from here
(``from discobase.exceptions import DatabaseLookupError``). These are the classes of
`discobase.errors` (the same objects, so an ``except`` clause naming either catches what is
raised); each 1.0.0 name is a base of the errors that replaced it (docs/versus-original.md).
New code imports from ``discobase`` or ``discobase.errors``.
"""

from __future__ import annotations

from discobase.errors import (
    DatabaseCorruptionError,
    DatabaseLookupError,
    DatabaseStorageError,
    DatabaseTableError,
    DiscobaseError,
    NotConnectedError,
)

__all__ = [
    "DatabaseCorruptionError",
    "DatabaseLookupError",
    "DatabaseStorageError",
    "DatabaseTableError",
    "DiscobaseError",
    "NotConnectedError",
]
