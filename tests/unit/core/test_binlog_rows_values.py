"""Each column type's value from hand-built ROWS event bytes, on both paths of the
decoder and as mysql-replication (with wpcdc's patches) reads the same bytes."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from typing import Any

import pytest

from tests.support.binlog_bytes import (
    BINARY,
    LATIN1,
    WRITE,
    Col,
    LibraryDecoder,
    build_decoder,
    datetime2,
    decode_both,
    image,
    int_,
    rows_event,
    string,
    table_map_event,
)


def one(col: Col, raw: bytes, **kw: Any) -> Any:
    """The value of ``raw`` in a column ``col``, which the library must agree on."""
    cols = [Col("id", 3), col]
    event = rows_event(WRITE, 7, 2, [image([int_(1, "i"), raw])])
    [(_, after)] = decode_both(build_decoder(cols, **kw), event)
    library = LibraryDecoder(table_map_event(7, "wp", "t", cols, **kw), **kw)
    [(_, expected)] = library.rows(event[0], event[1])
    assert after is not None
    assert [(k, type(v), v) for k, v in after.items()] == [
        (k, type(v), v) for k, v in expected.items()
    ]
    return after[col.name]


def decimal_bytes(groups: bytes, negative: bool = False) -> bytes:
    data = bytearray(groups)
    data[0] |= 0x80
    return bytes(b ^ 0xFF for b in data) if negative else bytes(data)


FSP3 = b"\x03"
TYPE_CASES = [
    (Col("v", 1), int_(-128, "b"), -128),
    (Col("v", 1, unsigned=True), int_(255, "B"), 255),
    (Col("v", 2), int_(-2, "h"), -2),
    (Col("v", 2, unsigned=True), int_(65535, "H"), 65535),
    (Col("v", 9), (-8388608 & 0xFFFFFF).to_bytes(3, "little"), -8388608),
    (Col("v", 9, unsigned=True), (16777215).to_bytes(3, "little"), 16777215),
    (Col("v", 3, unsigned=True), int_(2**32 - 1, "I"), 2**32 - 1),
    (Col("v", 8), int_(-(2**63), "q"), -(2**63)),
    (Col("v", 8, unsigned=True), int_(2**64 - 1, "Q"), 2**64 - 1),
    (Col("v", 4, b"\x04"), struct.pack("<f", 1.5), 1.5),
    (Col("v", 5, b"\x08"), struct.pack("<d", -2.25e300), -2.25e300),
    (Col("v", 13), b"\x7e", 2026),
    (Col("v", 13), b"\x00", 1900),
    (Col("v", 10), (2024 << 9 | 2 << 5 | 29).to_bytes(3, "little"), dt.date(2024, 2, 29)),
    (Col("v", 10), b"\x00\x00\x00", None),
    (Col("v", 10), (2024 << 9 | 2 << 5 | 30).to_bytes(3, "little"), "2024-02-30"),
    (Col("v", 18, b"\x00"), datetime2(2024, 2, 30, 1, 2, 3), "2024-02-30 01:02:03"),
    (Col("v", 18, b"\x00"), datetime2(0, 0, 0), None),
    (
        Col("v", 18, FSP3),
        datetime2(1999, 12, 31, 23, 59, 59) + (1230).to_bytes(2, "big"),
        dt.datetime(1999, 12, 31, 23, 59, 59, 123000),
    ),
    (Col("v", 17, b"\x00"), (86400).to_bytes(4, "big"), dt.datetime(1970, 1, 2)),
    (Col("v", 17, b"\x00"), bytes(4), dt.datetime(1970, 1, 1)),
    (
        Col("v", 17, b"\x06"),
        (1).to_bytes(4, "big") + (5).to_bytes(3, "big"),
        dt.datetime(1970, 1, 1, 0, 0, 1, 5),
    ),
    (
        Col("v", 19, b"\x00"),
        (0x800000 | 838 << 12 | 59 << 6 | 58).to_bytes(3, "big"),
        dt.timedelta(hours=838, minutes=59, seconds=58),
    ),
    (Col("v", 7), (3600).to_bytes(4, "little"), dt.datetime(1970, 1, 1, 1)),
    (Col("v", 11), (123456).to_bytes(3, "little"), dt.timedelta(hours=12, minutes=34, seconds=56)),
    (Col("v", 12), int_(20240102030405, "Q"), dt.datetime(2024, 1, 2, 3, 4, 5)),
    (Col("v", 12), int_(0, "Q"), None),
    (Col("v", 12), int_(20240230000000, "Q"), "2024-02-30 00:00:00"),
    (Col("v", 246, b"\x0a\x02"), decimal_bytes(b"\x00\x00\x04\xd2\x38"), Decimal("1234.56")),
    (Col("v", 246, b"\x0a\x02"), decimal_bytes(b"\x00\x00\x04\xd2\x38", True), Decimal("-1234.56")),
    (Col("v", 246, b"\x12\x09"), decimal_bytes(bytes(8)), Decimal("0E-9")),
    (Col("v", 254, b"\xf7\x01", values=["a", "b"], real=247), b"\x02", "b"),
    (Col("v", 254, b"\xf7\x01", values=["a", "b"], real=247), b"\x00", ""),
    (Col("v", 254, b"\xf8\x01", values=["x", "y", "z"], real=248), b"\x05", {"x", "z"}),
    (Col("v", 254, b"\xf8\x01", values=["x", "y", "z"], real=248), b"\x00", None),
    (Col("v", 16, b"\x03\x01"), b"\x02\x81", "010" + "10000001"),
    (Col("v", 16, b"\x05\x00"), b"\x13", "10011"),
    (Col("v", 15, b"\x10\x00"), string("héllo 😀"), "héllo 😀"),
    (Col("v", 15, b"\x10\x00"), string(b"\xff\xfe"), b"\xff\xfe"),
    (Col("v", 15, b"\x10\x00", charset=LATIN1), string(b"\x80\x81\xe9"), "€\x81é"),
    (Col("v", 15, b"\x10\x00", charset=BINARY), string(b"\x00\xff"), b"\x00\xff"),
    (Col("v", 15, (300).to_bytes(2, "little")), string("ü" * 200, 2), "ü" * 200),
    (Col("v", 254, b"\xfe\x28"), string("char"), "char"),
    (Col("v", 254, b"\xee\xfc"), string("c" * 300, 2), "c" * 300),
    (Col("v", 252, b"\x01"), string("tiny"), "tiny"),
    (Col("v", 252, b"\x03", charset=BINARY), string(b"\x01\x02", 3), b"\x01\x02"),
    (Col("v", 255, b"\x04"), string(b"\x00\x00\x00\x00\x01", 4), b"\x00\x00\x00\x00\x01"),
]


@pytest.mark.parametrize(("col", "raw", "expected"), TYPE_CASES)
def test_each_type(col: Col, raw: bytes, expected: Any) -> None:
    value = one(col, raw)
    assert value == expected
    assert type(value) is type(expected)


def test_bit_of_eleven_bits() -> None:
    # 11 bits: the first byte holds 3 of them.
    assert one(Col("v", 16, b"\x03\x01"), b"\x05\xff") == "101" + "11111111"


def test_utf8mb3_and_unknown_charsets() -> None:
    assert one(Col("v", 15, b"\x10\x00", charset=33), string("é")) == "é"
    # ucs2 has no Python codec: the library keeps the bytes.
    assert one(Col("v", 15, b"\x10\x00", charset=35), string(b"\x00a")) == b"\x00a"


def test_mariadb_geometry_takes_a_charset_slot() -> None:
    cols = [Col("id", 3), Col("g", 255, b"\x04"), Col("s", 15, b"\x10\x00", charset=LATIN1)]
    dec = build_decoder(cols, mariadb=True)
    raw = image([int_(1, "i"), string(b"\x01", 4), string(b"\xe9")])
    assert decode_both(dec, rows_event(WRITE, 7, 3, [raw])) == [
        (None, {"id": 1, "g": b"\x01", "s": "é"})
    ]


def jsonb(value: Any) -> tuple[int, bytes]:
    """MySQL's binary JSON of ``value`` (small containers only): (type, bytes)."""
    if value is None or isinstance(value, bool):
        return 0x04, bytes([{None: 0, True: 1, False: 2}[value]])
    if isinstance(value, int):
        if -(2**15) <= value < 2**15:
            return 0x05, struct.pack("<h", value)
        return (
            (0x07, struct.pack("<i", value))
            if -(2**31) <= value < 2**31
            else (0x09, struct.pack("<q", value))
        )
    if isinstance(value, float):
        return 0x0B, struct.pack("<d", value)
    if isinstance(value, str):
        raw = value.encode()
        assert len(raw) < 128
        return 0x0C, bytes([len(raw)]) + raw
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    keys = [k.encode() for k, _ in items] if isinstance(value, dict) else []
    header = 4 + len(items) * (4 if keys else 0) + len(items) * 3
    tail = b"".join(keys)
    key_entries, offset = b"", header
    for key in keys:
        key_entries += struct.pack("<HH", offset, len(key))
        offset += len(key)
    value_entries = b""
    for _, item in items:
        kind, data = jsonb(item)
        if kind == 0x04 or kind == 0x05:
            value_entries += bytes([kind]) + data.ljust(2, b"\x00")
        else:
            value_entries += bytes([kind]) + struct.pack("<H", offset)
            tail += data
            offset += len(data)
    body = struct.pack("<HH", len(items), offset) + key_entries + value_entries + tail
    return (0x00 if keys else 0x02), body


def opaque(column_type: int, raw: bytes) -> bytes:
    return bytes([0x0F, column_type, len(raw)]) + raw


@pytest.mark.parametrize(
    "document",
    [
        {"a": [1, "x", True, None, 2.5, -70000], "b": {"c": "ünï 😀"}, "": []},
        [],
        {},
        "plain",
        123456789012,
        False,
    ],
)
def test_json_as_the_library_gives_it(document: Any) -> None:
    kind, data = jsonb(document)
    value = one(Col("j", 245, b"\x04"), string(bytes([kind]) + data, 4))
    assert value is not None or document is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (opaque(246, bytes([5, 2]) + bytes([0x80, 0x01, 0x17])), Decimal("1.23")),
        (
            opaque(19, ((12 << 12 | 34 << 6 | 56) << 24 | 5).to_bytes(8, "little")),
            dt.time(12, 34, 56, 5),
        ),
        (opaque(12, bytes(8)), "0000-00-00 00:00:00"),
        (opaque(253, b"text"), "text"),
    ],
)
def test_json_opaque_scalars(raw: bytes, expected: Any) -> None:
    assert one(Col("j", 245, b"\x04"), string(raw, 4)) == expected


def packed_decimal(text: str, precision: int, decimals: int) -> bytes:
    """MySQL's packed DECIMAL(precision, decimals) of ``text`` (with exactly
    ``decimals`` fraction digits): groups of nine digits in four bytes, the integer
    part's leftover digits first, the fraction's last, the sign in the high bit."""
    sizes = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
    whole, _, part = text.removeprefix("-").partition(".")
    assert len(part) == decimals
    whole = whole.rjust(precision - decimals, "0")
    head = len(whole) % 9
    groups = [whole[:head]] + [whole[i : i + 9] for i in range(head, len(whole), 9)]
    groups += [part[i : i + 9] for i in range(0, len(part), 9)]
    data = b"".join(int(g).to_bytes(sizes[len(g)], "big") for g in groups if g)
    return decimal_bytes(data, text.startswith("-"))


@pytest.mark.parametrize(
    ("text", "precision", "decimals"),
    [
        ("1234.56", 10, 2),
        ("-1234.56", 10, 2),
        ("0.05", 4, 2),
        ("-0.05", 4, 2),
        ("-0.000000001", 10, 9),
        (".5", 1, 1),
        ("-.123456789012", 12, 12),
        ("3.141592653589793238462643383279", 31, 30),
        ("-98765432109876543210987654321098765.012345678901234567890123456789", 65, 30),
        ("-123456789012345678", 18, 0),
        ("0.000", 5, 3),
    ],
)
def test_json_decimals(text: str, precision: int, decimals: int) -> None:
    # A JSON document's DECIMAL is the column's packed format behind its precision
    # and scale; its value is Python's Decimal of the same digits, as the library's.
    raw = opaque(246, bytes([precision, decimals]) + packed_decimal(text, precision, decimals))
    value = one(Col("j", 245, b"\x04"), string(raw, 4))
    assert type(value) is Decimal
    assert str(value) == str(Decimal(text))


def test_json_decimal_read_as_the_library_reads_json() -> None:
    # A last group with its high bit set (no server writes it) is a number to the
    # library's JSON reader, where its column reader fails.
    raw = opaque(246, bytes([3, 2]) + bytes([0x81, 0xC8]))
    assert one(Col("j", 245, b"\x04"), string(raw, 4)) == Decimal("1.200")


def test_empty_json_is_none() -> None:
    assert one(Col("j", 245, b"\x04", nullable=True), string(b"", 4)) is None
