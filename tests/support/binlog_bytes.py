"""Binlog event bytes for the row decoder's tests: built by hand, or read from a server.

Building: :func:`table_map_event` and :func:`rows_event` write TABLE_MAP and ROWS
event bodies (after the 19-byte common header, without checksum) the way MySQL
and MariaDB lay them out, with ``binlog_row_metadata=FULL`` optional metadata;
:func:`image` writes one row image from already encoded column values.

Reading: :func:`read_events` asks a server for its binlog with
COM_BINLOG_DUMP over a plain PyMySQL connection and returns every event's raw
bytes, so a test can decode the same bytes with the library and with
:mod:`wpcdc.core.binlog_rows`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from wpcdc.core.binlog_rows import RowChange, RowsDecoder
from wpcdc.core.table_map import parse_table_map

# Optional metadata field types.
_SIGNEDNESS, _DEFAULT_CHARSET, _COLUMN_CHARSET, _COLUMN_NAME = 1, 2, 3, 4
_SET_STR_VALUE, _ENUM_STR_VALUE, _SIMPLE_PRIMARY_KEY = 5, 6, 8
_ENUM_AND_SET_DEFAULT_CHARSET = 10
_NUMERIC = {1, 2, 9, 3, 8, 246, 4, 5, 13}
UTF8MB4 = 45
LATIN1 = 8
BINARY = 63


def packed(n: int) -> bytes:
    """A MySQL length-encoded integer."""
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


@dataclass
class Col:
    """A column of a hand-built table: its binlog type and type metadata bytes;
    ``real`` is the type MySQL writes in CHAR's metadata for ENUM/SET."""

    name: str
    type: int
    meta: bytes = b""
    nullable: bool = False
    unsigned: bool = False
    charset: int | None = None
    values: list[str] = field(default_factory=list)
    real: int | None = None


def table_map_event(
    table_id: int,
    schema: str,
    table: str,
    cols: list[Col],
    *,
    mariadb: bool = False,
    names: bool = True,
    primary_key: tuple[int, ...] = (0,),
    column_charsets: bool = False,
    extra: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """``column_charsets``: one COLUMN_CHARSET entry per text column instead of
    DEFAULT_CHARSET; ``primary_key`` empty: no SIMPLE_PRIMARY_KEY; ``extra``:
    more optional metadata fields (type, value) at the end."""
    body = table_id.to_bytes(6, "little") + b"\x01\x00"
    body += bytes([len(schema)]) + schema.encode() + b"\x00"
    body += bytes([len(table)]) + table.encode() + b"\x00"
    body += packed(len(cols)) + bytes(c.type for c in cols)
    meta = b"".join(c.meta for c in cols)
    body += packed(len(meta)) + meta
    nullable = bytearray((len(cols) + 7) // 8)
    for i, c in enumerate(cols):
        if c.nullable:
            nullable[i >> 3] |= 1 << (i & 7)
    body += bytes(nullable)
    real = [c.real or c.type for c in cols]
    numeric = [c for c, kind in zip(cols, real, strict=True) if kind in _NUMERIC]
    if numeric:
        body += _field(_SIGNEDNESS, _msb_bits([c.unsigned for c in numeric]))
    character = {254, 253, 15, 252} | ({255} if mariadb else set())
    text = [c for c, kind in zip(cols, real, strict=True) if kind in character]
    if text and column_charsets:
        charsets = b"".join(packed(c.charset or UTF8MB4) for c in text)
        body += _field(_COLUMN_CHARSET, charsets)
    elif text:
        overrides = b"".join(
            packed(i) + packed(c.charset)
            for i, c in enumerate(text)
            if c.charset is not None and c.charset != UTF8MB4
        )
        body += _field(_DEFAULT_CHARSET, packed(UTF8MB4) + overrides)
    if names:
        body += _field(_COLUMN_NAME, b"".join(packed(len(c.name)) + c.name.encode() for c in cols))
    for kind, field_type in ((248, _SET_STR_VALUE), (247, _ENUM_STR_VALUE)):
        lists = [c.values for c, t in zip(cols, real, strict=True) if t == kind]
        if lists:
            value = b"".join(
                packed(len(v)) + b"".join(packed(len(s.encode())) + s.encode() for s in v)
                for v in lists
            )
            body += _field(field_type, value)
    if any(kind in (247, 248) for kind in real):
        body += _field(_ENUM_AND_SET_DEFAULT_CHARSET, packed(UTF8MB4))
    if primary_key:
        body += _field(_SIMPLE_PRIMARY_KEY, b"".join(packed(i) for i in primary_key))
    return body + b"".join(_field(kind, value) for kind, value in extra)


def _field(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + packed(len(value)) + value


def _msb_bits(flags: list[bool]) -> bytes:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 0x80 >> (i & 7)
    return bytes(out)


def _lsb_bits(flags: list[bool]) -> bytes:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def image(values: list[bytes | None]) -> bytes:
    """One row image: the null bitmap, then each non-NULL column's bytes."""
    return _lsb_bits([v is None for v in values]) + b"".join(v for v in values if v is not None)


WRITE, UPDATE, DELETE = "write", "update", "delete"
_TYPES = {(WRITE, 1): 23, (UPDATE, 1): 24, (DELETE, 1): 25, (WRITE, 2): 30, (UPDATE, 2): 31}
_TYPES[(DELETE, 2)] = 32


def rows_event(
    kind: str,
    table_id: int,
    column_count: int,
    images: list[bytes],
    *,
    version: int = 2,
    present: list[bool] | None = None,
    present_after: list[bool] | None = None,
    extra: bytes = b"",
) -> tuple[int, bytes, int]:
    """(event type, body, post-header length) of a ROWS event; ``images`` in
    order (an UPDATE's before, after, before, after...)."""
    body = table_id.to_bytes(6, "little") + b"\x01\x00"
    if version == 2:
        body += (2 + len(extra)).to_bytes(2, "little") + extra
    bitmap = _lsb_bits(present or [True] * column_count)
    after = _lsb_bits(present_after) if present_after else bitmap
    body += packed(column_count) + bitmap + (after if kind == UPDATE else b"")
    body += b"".join(images)
    return _TYPES[(kind, version)], body, 10 if version == 2 else 8


# --- the decoder under test ---


def build_decoder(cols: list[Col], keep: frozenset[str] | None = None, **kw: Any) -> RowsDecoder:
    """The decoder of a hand-built table ``wp.t`` (table id 7)."""
    body = table_map_event(7, "wp", "t", cols, **kw)
    return RowsDecoder(parse_table_map(body, 8, mariadb=kw.get("mariadb", False)), keep)


def decode_both(dec: RowsDecoder, event: tuple[int, bytes, int], **kw: Any) -> list[RowChange]:
    """Both paths, which must agree."""
    kind, body, post_header_len = event
    fast = dec.rows(kind, body, post_header_len, **kw)
    slow = dec.rows(kind, body, post_header_len, interpreted=True, **kw)
    assert fast == slow
    return fast


# --- values encoded as the server writes them ---


def datetime2(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> bytes:
    value = (1 << 39) | ((year * 13 + month) << 22) | (day << 17) | (hour << 12)
    return (value | (minute << 6) | second).to_bytes(5, "big")


def string(text: str | bytes, size: int = 1, encoding: str = "utf-8") -> bytes:
    raw = text.encode(encoding) if isinstance(text, str) else text
    return len(raw).to_bytes(size, "little") + raw


def int_(value: int, fmt: str) -> bytes:
    return struct.pack("<" + fmt, value)


# --- the library's reading of the same bytes ---


class _Control:
    """What the library's events ask of their control connection."""

    def __init__(self, dbms: str) -> None:
        self.charset = "utf8mb4"
        self._dbms = dbms

    def _get_dbms(self) -> str:
        return self._dbms


class LibraryDecoder:
    """mysql-replication, with wpcdc's patches, decoding hand-built event bodies
    the way its stream reader does (one ``BinLogPacketWrapper`` per event)."""

    def __init__(self, table_map_body: bytes, *, mariadb: bool = False) -> None:
        from pymysqlreplication.row_event import TableMapEvent

        from wpcdc.mysql.library import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        self._table_map: dict[int, Any] = {}
        self._allowed = {TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent}
        self._control = _Control("mariadb" if mariadb else "mysql")
        self._update, self._write = UpdateRowsEvent, WriteRowsEvent
        self._event(19, table_map_body)

    def _event(self, event_type: int, body: bytes) -> Any:
        from pymysql.protocol import MysqlPacket
        from pymysqlreplication.packet import BinLogPacketWrapper

        header = struct.pack("<IBIIIH", 1_700_000_000, event_type, 1, 19 + len(body) + 4, 0, 0)
        packet = MysqlPacket(b"\x00" + header + body + b"\x00\x00\x00\x00", "utf8")
        return BinLogPacketWrapper(
            packet,
            self._table_map,
            self._control,
            (8, 0, 0),
            True,  # use_checksum
            self._allowed,
            None,
            None,
            None,
            None,
            True,  # freeze_schema
            False,  # ignore_decode_errors
            False,  # verify_checksum
            True,  # optional_meta_data
            False,  # enable_logging
        ).event

    def rows(self, event_type: int, body: bytes) -> list[tuple[Any, Any]]:
        event = self._event(event_type, body)
        if isinstance(event, self._update):
            return [(row["before_values"], row["after_values"]) for row in event.rows]
        if isinstance(event, self._write):
            return [(None, row["values"]) for row in event.rows]
        return [(row["values"], None) for row in event.rows]


# --- reading a server's binlog ---


@dataclass(frozen=True)
class RawEvent:
    type: int
    timestamp: int
    log_pos: int
    data: bytes  # the whole event: 19-byte header, body, checksum

    @property
    def body(self) -> bytes:
        return self.data[19:-4]


def read_events(connection: Any, log_file: str, log_pos: int, server_id: int) -> list[RawEvent]:
    """Every event from ``log_file:log_pos`` to the binlog's current end, as raw
    bytes (COM_BINLOG_DUMP with BINLOG_DUMP_NON_BLOCK), through a PyMySQL
    connection of its own (it cannot run queries afterwards). Assumes CRC32
    checksums (the servers' default), announced as the library does."""
    with connection.cursor() as cursor:
        cursor.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
        cursor.execute("SET @mariadb_slave_capability = 4")
    name = log_file.encode()
    command = struct.pack("<BIHI", 0x12, log_pos, 0x01, server_id) + name
    connection._execute_command(0x12, command[1:])
    events = []
    while True:
        packet = connection._read_packet()
        data = packet.get_all_data()
        if data[:1] == b"\xfe" and len(data) < 9:
            break
        event = data[1:]
        timestamp, kind, _server, _size, next_pos = struct.unpack_from("<IBIII", event, 0)
        events.append(RawEvent(kind, timestamp, next_pos, event))
    return events
