"""Values made for fields that older records lack: the same JSON a saved record would hold."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any

import pydantic

import discobase
from discobase import _json


class Colour(enum.Enum):
    RED = "red"


class Point(pydantic.BaseModel):
    x: int = 1


def made(model: type[discobase.Table], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    db = discobase.Database("fill")
    db.table(model)
    binding = model.__discobase_binding__
    assert binding is not None
    return binding._filler.fill(stored)


def test_factory_values_dump_as_the_model_dumps_them() -> None:
    class Wide(discobase.Table):
        name: str
        raw: bytes = pydantic.Field(default_factory=lambda: b"\xff\x00")
        real: float = pydantic.Field(default_factory=lambda: float("inf"))
        span: datetime.timedelta = pydantic.Field(default_factory=lambda: datetime.timedelta(1))
        when: datetime.datetime = pydantic.Field(
            default_factory=lambda: datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)
        )
        colour: Colour = pydantic.Field(default_factory=lambda: Colour.RED)
        point: Point = pydantic.Field(default_factory=Point)
        shown: Annotated[int, pydantic.PlainSerializer(lambda v: f"#{v}")] = pydantic.Field(
            default_factory=lambda: 7
        )
        huge: int = pydantic.Field(default_factory=lambda: 2**70)
        nick: str = pydantic.Field(default="anon", alias="nickName")

    expected = _json.loads(Wide(name="a").model_dump_json(by_alias=False))
    del expected["name"]

    assert made(Wide, [{"name": "a"}, {"name": "b", "huge": 1}]) == [
        expected,
        {k: v for k, v in expected.items() if k != "huge"},
    ]


def test_validated_fields_and_factories_that_take_data_are_made_by_validating() -> None:
    class Derived(discobase.Table):
        name: str
        upper: str = pydantic.Field(default_factory=lambda data: data["name"].upper())
        tags: list[str] = pydantic.Field(default_factory=lambda: ["x"])

        @pydantic.field_validator("tags")
        @classmethod
        def sort_tags(cls, value: list[str]) -> list[str]:
            return sorted(value)

    assert made(Derived, [{"name": "ann"}, {"name": "bob", "upper": "B"}]) == [
        {"upper": "ANN", "tags": ["x"]},
        {"tags": ["x"]},
    ]


def test_a_record_that_does_not_fit_gets_what_can_be_made() -> None:
    class Strict(discobase.Table):
        name: str
        upper: str = pydantic.Field(default_factory=lambda data: data["name"].upper())
        plain: int = pydantic.Field(default_factory=lambda: 3)

    assert made(Strict, [{"name": 5}]) == [{"plain": 3}]
