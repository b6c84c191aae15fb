"""discobase: use a Discord bot as a database.

Tables are channels, records are messages. See the README and the documentation site.
"""

from __future__ import annotations

from discobase.errors import DatabaseError, DiscobaseError, UsageError

__version__ = "0.1.0"

__all__ = ["DatabaseError", "DiscobaseError", "UsageError", "__version__"]
