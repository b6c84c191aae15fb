"""Command line failures (cli layer): a message for stderr and an exit status.

Knows nothing of Discord; the commands translate library errors into these.
"""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(Exception):
    """A command could not run; ``str()`` is shown to the user as it is.

    Attributes:
        status: the process exit status to return (1 failure, 2 usage).
    """

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
