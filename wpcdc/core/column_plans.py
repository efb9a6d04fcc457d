"""Column plans: how each column of a row image is read from a ROWS event's bytes.

This module owns, for one column of a table layout (a
:class:`~wpcdc.core.table_map.ColumnInfo`), the plan both row decoding paths of
:mod:`wpcdc.core.binlog_rows` follow: a ``struct`` code for a fixed-width value
(with the converter of :mod:`wpcdc.core.binlog_values` its bytes go through), or
the size of a length prefix and the decoder of the sliced value. The generated
code (:mod:`wpcdc.core.rows_codegen`) writes Python from the plans; the
interpreter calls :meth:`ColumnPlan.read`. A column type the fast decoder does
not read raises :class:`Unsupported` when its plan is made. Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wpcdc.core import binlog_values as values
from wpcdc.core import table_map as t
from wpcdc.core.binlog_json import json_value
from wpcdc.core.table_map import ColumnInfo


class Unsupported(ValueError):
    """This layout (or event) cannot be decoded here; the library can."""


# Integers read by struct directly: (signed code, unsigned code).
_INT_CODES = {t.TINY: ("b", "B"), t.SHORT: ("h", "H"), t.LONG: ("i", "I"), t.LONGLONG: ("q", "Q")}


class ColumnPlan:
    """How one column is read: a struct code (``code``, with ``convert`` applied
    to its bytes when not None), or a length prefix of ``length_size`` bytes and
    ``decode`` for the sliced value."""

    __slots__ = ("cacheable", "code", "column", "convert", "decode", "length_size", "name", "width")

    def __init__(self, column: ColumnInfo, name: str) -> None:
        self.column = column
        self.name = name
        self.code = ""
        self.width = 0
        self.convert: Callable[[bytes], Any] | None = None
        self.cacheable = True
        self.length_size = 0
        self.decode: Callable[[bytes], Any] | None = None
        kind = column.type
        if kind in _INT_CODES:
            self.code = _INT_CODES[kind][column.unsigned]
            self.width = struct.calcsize("<" + self.code)
        elif kind == t.INT24:
            self.code = "HB" if column.unsigned else "Hb"
            self.width = 3
        elif kind == t.FLOAT:
            self.code, self.width = "f", 4
        elif kind == t.DOUBLE:
            self.code, self.width = "d", 8
        elif kind == t.YEAR:
            self.code, self.width = "B", 1
        elif kind in (t.VARCHAR, t.STRING):
            self.length_size = 2 if column.max_length > 255 else 1
            self.decode = values.for_text(column.encoding)
        elif kind == t.BLOB:
            self.length_size = column.length_size
            self.decode = values.for_text(column.encoding)
        elif kind == t.GEOMETRY:
            self.length_size = column.length_size
            self.decode = bytes
        elif kind == t.JSON:
            self.length_size = column.length_size
            self.decode = json_value
        else:
            self.width, self.convert = self._converter(column)
            self.cacheable = kind != t.SET  # a set is mutable
            self.code = f"{self.width}s"
        if self.length_size and not 1 <= self.length_size <= 4:
            raise Unsupported(f"column {name} has a {self.length_size}-byte length")

    @staticmethod
    def _converter(column: ColumnInfo) -> tuple[int, Callable[[bytes], Any]]:
        kind, fsp = column.type, column.fsp
        if kind == t.DATETIME2:
            return 5 + values.fsp_bytes(fsp), values.for_datetime2(fsp)
        if kind == t.TIMESTAMP2:
            return 4 + values.fsp_bytes(fsp), values.for_timestamp2(fsp)
        if kind == t.TIME2:
            return 3 + values.fsp_bytes(fsp), values.for_time2(fsp)
        if kind == t.DATE:
            return 3, values.date_value
        if kind == t.TIME:
            return 3, values.time_value
        if kind == t.DATETIME:
            return 8, values.datetime_value
        if kind == t.TIMESTAMP:
            return 4, values.timestamp_value
        if kind == t.NEWDECIMAL:
            return values.decimal_size(column), values.for_decimal(column)
        if kind == t.ENUM and column.size in (1, 2):
            return column.size, values.for_enum(column)
        if kind == t.SET and 1 <= column.size <= 8:
            return column.size, values.for_set(column)
        if kind == t.BIT:
            return (column.bits + 7) // 8, values.for_bit(column)
        raise Unsupported(
            f"column {column.name or column.index} has type {column.type_name}, "
            "which wpcdc's fast decoder does not read"
        )

    def read(self, buf: bytes, pos: int) -> tuple[Any, int]:
        """The interpreter's read of this column at ``pos``."""
        if self.length_size:
            size = int.from_bytes(buf[pos : pos + self.length_size], "little")
            pos += self.length_size
            raw = buf[pos : pos + size]
            assert self.decode is not None
            return self.decode(raw), pos + size
        raw = buf[pos : pos + self.width]
        if len(raw) < self.width:
            raise ValueError("rows event truncated")
        if self.convert is not None:
            return self.convert(raw), pos + self.width
        kind = self.column.type
        value = struct.unpack("<" + self.code, raw)
        if kind == t.INT24:
            return value[0] + (value[1] << 16), pos + 3
        if kind == t.YEAR:
            return value[0] + 1900, pos + 1
        return value[0], pos + self.width
