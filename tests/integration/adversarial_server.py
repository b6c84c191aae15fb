"""A scripted Discord that misbehaves the ways Discord has, for the REST client's tests.

It enforces fixed-window buckets per (hash, top-level resource) and a sliding global limit of
50 per Discord second, answers with time-scaled headers the way the emulator does, and counts
every 429 and every arrival server-side. Tests then add misbehaviour: skewed ``Reset`` clocks,
hash changes mid-queue, disagreeing ``Retry-After``, shared-scope 429s, Cloudflare HTML pages,
missing headers, global 429s, 401s, 5xx after a write, dropped connections.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

VIA = "1.1 google"


@dataclass
class Rule:
    """A rate-limit rule for requests matching ``method`` and ``pattern`` (a path regex)."""

    method: str
    pattern: str
    bucket: str
    limit: int
    period: float  # Discord seconds
    headers: bool = True  # send X-RateLimit-* at all
    hash_of: Callable[[int], str] | None = None  # by arrival index on this rule
    # Several real counters behind one route: the hash hash_of names picks (limit, period).
    counters: dict[str, tuple[int, float]] | None = None

    def matches(self, method: str, path: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, path) if method == self.method else None


@dataclass
class Arrival:
    at: float  # Discord seconds since start
    method: str
    path: str
    major: str
    status: int = 0
    answered: float = 0.0  # Discord seconds since start, when the answer was ready


@dataclass
class Injection:
    """Answer the next ``count`` requests matching ``method``/``pattern`` with ``respond``."""

    method: str
    pattern: str
    respond: Callable[[web.Request], Any]
    count: int = 1
    after_write: bool = False


@dataclass
class Window:
    """One fixed window of one bucket at one top-level resource, as the server counted it."""

    bucket: str = ""
    major: str = ""
    limit: int = 0
    starts: float = 0.0
    ends: float = 0.0
    count: int = 0  # requests admitted
    arrivals: int = 0  # requests that reached the bucket (admitted or refused with a 429)


DEFAULT_RULES = [
    Rule("POST", r"/channels/(\d+)/messages", "msg-create", 5, 5.0),
    Rule("GET", r"/channels/(\d+)/messages", "msg-list", 5, 5.0),
    Rule("GET", r"/channels/(\d+)", "chan-read", 10, 5.0),
    Rule("PATCH", r"/channels/(\d+)", "chan-edit", 10, 15.0),
    Rule("DELETE", r"/channels/(\d+)/messages/(\d+)", "msg-delete", 5, 1.0),
    Rule("GET", r"/users/@me", "me", 5, 5.0),
]


@dataclass
class AdversarialServer:
    """The server; ``async with AdversarialServer(time_scale=0.05) as srv: srv.url``."""

    time_scale: float = 0.05
    global_limit: int = 50
    rules: list[Rule] = field(default_factory=lambda: list(DEFAULT_RULES))
    reset_skew: float = 0.0  # added to X-RateLimit-Reset (a wall clock nobody should trust)
    token: str = "good-token"
    latency: float = 0.0  # real seconds each answer is held back (makes overlap visible)
    arrivals: list[Arrival] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    closed_windows: list[Window] = field(default_factory=list)
    rule_hits: dict[str, int] = field(default_factory=dict)
    concurrency: int = 0
    max_concurrency: int = 0
    url: str = ""

    async def __aenter__(self) -> AdversarialServer:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        # A stalled answer is cut at shutdown, not waited for: its client gave up long ago.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._t0 = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    # ------------------------------------------------------------------ measuring

    def now(self) -> float:
        """Discord seconds since the server started."""
        return (time.monotonic() - self._t0) / self.time_scale

    @property
    def rejected(self) -> int:
        """429s sent."""
        return sum(1 for a in self.arrivals if a.status == 429)

    def max_in_window(self, period: float, *, key: Callable[[Arrival], Any] = lambda a: 0) -> int:
        """The most arrivals sharing ``key`` in any sliding window of ``period`` Discord s."""
        groups: dict[Any, list[float]] = {}
        for arrival in self.arrivals:
            groups.setdefault(key(arrival), []).append(arrival.at)
        best = 0
        for times in groups.values():
            times.sort()
            lo = 0
            for hi, t in enumerate(times):
                while times[lo] <= t - period:
                    lo += 1
                best = max(best, hi - lo + 1)
        return best

    def bucket_windows(self) -> list[Window]:
        """Every bucket window so far (closed and current), in the order they opened."""
        return sorted([*self.closed_windows, *self.windows.values()], key=lambda w: w.starts)

    def overfull_windows(self) -> list[Window]:
        """The bucket windows that saw more requests than their limit allowed."""
        return [w for w in self.bucket_windows() if w.arrivals > w.limit]

    def check_limits(self) -> None:
        """Assert that no bucket window and no sliding second got more than was allowed."""
        over = self.overfull_windows()
        assert not over, f"bucket windows over their limit: {over}"
        busiest = self.max_in_window(1.0)
        assert busiest <= self.global_limit, f"{busiest} requests in one second"

    def stall(self, seconds: float) -> Callable[[web.Request], Any]:
        """An answer that comes only after ``seconds`` real seconds (a hung upstream)."""

        async def respond(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(seconds)
            return web.json_response({"message": "late", "code": 0}, status=500)

        return respond

    def inject(
        self,
        method: str,
        pattern: str,
        respond: Callable[[web.Request], Any],
        *,
        count: int = 1,
        after_write: bool = False,
    ) -> None:
        """Answer the next ``count`` matching requests with ``respond`` (before or after work)."""
        self.injections.append(Injection(method, pattern, respond, count, after_write))

    # ------------------------------------------------------------------ canned answers

    def ratelimited(
        self,
        *,
        retry_after: float,
        header_retry_after: float | None = None,
        scope: str = "user",
        is_global: bool = False,
        code: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> web.Response:
        """A Discord-style 429 (scaled like the emulator's)."""
        scaled = retry_after * self.time_scale
        header = scaled if header_retry_after is None else header_retry_after * self.time_scale
        headers = {"Via": VIA, "Retry-After": f"{header:.4f}", "X-RateLimit-Scope": scope}
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        headers.update(extra or {})
        body: dict[str, Any] = {
            "message": "You are being rate limited.",
            "retry_after": scaled,
            "global": is_global,
        }
        if code is not None:
            body["code"] = code
        return web.json_response(body, status=429, headers=headers)

    @staticmethod
    def error(status: int, message: str) -> Callable[[web.Request], web.Response]:
        """An answer for ``inject``: Discord's JSON error body with ``status``."""
        return lambda request: web.json_response({"message": message, "code": 0}, status=status)

    @staticmethod
    def cloudflare() -> web.Response:
        """Cloudflare's HTML 429: no Via, no JSON."""
        return web.Response(
            status=429,
            text="<html><body>Error 1015: You are being rate limited</body></html>",
            content_type="text/html",
            headers={"Retry-After": "3600"},
        )

    # ------------------------------------------------------------------ handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        now = self.now()
        rule, match = self._rule_for(request.method, path)
        major = match.group(1) if match and match.groups() else ""
        arrival = Arrival(now, request.method, path, major)
        self.arrivals.append(arrival)
        self.concurrency += 1
        self.max_concurrency = max(self.max_concurrency, self.concurrency)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await self._answer(request, path, now, rule, major)
        finally:
            self.concurrency -= 1
        arrival.status = response.status
        arrival.answered = self.now()
        return response

    def _rule_for(self, method: str, path: str) -> tuple[Rule | None, re.Match[str] | None]:
        for rule in self.rules:
            match = rule.matches(method, path)
            if match:
                return rule, match
        return None, None

    async def _forced(
        self, request: web.Request, path: str, after_write: bool
    ) -> web.StreamResponse | None:
        """Spend the first matching injection and return its answer, if it gives one."""
        for injection in self.injections:
            if (
                injection.count > 0
                and injection.after_write == after_write
                and injection.method == request.method
                and re.fullmatch(injection.pattern, path)
            ):
                injection.count -= 1
                forced = injection.respond(request)
                if inspect.isawaitable(forced):
                    forced = await forced
                return forced
        return None

    async def _answer(
        self, request: web.Request, path: str, now: float, rule: Rule | None, major: str
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        forced = await self._forced(request, path, after_write=False)
        if forced is not None:
            return forced
        recent = sum(1 for a in self.arrivals if a.at > now - 1.0)
        if recent > self.global_limit:
            return self.ratelimited(retry_after=1.0, scope="global", is_global=True)
        headers: dict[str, str] = {"Via": VIA}
        if rule is not None:
            hits = self.rule_hits.get(rule.bucket, 0)
            self.rule_hits[rule.bucket] = hits + 1
            bucket_hash = rule.hash_of(hits) if rule.hash_of else rule.bucket
            counter, limit, period = rule.bucket, rule.limit, rule.period
            if rule.counters is not None:
                counter = bucket_hash
                limit, period = rule.counters[bucket_hash]
            window = self.windows.get((counter, major))
            if window is None or now >= window.ends:
                if window is not None:
                    self.closed_windows.append(window)
                window = Window(counter, major, limit, now, now + period)
                self.windows[(counter, major)] = window
            window.arrivals += 1
            reset_after = (window.ends - now) * self.time_scale
            if rule.headers:
                headers.update(
                    {
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Reset-After": f"{reset_after:.4f}",
                        "X-RateLimit-Reset": f"{time.time() + reset_after + self.reset_skew:.3f}",
                        "X-RateLimit-Bucket": bucket_hash,
                    }
                )
            if window.count >= limit:
                extra = {**headers, "X-RateLimit-Remaining": "0"}
                return self.ratelimited(retry_after=window.ends - now, scope="user", extra=extra)
            window.count += 1
            if rule.headers:
                headers["X-RateLimit-Remaining"] = str(limit - window.count)
        body, status = await self._work(request, path)
        forced = await self._forced(request, path, after_write=True)
        if forced is not None:
            return forced
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    async def _work(self, request: web.Request, path: str) -> tuple[Any, int]:
        create = re.fullmatch(r"/channels/(\d+)/messages", path)
        if create and request.method == "POST":
            payload = await request.json()
            channel = self.messages.setdefault(create.group(1), [])
            nonce = payload.get("nonce")
            if payload.get("enforce_nonce") and nonce is not None:
                for message in channel:
                    if message.get("nonce") == nonce:
                        return message, 200
            message = {
                "id": str((int(time.time() * 1000) - 1420070400000) << 22 | len(channel)),
                "channel_id": create.group(1),
                "content": payload.get("content", ""),
                "nonce": nonce,
            }
            channel.append(message)
            return message, 200
        if request.method == "DELETE":
            return None, 204
        if request.method in ("PATCH", "GET"):
            body = await request.read()
            return (json.loads(body) if body else {"id": path.rsplit("/", 1)[-1]}), 200
        return {"id": "1"}, 200


def drop_connection(request: web.Request) -> web.StreamResponse | None:
    """Close the socket under the request: the client sees the connection drop."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)
