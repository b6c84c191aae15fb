"""A one-line progress display for long dumps and loads (cli layer).

Shows records done, the rate, and the time left on one rewritten line of a terminal. It is
silent when the stream is not a terminal, so pipes and logs stay clean. The clock is injected
so tests need no real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_duration"]

# Redraw at most this often (seconds): a terminal cannot show faster, and writes cost.
_REDRAW_EVERY = 0.25


def format_duration(seconds: float) -> str:
    """Format a duration as ``m:ss`` or ``h:mm:ss``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


class Progress:
    """Report how far a run has come, on one line of a terminal.

    Args:
        stream: where to draw (stderr); nothing is drawn unless ``enabled``.
        total: how many records the run will handle, if known (for the time left).
        verb: what is being done to the records ("dumped", "loaded").
        enabled: whether to draw; by default, whether ``stream`` is a terminal.
        clock: monotonic seconds; ``time.monotonic`` by default.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None = None,
        verb: str = "done",
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.total = total
        self._verb = verb
        self.enabled = _is_tty(stream) if enabled is None else enabled
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None
        self.done = 0

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more records done and redraw if it is time."""
        self.done += count
        now = self._clock()
        if self._last_draw is None or now - self._last_draw >= _REDRAW_EVERY:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """Return the progress line as it would be drawn now."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done}" + (f"/{self.total}" if self.total is not None else "")]
        parts[0] += f" records {self._verb}"
        parts.append(f"{rate:.0f}/s")
        if self.total is not None and rate > 0:
            left = max(self.total - self.done, 0) / rate
            parts.append(f"{format_duration(left)} left")
        return ", ".join(parts)

    def finish(self) -> None:
        """Draw the final line and end it."""
        if self.enabled:
            self._stream.write("\r\x1b[K" + self.line() + "\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        self._last_draw = now
        if self.enabled:
            # \x1b[K clears what a longer previous line left behind.
            self._stream.write("\r\x1b[K" + self.line(now))
            self._stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
