"""A small inventory kept in Discord: query operators, bulk writes, typed all the way.

Run it with ``.venv/bin/python examples/inventory.py``. With ``DISCOBASE_TOKEN`` set (and
``DISCOBASE_API_URL`` for a local Discord started with ``discobase emulator --guild
inventory``), it uses that server; without a token it starts a throw-away local Discord.

The suite runs it, and checks it with ``mypy --strict``: every record a query returns has an
``id`` typed ``int``, ``async for`` works over a query, and ``db.batch()`` yields ``None``.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated

import pydantic

import discobase
from discobase import contains, ge, gt, lt, one_of, startswith

db = discobase.Database(os.environ.get("DISCOBASE_DATABASE", "inventory"))


@db.table
class Item(discobase.Table):
    sku: Annotated[str, discobase.Index(unique=True)]
    name: str
    stock: Annotated[int, discobase.Index()]
    price: float
    tags: list[str] = []
    updated: datetime = pydantic.Field(default_factory=lambda: datetime.now(UTC))


STARTING_STOCK = [
    Item(sku="HW-001", name="hammer", stock=12, price=19.5, tags=["tools"]),
    Item(sku="HW-002", name="screwdriver", stock=0, price=7.25, tags=["tools"]),
    Item(sku="HW-003", name="nails (100)", stock=250, price=3.0, tags=["fasteners"]),
    Item(sku="GD-001", name="garden hose", stock=3, price=24.0, tags=["garden", "summer"]),
    Item(sku="GD-002", name="watering can", stock=0, price=12.0, tags=["garden"]),
]


def describe(item: Item) -> str:
    record_id: int = item.id  # an int on every record a query returns: no assert needed
    return f"#{record_id % 1000:03d} {item.sku} {item.name:<14} stock {item.stock:>3}"


async def run() -> None:
    """Stock the shop, then answer the questions a shopkeeper asks."""
    if not Item.find().exists():
        async with db.batch():  # one atomic write for the whole starting stock
            saves = [item.save() for item in STARTING_STOCK]
        await asyncio.gather(*saves)

    print("low on stock (1 to 5):")
    async for item in Item.find(stock=ge(1) & lt(6), order_by="stock"):
        print("  " + describe(item))

    print("hardware, cheapest first:")
    for item in Item.find(sku=startswith("HW-"), order_by="price"):
        print("  " + describe(item))

    garden = Item.find(tags=contains("garden"), stock=gt(0))
    print("garden items in stock:", [item.name for item in garden])

    priciest = Item.find(price=gt(10), order_by="-price", limit=1).first()
    if priciest is not None:
        print("most expensive over 10:", priciest.name, priciest.price)

    # Restock everything that ran out, in one atomic write.
    restocked = await Item.find(stock=0).update_many(stock=20, updated=datetime.now(UTC))
    print("restocked:", sorted(item.sku for item in restocked))

    # Retire the summer range, also in one atomic write.
    retired = await Item.find(tags=contains("summer")).delete_many()
    print("retired:", retired)

    recent = Item.count(updated=gt(datetime.now(UTC) - timedelta(minutes=5)))
    chosen = Item.count(sku=one_of("HW-001", "GD-002"))
    print(f"{recent} items touched recently; {chosen} of the two asked for")
    print(f"{Item.count()} items in stock")


async def main() -> None:
    """Use the configured server, or a throw-away local Discord."""
    token = os.environ.get("DISCOBASE_TOKEN")
    if token:
        async with db.conn(token):
            await run()
        return
    from discobase.emulator import Emulator

    async with Emulator() as discord:
        bot = discord.create_bot("inventory-bot")
        discord.create_guild("inventory", bots=[bot])
        db.api_url = discord.url
        async with db.conn(bot.token):
            await run()


if __name__ == "__main__":
    asyncio.run(main())
