"""What @db.table refuses up front, with a typed error that names the mistake."""

from __future__ import annotations

import pydantic
import pytest

import discobase
from discobase.errors import TableRegistrationError


@pytest.mark.parametrize(
    ("field", "method"),
    [("limit", "find"), ("offset", "find"), ("order_by", "find"), ("strict", "find_unique")],
)
def test_a_field_named_like_a_query_keyword_is_refused(field: str, method: str) -> None:
    db = discobase.Database("reserved")
    model = pydantic.create_model("Plan", __base__=discobase.Table, **{field: (int, 0)})
    with pytest.raises(TableRegistrationError, match=rf"'{field}'.*{method}\(\)"):
        db.table(model)
    assert db.tables == {}


def test_an_alias_lets_records_keep_the_keyword_as_a_constructor_name() -> None:
    db = discobase.Database("reserved")

    @db.table
    class Plan(discobase.Table):
        limit_: int = pydantic.Field(alias="limit")

    assert Plan(limit=2).limit_ == 2


def test_a_table_name_longer_than_a_channel_name_is_refused() -> None:
    db = discobase.Database("names")
    db.table(pydantic.create_model("T" * 100, __base__=discobase.Table))
    with pytest.raises(TableRegistrationError, match="101 characters.*at most 100"):
        db.table(pydantic.create_model("T" * 101, __base__=discobase.Table))
    assert list(db.tables) == ["t" * 100]
