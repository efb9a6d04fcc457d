"""The fast binlog reader: wpcdc decodes the replication dump stream itself.

This module owns the event side of ``mysql.binlog_reader = "fast"``; the wire
(asking for the stream, reading its packets without blocking) is
:mod:`wpcdc.mysql.dump_stream`'s. :class:`DumpReader` takes the stream's
packets, splits the 19-byte event header, strips the CRC32 checksum and
decodes the control events itself (format description, rotate, query, XID, XA
prepare, the GTID events of both flavors, MariaDB's GTID list, heartbeats).
What each event means is decided by
:class:`~wpcdc.mysql.binlog_events.EventHandler`, the same one place the
library reader uses; every event type it does not decode goes to
``EventHandler.unknown``, exactly as mysql-replication's ``NotImplementedEvent``
did, so compressed payloads, INCIDENT and tagged GTIDs are refused alike.

Row events: a TABLE_MAP's table and schema names are read first; only tables of
the configured database that :class:`~wpcdc.mysql.binlog_events.WatchedTables`
matches get their layout parsed (:mod:`wpcdc.core.table_map`) and a generated
decoder (:mod:`wpcdc.core.binlog_rows`); row events of any other table id are
skipped without touching a value. Per row the decoder's dicts and the
``RowChange`` are all that is built. A layout the decoder cannot handle
(``Unsupported``) and row event kinds it does not know (PARTIAL_UPDATE_ROWS) are
decoded by mysql-replication from the same packet
(:class:`~wpcdc.mysql.library.LibraryRows`), logged once per table and reason:
never skipped.

Connection lifecycle, retries and what an error means stay with
:class:`~wpcdc.mysql.binlog.BinlogSource`; this module raises whatever the
connection raises.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from typing import Any

from pymysql.protocol import MysqlPacket

from wpcdc.core.binlog_rows import DecoderCache, PartialRowImage, RowsDecoder
from wpcdc.core.column_plans import Unsupported
from wpcdc.core.group import image_overhead
from wpcdc.core.rows import KEEP_COLUMNS, Op, SourceItem, TableRef, Wait
from wpcdc.core.table_map import parse_table_map, rows_table_id
from wpcdc.mysql.binlog_events import (
    EventHandler,
    WatchedTables,
    partial_images,
    unnamed_columns,
)
from wpcdc.mysql.dump_stream import DumpStream, lost_connection
from wpcdc.mysql.library import LibraryRows

logger = logging.getLogger("wpcdc.source")


# Binlog event type codes (MySQL binlog_event.h, MariaDB log_event.h).
QUERY = 0x02
ROTATE = 0x04
FORMAT_DESCRIPTION = 0x0F
XID = 0x10
TABLE_MAP = 0x13
WRITE_ROWS_V1 = 0x17
UPDATE_ROWS_V1 = 0x18
DELETE_ROWS_V1 = 0x19
HEARTBEAT = 0x1B
WRITE_ROWS_V2 = 0x1E
UPDATE_ROWS_V2 = 0x1F
DELETE_ROWS_V2 = 0x20
GTID = 0x21
XA_PREPARE = 0x26
PARTIAL_UPDATE_ROWS = 0x27
MARIADB_GTID = 0xA2
MARIADB_GTID_LIST = 0xA3

_ROW_OPS = {
    WRITE_ROWS_V1: Op.INSERT,
    UPDATE_ROWS_V1: Op.UPDATE,
    DELETE_ROWS_V1: Op.DELETE,
    WRITE_ROWS_V2: Op.INSERT,
    UPDATE_ROWS_V2: Op.UPDATE,
    DELETE_ROWS_V2: Op.DELETE,
}
_ROWS = frozenset((*_ROW_OPS, PARTIAL_UPDATE_ROWS))

# Post-header lengths until the FORMAT_DESCRIPTION event says otherwise (the
# server sends one before any other event, so these only cover a broken stream).
_DEFAULT_POST_HEADER = {QUERY: 13, ROTATE: 8, TABLE_MAP: 8, PARTIAL_UPDATE_ROWS: 10}
_DEFAULT_POST_HEADER.update(dict.fromkeys((WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1), 8))
_DEFAULT_POST_HEADER.update(dict.fromkeys((WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2), 10))

# After the packet's OK byte: timestamp, type, server_id, event size, end position, flags.
_HEADER = struct.Struct("<IBIIIH")
_BODY = 20  # the OK byte and the 19-byte event header
_QUERY_HEADER = struct.Struct("<IIBHH")  # thread id, exec time, db length, error, status length
_UINT64 = struct.Struct("<Q")
_MARIADB_GTID = struct.Struct("<QIB")  # sequence number, domain id, flags
_GTID_LIST_ENTRY = struct.Struct("<IIQ")  # domain id, server id, sequence number
# Format description: binlog version (2), server version (50), create time (4),
# header length (1), then one post-header length per event type.
_FDE_LENGTHS = 57

# Bounds on per-connection caches: table ids change with DDL only, so these stay
# tiny; the bound keeps a pathological stream (a table created per request) in check.
_MAX_TABLES = 10_000
# A TABLE_MAP body not met before (None means: not watched).
_UNSEEN: Any = object()


def uuid_text(sid: bytes) -> str:
    """A server UUID (16 bytes) as text, in lower case, the way mysql-replication
    spells it in a GTID (``uuid:number``)."""
    h = sid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Table:
    """A watched table's layout, as one TABLE_MAP described it."""

    __slots__ = ("decoder", "image_cost", "name", "named", "ref")

    def __init__(self, ref: TableRef, name: str, named: bool, decoder: RowsDecoder | None) -> None:
        self.ref = ref
        self.name = name
        self.named = named
        # None: mysql-replication decodes this layout (or it has no column names).
        self.decoder = decoder
        # What a row image of it costs in memory beyond its text (wpcdc.core.group).
        self.image_cost = 0 if decoder is None else image_overhead(decoder.kept)


class DumpReader:
    """Reads one dump connection's events and yields the source items they complete.

    Built per connection (table ids and post-header lengths belong to it); the
    decoder cache and the set of fallbacks already logged are the source's, so
    they outlive reconnects.
    """

    def __init__(
        self,
        connection: Any,
        *,
        checksum: bool,
        handler: EventHandler,
        tables: WatchedTables,
        database: str,
        decoders: DecoderCache,
        logged: set[tuple[str, str]],
        read_timeout: float | None = None,
    ) -> None:
        self._stream = DumpStream(connection, read_timeout)
        self._checksum = checksum
        self._handler = handler
        self._watched = tables
        self._database = database.encode()
        self._decoders = decoders
        self._logged = logged
        self._post_header = dict(_DEFAULT_POST_HEADER)
        self._mariadb = False
        self._server_version = ""
        # table id -> layout (None: not watched); TABLE_MAP bytes -> layout.
        self._tables: dict[int, _Table | None] = {}
        # TABLE_MAP body -> its layout (None: a table wpcdc does not watch).
        self._layouts: dict[bytes, _Table | None] = {}
        self._map_packets: dict[int, bytes] = {}
        # Server UUIDs met in MySQL GTIDs (a few per topology), as text.
        self._uuids: dict[bytes, str] = {}
        self._library: LibraryRows | None = None
        # Packets read so far: the source's stall watchdog notes when it last
        # changed (a counter costs less per packet than reading the clock).
        self.packets = 0

    def items(self) -> Iterator[SourceItem | Wait]:
        """The stream's source items, and a Wait whenever the next packet has not
        arrived yet (:class:`DumpStream`); returns when the server ends the stream."""
        stream = self._stream
        packets = stream.packets
        handler = self._handler
        place = handler.assembler.row
        tables = self._tables
        post_headers = self._post_header  # changed in place by a format description
        unpack_header = _HEADER.unpack_from
        tail = 4 if self._checksum else 0
        while True:
            # Packets are split here rather than by PyMySQL's _read_packet (a
            # third of the reading time, with an object per packet), all that
            # the buffer holds at once.
            batch = packets()
            if not batch:
                yield from stream.more()
                continue
            self.packets += len(batch)
            for data in batch:
                if not data or data[0]:
                    if not data:
                        raise lost_connection()
                    if data[0] == 0xFF:
                        # The server's error (position purged, replica id taken...),
                        # raised as PyMySQL raises it, so the source tells them apart.
                        MysqlPacket(data, "utf8mb4").raise_for_error()
                    if data[0] == 0xFE and len(data) < 9:
                        return  # EOF: the server ended the stream
                    continue
                timestamp, kind, server_id, _size, log_pos, _flags = unpack_header(data, 1)
                end = len(data) - tail
                if kind in _ROW_OPS:
                    post_header = post_headers[kind]
                    table_id = rows_table_id(data, post_header, _BODY)
                    table = tables.get(table_id)
                    if table is not None:
                        decoder = table.decoder
                        if decoder is None:
                            yield from self._library_decoded(table, table_id, data)
                        else:
                            # Placed here, not through EventHandler.changes: two
                            # generators less per rows event (most hold one row).
                            ref, op = table.ref, _ROW_OPS[kind]
                            try:
                                pairs = decoder.rows(kind, data, post_header, _BODY, end)
                            except PartialRowImage:
                                raise partial_images(table.name) from None
                            # What the images cost in memory, estimated from the event's
                            # bytes (text is in it as it is) rather than from each value.
                            size = (end - _BODY) // (len(pairs) or 1) + (
                                2 * table.image_cost if op is Op.UPDATE else table.image_cost
                            )
                            for before, after in pairs:
                                part = place(ref, op, before, after, timestamp, size)
                                if part is not None:
                                    yield part
                elif kind == TABLE_MAP:
                    self._table_map(data, end)
                elif kind in (XID, XA_PREPARE):
                    yield handler.commit(log_pos, timestamp)
                elif kind == GTID:
                    (gno,) = _UINT64.unpack_from(data, _BODY + 17)
                    uuid = self._uuid(data[_BODY + 1 : _BODY + 17])
                    handler.gtid(f"{uuid}:{gno}", timestamp, (uuid, gno))
                elif kind == MARIADB_GTID:
                    sequence, domain, flags = _MARIADB_GTID.unpack_from(data, _BODY)
                    handler.mariadb_gtid(
                        f"{domain}-{server_id}-{sequence}",
                        flags,
                        timestamp,
                        (domain, server_id, sequence),
                    )
                elif kind == QUERY:
                    yield from self._query(data, end, timestamp, log_pos)
                elif kind == HEARTBEAT:
                    yield from handler.heartbeat(data[_BODY:end].decode(), log_pos)
                elif kind == ROTATE:
                    (pos,) = _UINT64.unpack_from(data, _BODY)
                    # Table ids are only unique while the server runs; a new file may
                    # follow a restart.
                    tables.clear()
                    self._map_packets.clear()
                    handler.rotate(data[_BODY + 8 : end].decode(), pos)
                elif kind == MARIADB_GTID_LIST:
                    handler.gtid_list(self._gtid_list(data, end))
                elif kind == FORMAT_DESCRIPTION:
                    self._format_description(data, end)
                elif kind == PARTIAL_UPDATE_ROWS:
                    table_id = rows_table_id(data, self._post_header[kind], start=_BODY)
                    table = tables.get(table_id)
                    if table is not None:
                        self._log_fallback(table.name, "partial JSON update rows events")
                        yield from self._library_decoded(table, table_id, data)
                else:
                    yield from handler.unknown(kind, timestamp)

    # -- events ----------------------------------------------------------

    def _uuid(self, sid: bytes) -> str:
        text = self._uuids.get(sid)
        if text is None:
            if len(self._uuids) >= _MAX_TABLES:
                self._uuids.clear()
            text = self._uuids[sid] = uuid_text(sid)
        return text

    def _library_decoded(self, table: _Table, table_id: int, data: bytes) -> Iterator[SourceItem]:
        """A row event decoded by mysql-replication from the packet: the handler
        then checks and places it as it does on the library reader."""
        if not table.named:
            raise unnamed_columns(table.name)
        library = self._library_rows()
        library.table_map(self._map_packets[table_id])
        event = library.rows(data)
        if event is not None:
            yield from self._handler.handle(event)

    def _table_map(self, data: bytes, end: int) -> None:
        post_header = self._post_header[TABLE_MAP]
        # Post-header: table id (6 bytes; 4 before MySQL 5.1.4), flags (2). Payload:
        # schema length, schema, NUL, table length, table, NUL, then the layout.
        table_id = int.from_bytes(data[_BODY : _BODY + (4 if post_header == 6 else 6)], "little")
        tables = self._tables
        if len(tables) >= _MAX_TABLES:
            tables.clear()
            self._map_packets.clear()
        # The same TABLE_MAP comes before every autocommitted row: the whole body
        # (id, names, layout) decides what it means, so a repeat is one lookup.
        key = data[_BODY:end]
        table = self._layouts.get(key, _UNSEEN)
        if table is _UNSEEN:
            table = self._meaning(data, end, post_header)
            if len(self._layouts) >= _MAX_TABLES:
                self._layouts.clear()
            self._layouts[key] = table
        tables[table_id] = table
        if table is not None:
            # Kept for mysql-replication, should a row event of this table need it.
            self._map_packets[table_id] = data

    def _meaning(self, data: bytes, end: int, post_header: int) -> _Table | None:
        """The layout of a watched table's TABLE_MAP; None for another table."""
        at = _BODY + post_header
        schema = data[at + 1 : at + 1 + data[at]]
        at += 2 + data[at]
        name = data[at + 1 : at + 1 + data[at]].decode("utf-8", "replace")
        ref = self._watched.ref(name) if schema == self._database else None
        if ref is None:
            return None
        return self._layout(ref, name, data, end)

    def _layout(self, ref: TableRef, name: str, data: bytes, end: int) -> _Table:
        table_map = parse_table_map(
            data, self._post_header[TABLE_MAP], mariadb=self._mariadb, start=_BODY, end=end
        )
        if table_map.column_names is None:
            return _Table(ref, name, named=False, decoder=None)
        try:
            # Options and users: only the columns wpcdc keeps are decoded (a
            # password hash or an e-mail address is never turned into a value).
            keep = KEEP_COLUMNS.get(ref.kind)
            decoder = self._decoders.get(table_map, keep=None if keep is None else frozenset(keep))
        except Unsupported as exc:
            self._log_fallback(name, str(exc))
            return _Table(ref, name, named=True, decoder=None)
        return _Table(ref, name, named=True, decoder=decoder)

    def _query(self, data: bytes, end: int, timestamp: int, log_pos: int) -> Iterator[SourceItem]:
        # Post-header: thread id, execution time, schema length, error code, status
        # variables length. The status variables are skipped whole: wpcdc needs the
        # thread id, the schema and the SQL, not the session settings (MySQL 9
        # writes variables older readers do not know).
        thread_id, _exec, schema_length, _error, status_length = _QUERY_HEADER.unpack_from(
            data, _BODY
        )
        at = _BODY + self._post_header[QUERY] + status_length
        schema = data[at : at + schema_length]
        query = data[at + schema_length + 1 : end].decode("utf-8", "backslashreplace")
        return self._handler.query(query, schema, thread_id, timestamp, log_pos)

    def _gtid_list(self, data: bytes, end: int) -> str:
        (count,) = struct.unpack_from("<I", data, _BODY)
        count &= 0x0FFFFFFF  # the top 4 bits are flags
        gtids = []
        for i in range(count):
            domain, server, sequence = _GTID_LIST_ENTRY.unpack_from(data, _BODY + 4 + 16 * i)
            gtids.append(f"{domain}-{server}-{sequence}")
        return ",".join(gtids)

    def _format_description(self, data: bytes, end: int) -> None:
        version = data[_BODY + 2 : _BODY + 52].rstrip(b"\0").decode("ascii", "replace")
        self._server_version = version
        self._mariadb = "mariadb" in version.lower()
        # What follows the lengths is the checksum algorithm byte (and, with checksums
        # off, 4 unused bytes): extra entries past the known types are never read.
        lengths = data[_BODY + _FDE_LENGTHS : end]
        for kind in range(1, len(lengths) + 1):
            self._post_header[kind] = lengths[kind - 1]
        self._library = None  # a new layout of post-headers: rebuild on demand

    # -- mysql-replication for what the decoder cannot ---------------------

    def _library_rows(self) -> LibraryRows:
        if self._library is None:
            lengths = tuple(self._post_header.get(k, 0) for k in range(1, 256))
            self._library = LibraryRows(
                checksum=self._checksum,
                server_version=self._server_version,
                mariadb=self._mariadb,
                post_header_lengths=lengths,
            )
        return self._library

    def _log_fallback(self, table: str, reason: str) -> None:
        if (table, reason) not in self._logged:
            self._logged.add((table, reason))
            logger.warning(
                "the fast binlog reader cannot decode %s (%s); mysql-replication decodes "
                "its row events instead",
                table,
                reason,
            )
