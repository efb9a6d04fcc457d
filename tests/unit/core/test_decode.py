"""Column and meta value decoding: bad data is flagged, never fatal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from wpcdc.core.decode import decode_meta, looks_serialized, text


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
