"""What every group of typed methods needs from the client (http layer).

:class:`~discobase.http.client.HTTPClient` is made of the groups in this package, one per
section of ``routes.py``. A group only compiles routes and shapes bodies; sending, waiting for
the limiter and retrying belong to the client, reached through the two methods below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from discobase.http.files import File
from discobase.http.routes import CompiledRoute

__all__ = ["Endpoints"]


class Endpoints:
    """The client's side of the contract; ``HTTPClient`` implements both methods."""

    async def request(
        self,
        route: CompiledRoute,
        *,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        files: Sequence[File] | None = None,
        reason: str | None = None,
    ) -> Any:
        """Send a request through the limiter and return its decoded JSON."""
        raise NotImplementedError

    def _discord_now_ms(self) -> float:
        """Estimate Discord's current Unix time in milliseconds (message-age variants)."""
        raise NotImplementedError
