"""What building a query's 100 records costs, apart from the query: the floor under a range
query's figure in query_bench.py.

A query returns pydantic models. However the records are found, each of the 100 must be
made: its stored row decoded, its dict built, the object made and its four slots set
(``__dict__``, ``__pydantic_fields_set__``, ``__pydantic_extra__``, ``__pydantic_private__``),
and all of it freed again when the caller drops the list. This measures, for the model
query_bench.py uses (three plain fields, one private attribute):

- pydantic's own ways to make 100 records from dicts (``model_validate``, ``model_construct``);
- discobase's page maker on 100 stored rows of a table (``TableBinding.load_page``: what a
  query does once it has the ids), the rows hot in the cache;
- the bare floor: 100 rows decoded (marshal), 100 dicts, 100 objects, their four slots set
  by the slots' own descriptors in C loops, and freed; nothing checked.

Run: ``.venv/bin/python bench/record_floor.py``. Every figure is the median of 7 x 1000
calls, in microseconds per 100 records.
"""

from __future__ import annotations

import asyncio
import marshal
import statistics
import sys
import timeit
from collections import deque
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query_bench import Engine, Reading, db  # noqa: E402

COUNT = 100


def per_call_us(call: Callable[[], object]) -> float:
    return statistics.median(timeit.repeat(call, number=1000, repeat=7)) / 1000 * 1e6


def bare_floor(rows: list[bytes]) -> Callable[[], list[Any]]:
    from pydantic import BaseModel

    slots = BaseModel.__dict__
    names = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    set_dict, set_fields, set_extra, set_private = (slots[name].__set__ for name in names)
    fields = frozenset(Reading.model_fields)

    def build() -> list[Any]:
        values = list(map(marshal.loads, rows))
        dicts = [{"sensor": s, "label": label, "value": v} for s, label, v in values]
        made = list(map(object.__new__, repeat(Reading, COUNT)))
        deque(map(set_dict, made, dicts), maxlen=0)
        deque(map(set_fields, made, map(set, repeat(fields, COUNT))), maxlen=0)
        deque(map(set_extra, made, repeat(None, COUNT)), maxlen=0)
        deque(map(set_private, made, [{"_id": i} for i in range(COUNT)]), maxlen=0)
        return made

    return build


async def main() -> None:
    engine = Engine()
    await db._use_storage(engine)  # type: ignore[arg-type]
    store = engine.stores["reading"]
    store.state.load(
        1,
        (
            (i, {"sensor": i * 7919, "label": f"L{i:07d}", "value": i % 1000})
            for i in range(1, 1001)
        ),
    )
    binding = Reading.__discobase_binding__
    assert binding is not None
    records = store.records()
    ids = list(range(1, 1001, 10))
    assert len(binding.load_page(ids, records)) == COUNT
    dicts = [dict(records[i]) for i in ids]
    rows = [marshal.dumps(tuple(d.values())) for d in dicts]
    figures = [
        (
            "pydantic model_validate, 100 dicts",
            per_call_us(lambda: list(map(Reading.model_validate, dicts))),
        ),
        (
            "pydantic model_construct, 100 dicts",
            per_call_us(lambda: [Reading.model_construct(**d) for d in dicts]),
        ),
        (
            "discobase load_page, 100 stored rows",
            per_call_us(lambda: binding.load_page(ids, records)),
        ),
        ("bare floor: decode, build, free", per_call_us(bare_floor(rows))),
    ]
    await db.close()
    width = max(len(name) for name, _ in figures)
    print(f"{'making 100 records (µs per 100)':<{width}}  value")
    for name, value in figures:
        print(f"{name:<{width}}  {value:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
