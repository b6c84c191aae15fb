"""Check the local Discord's answers against Discord's published OpenAPI spec.

Layer: test support for ``tests/conformance``. It knows Discord's spec
(``<repo>/../shared/data/discord-openapi.json``, OpenAPI 3.1, so JSON Schema 2020-12) and
HTTP; it must not know the emulator's code, so that a misunderstanding in the emulator cannot
leak into the judge. When the spec file is absent (a user's fresh clone), ``OpenAPISpec.load``
returns ``None``; callers then skip the checks that need it and still run everything else.

Three things live here:

- ``OpenAPISpec``: find the operation of a ``(method, path)`` pair, take the response object
  for a status (exact, then ``4XX``-style, then ``default``), resolve ``$ref`` and validate the
  JSON body (and the documented rate-limit headers) with ``jsonschema``, formats enforced.
  Where Discord's docs contradict the spec, ``apply_errata`` corrects the spec and says so.
- ``CheckedSession``: an aiohttp session wrapper whose every JSON answer is validated.
- ``SpecCheckingProxy``: a loopback reverse proxy that validates every answer passing through,
  so an unmodified third-party client can be judged without touching its internals.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
# CI checks the shared folder out beside the clone; an env var lets people point elsewhere.
DEFAULT_SPEC_PATH = REPO_ROOT.parent / "shared" / "data" / "discord-openapi.json"
SPEC_PATH_ENV = "DISCOBASE_OPENAPI_SPEC"
SPEC_URI = "urn:discord:openapi"
JSON_CONTENT_TYPE = "application/json"
_API_PREFIX = re.compile(r"^/api/v(?P<version>\d+)(?=/|$)")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_REPORTED_ERRORS = 5


class SpecViolation(AssertionError):
    """An answer does not match what Discord's spec says about it."""


def spec_path() -> Path:
    """Return where the spec is looked for (``$DISCOBASE_OPENAPI_SPEC`` wins)."""
    override = os.environ.get(SPEC_PATH_ENV)
    return Path(override) if override else DEFAULT_SPEC_PATH


def missing_spec_reason() -> str:
    """Say why the spec checks are skipped, for ``pytest.skip``."""
    return (
        f"Discord's OpenAPI spec was not found at {spec_path()} "
        f"(set {SPEC_PATH_ENV} or check out ../shared beside the repo); "
        "response-schema checks are skipped"
    )


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    # RFC 3339 requires an offset; a naive timestamp is ambiguous.
    return parsed.tzinfo is not None and "T" in value.upper()


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc) and " " not in value


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


def _is_snowflake(value: object) -> bool:
    # The pattern already forces a decimal string; a snowflake is also an unsigned 64-bit.
    return not isinstance(value, str) or not value.isdigit() or int(value) < 2**64


_FORMATS = {
    "date-time": _is_date_time,
    "uri": _is_uri,
    "int32": _is_int32,
    "int64": _is_int64,
    "snowflake": _is_snowflake,
}


def _format_checker() -> FormatChecker:
    """Enforce the formats the spec uses; jsonschema only annotates them by default."""
    checker = FormatChecker(formats=())
    for name, check in _FORMATS.items():
        checker.checks(name)(check)
    return checker


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


@dataclass(frozen=True)
class Operation:
    """One documented ``(method, path template)`` pair of the spec."""

    method: str
    template: str
    operation_id: str
    pointer: str


@dataclass(frozen=True)
class CheckResult:
    """What the spec says about one answer: the operation found and any problems."""

    operation: Operation | None
    validated: bool
    problems: tuple[str, ...] = ()

    def raise_for_problems(self, method: str, path: str, status: int) -> None:
        """Raise ``SpecViolation`` naming the request when the answer broke the spec."""
        if self.problems:
            op = self.operation.operation_id if self.operation else "no operation"
            details = "\n  ".join(self.problems)
            raise SpecViolation(f"{method} {path} -> {status} ({op}) breaks the spec:\n  {details}")


def apply_errata(document: dict[str, Any]) -> list[str]:
    """Correct the spec where Discord's own docs contradict it; return what was changed.

    Each change is one the docs state outright, so the judge follows Discord, not a typo:

    - ``InnerErrors._errors[]`` reuses ``Error``, whose ``code`` is an integer; the docs'
      "Error Messages" examples show leaf codes as strings (``"BASE_TYPE_REQUIRED"``).
    """
    changed: list[str] = []
    schemas = document.get("components", {}).get("schemas", {})
    inner = schemas.get("InnerErrors", {}).get("properties", {}).get("_errors")
    if (
        isinstance(inner, dict)
        and inner.get("items", {}).get("$ref") == "#/components/schemas/Error"
    ):
        inner["items"] = {
            "type": "object",
            "properties": {"code": {"type": ["string", "integer"]}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
        changed.append("InnerErrors._errors[].code may be a string")
    return changed


class OpenAPISpec:
    """Discord's OpenAPI document, indexed for response validation."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        """Index the document's operations and prepare a ``$ref`` registry.

        Args:
            document: the parsed OpenAPI 3.1 document.
        """
        self.document = document
        resource: Resource[Any] = DRAFT202012.create_resource(document)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._checker = _format_checker()
        self._validators: dict[str, Draft202012Validator] = {}
        self._operations: list[tuple[tuple[str, ...], Operation]] = []
        for template, item in document.get("paths", {}).items():
            segments = tuple(template.strip("/").split("/"))
            for method in _METHODS:
                if method in item:
                    op = Operation(
                        method=method.upper(),
                        template=template,
                        operation_id=item[method].get("operationId", f"{method} {template}"),
                        pointer=f"/paths/{_escape(template)}/{method}",
                    )
                    self._operations.append((segments, op))

    @classmethod
    def load(cls, path: Path | None = None) -> OpenAPISpec | None:
        """Load the spec from ``path`` (default: ``spec_path()``), or return None if absent."""
        target = path or spec_path()
        if not target.is_file():
            return None
        with target.open("rb") as fh:
            document = json.load(fh)
        apply_errata(document)
        return cls(document)

    # -- lookup -------------------------------------------------------------------------

    def resolve(self, pointer: str) -> Any:
        """Return the node at a JSON pointer (``/a/b``) inside the document."""
        node: Any = self.document
        for token in pointer.strip("/").split("/") if pointer.strip("/") else ():
            key = _unescape(token)
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    def _follow(self, pointer: str) -> str:
        """Follow ``$ref`` chains of non-schema objects (responses); return the final pointer."""
        for _ in range(16):
            node = self.resolve(pointer)
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not isinstance(ref, str):
                return pointer
            if not ref.startswith("#"):
                raise ValueError(f"external $ref not supported: {ref}")
            pointer = ref[1:]
        raise ValueError(f"$ref loop at {pointer}")

    def find_operation(self, method: str, path: str) -> Operation | None:
        """Find the documented operation for a request.

        Args:
            method: the HTTP method.
            path: the request path, with or without ``/api/vN`` and a query string.

        Returns:
            The operation, preferring literal segments over parameters
            (``/messages/pins`` over ``/messages/{message_id}``), or None.
        """
        bare = _API_PREFIX.sub("", urlsplit(path).path) or "/"
        wanted = tuple(bare.strip("/").split("/"))
        best: tuple[int, Operation] | None = None
        for segments, op in self._operations:
            if op.method != method.upper() or len(segments) != len(wanted):
                continue
            literal = 0
            for template_seg, seg in zip(segments, wanted, strict=True):
                if template_seg.startswith("{") and template_seg.endswith("}"):
                    if not seg:
                        break
                elif template_seg == seg:
                    literal += 1
                else:
                    break
            else:
                if best is None or literal > best[0]:
                    best = (literal, op)
        return best[1] if best else None

    def response_pointer(self, operation: Operation, status: int) -> str | None:
        """Return the pointer of the response object documented for a status, if any."""
        responses = self.resolve(operation.pointer).get("responses", {})
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in responses:
                return self._follow(f"{operation.pointer}/responses/{_escape(key)}")
        return None

    # -- validation ---------------------------------------------------------------------

    def validator(self, schema_pointer: str) -> Draft202012Validator:
        """Return a (cached) validator for the schema at a pointer of the document."""
        cached = self._validators.get(schema_pointer)
        if cached is None:
            cached = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{schema_pointer}"},
                registry=self._registry,
                format_checker=self._checker,
            )
            self._validators[schema_pointer] = cached
        return cached

    def validate(self, value: Any, schema_pointer: str) -> list[str]:
        """Validate a decoded JSON value against the schema at a pointer; return problems."""
        errors = list(self.validator(schema_pointer).iter_errors(value))
        return [_describe(error) for error in _most_relevant(errors)]

    def validate_schema(self, value: Any, name: str) -> list[str]:
        """Validate a value against ``#/components/schemas/<name>``; return problems."""
        return self.validate(value, f"/components/schemas/{_escape(name)}")

    def check_response(
        self,
        method: str,
        path: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> CheckResult:
        """Check one answer against the spec.

        Only paths under ``/api/vN`` are Discord's; others (the CDN, the admin API) are not
        checked. An error answer on a route the spec lacks is still checked against the
        spec's generic error schemas, since Discord sends those bodies on every route.

        Args:
            method: the request method.
            path: the request path (query string allowed).
            status: the response status.
            headers: the response headers.
            body: the raw response body.

        Returns:
            The operation found, whether a schema was applied, and the problems seen.
        """
        if not _API_PREFIX.match(urlsplit(path).path):
            return CheckResult(None, validated=False)
        operation = self.find_operation(method, path)
        content_type = headers.get("Content-Type", "")
        is_json = content_type.split(";")[0].strip() == JSON_CONTENT_TYPE
        problems: list[str] = []
        if is_json and content_type != JSON_CONTENT_TYPE:
            problems.append(
                f"Content-Type is {content_type!r}, Discord sends exactly 'application/json'"
            )
        decoded: Any = None
        if is_json:
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                problems.append(f"body is not valid JSON: {exc}")
                return CheckResult(operation, validated=False, problems=tuple(problems))

        if operation is None:
            if status >= 400 and is_json:
                name = "RatelimitedResponse" if status == 429 else "ErrorResponse"
                problems += self.validate_schema(decoded, name)
                return CheckResult(None, validated=True, problems=tuple(problems))
            return CheckResult(None, validated=False, problems=tuple(problems))

        response = self.response_pointer(operation, status)
        if response is None:
            if 200 <= status < 300:
                problems.append(f"status {status} is not documented for {operation.operation_id}")
            return CheckResult(operation, validated=False, problems=tuple(problems))

        response_object = self.resolve(response)
        problems += self._check_headers(response_object, headers)
        content = response_object.get("content")
        if not content:
            if body.strip():
                problems.append(f"the spec documents no body for {status}, got {body[:80]!r}")
            return CheckResult(operation, validated=True, problems=tuple(problems))
        if JSON_CONTENT_TYPE not in content:
            return CheckResult(operation, validated=False, problems=tuple(problems))
        if not is_json and status == 429:
            # Cloudflare's ban page (HTML, no Via) comes from the edge, not the API the spec
            # describes; the rate-limit tests check it on its own terms.
            return CheckResult(operation, validated=False, problems=tuple(problems))
        if not is_json:
            problems.append(f"expected a JSON body, got Content-Type {content_type!r}")
            return CheckResult(operation, validated=False, problems=tuple(problems))
        schema_pointer = f"{response}/content/{_escape(JSON_CONTENT_TYPE)}/schema"
        problems += self.validate(decoded, schema_pointer)
        return CheckResult(operation, validated=True, problems=tuple(problems))

    def _check_headers(
        self, response_object: Mapping[str, Any], headers: Mapping[str, str]
    ) -> list[str]:
        """Check the documented headers that are present; the spec makes none of them required."""
        problems: list[str] = []
        for name, spec in response_object.get("headers", {}).items():
            value = headers.get(name)
            if value is None:
                continue
            if "$ref" in spec:
                spec = self.resolve(spec["$ref"][1:])
            kind = spec.get("schema", {}).get("type")
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                problems.append(f"header {name}: {value!r} is not an integer")
            elif kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
                problems.append(f"header {name}: {value!r} is not a number")
        return problems


def _most_relevant(errors: list[ValidationError]) -> Iterator[ValidationError]:
    """Yield a few errors, each reduced to its most specific cause."""
    for error in errors[:_MAX_REPORTED_ERRORS]:
        yield best_match([error]) if error.context else error


def _describe(error: ValidationError) -> str:
    location = "$" + "".join(
        f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
    )
    message = error.message if len(error.message) < 300 else error.message[:300] + "..."
    return f"{location}: {message}"


# -- a session whose every JSON answer is validated -----------------------------------------


@dataclass
class Reply:
    """One answer, fully read: status, headers and raw body."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        """The Content-Type header, verbatim."""
        return self.headers.get("Content-Type")

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """Return one header (case-insensitive)."""
        return self.headers.get(name)


@dataclass
class Ledger:
    """What a checked session or proxy has seen, for tests that assert on it."""

    exchanges: list[tuple[str, str, int]] = field(default_factory=list)
    validated: int = 0
    problems: list[str] = field(default_factory=list)

    def statuses(self) -> list[int]:
        """Return every status seen, in order."""
        return [status for _, _, status in self.exchanges]


class CheckedSession:
    """Talk to the local Discord and check every JSON answer against the spec.

    A JSON answer must carry ``Content-Type: application/json`` exactly; with the spec present
    its body must also match its operation's schema. A problem raises ``SpecViolation`` at the
    call, so no test can forget to check.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        origin: str,
        spec: OpenAPISpec | None,
        token: str | None = None,
        *,
        api_version: int = 10,
    ) -> None:
        """Bind a session to the emulator's origin.

        Args:
            session: an open aiohttp session (owned by the caller).
            origin: ``http://127.0.0.1:PORT``.
            spec: the loaded spec, or None to check only the Content-Type.
            token: the bot token sent as ``Authorization: Bot <token>`` by default.
            api_version: the API version of relative paths.
        """
        self.session = session
        self.origin = origin.rstrip("/")
        self.spec = spec
        self.token = token
        self.api_version = api_version
        self.ledger = Ledger()

    def with_token(self, token: str | None) -> CheckedSession:
        """Return a view of the same session that authenticates as another bot."""
        view = CheckedSession(
            self.session, self.origin, self.spec, token, api_version=self.api_version
        )
        view.ledger = self.ledger
        return view

    def url(self, path: str) -> str:
        """Turn ``/channels/1`` into the full API URL; absolute paths and URLs pass through."""
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if (
            path.startswith("/api/")
            or path.startswith("/_emulator")
            or path.startswith("/attachments")
        ):
            return self.origin + path
        return f"{self.origin}/api/v{self.api_version}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: str | None | bool = True,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        """Send a request and return the checked reply.

        Args:
            method: the HTTP method.
            path: an API path (``/users/@me``), a server path or a full URL.
            auth: True for this session's bot token, False/None for none, or a literal
                ``Authorization`` header value.
            headers: extra request headers.
            **kwargs: passed to ``aiohttp.ClientSession.request`` (json, data, params, ...).

        Returns:
            The reply, body fully read.

        Raises:
            SpecViolation: the answer breaks the spec or the exact JSON Content-Type rule.
        """
        sent = {"User-Agent": "DiscordBot (https://github.com/discobase/conformance, 1.0)"}
        if auth is True and self.token is not None:
            sent["Authorization"] = f"Bot {self.token}"
        elif isinstance(auth, str):
            sent["Authorization"] = auth
        sent.update(headers or {})
        url = self.url(path)
        async with self.session.request(method, url, headers=sent, **kwargs) as response:
            body = await response.read()
            reply = Reply(method, urlsplit(url).path, response.status, response.headers, body)
        self._check(reply)
        return reply

    def _check(self, reply: Reply) -> None:
        self.ledger.exchanges.append((reply.method, reply.path, reply.status))
        content_type = reply.content_type or ""
        if (
            content_type.split(";")[0].strip() == JSON_CONTENT_TYPE
            and content_type != JSON_CONTENT_TYPE
        ):
            raise SpecViolation(
                f"{reply.method} {reply.path} -> {reply.status}: Content-Type is "
                f"{content_type!r}, Discord sends exactly 'application/json'"
            )
        if self.spec is None:
            return
        result = self.spec.check_response(
            reply.method, reply.path, reply.status, reply.headers, reply.body
        )
        if result.validated:
            self.ledger.validated += 1
        self.ledger.problems.extend(result.problems)
        result.raise_for_problems(reply.method, reply.path, reply.status)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        """Send a GET."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        """Send a POST."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        """Send a PUT."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Reply:
        """Send a PATCH."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        """Send a DELETE."""
        return await self.request("DELETE", path, **kwargs)


# -- a validating reverse proxy, for third-party clients --------------------------------------

# Hop-by-hop and framing headers that the proxy must not copy verbatim.
_HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Host",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authorization",
        "Proxy-Authenticate",
    )
)


class SpecCheckingProxy:
    """A loopback reverse proxy in front of the emulator that checks every answer.

    Bytes pass through unchanged in both directions; the proxy only reads the answers. This
    lets a third-party client run unmodified while each of its answers is judged.
    """

    def __init__(self, upstream: str, spec: OpenAPISpec | None) -> None:
        """Prepare a proxy for an upstream origin (``http://127.0.0.1:PORT``)."""
        self.upstream = upstream.rstrip("/")
        self.spec = spec
        self.ledger = Ledger()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> SpecCheckingProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        # Bind the socket ourselves: aiohttp exposes a site's chosen port only privately.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as upstream:
            answer = await upstream.read()
            status = upstream.status
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
            }
        self.ledger.exchanges.append((request.method, request.path, status))
        if self.spec is not None:
            result = self.spec.check_response(
                request.method, request.path, status, out_headers, answer
            )
            if result.validated:
                self.ledger.validated += 1
            self.ledger.problems.extend(
                f"{request.method} {request.path} -> {status}: {p}" for p in result.problems
            )
        content_type = out_headers.get("Content-Type", "")
        if content_type.startswith(JSON_CONTENT_TYPE) and content_type != JSON_CONTENT_TYPE:
            self.ledger.problems.append(
                f"{request.method} {request.path}: Content-Type {content_type!r}"
            )
        response = web.Response(status=status, body=answer)
        # Copy after construction so aiohttp adds no charset of its own to Content-Type.
        response.headers.clear()
        for key, value in out_headers.items():
            response.headers.add(key, value)
        return response
