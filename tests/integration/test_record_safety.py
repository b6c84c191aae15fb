"""One record cannot break a table, and misuse is refused before anything is written: records
that would not read back, stored records that do not fit, writes from another event loop,
tokens with whitespace and an api_url that answers HTML (issue 13, failures 5 and 9)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import discobase
from discobase.http import HTTPClient
from discobase.http.errors import NotJSON
from tests.conftest import TIME_SCALE
from tests.helpers import WAIT, identify_window


def connect(emu: Any, name: str) -> tuple[discobase.Database, str]:
    bot = emu.create_bot("db")
    emu.create_guild(name, bots=[bot])
    return discobase.Database(name, api_url=emu.url, time_scale=TIME_SCALE), bot.token


def notes(db: discobase.Database) -> Any:
    @db.table
    class Note(discobase.Table):
        text: str
        stars: int = 0
        data: Any = None

    return Note


async def post_entry(emu: Any, token: str, channel_id: int, content: str) -> int:
    """Write a log entry by hand, as another program (or an older version) could have."""
    async with HTTPClient(token, api_url=emu.url, time_scale=TIME_SCALE) as http:
        message = await http.create_message(channel_id, content=content)
    return int(message["id"])


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_a_record_that_does_not_fit_is_skipped_reported_and_deleted_by_id(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db, token = connect(emulator, "unreadable")
    Note = notes(db)
    bad = '{"discobase":1,"t":"log","ops":[["p","4242",{"text":"c","stars":"many"}]]}'
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Note.save_many([Note(text="a"), Note(text="b", stars=5)])
            channel = Note.__discobase_binding__.store.channel_id
        message_id = await post_entry(emulator, token, channel, bad)
        await identify_window()
        with caplog.at_level(logging.WARNING, logger="discobase.table"):
            async with db.conn(token):
                # Read at open: the rest of the table reads, in every query.
                assert sorted(n.text for n in Note.find()) == ["a", "b"]
                assert [n.text for n in Note.find(order_by="-stars")] == ["b", "a"]
                assert (await Note.find_unique(stars=5)).text == "b"
                assert Note.count() == 3  # count() counts what is stored, read or not
                with pytest.raises(discobase.UnreadableRecord):
                    await Note.get(4242)
                await Note.delete_id(4242)
                assert Note.count() == 2
        (warning,) = [r for r in caplog.records if r.name == "discobase.table"]
        text = warning.getMessage()
        assert warning.levelno == logging.WARNING
        for part in ("table 'note'", f"channel {channel}", f"message {message_id}", "4242"):
            assert part in text, part
        caplog.clear()
        await identify_window()
        async with db.conn(token):  # the deletion was stored
            assert sorted(n.text for n in Note.find()) == ["a", "b"] and Note.count() == 2
    assert not [r for r in caplog.records if r.name == "discobase.table"]


async def test_a_record_that_does_not_fit_arriving_live_spoils_nothing(emulator: Any) -> None:
    db, token = connect(emulator, "unreadable-live")
    Note = notes(db)
    bad = '{"discobase":1,"t":"log","ops":[["p","77",{"stars":1}]]}'  # no text
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Note(text="a").save()
            channel = Note.__discobase_binding__.store.channel_id
            await post_entry(emulator, token, channel, bad)
            while Note.count() < 2:  # the gateway brings it
                await asyncio.sleep(0.01)
            assert [n.text for n in await Note.find()] == ["a"]
            await Note(text="b").save()
            assert [n.text for n in Note.find()] == ["a", "b"]


async def test_a_value_no_reader_could_read_is_refused_and_nothing_is_written(
    emulator: Any,
) -> None:
    db, token = connect(emulator, "unstorable")
    Note = notes(db)
    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            await Note(text="ok", data=nested(199)).save()
            before = len(emulator.state.messages)
            for value in (nested(200), "\ud800", 10**5000):
                with pytest.raises(discobase.UnstorableRecord, match="table 'note': field 'data'"):
                    Note(text="bad", data=value).save()
                with pytest.raises(discobase.UnstorableRecord):
                    Note.save_many(
                        [Note(text=str(i)) for i in range(70)] + [Note(text="x", data=value)]
                    )
            assert len(emulator.state.messages) == before
        await identify_window()
        async with db.conn(token):
            (found,) = Note.find()
            assert found.data == nested(199)


async def test_a_write_from_another_threads_event_loop_is_refused_at_once(emulator: Any) -> None:
    db, token = connect(emulator, "loops")
    Note = notes(db)
    outcome: list[BaseException | None] = []

    async def from_elsewhere() -> None:
        try:
            await asyncio.wait_for(Note(text="elsewhere").save(), 5)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
            outcome.append(exc)

    async with asyncio.timeout(WAIT):
        async with db.conn(token):
            thread = threading.Thread(target=lambda: asyncio.run(from_elsewhere()))
            thread.start()
            await asyncio.to_thread(thread.join)
            (error,) = outcome
            assert type(error) is discobase.UsageError, error
            assert "another event loop" in str(error)
            assert Note.count() == 0
        await identify_window()
        async with db.conn(token):
            assert Note.count() == 0  # nothing was written


async def test_a_token_with_surrounding_whitespace_is_refused_without_showing_it(
    emulator: Any,
) -> None:
    db, token = connect(emulator, "whitespace")
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.UsageError, match="whitespace around it") as caught:
            async with db.conn(token + "\n"):
                pass
    assert token not in str(caught.value) and token not in repr(caught.value)


@asynccontextmanager
async def html_site() -> AsyncIterator[str]:
    """A web server that answers every request with an HTML page (a wrong api_url)."""
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_api_url_answering_html_names_the_url_and_content_type() -> None:
    async with html_site() as url:
        db = discobase.Database("html", api_url=url, time_scale=TIME_SCALE)
        async with asyncio.timeout(WAIT):
            with pytest.raises(NotJSON) as caught:
                async with db.conn("MTk4NjIyNDgzNDcxOTI1MjQ4.secret-part.xyz"):
                    pass
    error = caught.value
    assert error.url == f"{url}/api/v10/users/@me"
    assert error.content_type.startswith("text/html")
    assert "an HTML page" in str(error) and url in str(error)
    assert "secret-part" not in str(error)
