"""Chaos mode: every failure Discord may produce, at random, at given rates, from one seed.

Layer: the emulator. Built only on the emulator's own fault controls (``fail_next``,
``fail_cdn``, the gateway's dispatch faults, ``guild_outage``, ``drop`` and the link); knows
nothing of the client.

Theory: each kind of failure has a rate. Per-message kinds (a request, a download, a dispatch)
become probability faults in the existing fault lists, so the chance is drawn from the
emulator's seeded ``random`` once for each request, download or dispatch they match, in the
order those arrive: the same seed and the same traffic give the same failures. Guild outages,
socket drops and latency spikes are not tied to a message. A timer decides them once every
``tick`` Discord seconds, from a stream of numbers seeded once from the emulator's ``random``
when chaos is set, so the timer never shifts the draws of the requests. Each tick draws the
same count of numbers whatever happens, so the sequence of timed decisions replays too; when
they land relative to the traffic depends on the machine's timing.

Only failures that a correct client survives are chosen: each one is retryable or ends by
itself. A 401, a 403 (Cloudflare's 40333 included) or a 404 on the API would end a correct
client's work for good, so chaos never injects them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .cdn import Cdn
from .clock import Clock
from .gateway import GatewayServer
from .link import Link
from .rest.dispatch import RestApi

__all__ = ["CHAOS_KINDS", "TIMED_KINDS", "Chaos", "ChaosRun", "fault_summary"]

_log = logging.getLogger("discobase.emulator")

# Kinds decided per dispatch, download or request, each a probability fault.
DISPATCH_KINDS = ("dispatch_withhold", "dispatch_duplicate", "dispatch_reorder", "dispatch_delay")
CDN_KINDS = (
    "cdn_server_error",
    "cdn_rate_limited",
    "cdn_redirect",
    "cdn_slow",
    "cdn_truncated",
    "cdn_expired",
)
REST_KINDS = ("rest_server_error", "rest_server_error_after_write", "rest_rate_limited")
# Kinds decided by the timer, once per tick each.
TIMED_KINDS = ("guild_outage", "socket_drop", "latency")
CHAOS_KINDS = DISPATCH_KINDS + CDN_KINDS + REST_KINDS + TIMED_KINDS

# Discord's 5xx, as its front ends give them: the handler failed, the proxy found no backend,
# the service is overloaded, the backend timed out.
_SERVER_ERRORS = (500, 502, 503, 504)
_MESSAGES = r"^/channels/\d+/messages$"
_REST_FAULT_KINDS = tuple(
    kind + suffix
    for kind in ("server_error", "rate_limited", "client_error")
    for suffix in ("", "_after_write")
)


@dataclass(frozen=True)
class Chaos:
    """How often each failure happens in chaos mode.

    Every kind defaults to ``rate``; give a kind its own rate to change it (0 turns it off).
    A per-message kind's rate is the chance that one dispatch, download or request it applies
    to fails that way; a timed kind's rate is its chance at each ``tick``.

    Attributes:
        rate: The rate of every kind not given its own.
        dispatch_withhold: A dispatch is never sent (reference.mdx, "Consistency").
        dispatch_duplicate: A dispatch is sent twice.
        dispatch_reorder: A dispatch is held back behind 1 to ``reorder_window`` later ones.
        dispatch_delay: A dispatch is held ``dispatch_delay_seconds``; later ones overtake it.
        cdn_server_error: An attachment download gets 503.
        cdn_rate_limited: A download gets 429 with ``Retry-After``.
        cdn_redirect: A download gets 302 to a fresh URL of the same file.
        cdn_slow: A download trickles at ``cdn_slow_bytes_per_second``.
        cdn_truncated: A download's body is cut short.
        cdn_expired: A download gets the stale-URL 404 (fetching the message renews it).
        rest_server_error: A request gets 500, 502, 503 or 504 before anything is done.
        rest_server_error_after_write: A message create is stored, then answered with one.
        rest_rate_limited: A message create gets the channel write limit's 429 (code 20028).
        guild_outage: A guild goes down for ``outage_seconds`` (GUILD_DELETE unavailable,
            then GUILD_CREATE).
        socket_drop: One bot's gateway sockets are cut without a close frame.
        latency: API and CDN answers wait ``latency_seconds`` more until the next tick.
        tick: Discord seconds between the timer's decisions.
        outage_seconds: The shortest and longest outage, Discord seconds.
        latency_seconds: The smallest and largest added latency, Discord seconds.
        dispatch_delay_seconds: How long a delayed dispatch is held, Discord seconds.
        reorder_window: The most later dispatches a reordered one waits behind.
        cdn_slow_bytes_per_second: A slow download's rate, bytes per Discord second.
    """

    rate: float = 0.0
    dispatch_withhold: float | None = None
    dispatch_duplicate: float | None = None
    dispatch_reorder: float | None = None
    dispatch_delay: float | None = None
    cdn_server_error: float | None = None
    cdn_rate_limited: float | None = None
    cdn_redirect: float | None = None
    cdn_slow: float | None = None
    cdn_truncated: float | None = None
    cdn_expired: float | None = None
    rest_server_error: float | None = None
    rest_server_error_after_write: float | None = None
    rest_rate_limited: float | None = None
    guild_outage: float | None = None
    socket_drop: float | None = None
    latency: float | None = None
    tick: float = 10.0
    outage_seconds: tuple[float, float] = (5.0, 30.0)
    latency_seconds: tuple[float, float] = (0.2, 2.0)
    dispatch_delay_seconds: float = 2.0
    reorder_window: int = 3
    cdn_slow_bytes_per_second: float = 65_536.0

    def __post_init__(self) -> None:
        for name in ("rate", *CHAOS_KINDS):
            value = getattr(self, name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must lie between 0 and 1, not {value}")
        for name in ("outage_seconds", "latency_seconds"):
            low, high = (float(x) for x in getattr(self, name))
            if not 0.0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high")
            object.__setattr__(self, name, (low, high))
        if not self.tick > 0:
            raise ValueError("tick must be positive")
        if self.dispatch_delay_seconds < 0:
            raise ValueError("dispatch_delay_seconds must not be negative")
        if self.reorder_window < 1:
            raise ValueError("reorder_window must be at least 1")
        if not self.cdn_slow_bytes_per_second > 0:
            raise ValueError("cdn_slow_bytes_per_second must be positive")

    @classmethod
    def of(cls, value: Chaos | float | Mapping[str, Any] | None) -> Chaos | None:
        """Return the chaos ``value`` describes, or None for none.

        Args:
            value: A ``Chaos``; a number (every kind at that rate); a mapping of field names
                (``{"rate": 0.01, "socket_drop": 0}``); or None.

        Raises:
            ValueError: an unknown field or a rate outside 0..1.
        """
        if value is None or isinstance(value, Chaos):
            chaos = value
        elif isinstance(value, Mapping):
            # "rates" is what ``as_dict`` adds: an answer of the admin API can be sent back.
            value = {k: v for k, v in value.items() if k != "rates"}
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"unknown chaos settings: {', '.join(map(str, unknown))}")
            settings = dict(value)
            for name in ("outage_seconds", "latency_seconds"):
                if name in settings:
                    low, high = settings[name]
                    settings[name] = (float(low), float(high))
            chaos = cls(**settings)
        elif isinstance(value, bool):
            raise ValueError("chaos takes a rate, a mapping or a Chaos, not a bool")
        else:
            chaos = cls(rate=float(value))
        return chaos if chaos is not None and chaos.enabled else None

    def rate_of(self, kind: str) -> float:
        """Return the rate of ``kind`` (its own, else ``rate``)."""
        if kind not in CHAOS_KINDS:
            raise ValueError(f"unknown chaos kind {kind!r}")
        own = getattr(self, kind)
        return float(self.rate if own is None else own)

    @property
    def enabled(self) -> bool:
        """Return whether any kind has a rate above 0."""
        return any(self.rate_of(kind) > 0 for kind in CHAOS_KINDS)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values, with ``rates``: each kind's own rate."""
        out = asdict(self)
        out["outage_seconds"] = list(self.outage_seconds)
        out["latency_seconds"] = list(self.latency_seconds)
        out["rates"] = {kind: self.rate_of(kind) for kind in CHAOS_KINDS}
        return out


def _chained(rates: list[float]) -> list[float]:
    """Return the chances for faults tried in turn on the same thing so each has its rate.

    A later fault is drawn only when the earlier ones said no, so its chance is its rate over
    what the earlier ones leave; with rates adding up past 1 the last ones always fire.
    """
    out: list[float] = []
    left = 1.0
    for rate in rates:
        out.append(0.0 if rate <= 0 else min(1.0, rate / left) if left > 0 else 1.0)
        left = max(0.0, left - rate)
    return out


class ChaosRun:
    """Chaos in force on one emulator: its faults in the fault lists and its timer.

    Args:
        chaos: The rates.
        rng: The emulator's seeded source (one draw seeds the timer's own stream).
        rest: The REST API, whose fault list takes the request faults.
        cdn: The CDN, whose fault list takes the download faults.
        gateway: The gateway, which takes the dispatch faults, outages and drops.
        link: The client's link (latency spikes).
        clock: The Discord clock (the timer's tick).
        guilds: The guilds by id (where an outage may fall).
        counts: Where latency spikes are counted (``Emulator.chaos_counts``).
    """

    def __init__(
        self,
        chaos: Chaos,
        *,
        rng: random.Random,
        rest: RestApi,
        cdn: Cdn,
        gateway: GatewayServer,
        link: Link,
        clock: Clock,
        guilds: Mapping[str, Any],
        counts: Counter[str],
    ) -> None:
        self.chaos = chaos
        self._rest_api = rest
        self._cdn_server = cdn
        self._gateway = gateway
        self._link = link
        self._clock = clock
        self._guilds = guilds
        self._counts = counts
        # One draw from the emulator's source seeds the timer's own stream, so that timed
        # decisions never move the per-request draws and the seed still replays both.
        self._schedule = random.Random(rng.getrandbits(64))
        self._undo: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._spike: tuple[float | None, float] | None = None

    # -- per-message faults --------------------------------------------------------------

    def apply(self) -> None:
        """Put chaos's probability faults in force (after any already there)."""
        chaos, gateway = self.chaos, self._gateway
        withhold, duplicate, reorder, delay = _chained([chaos.rate_of(k) for k in DISPATCH_KINDS])
        if withhold > 0:
            self._dispatch(gateway.withhold_dispatches(probability=withhold))
        if duplicate > 0:
            self._dispatch(gateway.duplicate_dispatches(probability=duplicate))
        if reorder > 0:
            self._dispatch(gateway.reorder_dispatches(chaos.reorder_window, probability=reorder))
        if delay > 0:
            fault = gateway.delay_dispatches(chaos.dispatch_delay_seconds, probability=delay)
            if fault is not None:
                self._dispatch(fault)
        cdn = [chaos.rate_of(k) for k in CDN_KINDS]
        for kind, chance in zip(CDN_KINDS, _chained(cdn), strict=True):
            if chance > 0:
                self._cdn(kind.removeprefix("cdn_"), chance)
        spread = chaos.rate_of("rest_server_error") / len(_SERVER_ERRORS)
        for status, chance in zip(_SERVER_ERRORS, _chained([spread] * 4), strict=True):
            if chance > 0:
                self._rest("*", "^/", status, chance)
        spread = chaos.rate_of("rest_server_error_after_write") / len(_SERVER_ERRORS)
        for status, chance in zip(_SERVER_ERRORS, _chained([spread] * 4), strict=True):
            if chance > 0:
                self._rest("POST", _MESSAGES, status, chance, after_write=True)
        limited = chaos.rate_of("rest_rate_limited")
        if limited > 0:
            # Discord's example body asks for 0.3 s (PR #8290); a user-scope 429 with a code
            # carries the route bucket's headers, as a sub-limit does.
            self._rest("POST", _MESSAGES, 429, limited, code=20028, retry_after=0.3)

    def _dispatch(self, fault: Any) -> None:
        book = self._gateway.delivery.book
        self._undo.append(lambda: book.remove(fault))

    def _cdn(self, kind: str, chance: float) -> None:
        from .cdn_faults import CdnFault

        fault = CdnFault.build(
            kind,
            None,
            chance,
            bytes_per_second=self.chaos.cdn_slow_bytes_per_second,
        )
        cdn = self._cdn_server
        cdn.add_fault(fault)
        self._undo.append(lambda: cdn.remove_fault(fault))

    def _rest(self, method: str, path: str, status: int, chance: float, **shape: Any) -> None:
        rest = self._rest_api
        fault = rest.add_fault(
            method,
            path,
            status,
            None,
            bool(shape.pop("after_write", False)),
            probability=chance,
            **shape,
        )
        self._undo.append(lambda: rest.remove_fault(fault))

    def remove(self) -> None:
        """Take chaos's probability faults out of force (what they hold back is kept)."""
        for undo in self._undo:
            undo()
        self._undo.clear()

    # -- timed faults ---------------------------------------------------------------------

    @property
    def timed(self) -> bool:
        """Return whether any timed kind has a rate above 0."""
        return any(self.chaos.rate_of(kind) > 0 for kind in TIMED_KINDS)

    def start(self) -> None:
        """Start the timer (the emulator is serving)."""
        if self._task is None and self.timed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def cancel(self) -> None:
        """Stop the timer now and end a latency spike (for synchronous callers)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._end_spike()

    async def stop(self) -> None:
        """Stop the timer and wait for it to end."""
        task = self._task
        self.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._clock.to_real(self.chaos.tick))
            try:
                await self.tick()
            except Exception:  # a fault that cannot be injected now must not end chaos
                _log.exception("chaos: a timed fault failed")

    async def tick(self) -> None:
        """Decide the timed faults once: each kind draws three numbers, whatever happens."""
        self._end_spike()
        draws = {kind: [self._schedule.random() for _ in range(3)] for kind in TIMED_KINDS}
        chaos, gateway = self.chaos, self._gateway
        fire, pick, size = draws["guild_outage"]
        if fire < chaos.rate_of("guild_outage"):
            down = gateway.delivery.down
            guilds = sorted((g for g in self._guilds if g not in down), key=int)
            if guilds:
                low, high = chaos.outage_seconds
                gateway.guild_outage(_pick(guilds, pick), low + size * (high - low))
        fire, pick, _ = draws["socket_drop"]
        if fire < chaos.rate_of("socket_drop"):
            bots = sorted({c.bot_id for c in gateway.connections() if c.bot_id}, key=int)
            if bots:
                await gateway.drop(_pick(bots, pick))
        fire, size, _ = draws["latency"]
        if fire < chaos.rate_of("latency"):
            low, high = chaos.latency_seconds
            self._start_spike(low + size * (high - low))

    def _start_spike(self, extra: float) -> None:
        link = self._link
        before = link.latency
        link.latency = (before or 0.0) + extra
        self._spike = (before, link.latency)
        self._counts["latency"] += 1

    def _end_spike(self) -> None:
        spike, self._spike = self._spike, None
        if spike is not None and self._link.latency == spike[1]:
            # Put back what was there, unless someone set the link since.
            self._link.latency = spike[0]


def _pick(items: list[str], draw: float) -> str:
    return items[min(len(items) - 1, int(draw * len(items)))]


def fault_summary(
    rest: Mapping[str, Any],
    cdn: Mapping[str, Any],
    gateway: Mapping[str, Any],
    chaos_counts: Mapping[str, int],
) -> dict[str, int]:
    """Return every injected fault counted by kind, named as chaos names them, and ``total``.

    Faults injected by hand count too: ``fail_next`` under ``rest_*`` (``server_error``,
    ``rate_limited`` or ``client_error``, ``_after_write`` when stored first), ``fail_cdn``
    under ``cdn_*``, dispatch faults under ``dispatch_*``, ``guild_outage`` and
    ``unavailable_at_ready`` under ``guild_outage``, ``drop`` without a close code under
    ``socket_drop``; ``latency`` counts chaos's latency spikes only.
    """
    out: dict[str, int] = {}
    by_kind = rest.get("faults_by_kind", {})
    for kind in _REST_FAULT_KINDS:
        out[f"rest_{kind}"] = int(by_kind.get(kind, 0))
    for kind, count in cdn.get("faults", {}).items():
        out[f"cdn_{kind}"] = int(count)
    faults = gateway.get("faults", {})
    for kind, counter in (
        ("dispatch_withhold", "withheld"),
        ("dispatch_duplicate", "duplicated"),
        ("dispatch_reorder", "reordered"),
        ("dispatch_delay", "delayed"),
        ("guild_outage", "guild_outages"),
    ):
        out[kind] = int(faults.get(counter, 0))
    out["socket_drop"] = int(gateway.get("drops", 0))
    out["latency"] = int(chaos_counts.get("latency", 0))
    out["total"] = sum(out.values())
    return out
