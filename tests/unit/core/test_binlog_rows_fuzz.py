"""Seeded random layouts and rows: the generated decoder equals the interpreter
and mysql-replication (with wpcdc's patches) on the same bytes, and gives back
the values that were encoded (where the value is known)."""

from __future__ import annotations

import datetime as dt
import random
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.support.binlog_bytes import (
    BINARY,
    DELETE,
    LATIN1,
    UPDATE,
    WRITE,
    Col,
    LibraryDecoder,
    datetime2,
    image,
    rows_event,
    string,
    table_map_event,
)
from wpcdc.core.binlog_rows import RowsDecoder
from wpcdc.core.table_map import parse_table_map

Gen = Callable[[random.Random], tuple[bytes, Any]]
UNKNOWN = object()  # a value only the two paths are compared on


def integer(fmt: str) -> Gen:
    size = struct.calcsize("<" + fmt)
    signed = fmt.islower()
    low, high = (
        (-(2 ** (size * 8 - 1)), 2 ** (size * 8 - 1) - 1) if signed else (0, 2 ** (size * 8) - 1)
    )

    def gen(rng: random.Random) -> tuple[bytes, Any]:
        value = rng.choice([low, high, 0, rng.randint(low, high)])
        return struct.pack("<" + fmt, value), value

    return gen


def int24(unsigned: bool) -> Gen:
    def gen(rng: random.Random) -> tuple[bytes, Any]:
        value = rng.randint(0, 2**24 - 1) if unsigned else rng.randint(-(2**23), 2**23 - 1)
        return (value & 0xFFFFFF).to_bytes(3, "little"), value

    return gen


def text(size: int, encoding: str = "utf-8") -> Gen:
    alphabet = "aé€😀 \n" if encoding == "utf-8" else "aé€ \n"

    def gen(rng: random.Random) -> tuple[bytes, Any]:
        if rng.random() < 0.1 and encoding == "utf-8":
            raw = rng.randbytes(rng.randint(1, 6)) + b"\xff"
            return string(raw, size), raw
        value = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 7, 300])))
        if size == 1:
            value = value[:60]
        encoded = value.encode("cp1252" if encoding == "latin1" else encoding)
        return string(encoded, size), value

    return gen


def raw_bytes(size: int) -> Gen:
    def gen(rng: random.Random) -> tuple[bytes, Any]:
        raw = rng.randbytes(rng.randint(0, 250))
        return string(raw, size), raw

    return gen


def when(rng: random.Random) -> tuple[bytes, Any]:
    if rng.random() < 0.2:
        return datetime2(0, 0, 0), None
    value = dt.datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28), 23, 59, 1)
    return datetime2(value.year, value.month, value.day, 23, 59, 1), value


def fraction(size: int, below: int) -> Callable[[random.Random], bytes]:
    return lambda rng: rng.randrange(below).to_bytes(size, "big")


def datetime6(rng: random.Random) -> tuple[bytes, Any]:
    return when(rng)[0] + fraction(3, 1_000_000)(rng), UNKNOWN


def time3(rng: random.Random) -> tuple[bytes, Any]:
    hms = 0x800000 | rng.randrange(839) << 12 | rng.randrange(60) << 6 | rng.randrange(60)
    return hms.to_bytes(3, "big") + fraction(2, 10_000)(rng), UNKNOWN


def timestamp2(rng: random.Random) -> tuple[bytes, Any]:
    return rng.randrange(2**31).to_bytes(4, "big") + fraction(1, 100)(rng), UNKNOWN


def decimal_20_6(rng: random.Random) -> tuple[bytes, Any]:
    whole, part = rng.randrange(10**14), rng.randrange(10**6)
    data = bytearray(
        (whole // 10**9).to_bytes(3, "big")
        + (whole % 10**9).to_bytes(4, "big")
        + part.to_bytes(3, "big")
    )
    data[0] |= 0x80
    negative = rng.random() < 0.5
    value = Decimal(f"{'-' if negative else ''}{whole}.{part:06d}")
    return bytes(b ^ 0xFF for b in data) if negative else bytes(data), value


def fixed(width: int) -> Gen:
    return lambda rng: (rng.randbytes(width), UNKNOWN)


CATALOGUE: list[tuple[Callable[[str], Col], Gen]] = [
    (lambda n: Col(n, 1), integer("b")),
    (lambda n: Col(n, 1, unsigned=True), integer("B")),
    (lambda n: Col(n, 2), integer("h")),
    (lambda n: Col(n, 2, unsigned=True), integer("H")),
    (lambda n: Col(n, 9), int24(False)),
    (lambda n: Col(n, 9, unsigned=True), int24(True)),
    (lambda n: Col(n, 3), integer("i")),
    (lambda n: Col(n, 3, unsigned=True), integer("I")),
    (lambda n: Col(n, 8), integer("q")),
    (lambda n: Col(n, 8, unsigned=True), integer("Q")),
    (lambda n: Col(n, 5, b"\x08"), lambda rng: (struct.pack("<d", x := rng.random()), x)),
    (lambda n: Col(n, 13), lambda rng: (bytes([y := rng.randint(0, 255)]), 1900 + y)),
    (lambda n: Col(n, 18, b"\x00"), when),
    (lambda n: Col(n, 18, b"\x06"), datetime6),
    (lambda n: Col(n, 19, b"\x03"), time3),
    (lambda n: Col(n, 17, b"\x02"), timestamp2),
    (lambda n: Col(n, 10), fixed(3)),
    (lambda n: Col(n, 246, b"\x14\x06"), decimal_20_6),
    (lambda n: Col(n, 16, b"\x04\x02"), fixed(3)),
    (
        lambda n: Col(n, 254, b"\xf7\x01", values=["a", "b"], real=247),
        lambda rng: (bytes([i := rng.randrange(3)]), ["", "a", "b"][i]),
    ),
    (lambda n: Col(n, 254, b"\xf8\x02", values=list("abcdefghij"), real=248), fixed(2)),
    (lambda n: Col(n, 15, b"\x50\x00"), text(1)),
    (lambda n: Col(n, 15, b"\xfc\x03"), text(2)),
    (lambda n: Col(n, 15, b"\x50\x00", charset=LATIN1), text(1, "latin1")),
    (lambda n: Col(n, 15, b"\x50\x00", charset=BINARY), raw_bytes(1)),
    (lambda n: Col(n, 254, b"\xfe\x50"), text(1)),
    (lambda n: Col(n, 252, b"\x02"), text(2)),
    (lambda n: Col(n, 252, b"\x03"), text(3)),
    (lambda n: Col(n, 252, b"\x04"), text(4)),
    (lambda n: Col(n, 252, b"\x04", charset=BINARY), raw_bytes(4)),
    (lambda n: Col(n, 255, b"\x04"), raw_bytes(4)),
]


def typed(changes: list[Any]) -> list[Any]:
    return [
        [None if i is None else [(k, type(v).__name__, v) for k, v in i.items()] for i in change]
        for change in changes
    ]


@pytest.mark.parametrize("seed", range(60))
def test_random_layouts_decode_alike_on_both_paths(seed: int) -> None:
    rng = random.Random(seed)
    picks = [rng.randrange(len(CATALOGUE)) for _ in range(rng.randint(1, 40))]
    cols = []
    for i, pick in enumerate(picks):
        col = CATALOGUE[pick][0](f"c{i}")
        col.nullable = rng.random() < 0.4
        cols.append(col)
    names = [c.name for c in cols]
    keep = None if rng.random() < 0.5 else frozenset(rng.sample(names, rng.randint(0, len(names))))
    table_map = parse_table_map(table_map_event(3, "db", "t", cols), 8, mariadb=False)
    decoder = RowsDecoder(table_map, keep)

    def row() -> tuple[bytes, dict[str, Any]]:
        values: list[bytes | None] = []
        expected: dict[str, Any] = {}
        for col, pick in zip(cols, picks, strict=True):
            if col.nullable and rng.random() < 0.3:
                values.append(None)
                expected[col.name] = None
            else:
                raw, value = CATALOGUE[pick][1](rng)
                values.append(raw)
                expected[col.name] = value
        return image(values), expected

    library = LibraryDecoder(table_map_event(3, "db", "t", cols))
    for kind in (WRITE, UPDATE, DELETE):
        for version in (1, 2):
            rows = [row() for _ in range(rng.randint(0, 6) * (2 if kind == UPDATE else 1))]
            event = rows_event(kind, 3, len(cols), [raw for raw, _ in rows], version=version)
            fast = decoder.rows(*event)
            assert fast == decoder.rows(*event, interpreted=True)
            if keep is None:
                assert typed(fast) == typed(library.rows(event[0], event[1]))
            images = [image for change in fast for image in change if image is not None]
            assert len(images) == len(rows)
            for got, (_, expected) in zip(images, rows, strict=True):
                assert list(got) == [n for n in names if keep is None or n in keep]
                for name, value in got.items():
                    if expected[name] is not UNKNOWN:
                        assert value == expected[name], name


@pytest.mark.parametrize("seed", range(20))
def test_garbled_rows_events_are_value_errors(seed: int) -> None:
    # Bytes no server writes (a flipped byte in a DECIMAL, a date, a length...)
    # must come out as ValueError, which the reader reports, not as another
    # exception.
    rng = random.Random(seed)
    cols = [CATALOGUE[i][0](f"c{i}") for i in range(len(CATALOGUE))]
    decoder = RowsDecoder(parse_table_map(table_map_event(3, "db", "t", cols), 8, mariadb=False))
    values: list[bytes | None] = [gen(rng)[0] for _, gen in CATALOGUE]
    kind, body, header = rows_event(UPDATE, 3, len(cols), [image(values), image(values)])
    outcomes = set()
    for _ in range(200):
        at = rng.randrange(header, len(body))
        garbled = body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
        for interpreted in (False, True):
            try:
                decoder.rows(kind, garbled, header, interpreted=interpreted)
                outcomes.add("decoded")
            except ValueError:
                outcomes.add("refused")
    assert "refused" in outcomes
