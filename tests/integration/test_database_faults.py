"""Databases against the local Discord with faults injected while records are written.

Only the public API (``Database``, ``Table``) on the client side; the emulator, in this
process, counts what reached it (requests, 429s, identifies, resumes, closes) and injects the
faults. Shows, end to end:

- a writer *process* SIGKILLed between the parts of a multi-part batch leaves nothing
  partial, for a database that opens later and for one that watched it live;
- a gateway fault storm while two databases write one table: every connection comes back,
  resumes wherever Discord allows (identifies only when Discord ended a session), both
  databases converge on exactly the records written, no 4008 and no 429; a fatal close then
  stops both for good with a typed error and no further connection;
- 5xx answers to message creates, one also after the message was stored: no duplicates, no
  losses.

Every wait is event-driven (a predicate polled under a generous deadline); nothing asserts a
duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import discobase
from discobase.emulator import Emulator
from tests.helpers import eventually
from tests.integration.child_process import start_child

# Real seconds per Discord second: a channel's 5-per-5 s bucket lasts 0.1 s, a heartbeat
# interval 0.9 s, a session is kept 3.6 s after its socket went away.
SCALE = 0.02
WAIT = 30.0  # a deadline, never a duration: generous for a loaded 2-core machine
GUILD = "faults"
# Each writer leaves this much time between two saves (0.6 of the channel's bucket window),
# so the two processes together never ask for more than the 5 creates per window Discord
# allows: two processes of one bot share one bucket and cannot see each other's requests, so
# over-asking would earn 429s that say nothing about the faults under test.
PACE = 0.6 * 5.0 * SCALE


def entry_table(db: discobase.Database) -> Any:
    """Register the test's table on ``db`` (a class belongs to one database)."""

    class Entry(discobase.Table):
        writer: str
        n: int
        blob: str = ""

    return db.table(Entry)


def local_discord(**options: Any) -> Emulator:
    """Return a local Discord whose heartbeat watchdog tolerates a starved event loop.

    The emulator runs in the test's own event loop: on a loaded machine a stall of a second
    would make it close a connection for a "missed" heartbeat (its default allows two
    intervals, 1.8 s here), a reconnect the storm did not inject and the counts below would
    not expect. Zombie detection, the client's side, is unchanged.
    """
    emu = Emulator(time_scale=SCALE, **options)
    emu.gateway.config.heartbeat_timeout_factor = 5.0
    emu.gateway.config.requested_heartbeat_timeout_factor = 5.0
    return emu


def database(emu: Emulator) -> discobase.Database:
    return discobase.Database(GUILD, api_url=emu.url, time_scale=emu.time_scale)


async def start(db: discobase.Database, token: str) -> None:
    """Log ``db`` in as a long-running process would, and wait until it is ready."""
    db.login_task(token)
    await db.wait_ready()


def keys(model: Any) -> list[tuple[str, int]]:
    """Return every record of ``model`` as (writer, n), sorted, duplicates kept."""
    return sorted((e.writer, e.n) for e in model.find())


def table_channel(emu: Emulator, name: str = "entry") -> Any:
    channels = [c for c in emu.state.channels.values() if c.name == name]
    assert len(channels) == 1, f"one channel named {name!r}"
    return channels[0]


def log_entries(emu: Emulator, channel: Any) -> list[dict[str, Any]]:
    """Return the decoded headers of the log entries stored in ``channel``, oldest first."""
    out = []
    for message_id in channel.message_ids:
        try:
            header = json.loads(emu.state.messages[message_id].content)
        except ValueError:
            continue
        if isinstance(header, dict) and header.get("t") == "log":
            out.append(header)
    return out


def count_429(emu: Emulator) -> int:
    return int(emu.stats()["responses_by_status"].get(429, 0))


def assert_only_shared_buckets_refused(emu: Emulator, *writers: Writer) -> None:
    """Check that every 429 the writers earned was a bucket another of them drained.

    Two processes of one bot share the table channel's buckets and cannot see each other's
    requests: on a loaded machine their catch-ups after one fault may meet in a window (seen:
    one 429 on GET messages in about one storm run of five beside a nemesis run). Each 429
    must be of that kind, never a global, shared or sub-limit one. (One process alone earns
    none: test_http_adversarial.py, test_http_ratelimit.py.)
    """
    drained = sum(w.db.http.ratelimiter.stats.drained for w in writers)
    assert count_429(emu) == drained, (count_429(emu), drained)


# ---------------------------------------------------------------------------------------
# a. A writer process killed between the parts of a batch
# ---------------------------------------------------------------------------------------

CHILD = """
import asyncio, base64, os, random
import discobase

db = discobase.Database({guild!r})  # DISCOBASE_API_URL and DISCOBASE_TIME_SCALE: the env


@db.table
class Entry(discobase.Table):
    writer: str
    n: int
    blob: str = ""


async def main():
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        for n in range(3):
            await Entry(writer="child", n=n).save()
        # ~1.9 MB that does not compress: several messages of ten 64 KiB files each.
        rng = random.Random(7)
        batch = [
            Entry(writer="batch", n=n, blob=base64.b64encode(rng.randbytes(24_000)).decode())
            for n in range(60)
        ]
        await Entry.save_many(batch)
        print("the whole batch was written", flush=True)


asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_writer_process_killed_mid_batch_leaves_nothing_partial() -> None:
    # Files of at most 64 KiB (the writer learns it from Discord's 413s) make a batch of
    # ~1.5 MB compressed need three messages.
    async with local_discord(max_file_size=64 * 1024) as emu:
        bot = emu.create_bot("db")
        emu.create_guild(GUILD, bots=[bot])
        live = database(emu)
        live_entry = entry_table(live)
        async with asyncio.timeout(WAIT * 2), live.conn(bot.token):
            await live_entry.save_many([live_entry(writer="parent", n=n) for n in range(3)])
            channel = table_channel(emu)
            child = await start_child(CHILD.format(guild=GUILD), emu, bot.token)
            landed: list[dict[str, Any]] = []

            def kill_at_the_first_part(event: Any) -> None:
                # Runs inside the request that stored the message, before its answer is
                # sent: the child cannot have posted the next part, and now never will.
                data = event.data
                if event.name != "MESSAGE_CREATE" or data.get("channel_id") != channel.id:
                    return
                try:
                    header = json.loads(data.get("content") or "")
                except ValueError:
                    return
                if isinstance(header, dict) and header.get("batch") is not None:
                    landed.append(header)
                    if header.get("part") == 0 and child.returncode is None:
                        os.kill(child.pid, signal.SIGKILL)

            unsubscribe = emu.events.subscribe(kill_at_the_first_part)
            try:
                out, err = await child.communicate()
            finally:
                unsubscribe()
            assert child.returncode == -signal.SIGKILL, (
                f"the child was not killed mid-batch (exit {child.returncode}): "
                f"{out.decode()} {err.decode()[-2000:]}"
            )
            assert [h["part"] for h in landed] == [0] and landed[0]["parts"] >= 2
            earlier = [("child", n) for n in range(3)] + [("parent", n) for n in range(3)]

            # A database opened after the kill sees every earlier record and none of the batch.
            fresh = database(emu)
            fresh_entry = entry_table(fresh)
            async with fresh.conn(bot.token):
                assert keys(fresh_entry) == earlier
                await fresh_entry(writer="after", n=0).save()

            # The live database received the batch's first part over the gateway before the
            # record written after it (one session delivers in order): nothing partial either.
            await eventually(
                lambda: live_entry.count(writer="after") == 1, "the live database to catch up"
            )
            assert keys(live_entry) == sorted([*earlier, ("after", 0)])

        again = database(emu)
        again_entry = entry_table(again)
        async with again.conn(bot.token):
            assert keys(again_entry) == sorted([*earlier, ("after", 0)])
        assert [h["part"] for h in log_entries(emu, channel) if "batch" in h] == [0]


# ---------------------------------------------------------------------------------------
# b. A gateway fault storm while two databases write one table
# ---------------------------------------------------------------------------------------


@dataclass
class Writer:
    """One database saving records, one at a time, until told to stop."""

    name: str
    db: discobase.Database
    model: Any
    written: int = 0
    errors: list[BaseException] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.model(writer=self.name, n=self.written).save()
            except Exception as exc:  # the test fails on it, with the cause shown
                self.errors.append(exc)
                return
            self.written += 1
            await asyncio.sleep(PACE)  # pacing, not synchronisation: see PACE

    def expected(self) -> list[tuple[str, int]]:
        return [(self.name, n) for n in range(self.written)]


@contextlib.asynccontextmanager
async def two_writers(emu: Emulator) -> AsyncIterator[tuple[Any, Writer, Writer]]:
    """Log two databases of one bot in; yield the bot and a (not yet running) writer each.

    They start one after the other: the first creates the table, so both open one channel.
    Both are closed once the body is through. After a body that fails they are closed as
    far as they will close within a few seconds: a session left open would be reported in a
    later test as its failure.
    """
    bot = emu.create_bot("db")
    emu.create_guild(GUILD, bots=[bot])
    db_a, db_b = database(emu), database(emu)
    a, b = Writer("a", db_a, entry_table(db_a)), Writer("b", db_b, entry_table(db_b))
    await start(db_a, bot.token)
    await start(db_b, bot.token)
    try:
        yield bot, a, b
    except BaseException:
        for db in (db_a, db_b):
            with contextlib.suppress(Exception):  # the body's failure is the one to report
                async with asyncio.timeout(5.0):
                    await db.close()
        raise
    await db_a.close()
    await db_b.close()


@contextlib.asynccontextmanager
async def writing(a: Writer, b: Writer) -> AsyncIterator[None]:
    """Run both writers while the body runs; then stop them and check that no save failed."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in (a, b)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert not a.errors and not b.errors, (a.errors, b.errors)


async def converged(a: Writer, b: Writer) -> list[tuple[str, int]]:
    """Wait until both databases hold exactly what both writers wrote; return that."""
    everything = sorted(a.expected() + b.expected())
    await eventually(
        lambda: keys(a.model) == everything and keys(b.model) == everything,
        "both databases to converge",
    )
    return everything


@dataclass(frozen=True)
class Fault:
    """A gateway fault and what it costs each connection it hits."""

    name: str
    inject: Callable[[], Awaitable[Any]]
    resumes: int = 0  # successful RESUMEs per connection hit
    identifies: int = 0  # new sessions per connection hit
    resume_failures: int = 0  # RESUMEs refused per connection hit


def gateway_faults(emu: Emulator, bot_id: str) -> list[Fault]:
    gw = emu.gateway

    async def zombie() -> None:
        gw.stop_acks(bot_id)  # only the connections open now: new ones are answered again

    def close(code: int | None) -> Callable[[], Awaitable[Any]]:
        return lambda: gw.drop(bot_id, close_code=code)

    return [
        Fault("op 7 reconnect", lambda: gw.send_reconnect(bot_id), resumes=1),
        Fault("drop, no close frame", close(None), resumes=1),
        Fault("close 4000", close(4000), resumes=1),
        Fault("zombie (no ACKs)", zombie, resumes=1),
        Fault("op 9 resumable", lambda: gw.send_invalid_session(True, bot_id), resumes=1),
        Fault("op 9 not resumable", lambda: gw.send_invalid_session(False, bot_id), identifies=1),
        Fault("close 4001", close(4001), resumes=1),
        Fault("close 4002", close(4002), resumes=1),
        Fault("close 4003", close(4003), resumes=1),
        Fault("close 4005", close(4005), resumes=1),
        Fault("close 4007", close(4007), identifies=1),
        Fault("close 4009", close(4009), identifies=1),
        # Discord ends the session with these; the client tries RESUME first (it costs no
        # session start), is refused, then identifies.
        Fault("close 1000", close(1000), identifies=1, resume_failures=1),
        Fault("close 1001", close(1001), identifies=1, resume_failures=1),
    ]


def gateway_counts(emu: Emulator) -> dict[str, int]:
    gw = emu.gateway.stats()
    return {
        "identifies": gw["identifies"],
        "resumes": gw["resumes"],
        "resume_failures": gw["resume_failures"],
        "heartbeats": gw["heartbeats"],
    }


def open_sessions(emu: Emulator, bot_id: str) -> int:
    """Return the bot's open connections that carry a session, or -1 if one does not."""
    records = [r for r in emu.gateway.history(bot_id) if r.open]
    return len(records) if all(r.started for r in records) else -1


async def both_live(emu: Emulator, bot_id: str, a: Writer, b: Writer) -> None:
    """Wait until both sessions are back and each database sees what the other writes now."""
    await eventually(lambda: open_sessions(emu, bot_id) == 2, "two sessions on the gateway")
    marks = {a.name: a.written + 1, b.name: b.written + 1}
    # A record submitted after this point can only reach the other database over its
    # current connection: seeing one proves that connection delivers.
    await eventually(
        lambda: (
            a.model.count(writer=b.name) > marks[b.name]
            and b.model.count(writer=a.name) > marks[a.name]
        ),
        "each database to see the other's new records",
    )


@pytest.mark.slow
async def test_a_gateway_fault_storm_while_two_databases_write() -> None:
    async with local_discord() as emu:
        async with asyncio.timeout(WAIT * 3), two_writers(emu) as (bot, a, b):
            async with writing(a, b):
                await both_live(emu, bot.id, a, b)
                initial = gateway_counts(emu)
                assert initial["identifies"] == 2  # one session per database
                expected = dict.fromkeys(initial, 0)
                faults = gateway_faults(emu, bot.id)
                for fault in faults:
                    before = gateway_counts(emu)
                    hit = await fault.inject()
                    hit = 2 if hit is None else hit
                    assert hit == 2, f"{fault.name}: both connections were up"
                    want = {
                        "identifies": fault.identifies * hit,
                        "resumes": fault.resumes * hit,
                        "resume_failures": fault.resume_failures * hit,
                    }
                    for key, n in want.items():
                        expected[key] += n
                    await eventually(
                        lambda b4=before, w=want: all(  # type: ignore[misc]
                            gateway_counts(emu)[k] >= b4[k] + n for k, n in w.items()
                        ),
                        f"the client to recover from {fault.name}",
                    )
                    await both_live(emu, bot.id, a, b)
                # A heartbeat Discord asks for is answered at once, on both connections.
                beats = gateway_counts(emu)["heartbeats"]
                assert await emu.gateway.request_heartbeat(bot.id) == 2
                await eventually(
                    lambda: gateway_counts(emu)["heartbeats"] >= beats + 2, "requested beats"
                )

            # Both converge on exactly what was written, each record once.
            everything = await converged(a, b)
            ended = gateway_counts(emu)
            for key in ("identifies", "resumes", "resume_failures"):
                assert ended[key] - initial[key] == expected[key], (key, initial, ended, expected)
            gw = emu.gateway.stats()
            assert gw["close_codes"].get(4008, 0) == 0  # never over the send limit
            for record in emu.gateway.history(bot.id):
                assert record.max_frames_in(60 * SCALE) <= 120
            # Two processes of one bot identifying at once: Discord refuses the second with
            # op 9, and the client waits out the identify spacing, so it is refused once.
            assert gw["identify_rate_limited"] <= sum(1 for f in faults if f.identifies)
            assert_only_shared_buckets_refused(emu, a, b)
            assert len(log_entries(emu, table_channel(emu))) == len(everything)

            # A fatal close: both stop with a typed error and never knock again.
            connections = gw["connections"]
            assert await emu.gateway.drop(bot.id, close_code=4004) == 2
            for db, model in ((a.db, a.model), (b.db, b.model)):
                await eventually(lambda d=db: not d.is_ready, "the database to stop")  # type: ignore[misc]
                with pytest.raises(discobase.GatewayError) as info:
                    await db.wait_ready()
                assert getattr(info.value, "code", None) == 4004
                assert getattr(info.value, "may_reconnect", None) is False
                assert not db.is_ready
                with pytest.raises(discobase.NotConnected):
                    model(writer="late", n=0).save()
            # Both runs are over, so nothing is left that could reconnect; a minute of
            # Discord time later the server has still seen no new connection.
            await asyncio.sleep(60 * SCALE)
            assert emu.gateway.stats()["connections"] == connections
            assert emu.gateway.stats()["open"] == 0


@pytest.mark.slow
async def test_a_catch_up_that_meets_5xx_is_retried_until_nothing_is_missing() -> None:
    # A session Discord ended loses the events of the gap; the database reads them over
    # REST. When those reads fail longer than the HTTP client retries, the catch-up must be
    # tried again, or the records of the gap stay missing for good.
    async with local_discord() as emu:
        async with asyncio.timeout(WAIT * 2), two_writers(emu) as (bot, a, b):
            channel = table_channel(emu)
            async with writing(a, b):
                await both_live(emu, bot.id, a, b)
                identifies = gateway_counts(emu)["identifies"]
                # Three catch-up attempts' worth of failures (the client tries each read 4
                # times), shared between the two databases in whatever way they come.
                emu.fail_next("GET", rf"^/channels/{channel.id}/messages$", 503, count=12)
                assert await emu.gateway.send_invalid_session(False, bot.id) == 2
                await eventually(
                    lambda: gateway_counts(emu)["identifies"] >= identifies + 2, "new sessions"
                )
                await eventually(
                    lambda: emu.stats()["faults_injected"] == 12, "the catch-ups to meet the 503s"
                )
                await both_live(emu, bot.id, a, b)
            await converged(a, b)
            assert_only_shared_buckets_refused(emu, a, b)


# ---------------------------------------------------------------------------------------
# c. 5xx on message creates while two databases write
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_5xx_on_message_creates_lose_and_duplicate_nothing() -> None:
    async with local_discord() as emu:
        async with asyncio.timeout(WAIT * 2), two_writers(emu) as (bot, a, b):
            channel = table_channel(emu)
            creates = rf"^/channels/{channel.id}/messages$"
            # (status, after the message was stored), one at a time: the next is injected
            # once the saves in flight when one struck are through, so that no create meets
            # more failures than the client retries.
            injected = [(500, False), (502, False), (500, True), (503, False), (500, True)]
            injected += [(504, False), (502, True), (500, False), (503, True), (500, True)]
            async with writing(a, b):
                for status, after_write in injected:
                    done = emu.stats()["faults_injected"]
                    emu.fail_next("POST", creates, status, after_write=after_write)
                    await eventually(
                        lambda d=done: emu.stats()["faults_injected"] > d,  # type: ignore[misc]
                        f"a create to meet the injected {status}",
                    )
                    marks = (a.written, b.written)
                    await eventually(
                        lambda m=marks: a.written > m[0] + 1 and b.written > m[1] + 1,  # type: ignore[misc]
                        f"both writers to get past the {status}",
                    )
                await both_live(emu, bot.id, a, b)
            everything = await converged(a, b)
            statuses = emu.stats()["responses_by_status"]
            assert sum(statuses.get(s, 0) for s in (500, 502, 503, 504)) == len(injected)
            assert_only_shared_buckets_refused(emu, a, b)
            # One message per record: a create retried after a stored 500 was not stored twice.
            assert len(log_entries(emu, channel)) == len(everything)
        fresh = database(emu)
        fresh_entry = entry_table(fresh)
        async with fresh.conn(bot.token):
            assert keys(fresh_entry) == everything
