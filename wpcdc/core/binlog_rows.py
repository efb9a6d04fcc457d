"""ROWS events decoded by a function generated per table layout, without the library.

This module owns turning the bytes of WRITE/UPDATE/DELETE ROWS events (v1,
MariaDB; v2, MySQL) into row images: ``dict`` column name -> value, the values
mysql-replication gives after :mod:`wpcdc.mysql.library`'s patches (the
reference, compared on real servers by tests/integration/test_decoder_equivalence.py).

Why generated code: per-column decoding through the library's packet wrapper
was half of wpcdc's reading time (issue 8). For each layout
(:class:`~wpcdc.core.table_map.TableMap`) a :class:`RowsDecoder` compiles one
Python function that reads a row image straight from the event's bytes: one
``struct.unpack_from`` per run of fixed-width columns, length-prefixed strings
sliced in place, a path for rows without NULLs that checks no null bits, and
caches for the temporal values WordPress repeats in every row (DATETIME2 bytes
to ``datetime``). Columns outside ``keep`` are stepped over, not decoded. A
column's bytes become its value in :mod:`wpcdc.core.binlog_values` (JSON in
:mod:`wpcdc.core.binlog_json`); this module owns the events, the layout of row
images and the code generation.

A plain interpreter (:meth:`RowsDecoder.interpreted_rows`) reads the same bytes
column by column: it is the fallback for partial row images and the oracle the
generated code is tested against. A layout with a type this module cannot
decode raises :class:`Unsupported` when its decoder is built, so the reader
decodes that table with the library instead. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from wpcdc.core import binlog_values as values
from wpcdc.core import table_map as t
from wpcdc.core.binlog_json import json_value
from wpcdc.core.table_map import ColumnInfo, TableMap

RowImage = dict[str, Any]
RowChange = tuple[RowImage | None, RowImage | None]

WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1 = 23, 24, 25
WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2 = 30, 31, 32
ROWS_EVENT_TYPES = frozenset(
    {WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1, WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2}
)
_WRITES = frozenset({WRITE_ROWS_V1, WRITE_ROWS_V2})
_UPDATES = frozenset({UPDATE_ROWS_V1, UPDATE_ROWS_V2})
_V2 = frozenset({WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2})
_INSERT, _UPDATE, _DELETE = 0, 1, 2
# Event type -> (v2, what its images are).
_SHAPES = {
    WRITE_ROWS_V1: (False, _INSERT),
    UPDATE_ROWS_V1: (False, _UPDATE),
    DELETE_ROWS_V1: (False, _DELETE),
    WRITE_ROWS_V2: (True, _INSERT),
    UPDATE_ROWS_V2: (True, _UPDATE),
    DELETE_ROWS_V2: (True, _DELETE),
}

# A value cache is emptied when it reaches this size (a bulk job's timestamps
# rarely repeat): at most ~100 KB per cache.
_CACHE_LIMIT = 1024
# Temporal columns of one type and precision share a cache: WordPress writes the
# same instant in post_date and post_modified (and their _gmt twins).
_SHARED_CACHE_TYPES = frozenset({t.DATETIME2, t.TIMESTAMP2, t.TIME2, t.DATE, t.DATETIME, t.TIME})


class Unsupported(ValueError):
    """This layout (or event) cannot be decoded here; the library can."""


class PartialRowImage(ValueError):
    """A row image without some columns (``binlog_row_image`` is not FULL)."""

    def __init__(self, table: str, missing: tuple[str, ...]) -> None:
        self.missing = missing
        super().__init__(
            f"rows event of {table} lacks columns {', '.join(missing)}: "
            "binlog_row_image must be FULL"
        )


# --- the per-column plan both paths follow ---

# Integers read by struct directly: (signed code, unsigned code).
_INT_CODES = {t.TINY: ("b", "B"), t.SHORT: ("h", "H"), t.LONG: ("i", "I"), t.LONGLONG: ("q", "Q")}


class _Plan:
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


# --- the decoder ---


class RowsDecoder:
    """Decodes the ROWS events of one table layout. Build with
    :meth:`DecoderCache.get` (or directly); ``keep`` limits the decoded columns."""

    def __init__(self, table_map: TableMap, keep: frozenset[str] | None = None) -> None:
        if table_map.unsupported:
            raise Unsupported(
                f"table {table_map.schema}.{table_map.table}: {table_map.unsupported}"
            )
        self.table = f"{table_map.schema}.{table_map.table}"
        self.column_count = len(table_map.columns)
        names = table_map.column_names or tuple(f"UNKNOWN_COL{i}" for i in range(self.column_count))
        try:
            self._plans = [_Plan(c, names[c.index]) for c in table_map.columns]
        except Unsupported as error:
            raise Unsupported(f"table {self.table}: {error}") from None
        self._names = names
        self._keep = tuple(keep is None or name in keep for name in names)
        self._full = _full_bitmap(self.column_count)
        self._bitmap_size = len(self._full)
        self.source = _generate(self._plans, self._keep)
        namespace = _namespace(self._plans)
        exec(compile(self.source, f"<rows decoder {self.table}>", "exec"), namespace)
        self._image: Callable[[bytes, int], tuple[RowImage, int]] = namespace["image"]

    def rows(
        self,
        event_type: int,
        body: bytes,
        post_header_len: int,
        start: int = 0,
        end: int | None = None,
        *,
        allow_partial: bool = False,
    ) -> list[RowChange]:
        """The (before, after) images of a ROWS event: WRITE (None, after), DELETE
        (before, None), UPDATE (before, after). Raises :class:`PartialRowImage`
        when an image lacks columns (unless ``allow_partial``: then they are None,
        as the library gives them), ValueError on malformed bytes."""
        # The common case (full images, a row or a few per event, as WordPress
        # writes) in straight-line code; anything else through the general path.
        if end is None:
            end = len(body)
        shape = _SHAPES.get(event_type)
        if shape is not None and type(body) is bytes:
            pos = start + post_header_len
            if shape[0]:  # v2: skip the extra data (as in _rows)
                pos += body[start + 8] + (body[start + 9] << 8) - 2
            size, full = self._bitmap_size, self._full
            if (
                pos < end
                and body[pos] == self.column_count < 251
                and body[pos + 1 : pos + 1 + size] == full
            ):
                pos += 1 + size
                changes = self._fast(shape[1], body, pos, end, size, full)
                if changes is not None:
                    return changes
        return self._rows(event_type, body, post_header_len, start, end, allow_partial, True)

    def _fast(
        self, op: int, body: bytes, pos: int, end: int, size: int, full: bytes
    ) -> list[RowChange] | None:
        image = self._image
        changes: list[RowChange] = []
        append = changes.append
        try:
            if op == _INSERT:
                while pos < end:
                    after, pos = image(body, pos)
                    append((None, after))
            elif op == _DELETE:
                while pos < end:
                    before, pos = image(body, pos)
                    append((before, None))
            else:
                if body[pos : pos + size] != full:
                    return None
                pos += size
                while pos < end:
                    before, pos = image(body, pos)
                    after, pos = image(body, pos)
                    append((before, after))
        except (struct.error, IndexError, ValueError, ArithmeticError):
            return None  # the general path says what is wrong
        return changes if pos == end else None

    def interpreted_rows(
        self,
        event_type: int,
        body: bytes,
        post_header_len: int,
        start: int = 0,
        end: int | None = None,
        *,
        allow_partial: bool = False,
    ) -> list[RowChange]:
        """As :meth:`rows`, column by column without the generated code."""
        return self._rows(event_type, body, post_header_len, start, end, allow_partial, False)

    def _rows(
        self,
        event_type: int,
        body: bytes,
        post_header_len: int,
        start: int,
        end: int | None,
        allow_partial: bool,
        generated: bool,
    ) -> list[RowChange]:
        if event_type not in ROWS_EVENT_TYPES:
            raise Unsupported(f"binlog event type {event_type} is not a ROWS event wpcdc decodes")
        if not isinstance(body, bytes):
            body = bytes(body)
        end = len(body) if end is None else end
        pos = start + post_header_len
        if event_type in _V2:
            # After the table id and flags, the length of the extra data that
            # follows the post-header (counting those 2 bytes); a post-header
            # longer than 10 bytes (a newer server) is skipped whole.
            pos += int.from_bytes(body[start + 8 : start + 10], "little") - 2
        count, pos = _packed(body, pos)
        if count != self.column_count:
            raise ValueError(
                f"rows event of {self.table} has {count} columns, its table map {self.column_count}"
            )
        size = (count + 7) // 8
        present = [body[pos : pos + size]]
        pos += size
        if event_type in _UPDATES:
            present.append(body[pos : pos + size])
            pos += size
        readers = [self._reader(bitmap, allow_partial, generated) for bitmap in present]
        changes: list[RowChange] = []
        append = changes.append
        try:
            if event_type in _UPDATES:
                before_image, after_image = readers
                while pos < end:
                    before, pos = before_image(body, pos)
                    after, pos = after_image(body, pos)
                    append((before, after))
            elif event_type in _WRITES:
                (image,) = readers
                while pos < end:
                    after, pos = image(body, pos)
                    append((None, after))
            else:
                (image,) = readers
                while pos < end:
                    before, pos = image(body, pos)
                    append((before, None))
        except (struct.error, IndexError, ValueError, ArithmeticError) as error:
            # Bytes no server writes (a truncated event, a value out of its range).
            raise ValueError(f"rows event of {self.table} is malformed: {error}") from None
        if pos != end:
            raise ValueError(
                f"rows event of {self.table} is malformed: {pos - end} bytes past its end"
            )
        return changes

    def _reader(
        self, present: bytes, allow_partial: bool, generated: bool
    ) -> Callable[[bytes, int], tuple[RowImage, int]]:
        if present != self._full:
            columns = [i for i in range(self.column_count) if present[i >> 3] & (1 << (i & 7))]
            if len(columns) < self.column_count:
                if not allow_partial:
                    missing = tuple(
                        self._names[i] for i in range(self.column_count) if i not in columns
                    )
                    raise PartialRowImage(self.table, missing)
                return lambda buf, pos: self._interpret(buf, pos, columns)
        if generated:
            return self._image
        return lambda buf, pos: self._interpret(buf, pos, range(self.column_count))

    def _interpret(self, buf: bytes, pos: int, present: Any) -> tuple[RowImage, int]:
        present = set(present)
        nulls = buf[pos : pos + (len(present) + 7) // 8]
        pos += len(nulls)
        image: RowImage = {}
        bit = 0
        for index, plan in enumerate(self._plans):
            if index not in present:
                value = None
            else:
                if nulls[bit >> 3] & (1 << (bit & 7)):
                    value = None
                else:
                    value, pos = plan.read(buf, pos)
                bit += 1
            if self._keep[index]:
                image[plan.name] = value
        return image, pos


def _full_bitmap(count: int) -> bytes:
    bits = bytearray((count + 7) // 8)
    for i in range(count):
        bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def _packed(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 251:
        return first, pos + 1
    size = {252: 2, 253: 3, 254: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


class DecoderCache:
    """Decoders by layout and column selection, the least recently used dropped
    beyond ``max_layouts`` (a server renumbers table ids, not layouts)."""

    def __init__(self, max_layouts: int = 64) -> None:
        self._max = max_layouts
        self._decoders: OrderedDict[tuple[bytes, frozenset[str] | None], RowsDecoder] = (
            OrderedDict()
        )

    def get(self, table_map: TableMap, keep: frozenset[str] | None = None) -> RowsDecoder:
        """The decoder of this layout; raises :class:`Unsupported` (each time:
        the caller logs it once) when the layout cannot be decoded here."""
        key = (table_map.layout, keep)
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = RowsDecoder(table_map, keep)
            self._decoders[key] = decoder
            if len(self._decoders) > self._max:
                self._decoders.popitem(last=False)
        else:
            self._decoders.move_to_end(key)
        return decoder


# --- code generation ---


def _namespace(plans: list[_Plan]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"LIMIT": _CACHE_LIMIT, "from_bytes": int.from_bytes}
    shared: dict[tuple[int, int], dict[bytes, Any]] = {}
    for i, plan in enumerate(plans):
        namespace[f"conv{i}"] = plan.convert
        kind = plan.column.type
        if kind in _SHARED_CACHE_TYPES:
            namespace[f"cache{i}"] = shared.setdefault((kind, plan.column.fsp), {})
        else:
            namespace[f"cache{i}"] = {}
        namespace[f"dec{i}"] = plan.decode
    namespace["U2"] = struct.Struct("<H").unpack_from
    namespace["U4"] = struct.Struct("<I").unpack_from
    namespace["DECODE_ERROR"] = UnicodeDecodeError
    namespace["charmap"] = codecs.charmap_decode
    namespace["LATIN1"] = values.LATIN1
    return namespace


def _generate(plans: list[_Plan], keep: tuple[bool, ...]) -> str:
    """Python source of ``image(buf, pos) -> (row image, pos after it)`` for a
    full row image: the null bitmap, then a path for rows without NULLs and one
    that checks every column's null bit. (Not only the columns the table map
    calls nullable: the library reads every bit, and so does this.)"""
    # Nothing from the binlog enters the source but numbers and repr() literals
    # (column names are the dict keys): a column named like code stays a string.
    structs: dict[str, str] = {}
    null_bytes = (len(plans) + 7) // 8
    single = null_bytes == 1
    lines = ["def image(buf, pos):"]
    if single:
        lines += ["    nulls = buf[pos]", "    pos += 1", "    if not nulls:"]
    else:
        lines += [
            f"    nulls = buf[pos:pos + {null_bytes}]",
            f"    pos += {null_bytes}",
            f"    if nulls == {bytes(null_bytes)!r}:",
        ]
    result = "{" + ", ".join(f"{p.name!r}: v{i}" for i, p in enumerate(plans) if keep[i]) + "}"
    lines += _emit(plans, keep, False, single, structs, "        ")
    lines.append(f"        return {result}, pos")
    lines += _emit(plans, keep, True, single, structs, "    ")
    lines.append(f"    return {result}, pos")
    header = [
        f"{name} = __import__('struct').Struct({fmt!r}).unpack_from"
        for fmt, name in structs.items()
    ]
    return "\n".join(header + lines) + "\n"


def _emit(
    plans: list[_Plan],
    keep: tuple[bool, ...],
    checked: bool,
    single: bool,
    structs: dict[str, str],
    indent: str,
) -> list[str]:
    lines: list[str] = []
    run: list[int] = []

    def flush(indent: str) -> None:
        if not run:
            return
        codes, targets, after = "<", [], []
        for i in run:
            plan = plans[i]
            if not keep[i]:
                codes += f"{plan.width}x"
                continue
            codes += plan.code
            if plan.column.type == t.INT24:
                targets += [f"a{i}", f"b{i}"]
                after.append(f"v{i} = a{i} + (b{i} << 16)")
            elif plan.convert is not None:
                targets.append(f"r{i}")
                after += _converted(i, plan)
            else:
                targets.append(f"v{i}")
                if plan.column.type == t.YEAR:
                    after.append(f"v{i} += 1900")
        width = sum(plans[i].width for i in run)
        if targets:
            name = structs.setdefault(codes, f"S{len(structs)}")
            lines.append(f"{indent}({', '.join(targets)},) = {name}(buf, pos)")
        lines.append(f"{indent}pos += {width}")
        lines.extend(indent + line for line in after)
        run.clear()

    for i, plan in enumerate(plans):
        if checked:
            flush(indent)
            bit = f"nulls & {1 << i}" if single else f"nulls[{i >> 3}] & {1 << (i & 7)}"
            lines.append(f"{indent}if {bit}:")
            lines.append(f"{indent}    v{i} = None")
            lines.append(f"{indent}else:")
            if plan.length_size:
                lines += [indent + "    " + line for line in _string(i, plan, keep[i])]
            else:
                run.append(i)
                flush(indent + "    ")
        elif plan.length_size:
            flush(indent)
            lines += [indent + line for line in _string(i, plan, keep[i])]
        else:
            run.append(i)
    flush(indent)
    return lines


def _converted(i: int, plan: _Plan) -> list[str]:
    if not plan.cacheable:
        return [f"v{i} = conv{i}(r{i})"]
    # A hit is a plain subscript; a miss pays for the exception and the conversion.
    return [
        "try:",
        f"    v{i} = cache{i}[r{i}]",
        "except KeyError:",
        f"    v{i} = conv{i}(r{i})",
        f"    if len(cache{i}) >= LIMIT:",
        f"        cache{i}.clear()",
        f"    cache{i}[r{i}] = v{i}",
    ]


def _string(i: int, plan: _Plan, keep: bool) -> list[str]:
    size = plan.length_size
    if size == 1:
        lines = ["n = buf[pos]"]
    elif size == 3:
        lines = ["n = from_bytes(buf[pos:pos + 3], 'little')"]
    else:
        lines = [f"(n,) = U{size}(buf, pos)"]
    # One addition moves past the length and the value, which is then sliced
    # back from the new position.
    lines.append(f"pos += {size} + n")
    if not keep:
        return lines
    lines.append(f"r{i} = buf[pos - n:pos]")
    decode = plan.decode
    if decode is bytes:
        return [*lines, f"v{i} = r{i}"]
    if plan.column.type == t.JSON:
        return [*lines, f"v{i} = dec{i}(r{i})"]
    encoding = plan.column.encoding or "utf-8"
    if encoding == "cp1252":
        text = [f"v{i} = charmap(r{i}, 'strict', LATIN1)[0]"]
    else:
        text = [
            "try:",
            # No argument: bytes.decode's own UTF-8 path, without a codec lookup.
            f"    v{i} = r{i}.decode()"
            if encoding in ("utf8", "utf-8")
            else f"    v{i} = r{i}.decode({encoding!r})",
            "except DECODE_ERROR:",
            f"    v{i} = r{i}",
        ]
    # Empty text is common in WordPress rows (excerpt, password, to_ping, ...):
    # every codec decodes no bytes to "".
    head, slice_line = lines[:-1], lines[-1]
    return [
        *head,
        "if n:",
        f"    {slice_line}",
        *("    " + line for line in text),
        "else:",
        f"    v{i} = ''",
    ]
