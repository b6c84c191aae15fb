"""Query operators over a large table: indexed ranges and prefixes, scans, and what writes cost.

The table lives in a real ``TableState`` (the storage layer's records, hash and sorted
indexes) behind the public API, without Discord: a million records are loaded as a snapshot
would load them. Every figure is the median of many runs, in microseconds per call.

Run: ``.venv/bin/python bench/query_bench.py [--records N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import discobase  # noqa: E402
from discobase import ge, lt, startswith  # noqa: E402
from discobase.query import select_ids  # noqa: E402
from discobase.storage.state import TableState  # noqa: E402


class Store:
    """A table store over a TableState; writes are applied at once."""

    def __init__(self, spec: Any) -> None:
        self.state = TableState(spec.name, spec.indexes)
        self._ids = itertools.count(1 << 40)
        self._version = itertools.count(1 << 41)

    def new_id(self) -> int:
        return next(self._ids)

    def new_ids(self, count: int) -> list[int]:
        return [next(self._ids) for _ in range(count)]

    def get(self, record_id: int) -> dict[str, Any] | None:
        return self.state.get(record_id)

    def records(self) -> Mapping[int, dict[str, Any]]:
        return self.state.records

    def count(self) -> int:
        return self.state.count()

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        return self.state.lookup(field, value)

    def column(self, field: str) -> Mapping[int, Any] | None:
        return self.state.column(field)

    def submit_later(self, chunks: Iterator[list[Any]], count: int) -> asyncio.Future[None]:
        return self.submit([op for chunk in chunks for op in chunk])

    def submit(self, ops: Sequence[Any]) -> asyncio.Future[None]:
        self.state.check(ops)
        self.state.apply(next(self._version), ops)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class Engine:
    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}

    async def open_table(self, spec: Any) -> Store:
        store = self.stores[spec.name] = Store(spec)
        return store

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        yield

    def open_batch_check(self) -> None:
        return None

    async def on_event(self, name: str, data: Any) -> None:
        pass

    async def catch_up(self) -> None:
        pass

    async def close(self) -> None:
        pass


db = discobase.Database("query bench")


@db.table
class Reading(discobase.Table):
    sensor: Annotated[int, discobase.Index()]
    label: Annotated[str, discobase.Index()]
    value: int


def median_us(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def main(count: int) -> None:
    engine = Engine()
    await db._use_storage(engine)  # type: ignore[arg-type]
    store = engine.stores["reading"]
    rng = random.Random(15)
    sensors = list(range(count))
    rng.shuffle(sensors)
    start = time.perf_counter()
    with_gc = gc.isenabled()
    gc.disable()
    store.state.load(
        1,
        (
            (i + 1, {"sensor": s, "label": f"L{s:07d}", "value": s % 1000})
            for i, s in enumerate(sensors)
        ),
    )
    if with_gc:
        gc.enable()
    print(f"{count:,} records loaded in {time.perf_counter() - start:.1f} s\n")
    rows: list[tuple[str, str]] = []

    low = count // 2
    start = time.perf_counter()
    assert Reading.count(sensor=ge(low) & lt(low + 100)) == 100
    rows.append(("first range query (sorts the index)", f"{time.perf_counter() - start:.2f} s"))

    def bounds() -> tuple[int, int]:
        at = rng.randrange(count - 100)
        return at, at + 100

    def count_range() -> None:
        a, b = bounds()
        assert Reading.count(sensor=ge(a) & lt(b)) == 100

    def find_range() -> None:
        a, b = bounds()
        assert len(Reading.find(sensor=ge(a) & lt(b))) == 100

    def find_range_ordered() -> None:
        a, b = bounds()
        assert len(Reading.find(sensor=ge(a) & lt(b), order_by="-sensor", limit=10)) == 10

    def find_prefix() -> None:
        # 100 labels share a 5-digit prefix: "L01234" + 2 more digits.
        at = rng.randrange(count // 100 - 1)
        assert len(Reading.find(label=startswith(f"L{at:05d}"))) == 100

    def ids_only() -> None:
        a, b = bounds()
        binding = Reading.__discobase_binding__
        assert binding is not None
        from discobase._conditions import compile_conditions

        conditions: dict[str, Any] = {"sensor": ge(a) & lt(b)}
        tests, _ = compile_conditions(binding, store, conditions)
        assert len(select_ids(store, {}, binding.defaults, tests=tests)) == 100

    def top_ten() -> None:
        # A leaderboard: every record ordered by an indexed field, the first ten.
        assert len(Reading.find(order_by="-sensor", limit=10)) == 10

    def top_ten_unindexed() -> None:
        # The same over a field with no index: every value read, ten picked.
        assert len(Reading.find(order_by="-value", limit=10)) == 10

    def latest_ten() -> None:
        assert len(Reading.find(order_by="-id", limit=10)) == 10

    def find_large_range() -> None:
        a = rng.randrange(count - 100_000)
        assert len(Reading.find(sensor=ge(a) & lt(a + 100_000))) == 100_000

    def find_every() -> None:
        assert len(Reading.find()) == count

    def find_one() -> None:
        # One equality on an indexed field, one record: issue 14's find().
        at = rng.randrange(count)
        assert len(Reading.find(label=f"L{at:07d}")) == 1

    runs = 2000
    rows.append(("find(), one equality, 1 record (µs)", f"{median_us(find_one, runs):.1f}"))
    rows.append(("count(), range of 100 (µs)", f"{median_us(count_range, runs):.1f}"))
    rows.append(("ids of a range of 100, no API (µs)", f"{median_us(ids_only, runs):.1f}"))
    rows.append(("find(), range of 100 records (µs)", f"{median_us(find_range, runs):.1f}"))
    rows.append(
        ("find(), range, ordered, limit 10 (µs)", f"{median_us(find_range_ordered, runs):.1f}")
    )
    rows.append(
        ("find(), every record ordered by it, limit 10 (µs)", f"{median_us(top_ten, runs):.1f}")
    )
    unindexed_first = time.perf_counter()
    top_ten_unindexed()
    rows.append(
        (
            "first find(order_by=unindexed, limit=10) (s)",
            f"{time.perf_counter() - unindexed_first:.2f}",
        )
    )
    rows.append(
        ("find(order_by=unindexed, limit=10) (ms)", f"{median_us(top_ten_unindexed, 5) / 1000:.0f}")
    )
    rows.append(("find(order_by='-id', limit=10) (ms)", f"{median_us(latest_ten, 5) / 1000:.1f}"))
    rows.append(
        ("find(), range of 100,000 records (ms)", f"{median_us(find_large_range, 5) / 1000:.0f}")
    )
    rows.append(("find() of every record (s)", f"{median_us(find_every, 3) / 1e6:.2f}"))
    label_first = time.perf_counter()
    find_prefix()
    rows.append(("first prefix query (sorts)", f"{time.perf_counter() - label_first:.2f} s"))
    rows.append(("find(), prefix, 100 records (µs)", f"{median_us(find_prefix, runs):.1f}"))

    # Writes keep the sorted index current beside the base: queries stay fast in between.
    records = list(Reading.find(sensor=lt(2000)))

    async def write_some(n: int) -> float:
        start = time.perf_counter()
        for record in records[:n]:
            record.value += 1
            await record.update()
        return (time.perf_counter() - start) / n * 1e6

    per_write = await write_some(2000)
    rows.append(("update() with the sorted index kept (µs/write)", f"{per_write:.1f}"))
    rows.append(
        ("count(), range, 2000 changes pending (µs)", f"{median_us(count_range, runs):.1f}")
    )

    def scan() -> None:
        a = rng.randrange(1000 - 1)
        Reading.count(value=ge(a) & lt(a + 1))

    rows.append(("count(), unindexed range, full scan (ms)", f"{median_us(scan, 5) / 1000:.0f}"))
    await db.close()

    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().records))
