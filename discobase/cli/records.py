"""Check lines of a JSON lines file against a table's stored JSON schema (cli layer: pure).

The command line knows no ``Table`` class, only what the catalog keeps: pydantic's JSON schema
of the class (properties named by alias) and ``{field name: has a default}`` in field order.
A record the loader writes must stay readable by every program, which validates it with the
class, so each line is checked here against the schema before anything is written:

- the line is a JSON object whose keys are the table's fields (by name or alias), unless the
  schema allows extra keys (``extra="allow"``);
- every field without a default is present, and every value has the JSON type, format, range,
  length, items and properties the schema says; formats (``date-time``, ``uuid``, base64
  bytes, ...) are parsed by pydantic, the parser the reading programs use;
- a field left out gets the schema's ``default``, the JSON value ``save()`` stores; a default
  made by a factory is not in the schema, so the field is left out and programs fill it in
  when they read the record, as for records older than the field.

What a schema cannot say (a validator written in Python) is not checked. Values are stored as
written; the only change is an integral float in an integer field stored as an integer.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LineProblem", "ParsedLine", "RecordSchema", "describe_value"]

#: How a check reports a value that does not fit: ``(path below the value, reason)``.
Problem = tuple[str, str]
Check = Callable[[Any], Problem | None]

# Table's config writes non-finite floats as these strings (ser_json_inf_nan="strings").
_NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
_JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
# JSON schema formats pydantic writes, and the Python type whose parser checks a value.
_FORMAT_TYPES = {
    "date-time": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "duration": "datetime.timedelta",
    "uuid": "uuid.UUID",
    "uuid1": "uuid.UUID",
    "uuid3": "uuid.UUID",
    "uuid4": "uuid.UUID",
    "uuid5": "uuid.UUID",
    "ipv4": "ipaddress.IPv4Address",
    "ipv6": "ipaddress.IPv6Address",
    "ipvanyaddress": "ipaddress.IPv4Address|ipaddress.IPv6Address",
    # Table's bytes are base64 (ser_json_bytes); "binary" is a class's own utf8: any string.
    "base64url": "bytes",
}
_MAX_ID = 2**63
_SHOWN = 40


@dataclass(frozen=True)
class LineProblem:
    """Why one line of the file cannot be loaded.

    Attributes:
        line: the line's number, from 1.
        reason: what is wrong, naming the field.
    """

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}{self.reason}"


@dataclass
class ParsedLine:
    """A line that fits: its number, the record to store, and its ``id`` if it had one."""

    line: int
    data: dict[str, Any]
    record_id: int | None = None
    problems: list[LineProblem] = field(default_factory=list)


def describe_value(value: Any) -> str:
    """Name a JSON value's type and show it, shortened: ``the string 'seven'``."""
    kind = _json_type(value)
    if kind in ("null", "boolean"):
        return "null" if value is None else ("true" if value else "false")
    if kind in ("array", "object"):
        return f"an {kind}" if kind == "array" else "an object"
    shown = repr(value)
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 3] + "..."
    article = "an" if kind == "integer" else "a"
    return f"{article} {kind} {shown}" if kind != "string" else f"the string {shown}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class RecordSchema:
    """The checks of one table's records, compiled once from its stored schema.

    Args:
        schema: the table's JSON schema as the catalog stores it.
        fields: ``{field name: has a default}`` in field order, as the catalog stores it.
    """

    def __init__(self, schema: Mapping[str, Any], fields: Mapping[str, bool]) -> None:
        defs = schema.get("$defs") or {}
        self._compiler = _Compiler(defs)
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and "properties" not in schema:
            # A class that contains itself: pydantic puts it in $defs and refers to it.
            schema = defs.get(ref.removeprefix("#/$defs/")) or schema
        props: Mapping[str, Any] = schema.get("properties") or {}
        names = list(fields)
        # The schema names properties by alias, records are stored by field name: both list
        # the fields in declaration order, so position pairs them (name by name when the
        # counts differ, which only a hand-written catalog entry could do).
        if len(props) == len(names):
            pairs = list(zip(names, props, strict=True))
        else:
            pairs = [(name, name) for name in names]
        self.fields = names
        self.required = [name for name in names if not fields[name]]
        self._checks: dict[str, Check] = {}
        self._defaults: dict[str, Any] = {}
        self._key_of: dict[str, str] = {}
        self._integers: set[str] = set()
        for name, prop_name in pairs:
            prop = props.get(prop_name, {})
            self._checks[name] = self._compiler.compile(prop)
            self._key_of[name] = name
            self._key_of.setdefault(prop_name, name)
            if isinstance(prop, dict) and prop.get("type") == "integer":
                self._integers.add(name)
            if fields[name] and isinstance(prop, dict) and "default" in prop:
                self._defaults[name] = prop["default"]
        extra = schema.get("additionalProperties")
        self._extra: Check | None = None
        if extra is True or isinstance(extra, dict):
            self._extra = self._compiler.compile(extra if isinstance(extra, dict) else {})

    def parse(self, number: int, text: str, *, keep_ids: bool) -> ParsedLine | None:
        """Check one line; ``None`` for a blank line.

        Args:
            number: the line's number, for the problems it reports.
            text: the line.
            keep_ids: whether the line's ``id`` is kept (and so must be a valid one).

        Returns:
            The record to store (with the defaults it lacked) and the line's problems; the
            record is stored only if no line of the file has a problem.
        """
        if not text.strip():
            return None
        from discobase import _json

        parsed = ParsedLine(number, {})
        problems = parsed.problems
        try:
            data = _json.loads(text)
        except ValueError:
            problems.append(LineProblem(number, " is not valid JSON"))
            return parsed
        if not isinstance(data, dict):
            problems.append(
                LineProblem(number, f" is not a JSON object but {describe_value(data)}")
            )
            return parsed
        raw_id = data.pop("id", None)
        if keep_ids:
            parsed.record_id = self._record_id(number, raw_id, problems)
        record: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in data.items():
            name = self._key_of.get(key)
            if name is None:
                if self._extra is None:
                    unknown.append(key)
                    continue
                problem = self._extra(value)
                if problem is not None:
                    problems.append(LineProblem(number, f": {key}{problem[0]}: {problem[1]}"))
                record[key] = value
                continue
            if name in record:
                problems.append(LineProblem(number, f": {key} is given twice (by name and alias)"))
                continue
            try:
                problem = self._checks[name](value)
            except RecursionError:  # a class that contains itself, nested a thousand deep
                problem = "", "is nested too deeply to check"
            if problem is not None:
                problems.append(LineProblem(number, f": {name}{problem[0]}: {problem[1]}"))
            # An integral float is an integer in JSON: store it as save() would.
            if isinstance(value, float) and name in self._integers and value.is_integer():
                value = int(value)
            record[name] = value
        if unknown:
            problems.insert(0, LineProblem(number, f" has unknown fields: {', '.join(unknown)}"))
        missing = [name for name in self.required if name not in record]
        if missing:
            problems.append(LineProblem(number, f" lacks required fields: {', '.join(missing)}"))
        for name, default in self._defaults.items():
            if name not in record:
                record[name] = default
        # Stored in field order, as save() stores them (extra fields, if allowed, last).
        ordered = {name: record[name] for name in self.fields if name in record}
        if len(ordered) < len(record):
            ordered.update(record)
        parsed.data = ordered
        return parsed

    @staticmethod
    def _record_id(number: int, raw: Any, problems: list[LineProblem]) -> int | None:
        if raw is None:
            problems.append(
                LineProblem(number, " has no id (--keep-ids stores each line under its id)")
            )
            return None
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.isascii() and raw.isdigit():
            value = int(raw)
        if value is None or not 0 < value < _MAX_ID:
            problems.append(
                LineProblem(
                    number,
                    f": id must be a positive integer below 2**63, not {describe_value(raw)}",
                )
            )
            return None
        return value


class _Compiler:
    """Turn schema nodes into checks; ``$ref`` targets are compiled once (and may recurse)."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self._defs = defs
        self._refs: dict[str, Check] = {}

    def compile(self, node: Any) -> Check:
        if not isinstance(node, dict):
            return _accept
        if node is False:  # pragma: no cover - a dict is never False
            return _accept
        checks: list[Check] = []
        ref = node.get("$ref")
        if isinstance(ref, str):
            checks.append(self._ref(ref))
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                checks.append(self._any([self.compile(b) for b in branches], branches))
        for branch in node.get("allOf") or ():
            checks.append(self.compile(branch))
        if "enum" in node and isinstance(node["enum"], list):
            checks.append(_enum(node["enum"]))
        if "const" in node:
            checks.append(_enum([node["const"]]))
        kind = node.get("type")
        kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
        if kinds:
            checks.append(self._typed(node, [k for k in kinds if k in _JSON_TYPES]))
        if not checks:
            return _accept
        if len(checks) == 1:
            check = checks[0]
        else:

            def check(value: Any) -> Problem | None:
                for one in checks:
                    problem = one(value)
                    if problem is not None:
                        return problem
                return None

        return check

    def _ref(self, ref: str) -> Check:
        cached = self._refs.get(ref)
        if cached is not None:
            return cached
        target: Check | None = None

        def deferred(value: Any) -> Problem | None:
            assert target is not None
            return target(value)

        self._refs[ref] = deferred  # a model that contains itself refers back to this
        name = ref.removeprefix("#/$defs/")
        target = self.compile(self._defs.get(name, {}) if ref.startswith("#/$defs/") else {})
        self._refs[ref] = target
        return target

    @staticmethod
    def _any(checks: list[Check], branches: list[Any]) -> Check:
        kinds = [_branch_types(b) for b in branches]

        def check(value: Any) -> Problem | None:
            problems = []
            for one in checks:
                problem = one(value)
                if problem is None:
                    return None
                problems.append(problem)
            # The branch of the value's own JSON type says best what is wrong with it.
            mine = _json_type(value)
            fitting = [
                p
                for p, k in zip(problems, kinds, strict=True)
                if k is None or mine in k or (mine == "integer" and "number" in k)
            ]
            if len(fitting) == 1:
                return fitting[0]
            names = sorted({t for k in kinds if k for t in k})
            expected = " or ".join(names) if names else "one of its allowed forms"
            return "", f"expected {expected}, not {describe_value(value)}"

        return check

    def _typed(self, node: Mapping[str, Any], kinds: list[str]) -> Check:
        string = _string_check(node) if "string" in kinds else None
        number = _number_check(node) if {"number", "integer"} & set(kinds) else None
        array = self._array_check(node) if "array" in kinds else None
        obj = self._object_check(node) if "object" in kinds else None
        allowed = set(kinds)
        expected = " or ".join(kinds)

        def check(value: Any) -> Problem | None:
            mine = _json_type(value)
            if mine == "integer" and "integer" not in allowed and "number" in allowed:
                mine = "number"
            elif mine == "number" and "number" not in allowed and "integer" in allowed:
                if value.is_integer():
                    mine = "integer"
            elif mine == "string" and "number" in allowed and value in _NON_FINITE:
                if "string" not in allowed:
                    return None if number is None else number(_NON_FINITE[value])
            if mine not in allowed:
                return "", f"expected {_article(expected)}, not {describe_value(value)}"
            if mine == "string" and string is not None:
                return string(value)
            if mine in ("integer", "number") and number is not None:
                return number(value)
            if mine == "array" and array is not None:
                return array(value)
            if mine == "object" and obj is not None:
                return obj(value)
            return None

        return check

    def _array_check(self, node: Mapping[str, Any]) -> Check:
        items = node.get("items")
        item = self.compile(items) if isinstance(items, dict) else None
        prefix = [self.compile(p) for p in node.get("prefixItems") or ()]
        low, high = node.get("minItems"), node.get("maxItems")
        unique = bool(node.get("uniqueItems"))

        def check(value: list[Any]) -> Problem | None:
            if isinstance(low, int) and len(value) < low:
                return "", f"has {len(value)} items, fewer than {low}"
            if isinstance(high, int) and len(value) > high:
                return "", f"has {len(value)} items, more than {high}"
            for i, element in enumerate(value):
                one = prefix[i] if i < len(prefix) else item
                if one is None:
                    continue
                problem = one(element)
                if problem is not None:
                    return f"[{i}]{problem[0]}", problem[1]
            if unique:
                from discobase import _json

                seen: dict[str, int] = {}
                for i, element in enumerate(value):
                    key = _json.dumps_str(element)
                    if key in seen:
                        return "", f"items {seen[key]} and {i} are equal (it is a set)"
                    seen[key] = i
            return None

        return check

    def _object_check(self, node: Mapping[str, Any]) -> Check:
        props = node.get("properties") or {}
        checks = {name: self.compile(prop) for name, prop in props.items()}
        required = [r for r in node.get("required") or () if isinstance(r, str)]
        extra = node.get("additionalProperties")
        extra_check = self.compile(extra) if isinstance(extra, dict) else None
        closed = extra is False
        names = node.get("propertyNames")
        name_check = self.compile(names) if isinstance(names, dict) else None

        def check(value: dict[str, Any]) -> Problem | None:
            missing = [name for name in required if name not in value]
            if missing:
                return "", f"lacks required fields: {', '.join(missing)}"
            for key, element in value.items():
                if name_check is not None:
                    problem = name_check(key)
                    if problem is not None:
                        return f"[{key!r}]", f"the key is not allowed: {problem[1]}"
                one = checks.get(key)
                if one is None:
                    if closed:
                        return "", f"has an unknown field: {key}"
                    one = extra_check
                if one is None:
                    continue
                problem = one(element)
                if problem is not None:
                    where = f".{key}" if key in checks else f"[{key!r}]"
                    return f"{where}{problem[0]}", problem[1]
            return None

        return check


def _accept(value: Any) -> Problem | None:
    return None


def _article(expected: str) -> str:
    return f"an {expected}" if expected[:1] in "aeiou" else f"a {expected}"


def _branch_types(node: Any) -> set[str] | None:
    if not isinstance(node, dict):
        return None
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    if "$ref" in node:
        return None
    if "enum" in node or "const" in node:
        values = node.get("enum") or [node.get("const")]
        return {_json_type(v) for v in values}
    return None


def _enum(values: list[Any]) -> Check:
    from discobase import _json

    allowed = {_json.dumps_str(v) for v in values}
    shown = ", ".join(_json.dumps_str(v) for v in values[:10])
    if len(values) > 10:
        shown += ", ..."

    def check(value: Any) -> Problem | None:
        if _json.dumps_str(value) in allowed:
            return None
        return "", f"{describe_value(value)} is not one of {shown}"

    return check


def _string_check(node: Mapping[str, Any]) -> Check | None:
    low, high = node.get("minLength"), node.get("maxLength")
    pattern: re.Pattern[str] | None = None
    if isinstance(node.get("pattern"), str):
        try:
            pattern = re.compile(node["pattern"])
        except re.error:  # a regex only pydantic's engine understands: not checked here
            pattern = None
    parse = _format_parser(node.get("format"))
    if low is None and high is None and pattern is None and parse is None:
        return None

    def check(value: str) -> Problem | None:
        if isinstance(low, int) and len(value) < low:
            return "", f"{describe_value(value)} is shorter than {low} characters"
        if isinstance(high, int) and len(value) > high:
            return "", f"{describe_value(value)} is longer than {high} characters"
        if pattern is not None and pattern.search(value) is None:
            return "", f"{describe_value(value)} does not match {pattern.pattern!r}"
        if parse is not None:
            reason = parse(value)
            if reason is not None:
                return "", f"{describe_value(value)} is not a valid {node['format']}: {reason}"
        return None

    return check


def _number_check(node: Mapping[str, Any]) -> Check | None:
    limits: list[tuple[Any, Callable[[Any, Any], bool], str]] = [
        (node.get("minimum"), operator.ge, "at least"),
        (node.get("maximum"), operator.le, "at most"),
        (node.get("exclusiveMinimum"), operator.gt, "greater than"),
        (node.get("exclusiveMaximum"), operator.lt, "less than"),
    ]
    bounds = [b for b in limits if isinstance(b[0], int | float) and not isinstance(b[0], bool)]
    step = node.get("multipleOf")
    if not bounds and not isinstance(step, int | float):
        return None

    def check(value: float) -> Problem | None:
        if isinstance(value, float) and math.isnan(value):
            return None
        for bound, fits, words in bounds:
            if not fits(value, bound):
                return "", f"{value!r} is not {words} {bound!r}"
        if isinstance(step, int | float) and step and math.isfinite(value):
            quotient = value / step
            if abs(quotient - round(quotient)) > 1e-9:
                return "", f"{value!r} is not a multiple of {step!r}"
        return None

    return check


_PARSERS: dict[str, Callable[[str], str | None]] = {}


def _format_parser(fmt: Any) -> Callable[[str], str | None] | None:
    """Return a check of a string format, by the parser the reading programs use."""
    if not isinstance(fmt, str) or fmt not in _FORMAT_TYPES:
        return None
    cached = _PARSERS.get(fmt)
    if cached is not None:
        return cached
    # pydantic's own parser decides: a value it accepts is one every reading program accepts.
    # (Pydantic's home is the table and storage layers; this is the one exception, because
    # any other parser would disagree with it at the edges.)
    import datetime
    import ipaddress
    import uuid

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    from discobase import _json

    kinds: dict[str, Any] = {
        "datetime.datetime": datetime.datetime,
        "datetime.date": datetime.date,
        "datetime.time": datetime.time,
        "datetime.timedelta": datetime.timedelta,
        "uuid.UUID": uuid.UUID,
        "ipaddress.IPv4Address": ipaddress.IPv4Address,
        "ipaddress.IPv6Address": ipaddress.IPv6Address,
        "ipaddress.IPv4Address|ipaddress.IPv6Address": ipaddress.IPv4Address
        | ipaddress.IPv6Address,
        "bytes": bytes,
    }
    adapter: TypeAdapter[Any] = TypeAdapter(
        kinds[_FORMAT_TYPES[fmt]], config=ConfigDict(val_json_bytes="base64")
    )

    def parse(value: str) -> str | None:
        try:
            adapter.validate_json(_json.dumps(value))
        except ValidationError as exc:
            message = str(exc.errors()[0].get("msg", "invalid"))
            return message[0].lower() + message[1:] if message else "invalid"
        return None

    _PARSERS[fmt] = parse
    return parse
