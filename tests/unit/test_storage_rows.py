"""Records held compactly (storage/rows.py): exact round trips, shapes, the identity of the
dicts handed out, copies and frozen copies."""

from __future__ import annotations

import math
from typing import Any

from discobase.storage.rows import RecordsView
from tests.unit.tablefakes import Text, stored


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types and key order all the way down (True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b) and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def test_every_json_value_comes_back_exactly_in_its_key_order() -> None:
    values: list[dict[str, Any]] = [
        {"s": "plain", "i": 1, "f": 1.0, "b": True, "n": None},
        {"s": "é ☃ 🐍 \x00 \ud800", "i": -(2**80), "f": -0.0, "b": False, "n": None},
        {"s": "", "i": 2**63, "f": 1e308, "b": True, "n": [1, "1", 1.0, True, None]},
        {"s": "x", "i": 0, "f": 0.1, "b": False, "n": {"z": 1, "a": [{"k": {}}], "m": []}},
    ]
    held = stored(*values)
    for record_id, data in enumerate(values, 1):
        assert same(held.get(record_id), data)
        assert same(held.peek(record_id), data)
    assert all(same(a, b) for a, b in zip(held.values(), values, strict=True))


def test_records_of_other_shapes_keep_their_keys() -> None:
    records = [
        {"name": "a", "age": 1},
        {"age": 2, "name": "b"},  # the same keys in another order
        {"name": "c"},  # a field missing
        {"name": "d", "age": 4, "extra": [1]},  # one more
        {},
        {"name": Text("e"), "age": 5},  # marshal cannot hold it: kept as it is
    ]
    held = stored(*records)
    assert held.shape == ("name", "age")
    for record_id, data in enumerate(records, 1):
        assert same(held.get(record_id), data)
    assert held.get(6) is records[5]
    assert dict(held.items()) == dict(enumerate(records, 1))


def test_a_record_read_twice_is_the_same_dict_until_it_changes() -> None:
    held = stored({"name": "a"}, {"name": "b"})
    first = held.get(1)
    assert first is held.get(1) and first is not held.peek(2)
    held.put(1, {"name": "a2"})
    assert held.get(1) is not first and held.get(1) == {"name": "a2"}
    kept = held.get(2)
    held.delete(2)
    assert held.get(2) is None and kept == {"name": "b"}


def test_dicts_nobody_holds_go_and_the_held_ones_stay_the_same() -> None:
    held = stored(*({"n": i} for i in range(10_000)))
    kept = {i: held.get(i) for i in range(1, 11)}
    for i in range(11, 10_001):
        assert held.get(i) == {"n": i - 1}
    assert len(held.handed) < 3_000  # swept: the dicts read once and dropped are gone
    assert all(held.get(i) is data for i, data in kept.items())


def test_a_scan_keeps_nothing_and_changing_what_it_gave_changes_nothing() -> None:
    held = stored({"name": "a", "tags": ["x"]})
    for _, data in held.items():
        data["name"] = "changed"
        data["tags"].append("y")
    assert held.get(1) == {"name": "a", "tags": ["x"]} and not held.handed.keys() - {1}


def test_a_copy_changes_apart_and_keeps_the_dicts_handed_out() -> None:
    held = stored({"name": "a"}, {"name": "b"})
    a, b = held.get(1), held.get(2)
    twin = held.copy()
    twin.put(2, {"name": "b2"})
    twin.put(3, {"name": "c"})
    assert twin.get(1) is a and twin.get(2) == {"name": "b2"} and len(twin) == 3
    assert held.get(2) is b and 3 not in held and len(held) == 2


def test_a_frozen_copy_stays_as_it_was() -> None:
    held = stored({"name": "a", "age": 1}, {"name": "b"})
    frozen = held.frozen()
    held.put(1, {"name": "a2", "age": 2})
    held.delete(2)
    held.put(3, {"name": "c", "age": 3})
    assert dict(frozen.items()) == {1: {"name": "a", "age": 1}, 2: {"name": "b"}}
    assert len(frozen) == 2 and 3 not in frozen and frozen[2] == {"name": "b"}
    assert list(frozen.values()) == [{"name": "a", "age": 1}, {"name": "b"}]


def test_columns_and_lacking_records_read_rows_of_every_kind() -> None:
    held = stored(
        {"name": "a", "age": 1},
        {"age": 2, "name": "b"},
        {"name": "c"},
        {"name": Text("d"), "age": 4},
    )
    assert held.column("age") == {1: 1, 2: 2, 4: 4}
    assert held.column("name") == {1: "a", 2: "b", 3: "c", 4: "d"}
    assert held.column("nothing") == {}
    assert [i for i, _ in held.lacking(frozenset({"age"}))] == [3]
    lacking = held.lacking(frozenset({"age", "email"}))
    assert [i for i, _ in lacking] == [1, 2, 3, 4] and lacking[1][1] == {"age": 2, "name": "b"}


def test_the_view_is_a_read_only_mapping_of_new_dicts() -> None:
    held = stored({"name": "a"}, {"name": "b"})
    view = RecordsView(held)
    assert len(view) == 2 and list(view) == [1, 2] and 1 in view and 3 not in view
    assert view[1] is view.get(1) is held.get(1)
    assert view.get(3) is None and view.get(3, "none") == "none"
    assert list(view.keys()) == [1, 2] and list(view.items())[1] == (2, {"name": "b"})
    assert list(view.values()) == [{"name": "a"}, {"name": "b"}]
    copied = view.copy()
    assert type(copied) is dict and copied == {1: {"name": "a"}, 2: {"name": "b"}}
    try:
        view[3]
    except KeyError as exc:
        assert exc.args == (3,)
    else:  # pragma: no cover
        raise AssertionError("no KeyError")


def test_clearing_forgets_the_shape() -> None:
    held = stored({"a": 1})
    held.clear()
    assert len(held) == 0 and held.shape is None and held.get(1) is None
    held.put(5, {"b": 2, "c": 3})
    assert held.shape == ("b", "c") and held.get(5) == {"b": 2, "c": 3}


def test_records_all_of_the_shape_scan_the_same_as_mixed_ones() -> None:
    shaped = [{"name": f"n{i}", "age": i, "tags": [i, {"k": None}]} for i in range(50)]
    held = stored(*shaped)
    mixed = stored(*shaped, {"age": 1, "name": "reordered", "tags": []})
    assert not held.lacking(frozenset({"age"})) and len(held.lacking(frozenset({"x"}))) == 50
    for records in (held, mixed):
        expected = dict(enumerate(shaped, 1))
        if records is mixed:
            expected[51] = {"age": 1, "name": "reordered", "tags": []}
        assert all(same(records.get(i), data) for i, data in expected.items())
        assert all(same(a, b) for a, b in zip(records.values(), expected.values(), strict=True))
        assert list(records.items()) == list(expected.items())
        assert records.column("age") == {i: data["age"] for i, data in expected.items()}
        assert records.column("missing") == {}
        frozen = records.frozen()
        assert dict(frozen.items()) == expected and list(frozen.values()) == list(expected.values())
    mixed.clear()
    mixed.put(1, {})  # a record without fields sets no shape
    mixed.put(2, {"a": 1})
    assert mixed.shape == ("a",) and list(mixed.values()) == [{}, {"a": 1}]
