"""Names discobase 1.0 had say what replaced them; other unknown names fail as usual."""

from __future__ import annotations

import pytest

import discobase

db = discobase.Database("removed names")


@db.table
class User(discobase.Table):
    name: str


def test_disco_id_names_record_id() -> None:
    with pytest.raises(AttributeError, match=r"User.__disco_id__ is gone.*record\.id") as caught:
        User(name="Peter").__disco_id__  # noqa: B018 - the lookup is the test
    assert caught.value.name == "__disco_id__"
    assert not hasattr(User(name="Peter"), "__disco_id__")
    assert "__disco_id__" not in User.model_fields


def test_clean_names_its_replacements() -> None:
    with pytest.raises(AttributeError, match=r"Database.clean is gone.*delete_many.*migrate"):
        db.clean()  # type: ignore[attr-defined]
    assert getattr(db, "clean", None) is None


def test_other_unknown_names_fail_as_python_says() -> None:
    with pytest.raises(AttributeError, match=r"^'Database' object has no attribute 'clear'$"):
        db.clear  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match=r"^'User' object has no attribute 'nick'$"):
        User(name="Peter").nick  # type: ignore[attr-defined]  # noqa: B018


def test_a_property_that_fails_keeps_its_own_error() -> None:
    class Broken(discobase.Database):
        @property
        def status(self) -> str:
            raise AttributeError("the status is not known yet")

    with pytest.raises(AttributeError, match="^the status is not known yet$"):
        Broken("broken").status  # noqa: B018
