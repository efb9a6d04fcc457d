"""A column's bytes in a ROWS event -> the value mysql-replication gives, after wpcdc's patches.

This module owns the conversions both paths of the row decoder
(:mod:`wpcdc.core.binlog_rows`: generated code and interpreter) apply to the
bytes of one column: temporal types (DATETIME2, TIMESTAMP2, TIME2 with their
fractions, DATE, and the pre-5.6 DATETIME, TIME, TIMESTAMP), DECIMAL, ENUM, SET,
BIT and text in its character set. Each reproduces the library's reading,
including its quirks (the fraction read as a signed number, TIME2's arithmetic,
BIT as a text of bits), and :mod:`wpcdc.mysql.library`'s patches: a date the
calendar does not have as the server's text (the zero date stays None), MySQL's
latin1 decoded as MySQL does, text whose bytes do not decode as ``bytes``.
Functions taking a column or ``fsp`` return the converter for that column.
Pure: no I/O.
"""

from __future__ import annotations

import codecs
import datetime as dt
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
    integral = column.precision - column.decimals
    whole_int, rest_int = divmod(integral, 9)
    whole_frac, rest_frac = divmod(column.decimals, 9)
    head, tail = _DECIMAL_BYTES[rest_int], _DECIMAL_BYTES[rest_frac]

    def convert(raw: bytes) -> Decimal:
        # The library's reading: the sign in the first byte's high bit, every
        # group a signed big-endian number xor'ed with the sign mask.
        data = bytearray(raw)
        positive = data[0] & 0x80
        mask = 0 if positive else -1
        text = "" if positive else "-"
        data[0] ^= 0x80
        pos = 0
        if head:
            text += str(int.from_bytes(data[:head], "big", signed=True) ^ mask)
            pos = head
        for _ in range(whole_int):
            text += f"{int.from_bytes(data[pos : pos + 4], 'big', signed=True) ^ mask:09d}"
            pos += 4
        text += "."
        for _ in range(whole_frac):
            text += f"{int.from_bytes(data[pos : pos + 4], 'big', signed=True) ^ mask:09d}"
            pos += 4
        if tail:
            value = int.from_bytes(data[pos : pos + tail], "big", signed=True) ^ mask
            text += f"{value:0{rest_frac}d}"
        return Decimal(text)

    return convert


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
