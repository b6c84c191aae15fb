"""A unique value refused before sending: who holds it, a stored record or the same write."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from discobase.errors import UniqueViolation
from discobase.storage.codec import Put
from discobase.storage.pending import PendingWrites


class Live:
    """Stored records of table 'item', with the values of its unique field 'sku'."""

    table = "item"

    def __init__(self, records: dict[int, dict[str, Any]]) -> None:
        self.records = records

    def get(self, record_id: int) -> dict[str, Any] | None:
        return self.records.get(record_id)

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        return [i for i, data in self.records.items() if data.get(field) == value] or None


def test_a_value_held_by_a_stored_record_names_that_record() -> None:
    pending = PendingWrites(Live({1: {"sku": "A"}, 2: {"sku": "B"}}), {}, ["sku"])
    with pytest.raises(UniqueViolation, match=r"'A' is already taken by record 1$"):
        pending.check([Put(2, {"sku": "A"})])


def test_one_write_giving_a_value_to_two_records_says_so() -> None:
    # update_many(sku="DUP") over two found records: neither holds 'DUP' yet, so "already
    # taken by record 1" sent the user to a record that holds something else.
    pending = PendingWrites(Live({1: {"sku": "A"}, 2: {"sku": "B"}}), {}, ["sku"])
    with pytest.raises(UniqueViolation) as caught:
        pending.check([Put(1, {"sku": "DUP"}), Put(2, {"sku": "DUP"})])
    assert str(caught.value) == (
        "item.sku is unique and this write gives 'DUP' to two records, 1 and 2; "
        "give each record its own value"
    )
    assert (caught.value.table, caught.value.field, caught.value.value) == ("item", "sku", "DUP")
