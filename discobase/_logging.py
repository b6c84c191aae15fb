"""The ``discobase`` logger and its optional readable handler (shared leaf: no discobase
imports; ``import discobase`` loads it, so ``logging`` itself is imported on first use).

Every part of the client logs under ``discobase`` or a child (``discobase.storage``,
``discobase.table``, ...) and prints nothing by itself; `enable_logging` (or
``Database(logging=True)``) attaches one handler that writes to the standard error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

__all__ = ["enable_logging", "log"]


def log() -> logging.Logger:
    """Return the ``discobase`` logger (``logging`` is imported on first use, not at import)."""
    import logging

    return logging.getLogger("discobase")


# The one handler enable_logging() attaches, made on first use.
_handler: logging.Handler | None = None


def _stderr_handler() -> logging.Handler:
    """Return a handler that writes to ``sys.stderr`` as it is when a record is emitted.

    A plain ``StreamHandler()`` keeps the ``sys.stderr`` of the moment it was made, so
    output redirected later (pytest's capture, ``contextlib.redirect_stderr``, a daemon that
    swaps its streams) would still go to the old stream, or to a closed one.
    """
    import logging
    import sys

    class StderrHandler(logging.StreamHandler[Any]):
        @property
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass  # StreamHandler.__init__ and setStream() assign it; stderr is read at use

    return StderrHandler()


def enable_logging(level: int | None = None) -> None:
    """Attach a readable handler to the ``discobase`` logger (once per process).

    Args:
        level: the logger's level; INFO when not given.
    """
    import logging

    global _handler
    logger = log()
    if _handler is None:
        _handler = _stderr_handler()
        _handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        logger.addHandler(_handler)
    wanted = logging.INFO if level is None else level
    if logger.level == logging.NOTSET or logger.level > wanted:
        logger.setLevel(wanted)
