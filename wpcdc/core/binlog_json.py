"""MySQL's binary JSON (a JSON column's bytes in a ROWS event), decoded as the library does.

The row decoder (:mod:`wpcdc.core.binlog_rows`) must give mysql-replication's
values, and for JSON those have the library's shape, kept here on purpose:
object keys and string values are ``bytes``; DECIMAL, TIME and DATETIME
scalars (MySQL "opaque" values) become ``Decimal``, ``datetime.time`` and
``datetime`` (the zero datetime the text ``"0000-00-00 00:00:00"``); other
opaque values text; an object or array whose value offset points past its
data is None. Format: sql-common/json_binary.cc (MySQL), as
pymysqlreplication/json_binary.py reads it. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

from wpcdc.core.binlog_values import for_packed_decimal

_SMALL_OBJECT, _LARGE_OBJECT, _SMALL_ARRAY, _LARGE_ARRAY = 0x0, 0x1, 0x2, 0x3
_LITERAL, _INT16, _UINT16, _INT32, _UINT32 = 0x4, 0x5, 0x6, 0x7, 0x8
_INT64, _UINT64, _DOUBLE, _STRING, _OPAQUE = 0x9, 0xA, 0xB, 0xC, 0xF
# Column types an opaque value may carry.
_DECIMAL, _NEWDECIMAL = 0, 246
_TIME, _TIME2 = 11, 19
_DATE, _DATETIME, _DATETIME2 = 10, 12, 18

_SCALARS = {
    _INT16: struct.Struct("<h"),
    _UINT16: struct.Struct("<H"),
    _INT32: struct.Struct("<i"),
    _UINT32: struct.Struct("<I"),
    _INT64: struct.Struct("<q"),
    _UINT64: struct.Struct("<Q"),
    _DOUBLE: struct.Struct("<d"),
}


def json_value(raw: bytes) -> Any:
    """A JSON column's value from its bytes (the length prefix already read);
    None for no bytes, as the library gives it."""
    if not raw:
        return None
    return _parse(raw[0], raw[1:])


def _parse(kind: int, data: bytes) -> Any:
    if kind in (_SMALL_OBJECT, _LARGE_OBJECT, _SMALL_ARRAY, _LARGE_ARRAY):
        small = kind in (_SMALL_OBJECT, _SMALL_ARRAY)
        return _container(data, small, kind in (_SMALL_OBJECT, _LARGE_OBJECT))
    if kind == _LITERAL:
        return _literal(data)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar.unpack(data[: scalar.size])[0]
    if kind == _STRING:
        length, used = _variable_length(data)
        return data[used : used + length]
    if kind == _OPAQUE:
        return _opaque(data)
    raise ValueError(f"Json type {kind} is not handled")


def _inline(kind: int, small: bool) -> bool:
    if kind in (_UINT16, _INT16, _LITERAL):
        return True
    return kind in (_INT32, _UINT32) and not small


def _count(data: bytes, small: bool) -> int:
    return int(struct.unpack("<H" if small else "<I", data[: 2 if small else 4])[0])


def _container(data: bytes, small: bool, is_object: bool) -> Any:
    offset_size = 2 if small else 4
    count = _count(data, small)
    size = _count(data[offset_size:], small)
    key_entry = 2 + offset_size
    value_entry = 1 + offset_size
    if len(data) < size:
        raise ValueError("Before MySQL 5.7.22, json type generated column may have invalid value")
    header = 2 * offset_size + count * value_entry + (count * key_entry if is_object else 0)
    if header > size:
        raise ValueError("header size > size")
    keys = []
    if is_object:
        for i in range(count):
            entry = 2 * offset_size + key_entry * i
            key_offset = _count(data[entry:], small)
            key_length = _uint16_or_zero(data[entry + offset_size :])
            keys.append(data[key_offset : key_offset + key_length])
    values = []
    for i in range(count):
        entry = 2 * offset_size + value_entry * i + (key_entry * count if is_object else 0)
        kind = data[entry]
        if _inline(kind, small):
            values.append(_parse(kind, data[entry + 1 : entry + value_entry]))
            continue
        value_offset = _count(data[entry + 1 :], small)
        if len(data) < value_offset:
            return None
        values.append(_parse(kind, data[value_offset:]))
    if not is_object:
        return values
    return dict(zip(keys, values, strict=True))


def _uint16_or_zero(data: bytes) -> int:
    return int(struct.unpack("<H", data[:2])[0]) if len(data) >= 2 else 0


def _literal(data: bytes) -> bool | None:
    if data[0] == 0:
        return None
    if data[0] == 1:
        return True
    if data[0] == 2:
        return False
    raise ValueError("NOT LITERAL TYPE")


def _variable_length(data: bytes) -> tuple[int, int]:
    length = 0
    for pos in range(min(5, len(data))):
        byte = data[pos]
        length |= (byte & 0x7F) << (7 * pos)
        if not byte & 0x80:
            return length, pos + 1
    return 0, 0


def _opaque(data: bytes) -> Any:
    if len(data) < 1:
        return None
    kind = data[0]
    length, used = _variable_length(data[1:])
    value = data[1 + used : 1 + used + length]
    if kind in (_NEWDECIMAL, _DECIMAL):
        # As util.bytes.parse_decimal_from_bytes, not the library's column reader.
        return for_packed_decimal(value[0], value[1], json_reader=True)(value[2:])
    if kind in (_TIME, _TIME2):
        return _time(value)
    if kind in (_DATE, _DATETIME, _DATETIME2):
        return _datetime(value)
    return value.decode(errors="ignore")


def _int64(data: bytes) -> int:
    return int(struct.unpack("<q", data[:8])[0])


def _time(data: bytes) -> dt.time:
    value = abs(_int64(data))
    if value == 0:
        return dt.time(0, 0, 0)
    whole = value >> 24
    return dt.time(
        hour=(whole >> 12) % (1 << 10),
        minute=(whole >> 6) % (1 << 6),
        second=whole % (1 << 6),
        microsecond=value % (1 << 24),
    )


def _datetime(data: bytes) -> dt.datetime | str:
    value = abs(_int64(data))
    if value == 0:
        return "0000-00-00 00:00:00"
    whole = value >> 24
    ymd = whole >> 17
    year_month = ymd >> 5
    hms = whole % (1 << 17)
    return dt.datetime(
        year=year_month // 13,
        month=year_month % 13,
        day=ymd % (1 << 5),
        hour=hms >> 12,
        minute=(hms >> 6) % (1 << 6),
        second=hms % (1 << 6),
        microsecond=value % (1 << 24),
    )
