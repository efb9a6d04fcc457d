"""A column's bytes in a ROWS event -> the value mysql-replication gives, after wpcdc's patches.

This module owns the conversions both paths of the row decoder
(:mod:`wpcdc.core.binlog_rows`: generated code and interpreter) apply to the
bytes of one column: temporal types (DATETIME2, TIMESTAMP2, TIME2 with their
fractions, DATE, and the pre-5.6 DATETIME, TIME, TIMESTAMP), DECIMAL (a JSON
document's too, for :mod:`wpcdc.core.binlog_json`), ENUM, SET, BIT and text in its
character set. Each reproduces the library's reading, including its quirks (the
fraction read as a signed number, TIME2's arithmetic, BIT as a text of bits), and
:mod:`wpcdc.mysql.library`'s patches: a date the calendar does not have as the
server's text (the zero date stays None), MySQL's latin1 decoded as MySQL does,
text whose bytes do not decode as ``bytes``.
Functions taking a column or ``fsp`` return the converter for that column.
Pure: no I/O.
"""

from __future__ import annotations

import codecs
import datetime as dt
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from wpcdc.core.table_map import ColumnInfo


def stored_text(parts: tuple[int, ...], micro: int, fsp: int) -> str | None:
    """A date the calendar does not have, as the server prints it (library.py)."""
    if not any(parts) and not micro:
        return None
    text = "{:04d}-{:02d}-{:02d}".format(*parts[:3])
    if len(parts) > 3:
        text += " {:02d}:{:02d}:{:02d}".format(*parts[3:])
    if fsp:
        text += f".{micro:06d}"[: fsp + 1]
    return text


def fraction(raw: bytes, fsp: int) -> int:
    # The library reads the fraction as a signed big-endian number.
    if not raw:
        return 0
    micro = int.from_bytes(raw, "big", signed=True)
    if fsp % 2:
        micro = int(micro / 10)
    return micro * int(10 ** (6 - fsp))


def fsp_bytes(fsp: int) -> int:
    return (fsp + 1) // 2


def for_datetime2(fsp: int) -> Callable[[bytes], Any]:
    def convert(raw: bytes) -> dt.datetime | str | None:
        data = int.from_bytes(raw[:5], "big")
        year, month = divmod((data >> 22) & 0x1FFFF, 13)
        parts = (
            year,
            month,
            (data >> 17) & 0x1F,
            (data >> 12) & 0x1F,
            (data >> 6) & 0x3F,
            data & 0x3F,
        )
        micro = fraction(raw[5:], fsp)
        try:
            return dt.datetime(*parts).replace(microsecond=micro)
        except ValueError:
            return stored_text(parts, micro, fsp)

    return convert


_EPOCH = dt.datetime(1970, 1, 1)


def for_timestamp2(fsp: int) -> Callable[[bytes], Any]:
    def convert(raw: bytes) -> dt.datetime:
        # datetime.utcfromtimestamp, naive UTC, as the library.
        value = _EPOCH + dt.timedelta(seconds=int.from_bytes(raw[:4], "big", signed=True))
        micro = fraction(raw[4:], fsp)
        return value.replace(microsecond=micro) if micro > 0 else value

    return convert


def for_time2(fsp: int) -> Callable[[bytes], Any]:
    def convert(raw: bytes) -> dt.timedelta:
        # The library's arithmetic, on its signed 24-bit read, kept as it is.
        data = int.from_bytes(raw[:3], "big", signed=True)
        sign = 1 if (data >> 23) & 1 else -1
        if sign == -1:
            data = ~data + 1
        return (
            dt.timedelta(
                hours=(data >> 12) & 0x3FF,
                minutes=(data >> 6) & 0x3F,
                seconds=data & 0x3F,
                microseconds=fraction(raw[3:], fsp),
            )
            * sign
        )

    return convert


def date_value(raw: bytes) -> dt.date | str | None:
    value = int.from_bytes(raw, "little")
    parts = (value >> 9, (value >> 5) & 0xF, value & 0x1F)
    try:
        return dt.date(*parts)
    except ValueError:
        return stored_text(parts, 0, 0)


def time_value(raw: bytes) -> dt.timedelta:
    value = int.from_bytes(raw, "little")
    return dt.timedelta(
        hours=int(value / 10000), minutes=int((value % 10000) / 100), seconds=int(value % 100)
    )


def datetime_value(raw: bytes) -> dt.datetime | str | None:
    date, time = divmod(int.from_bytes(raw, "little"), 1_000_000)
    parts = (
        date // 10000,
        date % 10000 // 100,
        date % 100,
        time // 10000,
        time % 10000 // 100,
        time % 100,
    )
    try:
        return dt.datetime(*parts)
    except ValueError:
        return stored_text(parts, 0, 0)


def timestamp_value(raw: bytes) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=int.from_bytes(raw, "little"))


_DECIMAL_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def decimal_size(column: ColumnInfo) -> int:
    integral = column.precision - column.decimals
    return (
        integral // 9 * 4
        + _DECIMAL_BYTES[integral % 9]
        + column.decimals // 9 * 4
        + _DECIMAL_BYTES[column.decimals % 9]
    )


def for_decimal(column: ColumnInfo) -> Callable[[bytes], Any]:
    return for_packed_decimal(column.precision, column.decimals)


_GROUP = struct.Struct(">i")


def for_packed_decimal(
    precision: int, decimals: int, *, json_reader: bool = False
) -> Callable[[bytes], Decimal]:
    """MySQL's packed DECIMAL(precision, decimals), a column's or a JSON document's
    (:mod:`wpcdc.core.binlog_json`), as the library reads it: the sign in the first
    byte's high bit, every group a big-endian number xor'ed with the sign mask.

    ``json_reader``: as its reader of JSON decimals (util.bytes.parse_decimal_from_bytes)
    rather than its column reader: the partial groups (the integer part's first, the
    fraction's last) read byte by byte, unsigned, and a "0" where the integer part has
    no partial group. The two give the same values for all bytes a server writes.
    """
    whole_int, rest_int = divmod(precision - decimals, 9)
    whole_frac, rest_frac = divmod(decimals, 9)
    head, tail = _DECIMAL_BYTES[rest_int], _DECIMAL_BYTES[rest_frac]
    partial = _unsigned_group if json_reader else _signed_group
    no_head = "0" if json_reader else ""

    def convert(raw: bytes) -> Decimal:
        data = bytearray(raw)
        positive = data[0] & 0x80
        mask = 0 if positive else -1
        text = "" if positive else "-"
        data[0] ^= 0x80
        text += str(partial(data[:head], mask)) if head else no_head
        pos = head
        for _ in range(whole_int):
            text += f"{_GROUP.unpack(data[pos : pos + 4])[0] ^ mask:09d}"
            pos += 4
        text += "."
        for _ in range(whole_frac):
            text += f"{_GROUP.unpack(data[pos : pos + 4])[0] ^ mask:09d}"
            pos += 4
        if tail:
            text += f"{partial(data[pos : pos + tail], mask):0{rest_frac}d}"
        return Decimal(text)

    return convert


def _signed_group(part: bytearray, mask: int) -> int:
    return int.from_bytes(part, "big", signed=True) ^ mask


def _unsigned_group(part: bytearray, mask: int) -> int:
    return int.from_bytes(bytes((b ^ mask) & 0xFF for b in part), "big")


def for_enum(column: ColumnInfo) -> Callable[[bytes], Any]:
    values = column.enum_values

    def convert(raw: bytes) -> str | None:
        if not values:
            return None
        index = int.from_bytes(raw, "little")
        # "" is what MySQL stores for a value the ENUM does not have.
        return values[index] if index < len(values) else ""

    return convert


def for_set(column: ColumnInfo) -> Callable[[bytes], Any]:
    values = column.set_values

    def convert(raw: bytes) -> set[str] | None:
        mask = int.from_bytes(raw, "little")
        chosen = {value for i, value in enumerate(values or ()) if mask & (1 << i)}
        return chosen or None

    return convert


def for_bit(column: ColumnInfo) -> Callable[[bytes], Any]:
    bits, size = column.bits, (column.bits + 7) // 8

    def convert(raw: bytes) -> str:
        # The library's text of bits: the first byte holds bits % 8 of them.
        text = ""
        for i, byte in enumerate(raw):
            width = (bits if size == 1 else bits % 8 or 8) if i == 0 else 8
            text += format(byte, "08b")[8 - width :] if width else ""
        return text

    return convert


def _latin1_table() -> str:
    # MySQL's latin1 is cp1252 with its five holes (0x81, 0x8D, 0x8F, 0x90, 0x9D)
    # mapped to the same code points, as library.py's error handler does.
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))
    return "".join(chars)


LATIN1 = _latin1_table()


def for_text(encoding: str | None) -> Callable[[bytes], str | bytes]:
    """How a character column's bytes become a value (library.py's _read_string):
    binary stays bytes, text that does not decode stays bytes."""
    name = encoding or "utf-8"
    if name == "binary":
        return bytes
    if name == "cp1252":
        return lambda raw: codecs.charmap_decode(raw, "strict", LATIN1)[0]
    try:
        codecs.lookup(name)
    except LookupError:
        return bytes

    def decode(raw: bytes) -> str | bytes:
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            return raw

    return decode
