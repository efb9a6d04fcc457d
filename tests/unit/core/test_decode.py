"""Column and meta value decoding: bad data is flagged, never fatal."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import orjson
import phpserialize
import pytest

from wpcdc.core import decode
from wpcdc.core.decode import MetaValue, decode_meta, looks_serialized, text


def test_plain_string_is_kept() -> None:
    assert decode_meta("hello") == decode_meta("hello")
    value = decode_meta("hello")
    assert (value.value, value.serialized, value.raw, value.error) == ("hello", False, None, None)


def test_php_list_becomes_json_array_and_assoc_becomes_object() -> None:
    value = decode_meta('a:2:{i:0;s:1:"a";i:1;a:1:{s:1:"k";d:1.5;}}')
    assert value.value == ["a", {"k": 1.5}]
    assert value.serialized and value.error is None


def test_php_object_keeps_its_class() -> None:
    value = decode_meta('O:8:"stdClass":1:{s:1:"a";i:1;}')
    assert value.value == {"__class__": "stdClass", "a": 1}


def test_multibyte_lengths_are_bytes() -> None:
    assert decode_meta('s:4:"😀";').value == "😀"


@pytest.mark.parametrize(
    "broken",
    [
        'a:1:{s:5:"short";s:3:"toolong";}',  # lengths wrong after a naive search/replace
        'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}',
        "a:0:{}junk;",  # trailing data
        "a:1:{i:0;" * 200 + "N;" + "}" * 200,  # deep nesting
    ],
)
def test_undecodable_serialized_value_is_flagged_with_raw(broken: str) -> None:
    value = decode_meta(broken)
    assert value.value == broken
    assert value.raw == broken
    assert value.serialized is True
    assert value.error


def test_invalid_utf8_bytes_are_base64_with_a_flag() -> None:
    value = decode_meta(b"\xff\xfe")
    assert value.value == "base64://4="
    assert value.error == "value is not valid UTF-8"


def test_looks_serialized_follows_wordpress() -> None:
    assert looks_serialized("N;")
    assert looks_serialized("i:42;")
    assert looks_serialized("a:0:{}")
    assert not looks_serialized("42")
    assert not looks_serialized("a:b")


def test_text_makes_json_safe_values() -> None:
    assert text(dt.datetime(2026, 11, 23, 10, 0)) == "2026-11-23T10:00:00"
    assert text(Decimal("1.50")) == "1.50"
    assert text(b"caf\xc3\xa9") == "café"
    assert text(None) is None


def _random_php(rng: random.Random, depth: int) -> Any:
    """A random PHP value as phpserialize.dumps takes it."""
    kind = rng.randrange(8 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, 2**63, -(2**63) - 1, 2**64, rng.randrange(-(10**9), 10**9)])
    if kind == 3:
        return rng.choice([0.0, -0.5, 1.5e300, 3.25, float(rng.randrange(1000)) / 7])
    if kind in (4, 5):
        return rng.choice(["", "a", "é", "😀 x", '";}', "s:1:", "a" * rng.randrange(40)])
    size = rng.randrange(4)
    if kind == 6:  # a PHP list
        return {i: _random_php(rng, depth + 1) for i in range(size)}
    keys: list[Any] = [
        rng.choice([0, 1, 2, -3, "0", "1", "k", "é", "", 2**70]) for _ in range(size)
    ]
    return {key: _random_php(rng, depth + 1) for key in keys}


def _mutations(rng: random.Random, raw: bytes) -> list[bytes]:
    """The input as is and damaged: a byte changed, cut short, upper-cased, padded."""
    out = [raw, raw.upper(), raw[: rng.randrange(len(raw) + 1)], raw + b";"]
    for _ in range(3):
        i = rng.randrange(len(raw))
        out.append(raw[:i] + bytes([rng.choice(b'0123456789:;{}"aisdbNO-.\xff')]) + raw[i + 1 :])
    out.append(raw.replace(b"d:3.25;", b"d:1e999;").replace(b"i:7;", b"i:+7;"))
    out.append(raw.replace(b"i:-1;", b"i: -1;").replace(b'"k"', b'"\xff"'))
    return out


def test_fast_path_decodes_exactly_as_phpserialize() -> None:
    # The fast path either takes an input and gives the reference's result, or
    # leaves it to the reference (phpserialize + _jsonable), errors included.
    rng = random.Random(8)
    taken = 0
    for _ in range(3000):
        raw = phpserialize.dumps(_random_php(rng, 0))
        for candidate in _mutations(rng, raw):
            try:
                reference: Any = ("ok", orjson.dumps(decode._unserialize(candidate)))
            except decode._DecodeFailure as exc:
                reference = ("error", str(exc))
            except TypeError:  # invalid UTF-8 (never from a str's encoding) left as surrogates
                reference = ("surrogates",)
            try:
                fast: Any = ("ok", orjson.dumps(decode._fast_unserialize(candidate)))
            except decode._NotFast:
                continue
            taken += 1
            assert fast == reference, candidate
    assert taken > 5000  # the common shapes do take the fast path


def test_fast_and_reference_paths_give_the_same_meta_value() -> None:
    # Through decode_meta: a value the fast path takes and one it leaves.
    fast = decode_meta('a:2:{s:3:"ids";a:3:{i:0;i:11;i:1;i:12;i:2;i:13;}s:7:"columns";i:3;}')
    assert fast == MetaValue(
        value={"ids": [11, 12, 13], "columns": 3},
        serialized=True,
        raw='a:2:{s:3:"ids";a:3:{i:0;i:11;i:1;i:12;i:2;i:13;}s:7:"columns";i:3;}',
    )
    left = decode_meta('a:1:{i:0;O:1:"C":1:{s:1:"a";b:1;}}')  # objects: the reference way
    assert (left.value, left.error) == ([{"__class__": "C", "a": True}], None)
    wide = decode_meta("a:1:{i:0;i:99999999999999999999999;}")
    assert wide.error == "an integer wider than 64 bits has no exact JSON form"


def test_recurring_serialized_values_are_decoded_once_in_bounded_memory() -> None:
    value = 'a:1:{s:3:"ids";a:2:{i:0;i:1;i:1;i:2;}}'
    assert decode_meta(value) is decode_meta(value)
    for n in range(decode._MEMO_ENTRIES * 2):
        decode_meta(f"a:1:{{i:0;i:{n};}}")
    assert len(decode._DECODED) <= decode._MEMO_ENTRIES
    assert decode_meta(value).value == {"ids": [1, 2]}
    chars = decode._MEMO_CHARS
    long = f'a:1:{{i:0;s:{chars}:"{"x" * chars}";}}'
    assert decode_meta(long).value == ["x" * decode._MEMO_CHARS]
    assert long not in decode._DECODED
