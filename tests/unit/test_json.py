"""The shared JSON codec: exact integers of any size, orjson's speed for everything else."""

from __future__ import annotations

import pytest

from discobase import _json
from discobase.storage import codec
from discobase.storage.snapshot import decode_records, encode_records

BIG = 2**64 + 1
BIG_NEGATIVE = -(2**63) - 1


def test_integers_beyond_64_bits_decode_exactly_never_as_floats() -> None:
    text = b'{"n":18446744073709551617,"m":-9223372036854775809,"x":[1,2.5]}'

    decoded = _json.loads(text)

    assert decoded == {"n": BIG, "m": BIG_NEGATIVE, "x": [1, 2.5]}
    assert type(decoded["n"]) is int and type(decoded["m"]) is int
    assert _json.loads(text.decode()) == decoded
    assert _json.loads(bytearray(text)) == decoded
    assert _json.loads(memoryview(text)) == decoded


def test_snowflakes_stay_on_the_fast_path_and_64_bit_edges_decode_exactly() -> None:
    snowflakes = b'["1575621253793993345",9223372036854775807,-922337203685477580]'
    edges = b"[18446744073709551615,-9223372036854775808]"

    assert not _json.may_hold_big_int(snowflakes)
    assert _json.loads(snowflakes) == ["1575621253793993345", 2**63 - 1, -(2**63 // 10)]
    assert _json.loads(edges) == [2**64 - 1, -(2**63)]


def test_integers_beyond_64_bits_encode_exactly() -> None:
    value = {"n": BIG, "nested": [BIG_NEGATIVE, "é"]}

    assert (
        _json.dumps(value)
        == b'{"n":18446744073709551617,"nested":[-9223372036854775809,"\xc3\xa9"]}'
    )
    assert (
        _json.dumps_str(value) == '{"n":18446744073709551617,"nested":[-9223372036854775809,"é"]}'
    )
    assert _json.loads(_json.dumps(value)) == value


def test_the_exact_decoder_refuses_what_orjson_refuses() -> None:
    for bad in (
        b"[NaN,18446744073709551617]",
        b"[18446744073709551617",
        b"\xff18446744073709551617",
    ):
        with pytest.raises(_json.JSONDecodeError):
            _json.loads(bad)


def test_other_encoding_errors_are_not_swallowed() -> None:
    with pytest.raises(TypeError):
        _json.dumps({"n": object()})


def test_big_integers_round_trip_through_log_lines_and_snapshots() -> None:
    record = {"value": BIG, "any": {"n": BIG_NEGATIVE}}

    line = codec.encode_op(codec.Put(7, record))
    assert _json.loads(line) == ["p", "7", record]
    (chunk,) = decode_records(codec.compress_lines(line.encode() + b"\n"))
    assert chunk == [["p", "7", record]]

    stream = encode_records({7: record, 8: {"value": 1}}, {})
    lines = [raw for chunk in decode_records(stream) for raw in chunk]
    assert lines == [["p", "7", record], ["p", "8", {"value": 1}]]
