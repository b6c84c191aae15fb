"""The rate limiter's sans-IO core on its own: import guards, the 429 table, plain arithmetic.

Nothing here needs an event loop or a clock: the core's parts take the time as an argument.
The behaviour of the whole limiter is tested in ``test_http_ratelimit.py``.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import discobase
import discobase.http.ratelimit as ratelimit
from discobase.http import routes
from discobase.http.errors import CloudflareBanned, InvalidRequestLimit, InvalidToken
from discobase.http.ratelimit.bucket import INF, Bucket, Tuning
from discobase.http.ratelimit.classify import REACTIONS, Hold, Kind, classify_429
from discobase.http.ratelimit.global_limit import GlobalLimit
from discobase.http.ratelimit.guard import BanGuard
from discobase.http.ratelimit.headers import RateLimitHeaders
from discobase.http.ratelimit.stats import LimiterStats

CORE = ["headers", "stats", "bucket", "registry", "global_limit", "guard", "classify"]
PACKAGE = Path(ratelimit.__file__).parent
ROOT = Path(discobase.__file__).parent.parent
TUNING = Tuning(margin=0.05, period=1.001, contention_memory=30.0)
VIA = {"via": "1.1 google"}


def _imports(path: Path) -> set[str]:
    """Return every module ``path`` imports (``from x import y``: ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _source(module: str) -> Path | None:
    """Return the file of a ``discobase`` module, or ``None`` for anything else."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@pytest.mark.parametrize("module", CORE)
def test_the_sans_io_core_imports_neither_aiohttp_nor_asyncio(module: str) -> None:
    """The core's modules, and every discobase module they import in turn, stay sans-IO.

    Parent packages are not followed: ``discobase.http``'s ``__init__`` loads the client, but
    nothing of the core's own code depends on it.
    """
    seen: set[str] = set()
    todo = [f"discobase.http.ratelimit.{module}"]
    while todo:
        name = todo.pop()
        path = _source(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        imported = _imports(path)
        tops = {n.split(".")[0] for n in imported}
        assert not tops & {"aiohttp", "asyncio"}, (name, tops)
        todo.extend(n for n in imported if n.startswith("discobase."))
    assert not seen & {
        "discobase.http.ratelimit.waiting",
        "discobase.http.ratelimit.limiter",
        "discobase.http.clock",
    }, seen


def test_only_the_waiting_module_imports_asyncio() -> None:
    importing = sorted(
        path.stem
        for path in PACKAGE.glob("*.py")
        if {n.split(".")[0] for n in _imports(path)} & {"asyncio", "aiohttp"}
    )
    assert importing == ["waiting"]


def test_every_module_of_the_package_is_under_600_lines() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 600, path.name


# --- the 429 table -----------------------------------------------------------------------


def test_every_kind_of_429_has_one_reaction() -> None:
    assert set(REACTIONS) == set(Kind)
    counters = {field.name for field in dataclasses.fields(LimiterStats)}
    for kind, reaction in REACTIONS.items():
        assert reaction.counter is None or reaction.counter in counters, kind
    assert REACTIONS[Kind.CLOUDFLARE].hold is Hold.BREAKER
    assert REACTIONS[Kind.GLOBAL].hold is Hold.EVERYONE
    assert REACTIONS[Kind.DRAINED].hold is Hold.BUCKET


def _classify(
    headers: dict[str, str], body: object, *, hidden: bool = False, scale: float = 1.0
) -> tuple[Kind, float]:
    payload = body if isinstance(body, dict) else None
    verdict = classify_429(
        RateLimitHeaders.parse(headers),
        payload,
        hidden=hidden,
        require_via=True,
        no_wait=1.001 * scale,
        time_scale=scale,
    )
    return verdict.kind, verdict.wait


@pytest.mark.parametrize(
    ("headers", "body", "hidden", "kind", "wait"),
    [
        ({"retry-after": "60"}, b"<html>", False, Kind.CLOUDFLARE, 60.0),
        ({}, {"message": "x"}, False, Kind.CLOUDFLARE, 1.001),
        ({**VIA, "x-ratelimit-global": "true"}, {"retry_after": 0.5}, False, Kind.GLOBAL, 0.5),
        ({"x-ratelimit-scope": "global"}, {"retry_after": 2}, False, Kind.GLOBAL, 2.0),
        ({**VIA, "x-ratelimit-scope": "shared"}, {"retry_after": 3}, False, Kind.SHARED, 3.0),
        ({**VIA, "retry-after": "4"}, {"retry_after": 1.5}, True, Kind.HIDDEN, 4.0),
        ({**VIA, "x-ratelimit-remaining": "2"}, {"retry_after": 1}, False, Kind.SUBLIMIT, 1.0),
        (VIA, {"retry_after": 7, "code": 30046}, False, Kind.SUBLIMIT, 7.0),
        (VIA, {"retry_after": 0.25}, False, Kind.DRAINED, 0.25),
        ({**VIA, "x-ratelimit-reset-after": "2.5"}, {}, False, Kind.DRAINED, 2.5),
    ],
)
def test_classify_429(
    headers: dict[str, str], body: object, hidden: bool, kind: Kind, wait: float
) -> None:
    assert _classify(headers, body, hidden=hidden) == (kind, pytest.approx(wait))


def test_a_drained_429_waits_the_exact_body_not_the_rounded_header() -> None:
    window = {"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0"}
    headers = {**VIA, **window, "x-ratelimit-reset-after": "0.3", "retry-after": "1"}
    assert _classify(headers, {"retry_after": 0.3}) == (Kind.DRAINED, 0.3)
    # Two whole seconds for 0.3: not a rounding, so the larger wait stands.
    assert _classify({**headers, "retry-after": "2"}, {"retry_after": 0.3})[1] == 2.0


# --- buckets, the global limit and the guard, by hand ------------------------------------


def _headers(limit: int, remaining: int, reset_after: float) -> RateLimitHeaders:
    return RateLimitHeaders(limit=limit, remaining=remaining, reset_after=reset_after)


def test_a_bucket_learns_its_window_and_refills_itself() -> None:
    bucket = Bucket(("hash", ()), TUNING)
    assert bucket.delay(0.0) == 0.0  # unknown: one probe
    bucket.take(0.0)
    assert bucket.delay(0.0) == INF  # the probe's answer will tell
    assert not bucket.apply(_headers(2, 1, 5.0), now=0.1, sent_at=0.0)
    bucket.answered(0.1)
    assert bucket.known and bucket.remaining == 1
    bucket.take(0.2)
    assert bucket.delay(0.2) == pytest.approx(5.1 + 0.001 + 0.05 - 0.2)
    epoch = bucket.epoch
    bucket.take(6.0)  # past the reset: a fresh window
    assert bucket.epoch == epoch + 1 and bucket.remaining == 2 - 1 - 1


def test_a_bucket_paces_itself_once_another_sender_shows() -> None:
    bucket = Bucket(("hash", ()), TUNING)
    bucket.take(0.0)
    bucket.apply(_headers(5, 4, 5.0), now=0.1, sent_at=0.0)
    bucket.answered(0.1)
    bucket.take(0.2)
    assert bucket.apply(_headers(5, 1, 4.8), now=0.3, sent_at=0.2)  # two not ours
    bucket.answered(0.3)
    assert bucket.contended(0.3) and bucket.reserve(0.3) == 1


def test_merging_keeps_the_stricter_terms_and_every_waiter() -> None:
    class Waiting:
        def __init__(self) -> None:
            self.bucket: Bucket | None = None
            self.in_line = False
            self.woken = 0

        def wake(self) -> None:
            self.woken += 1

    ours, theirs = Bucket(("?route", ()), TUNING), Bucket(("hash", ()), TUNING)
    for bucket, limit, remaining in ((ours, 5, 3), (theirs, 10, 6)):
        bucket.apply(_headers(limit, remaining, 5.0), now=0.1, sent_at=0.0)
    waiter = Waiting()
    waiter.bucket = ours
    ours.queue.append(waiter)
    theirs.absorb(ours)
    assert ours.resolve() is theirs and waiter.bucket is theirs and waiter.woken == 1
    assert (theirs.limit, theirs.remaining) == (5, 3)


def _refused_without_headers(bucket: Bucket, sent_at: float, now: float, wait: float) -> None:
    """A request taken at ``sent_at`` answered at ``now`` by a 429 without rate-limit headers."""
    bucket.take(sent_at)
    bucket.drain(wait, now + wait + TUNING.margin, now)
    bucket.answered(now)


@pytest.mark.parametrize(
    ("earlier", "window"),
    [
        (True, 5.0),  # sent 1 s after the last request let through, 4 s short: 1 + 4
        (False, 4.0),  # nothing of ours dates the window: the wait is all there is
    ],
)
def test_a_first_guess_without_headers_counts_from_the_last_request_let_through(
    earlier: bool, window: float
) -> None:
    """Limit 1 per 5 s, no headers: A sent and answered at 0; B sent at 1 and refused with a
    wait of 4. The window guessed is 5 (4 before the fix), so the request after the refill is
    held a whole 5 s past its answer; without A the guess stays the wait."""
    bucket = Bucket(("?route", ()), TUNING)
    if earlier:
        bucket.take(0.0)
        bucket.let_through(0.0)
        bucket.answered(0.0)
    _refused_without_headers(bucket, sent_at=1.0, now=1.0, wait=4.0)
    assert bucket.guessed and bucket.limit == 1
    assert bucket.window == pytest.approx(window)
    assert bucket.delay(1.0) == pytest.approx(4.0 + TUNING.margin)
    bucket.take(5.05)  # the refill: one request per guessed window
    bucket.let_through(5.05)
    bucket.answered(5.05)
    assert bucket.delay(5.05) == pytest.approx(window + TUNING.margin)


def test_a_first_guess_never_comes_out_short_of_a_slow_answer() -> None:
    """A sent at 0 is counted at 0.01, its answer back only at 0.5; B sent at 0.5 is counted
    at 0.8 and refused (5.01 - 0.8 = 4.21 to wait), its answer back at 0.81. The window is 5:
    dating A by its send and the refusal by its answer guesses 5.02, never less; dating both
    by their answers (4.52) fell short, and a 429 came windows later."""
    bucket = Bucket(("?route", ()), TUNING)
    bucket.take(0.0)
    bucket.let_through(0.0)
    bucket.answered(0.5)
    _refused_without_headers(bucket, sent_at=0.5, now=0.81, wait=4.21)
    assert 5.0 <= bucket.window <= 5.0 + 0.5 + 0.01 + 0.01


def test_a_stale_last_request_does_not_stretch_a_first_guess() -> None:
    """The last request let through was an hour ago and the 429 says 4 s (another sender spent
    the window): a window of an hour would turn every later request into RateLimited. Past
    max_wait the guess is the wait alone."""
    tuning = Tuning(margin=0.05, period=1.001, contention_memory=30.0, max_wait=60.0)
    bucket = Bucket(("?route", ()), tuning)
    bucket.take(0.0)
    bucket.let_through(0.0)
    bucket.answered(0.0)
    bucket.take(3600.0)
    bucket.drain(4.0, 3604.05, 3600.0)
    assert bucket.window == pytest.approx(4.0)


def test_headers_take_over_from_a_guessed_window() -> None:
    """Once an answer carries the headers, they date the window (Reset-After 2, not the
    guessed 5) and their limit holds from the refill on; a later 429 no longer grows the
    guess. ``remaining`` is not raised before the refill: answers overtake each other."""
    bucket = Bucket(("?route", ()), TUNING)
    bucket.take(0.0)
    bucket.let_through(0.0)
    bucket.answered(0.0)
    _refused_without_headers(bucket, sent_at=1.0, now=1.0, wait=4.0)
    bucket.take(5.05)
    assert not bucket.apply(_headers(5, 4, 2.0), now=5.1, sent_at=5.05)
    bucket.let_through(5.05)
    bucket.answered(5.1)
    assert not bucket.guessed and bucket.limit == 5
    reset = 5.1 + 2.0 + 0.001 + TUNING.margin
    assert bucket.delay(5.1) == pytest.approx(reset - 5.1)
    bucket.take(reset)  # the refill: the headers' limit, not one per guessed window
    assert bucket.remaining == 4 and bucket.delay(reset) == 0.0
    window = bucket.window
    assert bucket.drain(0.5, reset + 0.55, reset)  # our count said 4 left: another sender
    assert bucket.window == window


def test_a_global_429_halves_the_cap_which_grows_back() -> None:
    limit = GlobalLimit(47, 1.0)
    limit.block(until=0.5, now=0.0)
    assert limit.blocked_for(0.0) == 0.5 and limit.cap(0.0) == 23
    limit.block(until=0.6, now=0.1)  # the same second: one cut
    assert limit.cap(0.1) == 23 and limit.cap(3.0) == 26 and limit.cap(30.0) == 47


def test_the_guard_refuses_after_a_401_a_ban_or_too_many_invalid_answers() -> None:
    route = routes.GET_CHANNEL.compile(channel_id=1)
    guard = BanGuard(LimiterStats(), time_scale=1.0, invalid_warn=2, invalid_refuse=3)
    for _ in range(3):
        guard.count_invalid(0.0)
    assert isinstance(guard.refusal(route, 1.0), InvalidRequestLimit)
    assert guard.refusal(route, 601.0) is None  # ten minutes later
    error = guard.open_breaker(None, str(route), 601.0)
    assert isinstance(error, CloudflareBanned) and error.retry_after == 3600.0
    assert isinstance(guard.refusal(route, 602.0), CloudflareBanned)
    guard.poison_token()
    assert isinstance(guard.refusal(route, 10_000.0), InvalidToken)
