"""The REST client's typed methods, one module per section of ``routes.py`` (http layer).

Each group compiles its routes and shapes request bodies, then calls ``request()``;
:class:`~discobase.http.client.HTTPClient` joins the groups and does the sending (see
``base.py`` for the two methods a group may call).

- ``users.py``: the bot's user and application, its guilds, the gateway URL;
- ``guilds.py``: guilds, members, channels;
- ``messages.py``: messages and pins;
- ``commands.py``: application commands;
- ``interactions.py``: interaction callbacks, original responses, follow-ups.
"""

from __future__ import annotations

from discobase.http.endpoints.base import Endpoints
from discobase.http.endpoints.commands import ApplicationCommandEndpoints
from discobase.http.endpoints.guilds import GuildEndpoints
from discobase.http.endpoints.interactions import InteractionEndpoints
from discobase.http.endpoints.messages import MessageEndpoints
from discobase.http.endpoints.users import UserEndpoints

__all__ = [
    "ApplicationCommandEndpoints",
    "Endpoints",
    "GuildEndpoints",
    "InteractionEndpoints",
    "MessageEndpoints",
    "UserEndpoints",
]
