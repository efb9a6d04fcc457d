"""TABLE_MAP events: a table's layout as the binlog describes it, parsed without the library.

This module owns the bytes of a TABLE_MAP event (table id, schema, table, column
types and their metadata, the nullable bitmap and the optional metadata block that
``binlog_row_metadata=FULL`` adds: signedness, character sets, column names,
ENUM/SET values, geometry types, primary key, visibility) and turns them into a
:class:`TableMap` the row decoder (:mod:`wpcdc.core.binlog_rows`) compiles from.
A character set id becomes the library's codec name in :mod:`wpcdc.core.charsets`.

mysql-replication's ``TableMapEvent`` is the reference: every column gets the
same type, signedness, Python codec name and ENUM/SET values the library gives
it, so both decode a row to the same values. Where the library is wrong about
the format (ENUM/SET value lengths are MySQL length-encoded integers, not the
library's 7-bit varints) MySQL wins; both agree for values under 128 bytes
(the library fails on longer ones). One deliberate difference: without column
names (``binlog_row_metadata=MINIMAL``) the library also drops the signedness
and character sets the event still carries; this module keeps them (wpcdc
refuses tables without names anyway).

A layout this module does not understand (a column type whose metadata length
it does not know) still parses: :attr:`TableMap.unsupported` says why, and the
decoder refuses it, so the reader falls back to the library for that table.

"body" is an event's bytes after the 19-byte common header; ``start``/``end``
select it inside a larger buffer (a dump packet) without copying; ``end``
excludes the CRC32 checksum. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from wpcdc.core.charsets import python_encoding

# Column types (include/field_types.h, MariaDB include/mysql_com.h).
DECIMAL = 0
TINY = 1
SHORT = 2
LONG = 3
FLOAT = 4
DOUBLE = 5
NULL = 6
TIMESTAMP = 7
LONGLONG = 8
INT24 = 9
DATE = 10
TIME = 11
DATETIME = 12
YEAR = 13
NEWDATE = 14
VARCHAR = 15
BIT = 16
TIMESTAMP2 = 17
DATETIME2 = 18
TIME2 = 19
JSON = 245
NEWDECIMAL = 246
ENUM = 247
SET = 248
TINY_BLOB = 249
MEDIUM_BLOB = 250
LONG_BLOB = 251
BLOB = 252
VAR_STRING = 253
STRING = 254
GEOMETRY = 255

# Type code -> the constant's name above, for messages.
TYPE_NAMES = {
    value: name
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int) and not name.startswith("_")
}

# How many metadata bytes each column type has in a TABLE_MAP event; a type not
# listed has none. MariaDB's compressed columns: VARCHAR_COMPRESSED 140 (2 bytes),
# BLOB_COMPRESSED 141 (1 byte); MySQL 9's VECTOR 242 (1 byte).
_META_SIZE = {
    VARCHAR: 2,
    DOUBLE: 1,
    FLOAT: 1,
    TIMESTAMP2: 1,
    DATETIME2: 1,
    TIME2: 1,
    VAR_STRING: 2,
    STRING: 2,
    BLOB: 1,
    GEOMETRY: 1,
    JSON: 1,
    NEWDECIMAL: 2,
    BIT: 2,
    140: 2,
    141: 1,
    242: 1,
}
_NO_META = frozenset(
    {DECIMAL, TINY, SHORT, LONG, NULL, TIMESTAMP, LONGLONG, INT24, DATE, TIME, DATETIME}
    | {YEAR, NEWDATE, ENUM, SET, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB}
)
# The library's _is_numeric_column: the columns the SIGNEDNESS bits are about.
_NUMERIC = frozenset({TINY, SHORT, INT24, LONG, LONGLONG, NEWDECIMAL, FLOAT, DOUBLE, YEAR})
# Optional metadata field types (sql/rpl_utility.h, enum_table_map_event_metadata).
_SIGNEDNESS = 1
_DEFAULT_CHARSET = 2
_COLUMN_CHARSET = 3
_COLUMN_NAME = 4
_SET_STR_VALUE = 5
_ENUM_STR_VALUE = 6
_GEOMETRY_TYPE = 7
_SIMPLE_PRIMARY_KEY = 8
_PRIMARY_KEY_WITH_PREFIX = 9
_ENUM_AND_SET_DEFAULT_CHARSET = 10
_ENUM_AND_SET_COLUMN_CHARSET = 11
_VISIBILITY = 12


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column as the row decoder needs it.

    ``type`` is the real type (a CHAR column holding an ENUM or SET says ENUM or
    SET, as the library makes it); the metadata fields are those of its type:
    ``max_length`` for VARCHAR/CHAR, ``length_size`` for BLOB/TEXT/GEOMETRY/JSON,
    ``size`` for FLOAT/DOUBLE/ENUM/SET, ``fsp`` for the fractional temporal
    types, ``precision``/``decimals`` for DECIMAL, ``bits`` for BIT. ``encoding``
    is the Python codec the library uses for a character column (``"utf8"``,
    ``"cp1252"`` for MySQL's latin1, ``"binary"``), None when the event carries
    no character sets."""

    index: int
    name: str | None
    type: int
    nullable: bool
    unsigned: bool = False
    max_length: int = 0
    length_size: int = 0
    size: int = 0
    fsp: int = 0
    precision: int = 0
    decimals: int = 0
    bits: int = 0
    encoding: str | None = None
    enum_values: tuple[str, ...] | None = None
    set_values: tuple[str, ...] | None = None
    geometry_type: int | None = None
    primary: bool = False
    visible: bool = True

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type}")


@dataclass(frozen=True, slots=True)
class TableMap:
    """A TABLE_MAP event. ``layout`` is its bytes after the table id: equal
    layouts decode alike whatever table id the server gave them, so decoders are
    cached by it. ``column_names`` is None when the server wrote no names
    (``binlog_row_metadata=MINIMAL``). ``unsupported`` says why the layout
    cannot be decoded here (the library still can), None when it can."""

    table_id: int
    schema: str
    table: str
    columns: tuple[ColumnInfo, ...]
    column_names: tuple[str, ...] | None
    primary_key: tuple[int, ...]
    layout: bytes
    mariadb: bool
    unsupported: str | None = None


class _Reader:
    """A cursor over ``data[pos:end]`` with MySQL's integer encodings."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise ValueError(f"TABLE_MAP event truncated: {size} bytes wanted at {self.pos}")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def packed(self) -> int:
        """A length-encoded integer (MySQL's net_field_length)."""
        first = self.byte()
        if first < 251:
            return first
        size = {252: 2, 253: 3, 254: 8}.get(first)
        if size is None:
            raise ValueError(f"TABLE_MAP event: bad length-encoded integer 0x{first:02x}")
        return int.from_bytes(self.take(size), "little")

    def packed_string(self) -> bytes:
        return self.take(self.packed())


def rows_table_id(body: bytes, post_header_len: int, start: int = 0) -> int:
    """The table id of a TABLE_MAP or ROWS event (4 bytes before MySQL 5.1.4's
    6-byte ids, told apart by the post-header length)."""
    if post_header_len == 6:
        return int.from_bytes(body[start : start + 4], "little")
    return int.from_bytes(body[start : start + 6], "little")


def parse_table_map(
    body: bytes,
    post_header_len: int,
    *,
    mariadb: bool,
    start: int = 0,
    end: int | None = None,
) -> TableMap:
    """Parse a TABLE_MAP event (``body`` after the common header, ``end`` before
    the checksum). ``mariadb`` matters for one detail of the character set list:
    MariaDB gives GEOMETRY columns a character set, MySQL does not. Raises
    ValueError when the bytes are truncated or malformed."""
    end = len(body) if end is None else end
    table_id = rows_table_id(body, post_header_len, start)
    # Post-header: table id and 2 flag bytes (8, or 6 with 4-byte table ids).
    reader = _Reader(body, start + post_header_len, end)
    layout = bytes(body[reader.pos : end])
    schema = reader.take(reader.byte()).decode()
    reader.take(1)
    table = reader.take(reader.byte()).decode()
    reader.take(1)
    count = reader.packed()
    types = list(reader.take(count))
    meta_end = reader.packed()
    meta_end += reader.pos
    fields, unsupported = _column_metadata(types, reader, meta_end)
    reader.pos = meta_end
    nullable = reader.take((count + 7) // 8)
    real_types = [info.pop("type", kind) for info, kind in zip(fields, types, strict=True)]
    optional = _Optional(real_types, mariadb)
    while reader.pos < reader.end:
        kind = reader.byte()
        length = reader.packed()
        if reader.pos + length > reader.end:
            raise ValueError("TABLE_MAP event truncated in its optional metadata")
        optional.read(kind, _Reader(body, reader.pos, reader.pos + length))
        reader.pos += length
    names = optional.names
    columns = tuple(
        ColumnInfo(
            index=index,
            name=names[index] if names is not None else None,
            type=kind,
            nullable=bool(nullable[index >> 3] & (1 << (index & 7))),
            **fields[index],  # type: ignore[arg-type]
            **optional.column(index),  # type: ignore[arg-type]
        )
        for index, kind in enumerate(real_types)
    )
    return TableMap(
        table_id=table_id,
        schema=schema,
        table=table,
        columns=columns,
        column_names=names,
        primary_key=tuple(optional.primary_key),
        layout=layout,
        mariadb=mariadb,
        unsupported=unsupported,
    )


def _column_metadata(
    types: list[int], reader: _Reader, meta_end: int
) -> tuple[list[dict[str, int]], str | None]:
    """Each column's metadata fields, as the library's ``Column`` reads them
    (``type`` set where a CHAR column really is an ENUM or SET)."""
    fields: list[dict[str, int]] = []
    unsupported = None
    for index, kind in enumerate(types):
        info: dict[str, int] = {}
        fields.append(info)
        if unsupported is not None:
            continue
        if kind not in _META_SIZE and kind not in _NO_META:
            unsupported = f"column {index} has type {kind}, whose metadata wpcdc cannot read"
            continue
        meta = reader.take(_META_SIZE.get(kind, 0))
        if kind == VARCHAR:
            info["max_length"] = int.from_bytes(meta, "little")
        elif kind in (FLOAT, DOUBLE):
            info["size"] = meta[0]
        elif kind in (TIMESTAMP2, DATETIME2, TIME2):
            info["fsp"] = meta[0]
        elif kind in (VAR_STRING, STRING):
            real_type, low = meta[0], meta[1]
            if real_type in (ENUM, SET):
                info["type"] = real_type
                info["size"] = low
            else:
                # CHAR longer than 255 bytes keeps two bits of its length in the type byte.
                info["max_length"] = (((real_type << 4) & 0x300) ^ 0x300) + low
        elif kind in (BLOB, GEOMETRY, JSON):
            info["length_size"] = meta[0]
        elif kind == NEWDECIMAL:
            info["precision"], info["decimals"] = meta[0], meta[1]
        elif kind == BIT:
            info["bits"] = meta[1] * 8 + meta[0]
    if unsupported is None and reader.pos != meta_end:
        unsupported = "the column metadata is not the length wpcdc expects"
    return fields, unsupported


class _Optional:
    """The optional metadata block (TLV fields), read the way the library reads it."""

    def __init__(self, types: list[int], mariadb: bool) -> None:
        self.types = types
        self.mariadb = mariadb
        self.last = b""
        self.names: tuple[str, ...] | None = None
        self.primary_key: list[int] = []
        self.fields: dict[str, dict[int, object]] = {}

    def column(self, index: int) -> dict[str, object]:
        return {key: values[index] for key, values in self.fields.items() if index in values}

    def _set(self, key: str, indexes: list[int], values: list[object]) -> None:
        self.fields[key] = dict(zip(indexes, values, strict=False))

    def _indexes(self, wanted: frozenset[int]) -> list[int]:
        return [index for index, kind in enumerate(self.types) if kind in wanted]

    def read(self, kind: int, field: _Reader) -> None:
        self.last = field.data[field.pos : field.end]
        if kind == _SIGNEDNESS:
            numeric = self._indexes(_NUMERIC)
            self._set("unsigned", numeric, _bits(self.last, len(numeric)))
        elif kind == _DEFAULT_CHARSET:
            indexes = self._character_columns()
            default = field.packed()
            chosen: dict[int, int] = {}
            while field.pos < field.end:
                position = field.packed()
                chosen[position] = field.packed()
            ids = [chosen.get(position, default) for position in range(len(indexes))]
            self._set("encoding", indexes, [self._encoding(i) for i in ids])
        elif kind == _COLUMN_CHARSET:
            ids = _packed_list(field)
            self._set("encoding", self._character_columns(), [self._encoding(i) for i in ids])
        elif kind == _COLUMN_NAME:
            names = []
            while field.pos < field.end:
                names.append(field.packed_string().decode())
            if len(names) == len(self.types):
                self.names = tuple(names)
        elif kind in (_SET_STR_VALUE, _ENUM_STR_VALUE):
            lists = []
            while field.pos < field.end:
                lists.append(
                    tuple(_utf8_or_empty(field.packed_string()) for _ in range(field.packed()))
                )
            if kind == _ENUM_STR_VALUE:
                # The library puts "" first: index 0 is the value of an invalid ENUM.
                self._set(
                    "enum_values", self._indexes(frozenset({ENUM})), [("", *v) for v in lists]
                )
            else:
                self._set("set_values", self._indexes(frozenset({SET})), list(lists))
        elif kind == _GEOMETRY_TYPE:
            self._set(
                "geometry_type", self._indexes(frozenset({GEOMETRY})), list(_packed_list(field))
            )
        elif kind == _SIMPLE_PRIMARY_KEY:
            self.primary_key = _packed_list(field)
            self._set("primary", self.primary_key, [True] * len(self.primary_key))
        elif kind == _PRIMARY_KEY_WITH_PREFIX:
            pairs = _packed_list(field)
            self.primary_key = pairs[0::2]
            self._set("primary", self.primary_key, [True] * len(self.primary_key))
        elif kind == _VISIBILITY:
            self._set("visible", list(range(len(self.types))), _bits(self.last, len(self.types)))
        # Any other field is newer than this module and not needed to decode rows.

    def _character_columns(self) -> list[int]:
        # ENUM/SET charsets (fields 10, 11) are not read: their values come
        # decoded in the metadata.
        character = {STRING, VAR_STRING, VARCHAR, BLOB} | ({GEOMETRY} if self.mariadb else set())
        return self._indexes(frozenset(character))

    def _encoding(self, charset_id: int) -> str:
        return python_encoding(charset_id, mariadb=self.mariadb)


def _bits(data: bytes, count: int) -> list[object]:
    """``count`` booleans, most significant bit of each byte first."""
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(count)]


def _packed_list(field: _Reader) -> list[int]:
    values = []
    while field.pos < field.end:
        values.append(field.packed())
    return values


def _utf8_or_empty(raw: bytes) -> str:
    # As the library: an ENUM/SET value that is not UTF-8 becomes "".
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return ""
