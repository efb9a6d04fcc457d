"""ROWS events decoded without the library: the events, their row images, the decoders.

This module owns turning the bytes of WRITE/UPDATE/DELETE ROWS events (v1,
MariaDB; v2, MySQL) into row images: ``dict`` column name -> value, the values
mysql-replication gives after :mod:`wpcdc.mysql.library`'s patches (the
reference, compared on real servers by tests/integration/test_decoder_equivalence.py).
It reads an event's header, column count and present-column bitmaps, pairs
the images of an UPDATE, refuses partial row images, and keeps the decoders
by layout (:class:`DecoderCache`: a server renumbers table ids, not layouts).

For each layout (:class:`~wpcdc.core.table_map.TableMap`) a :class:`RowsDecoder`
makes one plan per column (:mod:`wpcdc.core.column_plans`: a column's bytes
become its value in :mod:`wpcdc.core.binlog_values`, JSON in
:mod:`wpcdc.core.binlog_json`) and compiles from them one Python function that
reads a full row image (:mod:`wpcdc.core.rows_codegen`, issue 8: why generated).

A plain interpreter (:meth:`RowsDecoder.rows` with ``interpreted``) reads the
same bytes column by column: it is the fallback for partial row images and the
oracle the generated code is tested against. A layout with a type the fast decoder cannot
decode raises :class:`~wpcdc.core.column_plans.Unsupported` when its decoder is
built, so the reader decodes that table with the library instead. Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from wpcdc.core.column_plans import ColumnPlan, Unsupported
from wpcdc.core.rows_codegen import compile_image
from wpcdc.core.table_map import TableMap

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


class PartialRowImage(ValueError):
    """A row image without some columns (``binlog_row_image`` is not FULL)."""

    def __init__(self, table: str, missing: tuple[str, ...]) -> None:
        self.missing = missing
        super().__init__(
            f"rows event of {table} lacks columns {', '.join(missing)}: "
            "binlog_row_image must be FULL"
        )


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
            self._plans = [ColumnPlan(c, names[c.index]) for c in table_map.columns]
        except Unsupported as error:
            raise Unsupported(f"table {self.table}: {error}") from None
        self._names = names
        self._keep = tuple(keep is None or name in keep for name in names)
        # Columns in each image it builds.
        self.kept = sum(self._keep)
        self._full = _full_bitmap(self.column_count)
        self._bitmap_size = len(self._full)
        self.source, self._image = compile_image(self._plans, self._keep, self.table)

    def rows(
        self,
        event_type: int,
        body: bytes,
        post_header_len: int,
        start: int = 0,
        end: int | None = None,
        *,
        allow_partial: bool = False,
        interpreted: bool = False,
    ) -> list[RowChange]:
        """The (before, after) images of a ROWS event: WRITE (None, after), DELETE
        (before, None), UPDATE (before, after). Raises :class:`PartialRowImage`
        when an image lacks columns (unless ``allow_partial``: then they are None,
        as the library gives them), ValueError on malformed bytes. ``interpreted``
        reads column by column without the generated code (the tests' oracle)."""
        # The common case (full images, a row or a few per event, as WordPress
        # writes) in straight-line code; anything else through the general path.
        if end is None:
            end = len(body)
        shape = None if interpreted else _SHAPES.get(event_type)
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
        return self._rows(
            event_type, body, post_header_len, start, end, allow_partial, not interpreted
        )

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
        """The decoder of this layout; raises
        :class:`~wpcdc.core.column_plans.Unsupported` (each time: the caller
        logs it once) when the layout cannot be decoded here."""
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
