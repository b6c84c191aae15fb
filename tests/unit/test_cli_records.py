"""`discobase load`'s line checks against a stored JSON schema: pure, no Discord.

The schema and fields are made exactly as the catalog stores them (``model_json_schema()``
and ``{field: has a default}``), so what ``save()`` stores must pass unchanged, and what the
checks accept must be readable by the class.
"""

from __future__ import annotations

import datetime
import enum
import json
import uuid
from typing import Annotated, Any, Literal

import pydantic
import pytest

import discobase
from discobase.cli.records import ParsedLine, RecordSchema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(pydantic.BaseModel):
    x: int
    label: str = "a"


class Rich(discobase.Table):
    name: str
    amount: Annotated[int, pydantic.Field(ge=0, lt=100)] = 3
    ratio: float = 1.5
    flag: bool = False
    when: datetime.datetime = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    day: datetime.date | None = None
    blob: bytes = b"hi"
    key: uuid.UUID | None = None
    items: list[int] = pydantic.Field(default_factory=list)
    tags: set[str] = set()
    pair: tuple[int, str] = (1, "a")
    weights: dict[str, float] = {}
    mode: Literal["a", "b"] = "a"
    color: Color = Color.RED
    inner: Inner | None = None
    renamed: int = pydantic.Field(default=0, alias="Renamed")
    span: datetime.timedelta = datetime.timedelta(seconds=5)
    code: Annotated[str, pydantic.Field(max_length=3, pattern="^[a-z]+$")] = "abc"


class Node(discobase.Table):
    value: int
    children: list[Node] = []


def checker(model: type[pydantic.BaseModel]) -> RecordSchema:
    fields = {name: not info.is_required() for name, info in model.model_fields.items()}
    return RecordSchema(model.model_json_schema(), fields)


def parse(model: type[pydantic.BaseModel], line: Any, *, keep_ids: bool = False) -> ParsedLine:
    text = line if isinstance(line, str) else json.dumps(line)
    parsed = checker(model).parse(1, text, keep_ids=keep_ids)
    assert parsed is not None
    return parsed


def problems(model: type[pydantic.BaseModel], line: Any) -> list[str]:
    return [str(problem) for problem in parse(model, line).problems]


def stored(record: pydantic.BaseModel) -> dict[str, Any]:
    """What save() stores: JSON mode, by field name."""
    data: dict[str, Any] = json.loads(record.model_dump_json(by_alias=False))
    return data


SAVED = [
    Rich(name="plain"),
    Rich(
        name="full",
        amount=99,
        ratio=float("inf"),
        flag=True,
        when=datetime.datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=datetime.UTC),
        day=datetime.date(2020, 2, 29),
        blob=b"\xfb\xff\x00",
        key=uuid.UUID(int=7),
        items=[1, 2, 3],
        tags={"x", "y"},
        pair=(5, "five"),
        weights={"a": 0.5, "b": float("-inf")},
        mode="b",
        color=Color.BLUE,
        inner=Inner(x=1, label="z"),
        Renamed=7,
        span=datetime.timedelta(days=2, microseconds=5),
        code="xyz",
    ),
    Rich(name="nan", ratio=float("nan")),
]


@pytest.mark.parametrize("record", SAVED, ids=lambda r: r.name)
def test_what_save_stores_passes_unchanged(record: Rich) -> None:
    data = stored(record)
    parsed = parse(Rich, data)
    assert parsed.problems == []
    assert parsed.data == data or record.name == "nan"  # nan != nan
    again = Rich.model_validate_json(json.dumps(parsed.data), by_name=True)
    if record.name == "nan":  # nan != nan: compare what is stored
        assert again.model_dump_json() == record.model_dump_json()
    else:  # a set's JSON order follows the hash seed: compare the values
        assert again == record


def test_left_out_fields_get_the_stored_default_and_factories_are_left_to_readers() -> None:
    parsed = parse(Rich, {"name": "short"})
    assert parsed.problems == []
    expected = stored(Rich(name="short"))
    del expected["items"]  # made by a factory: not in the schema; readers fill it in
    assert parsed.data == expected
    assert list(parsed.data) == [name for name in Rich.model_fields if name != "items"]
    assert Rich.model_validate_json(json.dumps(parsed.data)).items == []


def test_an_alias_is_stored_under_the_field_name() -> None:
    assert parse(Rich, {"name": "a", "Renamed": 4}).data["renamed"] == 4
    assert parse(Rich, {"name": "a", "renamed": 5}).data["renamed"] == 5
    assert problems(Rich, {"name": "a", "Renamed": 4, "renamed": 5}) == [
        "line 1: renamed is given twice (by name and alias)"
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"name": "a", "amount": "seven"}, ": amount: expected an integer, not the string 'seven'"),
        ({"name": "a", "amount": 2.5}, ": amount: expected an integer, not a number 2.5"),
        ({"name": "a", "amount": True}, ": amount: expected an integer, not true"),
        ({"name": "a", "amount": 100}, ": amount: 100 is not less than 100"),
        ({"name": "a", "amount": -1}, ": amount: -1 is not at least 0"),
        ({"name": "a", "ratio": "fast"}, ": ratio: expected a number, not the string 'fast'"),
        ({"name": "a", "flag": 1}, ": flag: expected a boolean, not an integer 1"),
        ({"name": "a", "when": "soon"}, ": when: the string 'soon' is not a valid date-time"),
        ({"name": "a", "day": "2024-02-30"}, ": day: the string '2024-02-30' is not a valid date"),
        ({"name": "a", "day": 3}, ": day: expected null or string, not an integer 3"),
        ({"name": "a", "blob": "!!"}, ": blob: the string '!!' is not a valid base64url"),
        ({"name": "a", "key": "k"}, ": key: the string 'k' is not a valid uuid"),
        ({"name": "a", "items": [1, "2"]}, ": items[1]: expected an integer, not the string '2'"),
        ({"name": "a", "tags": ["x", "x"]}, ": tags: items 0 and 1 are equal (it is a set)"),
        ({"name": "a", "pair": [1]}, ": pair: has 1 items, fewer than 2"),
        ({"name": "a", "pair": [1, 2]}, ": pair[1]: expected a string, not an integer 2"),
        ({"name": "a", "weights": {"w": None}}, ": weights['w']: expected a number, not null"),
        ({"name": "a", "mode": "c"}, ': mode: the string \'c\' is not one of "a", "b"'),
        ({"name": "a", "color": "green"}, ": color: the string 'green' is not one of"),
        ({"name": "a", "inner": {}}, ": inner: lacks required fields: x"),
        ({"name": "a", "inner": {"x": "1"}}, ": inner.x: expected an integer, not the string"),
        ({"name": "a", "span": "a while"}, ": span: the string 'a while' is not a valid duration"),
        ({"name": "a", "code": "abcd"}, ": code: the string 'abcd' is longer than 3 characters"),
        ({"name": "a", "code": "AB"}, ": code: the string 'AB' does not match '^[a-z]+$'"),
        ({"name": 5}, ": name: expected a string, not an integer 5"),
        ({"amount": 1}, " lacks required fields: name"),
        ({"name": "a", "nom": 1, "other": 2}, " has unknown fields: nom, other"),
        ([1, 2], " is not a JSON object but an array"),
        ("{nope", " is not valid JSON"),
    ],
)
def test_a_line_that_does_not_fit_is_refused_with_its_field_and_reason(
    line: Any, reason: str
) -> None:
    # Some of these pydantic's lax mode would coerce ("1" for an int, 1 for a bool): refused
    # all the same, as save() never stores them.
    found = problems(Rich, line)
    assert len(found) == 1
    assert found[0].startswith("line 1" + reason)


def test_an_integral_float_in_an_integer_field_is_stored_as_an_integer() -> None:
    data = parse(Rich, {"name": "a", "amount": 7.0}).data
    assert data["amount"] == 7 and type(data["amount"]) is int


def test_a_model_that_contains_itself_is_checked_at_every_depth() -> None:
    good = stored(Node(value=1, children=[Node(value=2, children=[Node(value=3)])]))
    assert parse(Node, good).problems == []
    bad = {"value": 1, "children": [{"value": 2, "children": [{"value": "three"}]}]}
    assert problems(Node, bad) == [
        "line 1: children[0].children[0].value: expected an integer, not the string 'three'"
    ]


def test_a_value_nested_too_deeply_to_check_is_refused_not_raised() -> None:
    # 400 levels: within what the JSON parser takes, beyond Python's recursion limit.
    deep = '{"value": 1, "children": [' * 400 + '{"value": 0}' + "]}" * 400
    assert problems(Node, deep) == ["line 1: children: is nested too deeply to check"]


def test_extra_fields_pass_only_when_the_class_allows_them() -> None:
    class Open(discobase.Table):
        model_config = pydantic.ConfigDict(extra="allow")
        name: str

    assert parse(Open, {"name": "a", "more": [1]}).data == {"name": "a", "more": [1]}
    assert problems(Rich, {"name": "a", "more": 1}) == ["line 1 has unknown fields: more"]


def test_kept_ids_must_be_positive_63_bit_integers() -> None:
    assert parse(Rich, {"id": 5, "name": "a"}, keep_ids=True).record_id == 5
    assert parse(Rich, {"id": "6", "name": "a"}, keep_ids=True).record_id == 6
    assert parse(Rich, {"id": 5, "name": "a"}).record_id is None  # dropped without keep_ids
    for bad in (0, -1, 2**63, "x", 1.5, True):
        found = [str(p) for p in parse(Rich, {"id": bad, "name": "a"}, keep_ids=True).problems]
        assert found and found[0].startswith("line 1: id must be a positive integer below 2**63")
    found = [str(p) for p in parse(Rich, {"name": "a"}, keep_ids=True).problems]
    assert found == ["line 1 has no id (--keep-ids stores each line under its id)"]


def test_a_blank_line_is_skipped() -> None:
    assert checker(Rich).parse(1, "   ", keep_ids=False) is None
