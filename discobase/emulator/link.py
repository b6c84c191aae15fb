"""A slow link between the client and the local Discord: upload bandwidth and latency.

Layer: the emulator. Knows aiohttp's stream reader; nothing of the client.

Loopback moves a 24 MiB upload in milliseconds; a small container's uplink needs seconds, and
a client whose timeouts ignore the body's size never finishes a big write there (facts sheet,
"What Discord does not promise", item 7). The emulator reproduces that by *receiving* the body
at the link's rate: it reads the socket no faster than the bandwidth allows, so TCP's flow
control holds the sender back and the client's upload really takes that long. Both numbers are
Discord-clock quantities, scaled like every other wait (at time scale 0.01 a 100 KiB/s link
moves 10 MiB a real second).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import StreamReader

from .clock import Clock

__all__ = ["Link"]

# Pace in slices of about this many real seconds: fine enough that the body arrives evenly,
# coarse enough that a fast link does not spend its time in the event loop.
_SLICE = 0.01
_MAX_READ = 1 << 20


class Link:
    """The client's link: ``None`` means unlimited bandwidth and no latency.

    Args:
        clock: The Discord clock (for the time scale).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.upload_bytes_per_second: float | None = None
        self.latency: float | None = None

    def set(self, upload_bytes_per_second: float | None, latency: float | None) -> None:
        """Replace both settings (see ``Emulator.set_link``).

        Raises:
            ValueError: the bandwidth is not positive or the latency is negative.
        """
        if upload_bytes_per_second is not None and not upload_bytes_per_second > 0:
            raise ValueError("upload_bytes_per_second must be positive (None: unlimited)")
        if latency is not None and not latency >= 0:
            raise ValueError("latency must not be negative (None: none)")
        self.upload_bytes_per_second = (
            None if upload_bytes_per_second is None else float(upload_bytes_per_second)
        )
        self.latency = None if latency is None else float(latency)

    def reset(self) -> None:
        """Make the link fast again."""
        self.upload_bytes_per_second = self.latency = None

    def snapshot(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values."""
        return {"upload_bytes_per_second": self.upload_bytes_per_second, "latency": self.latency}

    async def wait_latency(self) -> None:
        """Sleep the link's latency (Discord seconds, scaled), if any."""
        if self.latency:
            await asyncio.sleep(self.clock.to_real(self.latency))

    async def receive(self, content: StreamReader, limit: int) -> bytes:
        """Read a request body no faster than the upload bandwidth allows.

        The n-th byte is taken no earlier than n / bandwidth after the first, so the whole body
        takes at least its size over the bandwidth, whatever the socket buffers hold.

        Args:
            content: The request's body stream.
            limit: Stop after ``limit + 1`` bytes (the caller refuses an oversized body).

        Returns:
            The body, or its first ``limit + 1`` bytes.
        """
        rate = self.upload_bytes_per_second
        size = _MAX_READ
        if rate is not None:
            real_rate = rate / max(self.clock.to_real(1.0), 1e-12)
            size = max(1, min(_MAX_READ, int(real_rate * _SLICE)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        parts: list[bytes] = []
        received = 0
        while received <= limit:
            chunk = await content.read(min(size, limit + 1 - received))
            if not chunk:
                break
            parts.append(chunk)
            received += len(chunk)
            if rate is None:
                continue
            delay = start + self.clock.to_real(received / rate) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return b"".join(parts)
