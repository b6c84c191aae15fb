"""Route, authenticate, rate-limit, fault-inject and answer every ``/api/v{9,10}`` request.

Layer: the emulator's REST side. Knows aiohttp's server API; knows nothing of the client.

Order of checks, as Discord applies them: a banned address gets Cloudflare's HTML; an unknown
path gets 404 and a known path with the wrong method 405; then the token (401), the bot's
global limit, injected faults, the route bucket(s), and finally the handler. Every 401, 403 and
non-``shared`` 429 counts toward the address's invalid-request limit.

A slow link (``Emulator.set_link``) acts before all of that, as the network does: every
request first waits the link's latency, and its body is received at the link's bandwidth
before Discord looks at it.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ..errors import ApiError, form_error, message_for
from ..faults import Trigger, rest_fault_kind, retry_after_header
from ..limits import Decision
from ..models import Bot
from .context import Backend, Context, Reply, Route
from .fields import is_snowflake

__all__ = ["Fault", "RestApi", "json_response"]

_log = logging.getLogger("discobase.emulator")

API_VERSIONS = ("9", "10")
_VERSIONED = re.compile(r"^/api(?:/v(?P<version>\d+))?(?P<path>/.*)?$")
_PARAM = re.compile(r"\{(\w+)\}")
_VIA = "1.1 google"
_BAN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Access denied | discord.com used Cloudflare to "
    b"restrict access</title></head>\n<body><h1>Error 1015</h1><p>You are being rate "
    b"limited.</p><p>The owner of this website (discord.com) has banned you temporarily "
    b"from accessing this website.</p></body></html>\n"
)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """Answer JSON with ``Content-Type: application/json`` exactly (no charset)."""
    response = web.Response(status=status, body=orjson.dumps(body), headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


@dataclass(slots=True)
class Fault:
    """An injected failure: answer ``status`` to matching requests, as ``trigger`` decides.

    Attributes:
        method: HTTP method, ``"*"`` for any.
        pattern: Searched in the path after ``/api/vN``.
        status: The status to answer.
        trigger: The next N matches, or each one with a probability.
        after_write: Perform the request first, then answer the error.
        scope: A 429's ``X-RateLimit-Scope``: ``user``, ``global`` or ``shared``.
        retry_after: A 429's wait, in Discord seconds.
        code: The JSON ``code`` (None: 0, Discord's general code).
        message: The JSON ``message`` (None: Discord's for ``code``, else the generic one).
    """

    method: str
    pattern: re.Pattern[str]
    status: int
    trigger: Trigger
    after_write: bool
    scope: str = "user"
    retry_after: float = 1.0
    code: int | None = None
    message: str | None = None

    @property
    def count(self) -> int | None:
        """Return the answers left of a counted fault (None: no limit)."""
        return self.trigger.count

    def matches(self, method: str, path: str) -> bool:
        """Return whether a request matches and the fault may still fire."""
        return (
            self.trigger.armed
            and (self.method == "*" or self.method == method)
            and self.pattern.search(path) is not None
        )


class Stats:
    """The REST counters behind ``Emulator.stats()``."""

    def __init__(self) -> None:
        self.requests_total = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.ratelimited: Counter[str] = Counter()
        self.invalid_requests = 0
        self.bans = 0
        self.banned_requests = 0
        self.faults = 0
        self.faults_by_kind: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        """Return a copy of every counter."""
        return {
            "requests_total": self.requests_total,
            "requests_by_route": dict(self.by_route),
            "responses_by_status": dict(self.by_status),
            "ratelimited_by_scope": {
                "user": self.ratelimited["user"],
                "global": self.ratelimited["global"],
                "shared": self.ratelimited["shared"],
            },
            "invalid_requests": self.invalid_requests,
            "bans": self.bans,
            "banned_requests": self.banned_requests,
            "faults_injected": self.faults,
            "faults_by_kind": dict(self.faults_by_kind),
        }


class RestApi:
    """Serve Discord's REST API for one emulator.

    Args:
        backend: What the REST side uses of the emulator.
        routes: The endpoints (see ``rest.routes.ROUTES``).
    """

    def __init__(self, backend: Backend, routes: Iterable[Route]) -> None:
        self._backend = backend
        self._clock = backend.state.clock
        self.stats = Stats()
        self.faults: list[Fault] = []
        # Indexed by first path segment, so matching tries a handful of patterns, not all.
        self._table: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for route in routes:
            first = route.template.split("/", 2)[1]
            self._table.setdefault(first, []).append((_compile(route.template), route))

    def reset(self) -> None:
        """Forget counters and pending faults."""
        self.stats = Stats()
        self.faults.clear()

    def add_fault(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int | None,
        after_write: bool,
        scope: str = "user",
        retry_after: float = 1.0,
        *,
        code: int | None = None,
        message: str | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Queue an injected failure (see ``Emulator.fail_next``) and return it.

        Raises:
            ValueError: an unknown scope, a status outside 400-599, or a bad count/probability.
        """
        if scope not in ("user", "global", "shared"):
            raise ValueError(f"scope must be user, global or shared, not {scope!r}")
        if not 400 <= int(status) <= 599:
            raise ValueError(f"an injected status must be an error (400-599), not {status}")
        fault = Fault(
            method.upper(),
            re.compile(path_regex),
            int(status),
            Trigger.of(count, probability),
            after_write,
            scope,
            float(retry_after),
            None if code is None else int(code),
            None if message is None else str(message),
        )
        self.faults.append(fault)
        return fault

    def remove_fault(self, fault: Fault) -> None:
        """Take one injected failure out of force, if it still is (chaos mode changing)."""
        # By identity: two faults with the same settings compare equal.
        self.faults[:] = [kept for kept in self.faults if kept is not fault]

    def clear_faults(self) -> None:
        """Forget every pending injected failure (counters stay)."""
        self.faults.clear()

    # -- the aiohttp entry point -----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request under ``/api``."""
        # A slow link's latency comes first: the request reaches Discord that much later.
        await self._backend.link.wait_latency()
        stats = self.stats
        stats.requests_total += 1
        limiter = self._backend.limiter
        now = self._clock.elapsed()
        address = request.remote or "?"
        banned = limiter.banned_for(address, now)
        if banned > 0:
            stats.banned_requests += 1
            stats.by_status[429] += 1
            return web.Response(
                status=429,
                body=_BAN_PAGE,
                headers={
                    "Content-Type": "text/html; charset=UTF-8",
                    "Retry-After": self._retry_after_header(banned),
                },
            )
        response, scope = await self._answer(request, now)
        # Discord's API answers pass Google's front end; only Cloudflare's ban page lacks it.
        response.headers.setdefault("Via", _VIA)
        status = response.status
        stats.by_status[status] += 1
        if status in (401, 403) or (status == 429 and scope != "shared"):
            stats.invalid_requests += 1
            if limiter.record_invalid(address, self._clock.elapsed()):
                stats.bans += 1
        return response

    async def _answer(self, request: web.Request, now: float) -> tuple[web.Response, str | None]:
        body = await self._receive(request)
        if body is not None:  # the upload took a while: the request arrives now
            now = self._clock.elapsed()
        match = _VERSIONED.match(request.path)
        if match is None:
            return _not_found(), None
        version, path = match.group("version"), match.group("path") or "/"
        if version not in API_VERSIONS:
            # Unversioned requests go to v6 on Discord; the emulator serves only v9 and v10.
            return json_response(400, {"message": "Invalid API version", "code": 50041}), None
        route, params = self._route(request.method, path)
        if route is None or params is None:
            if params is None:
                return _not_found(), None
            return json_response(405, {"message": "405: Method Not Allowed", "code": 0}), None
        self.stats.by_route[route.key] += 1
        bot = None
        if route.auth:
            bot = self._authenticate(request)
            if bot is None:
                return json_response(401, {"message": "401: Unauthorized", "code": 0}), None
            wait = self._backend.limiter.check_global(bot.id, now)
        elif not route.global_limit:  # interaction endpoints (facts 1.3)
            wait = 0.0
        else:  # without a token, the global limit applies per client address
            wait = self._backend.limiter.check_global(f"address:{request.remote}", now)
        if wait > 0:
            return self._global_429(wait), "global"
        for name, value in params.items():
            if name.endswith("_id") and not is_snowflake(value):
                error = form_error(name, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
                return json_response(error.status, error.body()), None
        fault = self._find_fault(request.method, path)
        ctx = Context(self._backend, request, bot, params, body=body)
        if fault is not None and not fault.after_write:
            self._consume(fault)
            return await self._fault_answer(fault, ctx, route, now), fault.scope
        headers: dict[str, str] = {}
        try:
            if bot is not None:
                decision, refused = await self._route_limits(ctx, route, bot.id, now)
                if decision is not None and refused is not None:
                    return self._route_429(decision, refused), "user"
                if decision is not None:
                    headers = self._rate_headers(decision)
            reply = await route.handler(ctx)
        except ApiError as error:
            reply = Reply(error.status, error.body())
        except Exception:
            # A bug of the emulator: answer like Discord's rare 500s (clients retry those) and
            # keep the traceback visible, instead of aiohttp's plain-text page.
            _log.exception("emulator error on %s %s", request.method, route.template)
            return self._error_500(), None
        if fault is not None and reply.status < 300 and self._consume(fault):
            # after_write: the handler ran and stored; answer the error. A request that failed
            # on its own leaves the fault for the next one.
            response = await self._fault_answer(fault, ctx, route, now)
            for name, value in headers.items():
                response.headers.setdefault(name, value)
            return response, fault.scope
        headers.update(reply.headers)
        if reply.body is None and reply.status == 204:
            return web.Response(status=204, headers=headers), None
        return json_response(reply.status, reply.body, headers), None

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None]:
        known = False
        for regex, route in self._table.get(path.split("/", 2)[1], ()):
            m = regex.match(path)
            if m is None:
                continue
            known = True
            if route.method == method:
                return route, m.groupdict()
        return None, ({} if known else None)

    def _authenticate(self, request: web.Request) -> Bot | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Bot" or not token:
            return None
        return self._backend.state.bot_by_token(token.strip())

    async def _receive(self, request: web.Request) -> bytes | None:
        """Receive the body over a slow link first, as the network would; None on a fast one.

        A body announced above the request limit is left to the handler, which refuses it
        before reading (413), as it does on a fast link.
        """
        link = self._backend.link
        limit = self._backend.max_request_size
        if link.upload_bytes_per_second is None or not request.body_exists:
            return None
        if request.content_length is not None and request.content_length > limit:
            return None
        try:
            return await link.receive(request.content, limit)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            # The client went away mid-upload (a killed process): there is no one to answer,
            # and nothing was received to act on.
            raise web.HTTPBadRequest() from None

    def _find_fault(self, method: str, path: str) -> Fault | None:
        # In the order they were added; a probability draws only for a request it matches, so
        # the draws follow the requests and the emulator's seed replays them.
        for fault in self.faults:
            if fault.matches(method, path) and fault.trigger.fires(self._backend.rng):
                return fault
        return None

    def _consume(self, fault: Fault) -> bool:
        """Use one answer of ``fault``; False if concurrent requests used them all first."""
        if not fault.trigger.spend():
            return False
        if fault.trigger.spent and fault in self.faults:
            self.faults.remove(fault)
        self.stats.faults += 1
        self.stats.faults_by_kind[rest_fault_kind(fault.status, fault.after_write)] += 1
        return True

    async def _fault_answer(
        self, fault: Fault, ctx: Context, route: Route, now: float
    ) -> web.Response:
        """Answer an injected failure before the handler runs.

        A user-scope 429 with a JSON code (20028, 20029, ...) is a sub-limit, not the route's
        own bucket: like the name/topic sub-limit it carries the route bucket's headers, whose
        ``Remaining`` may be above 0.
        """
        if fault.status == 429 and fault.scope == "user" and fault.code and ctx.has_bot:
            main = await self._main_bucket(ctx, route, ctx.bot.id, now)
            if main is not None:
                return self._route_429(main, fault.retry_after, fault.code, fault.message)
        if fault.status == 429 and fault.scope == "shared" and ctx.has_bot:
            # Discord's shared 429 carries the route bucket's headers too (its example in
            # topics/rate-limits shows Remaining 9): the caller's own quota is not spent.
            main = await self._main_bucket(ctx, route, ctx.bot.id, now)
            response = self._shared_429(fault.retry_after, fault.code or 0, fault.message)
            if main is not None:
                for name, value in self._rate_headers(main).items():
                    response.headers.setdefault(name, value)
            return response
        return self._fault_response(fault)

    def _fault_response(self, fault: Fault) -> web.Response:
        code = fault.code or 0
        if fault.status != 429:
            reason = _REASONS.get(fault.status, "Error")
            message = fault.message or message_for(code) or f"{fault.status}: {reason}"
            return json_response(fault.status, {"message": message, "code": code})
        if fault.scope == "global":
            return self._global_429(fault.retry_after, code, fault.message)
        if fault.scope == "shared":
            return self._shared_429(fault.retry_after, code, fault.message)
        decision = Decision(False, 1, 0, fault.retry_after, "injected-fault")
        return self._route_429(decision, fault.retry_after, code, fault.message)

    def _error_500(self) -> web.Response:
        return json_response(500, {"message": "500: Internal Server Error", "code": 0})

    def _shared_429(self, wait: float, code: int = 0, message: str | None = None) -> web.Response:
        # A limit on the resource, shared by everyone: it is not the caller's fault, so the
        # caller's own bucket may still have room and the answer does not count as invalid.
        self.stats.ratelimited["shared"] += 1
        retry_after = self._real(wait)
        headers = {
            "Retry-After": self._retry_after_header(wait),
            "X-RateLimit-Scope": "shared",
            "Via": _VIA,
        }
        body = {
            "message": message or message_for(code) or "The resource is being rate limited.",
            "retry_after": retry_after,
            "global": False,
            "code": code,
        }
        return json_response(429, body, headers)

    # -- rate limits ----------------------------------------------------------------------

    async def _route_limits(
        self, ctx: Context, route: Route, bot_id: str, now: float
    ) -> tuple[Decision | None, float | None]:
        """Take the request from its bucket(s); return the headers' bucket and any refusal.

        Returns:
            The decision whose headers the answer carries, and the Discord seconds to wait
            when refused (None when allowed). A refusal by a sub-limit (the second bucket)
            carries the *main* bucket's headers, whose ``Remaining`` may be above 0: that is
            how Discord shows a sub-limit.
        """
        names = await self._bucket_names(ctx, route)
        if not names:
            return None, None
        resource = self._resource(ctx, route, bot_id)
        limiter = self._backend.limiter
        for i, name in enumerate(names):
            peek = limiter.peek(name, resource, now)
            if not peek.allowed:
                main = peek if i == 0 else limiter.peek(names[0], resource, now)
                return main, peek.reset_after
        decisions = [limiter.check(name, resource, now) for name in names]
        return decisions[0], None

    async def _bucket_names(self, ctx: Context, route: Route) -> list[str]:
        if route.select is not None:
            return await route.select(ctx)
        return [route.limit] if route.limit else []

    def _resource(self, ctx: Context, route: Route, bot_id: str) -> str:
        major = ctx.params.get(route.major, "") if route.major else ""
        return f"{bot_id}:{major}"

    async def _main_bucket(
        self, ctx: Context, route: Route, bot_id: str, now: float
    ) -> Decision | None:
        """Return the route's main bucket as it stands, without taking a request from it."""
        names = await self._bucket_names(ctx, route)
        if not names:
            return None
        return self._backend.limiter.peek(names[0], self._resource(ctx, route, bot_id), now)

    def _rate_headers(self, decision: Decision) -> dict[str, str]:
        clock = self._clock
        reset_after = clock.to_real(decision.reset_after)
        return {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": f"{clock.wall() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": decision.bucket,
        }

    def _route_429(
        self, decision: Decision, wait: float, code: int = 0, message: str | None = None
    ) -> web.Response:
        self.stats.ratelimited["user"] += 1
        retry_after = self._real(wait)
        headers = self._rate_headers(decision)
        headers.update(
            {
                "Retry-After": self._retry_after_header(wait),
                "X-RateLimit-Scope": "user",
                "Via": _VIA,
            }
        )
        body = {
            "message": message or message_for(code) or "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
            "code": code,
        }
        return json_response(429, body, headers)

    def _global_429(self, wait: float, code: int = 0, message: str | None = None) -> web.Response:
        self.stats.ratelimited["global"] += 1
        retry_after = self._real(wait)
        headers = {
            "Retry-After": self._retry_after_header(wait),
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "global",
            "Via": _VIA,
        }
        body = {
            "message": message or message_for(code) or "You are being rate limited.",
            "retry_after": retry_after,
            "global": True,
            "code": code,
        }
        return json_response(429, body, headers)

    def _retry_after_header(self, discord_seconds: float) -> str:
        return retry_after_header(self._clock, discord_seconds)

    def _real(self, discord_seconds: float) -> float:
        # A float with millisecond precision, never 0 (a client would spin).
        return max(round(self._clock.to_real(discord_seconds), 3), 0.001)


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _compile(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    # split() alternates literal text and parameter names.
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def _not_found() -> web.Response:
    return json_response(404, {"message": "404: Not Found", "code": 0})
