"""Administer a database from Discord: slash commands for a server's admins.

``/find``, ``/table``, ``/column``, ``/tablestats`` and ``/schema`` read; ``/insert``,
``/update``, ``/delete`` and ``/clear`` write, through the same ``Table`` API (validation,
storage, rate limiter) as code does. Opt-in: nothing is registered until the program asks::

    from discobase.commands import AdminCommands

    admin = AdminCommands(db)
    async with db.conn(token):
        await admin.register()      # guild commands in the database's own guild
        ...
        await admin.remove()        # one call takes them away

Layer: above the public API (``discobase.database``, ``discobase.table``) and the HTTP
client; raw ``INTERACTION_CREATE`` dispatches, no framework. See docs/guide/commands.md.
"""

from __future__ import annotations

from discobase.commands.admin import AdminCommands
from discobase.commands.definitions import COMMAND_NAMES, MANAGE_GUILD, definitions

__all__ = ["COMMAND_NAMES", "MANAGE_GUILD", "AdminCommands", "definitions"]
