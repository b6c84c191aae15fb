"""``discobase demo``: a guided tour of a database on a local Discord (cli layer).

Starts the emulator in this process, so it needs no token and no network, and prints what each
step did and what it left in the guild. Every run starts from an empty local Discord, so it can
run any number of times. This module is the only part of the command line that imports the
emulator, and only when the demo runs.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from typing import Annotated, Any

__all__ = ["run_demo"]

GUILD_NAME = "discobase demo"
_WIDTH = 96


def run_demo(*, time_scale: float = 1.0) -> int:
    """Run the tour and return the exit status.

    Args:
        time_scale: real seconds per Discord second in the local Discord.
    """
    asyncio.run(_tour(time_scale))
    return 0


def _step(title: str) -> None:
    print(f"\n== {title}")


def _show(text: str) -> None:
    print(textwrap.indent(text, "   "))


async def _tour(time_scale: float) -> None:
    import discobase
    from discobase.emulator import Emulator
    from discobase.http import HTTPClient

    started = time.perf_counter()
    async with Emulator(time_scale=time_scale) as emu:
        _step("Start a local Discord")
        bot = emu.create_bot("discobase-demo")
        guild_id = emu.create_guild(GUILD_NAME, bots=[bot])
        _show(f"listening on {emu.url}; bot {bot.id} is in guild {guild_id} ({GUILD_NAME!r})")

        db = discobase.Database(GUILD_NAME, api_url=emu.url)

        @db.table
        class User(discobase.Table):
            name: str
            email: Annotated[str, discobase.Index(unique=True)]
            age: int

        @db.table
        class Post(discobase.Table):
            author: Annotated[str, discobase.Index()]
            title: str
            tags: list[str] = []

        _step("Define two tables")
        _show("User(name: str, email: str [unique index], age: int)")
        _show("Post(author: str [index], title: str, tags: list[str])")

        async with db.conn(bot.token):
            _step("Connect: find the guild, create the catalog and the table channels")
            _show(f"ready after {_requests(emu)} requests")

            _step("Save three users at once (their writes share messages)")
            people = [
                User(name="Ada", email="ada@example.com", age=36),
                User(name="Grace", email="grace@example.com", age=45),
                User(name="Linus", email="linus@example.com", age=21),
            ]
            await asyncio.gather(*(user.save() for user in people))
            for user in people:
                _show(repr(user))

            _step("Save 200 posts in one atomic batch (save_many)")
            before = _requests(emu)
            posts = [
                Post(author=people[i % 3].name, title=f"Post number {i}", tags=["demo"])
                for i in range(200)
            ]
            await Post.save_many(posts)
            _show(f"{await Post.count()} posts stored in {_requests(emu) - before} request(s)")

            _step("Find (in memory: no request)")
            _show(f"User.find(name='Ada') -> {await User.find(name='Ada')}")
            grace = await User.find_unique(email="grace@example.com")
            _show(f"User.find_unique(email='grace@example.com') -> {grace!r}")
            _show(f"Post.count(author='Linus') -> {await Post.count(author='Linus')}")

            _step("Update Grace's age")
            grace.age += 1
            await grace.update()
            again = await User.find_unique(email="grace@example.com")
            _show(f"stored: {again!r}")

            _step("A duplicate e-mail is refused by the unique index")
            try:
                await User(name="Imposter", email="ada@example.com", age=99).save()
            except discobase.errors.UniqueViolation as exc:
                _show(f"UniqueViolation: {exc}")

            _step("Delete Linus and his posts in one batch across tables")
            linus = await User.find_unique(name="Linus")
            async with db.batch():
                # The tasks complete once the batch is written, after the block.
                tasks = [linus.delete()]
                tasks += [post.delete() for post in await Post.find(author="Linus")]
            await asyncio.gather(*tasks)
            _show(f"users left: {await User.count()}, posts left: {await Post.count()}")

        _step("What lies in the guild (read over REST, as any Discord client sees it)")
        async with HTTPClient(bot.token, api_url=emu.url, time_scale=time_scale) as http:
            channels = await http.fetch_guild_channels(guild_id)
            for channel in channels:
                _show(f"#{channel['name']}  (channel {channel['id']})")
            for channel in channels:
                messages = await http.fetch_messages(channel["id"], limit=3)
                _step(f"The latest raw messages in #{channel['name']}")
                for message in messages:
                    _show(_describe(message))
                if not messages:
                    _show("(no messages: discobase leaves channels it does not own alone)")

        _step("Traffic")
        stats = emu.stats()
        _show(f"{_requests(emu)} requests in all, {_count_429(stats)} rate-limited (429)")
        _show(f"the whole tour took {time.perf_counter() - started:.1f} s")
    print(
        "\nDone. Next: the quickstart in README.md, `make docs` for the guide, and "
        "`discobase emulator` to keep a local Discord running for your own programs."
    )


def _requests(emu: Any) -> int:
    """Read the emulator's total request count."""
    stats = emu.stats()
    return int(stats.get("requests_total", 0))


def _count_429(stats: dict[str, Any]) -> int:
    by_status = stats.get("responses_by_status", {})
    return int(by_status.get(429, 0) or by_status.get("429", 0) or 0)


def _describe(message: dict[str, Any]) -> str:
    """Summarise a raw message: its id, content (shortened) and attachments."""
    content = message.get("content") or ""
    if len(content) > _WIDTH:
        content = content[: _WIDTH - 3] + "..."
    files = ", ".join(
        f"{a['filename']} ({a['size']} bytes)" for a in message.get("attachments", [])
    )
    pinned = " [pinned]" if message.get("pinned") else ""
    text = f"{message['id']}{pinned}: {content}"
    return text + (f"\n  + file {files}" if files else "")
