"""Count what each kind of call costs in requests, on a local Discord.

Run it with ``.venv/bin/python examples/costs.py``. The local Discord counts every API request
it serves, so the figures are the server's, not the client's own estimate (downloads from its
attachment CDN, such as a snapshot's, are not API requests and are not counted). The README and
docs/costs.md show this program's output, and a test checks that they still do.
"""

import asyncio

import discobase
from discobase.testing import local_discord


def make_database(local):
    # Each open table also reads its newest entries every gap_check_interval (15 Discord
    # seconds by default): costs that time brings, not the calls counted here, so an hour
    # keeps them out of the counts.
    db = local.database(gap_check_interval=3600)

    @db.table
    class User(discobase.Table):
        name: str

    @db.table
    class Post(discobase.Table):
        title: str

    return db, User


async def main() -> None:
    async with local_discord(time_scale=0.01) as local:
        stats = local.emulator.stats
        last = stats()["requests_total"]

        def report(what: str) -> None:
            nonlocal last
            now = stats()["requests_total"]
            print(f"{now - last:6d} requests  {what}")
            last = now

        db, User = make_database(local)
        async with db.conn(local.token):
            report("connect to a new database and create 2 tables")
            await User(name="Peter").save()
            report("one save()")
            await asyncio.gather(*(User(name=f"user{i}").save() for i in range(1000)))
            report("1000 concurrent save() calls")
            await User.save_many([User(name=f"bulk{i}") for i in range(10_000)])
            report("save_many() of 10,000 records")
            for i in range(5):
                await User(name=f"one by one {i}").save()
            report("5 save() calls, each awaited before the next")
            User.find(name="user5")
            await User.find_unique(name="user5")
            await User.get(User.find(name="user6")[0].id)
            User.count()
            report("find(), find_unique(), get(), count()")

        db, User = make_database(local)
        async with db.conn(local.token):
            report(f"connect again: open 2 existing tables ({User.count():,} records)")
        rate_limited = stats()["responses_by_status"].get(429, 0)
        print(f"{rate_limited:6d} responses were 429 (rate limited)")


asyncio.run(main())
