"""Query operators: conditions other than equality (public API layer: plain data, no I/O).

A query keeps equality as the original discobase spelt it, ``find(name="Peter")``; any other
condition is one of these small objects given as the field's value:

```python
from discobase import contains, ge, gt, lt, one_of, startswith

await User.find(age=gt(18), name=startswith("Pe"))
await User.find(age=ge(18) & lt(65))             # both: a range
await User.find(country=one_of("NL", "BE"), tags=contains("admin"))
```

An operator is a value that no field can hold (it is not JSON), so ``field=operator`` can never
mean equality with a stored value. Each operator is generic over its operand, and ``find``
accepts any value for a field, so queries type-check under ``mypy --strict``. This module only
describes conditions; ``discobase._conditions`` checks them against a table's fields and
``discobase.query`` evaluates them. An operator that does not fit its field's type (``gt`` on a
``bool``, ``startswith`` on a number, ``contains`` on an ``int``) makes the query raise
``InvalidQuery`` naming both, before any record is read. It must stay light: ``import
discobase`` loads it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = [
    "Operator",
    "contains",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "one_of",
    "startswith",
]

T_co = TypeVar("T_co", covariant=True)
S = TypeVar("S")
T = TypeVar("T")


class Operator(Generic[T_co]):
    """A condition on one field other than equality, made by `gt`, `one_of`, ... .

    Operators combine with `&`: `ge(18) & lt(65)` matches values that satisfy both. They are
    immutable and compare by value.

    Attributes:
        parts: the `(name, operand)` pairs that must all hold, e.g. `(("ge", 18), ("lt", 65))`;
            the operand of `one_of` is a tuple of its values.
    """

    __slots__ = ("parts",)

    parts: tuple[tuple[str, Any], ...]

    def __init__(self, name: str, operand: Any) -> None:
        object.__setattr__(self, "parts", ((name, operand),))

    def __and__(self, other: Operator[S]) -> Operator[T_co | S]:
        """Return an operator that matches what both operators match."""
        if not isinstance(other, Operator):
            return NotImplemented
        both: Operator[T_co | S] = Operator.__new__(Operator)
        object.__setattr__(both, "parts", self.parts + other.parts)
        return both

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to {name!r}: an Operator is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete {name!r}: an Operator is immutable")

    def __repr__(self) -> str:
        return " & ".join(_spell(name, operand) for name, operand in self.parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Operator):
            return NotImplemented
        return self.parts == other.parts

    def __hash__(self) -> int:
        try:
            return hash(self.parts)
        except TypeError:  # an unhashable operand (a list): hash the spelling instead
            return hash(repr(self))


def _spell(name: str, operand: Any) -> str:
    if name == "one_of":
        return f"one_of({', '.join(repr(v) for v in operand)})"
    return f"{name}({operand!r})"


def gt(value: T) -> Operator[T]:
    """Match values greater than `value` (`find(age=gt(18))`).

    Works on fields whose values have an order: numbers, strings, dates, times, datetimes,
    timedeltas and decimals (and those types or `None`, where `None` never matches).
    """
    return Operator("gt", value)


def ge(value: T) -> Operator[T]:
    """Match values greater than or equal to `value` (`find(age=ge(18))`); fields as `gt`."""
    return Operator("ge", value)


def lt(value: T) -> Operator[T]:
    """Match values less than `value` (`find(age=lt(65))`); fields as `gt`."""
    return Operator("lt", value)


def le(value: T) -> Operator[T]:
    """Match values less than or equal to `value` (`find(age=le(65))`); fields as `gt`."""
    return Operator("le", value)


def ne(value: T) -> Operator[T]:
    """Match values not equal to `value`, on a field of any type (`find(country=ne("NL"))`).

    A record whose value is `None` matches `ne(x)` for any `x` but `None`.
    """
    return Operator("ne", value)


def one_of(*values: T) -> Operator[T]:
    """Match values equal to any of `values`, on a field of any type.

    `find(country=one_of("NL", "BE"))`; with a list in hand, `one_of(*countries)`. With no
    value at all nothing matches.
    """
    return Operator("one_of", values)


def contains(value: T) -> Operator[T]:
    """Match lists (or sets, tuples) holding `value`, or strings holding the substring `value`.

    `find(tags=contains("admin"))` on a `list[str]` field; `find(name=contains("ete"))` on a
    `str` field (case-sensitive).
    """
    return Operator("contains", value)


def startswith(prefix: str) -> Operator[str]:
    """Match strings that start with `prefix` (`find(name=startswith("Pe"))`, case-sensitive)."""
    return Operator("startswith", prefix)
