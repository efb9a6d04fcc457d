"""wpcdc's side of mysql-replication (``pymysqlreplication``): its patches and the names used.

This module owns what wpcdc changes in the library, installed on import:

- strings that do not decode must not stop the stream: a text column whose bytes
  are not valid in its character set arrives as ``bytes`` (the fold flags it),
  and MySQL ``latin1`` is decoded the way MySQL does (cp1252 with the five
  undefined bytes mapped to U+0081 etc.);
- a date the calendar does not have, which the server stores under
  ``ALLOW_INVALID_DATES`` (``2024-02-30``), arrives as the server's own text
  (``"2024-02-30 00:00:00"``, as a consistent read with PyMySQL gets it) instead
  of None: the library made it null, indistinguishable from the zero date. The
  zero date itself stays None;
- the library's "Re-request the connection" notice is dropped from its log: wpcdc
  refuses the library's own reconnect and logs what really happens instead;
- a query event with a status variable the library does not know (MySQL 9 writes
  0x15 on statement-based DML) is read past it instead of raising
  ``StatusVariableMismatch``: wpcdc needs the event's thread id, schema and SQL,
  not its session settings, and it then refuses such DML with a clear message.

It also re-exports the event classes the binlog source tells apart, so that it
and :mod:`wpcdc.mysql.binlog` are the only modules importing the library (every
user gets the patches), and holds :class:`LibraryRows`: the library decoding, from
the packets the fast reader (:mod:`wpcdc.mysql.dump`) read, the row events of a
layout wpcdc's own decoder cannot handle.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from pymysql.protocol import MysqlPacket
from pymysqlreplication.event import (
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.exceptions import StatusVariableMismatch
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    RowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from wpcdc.core.binlog_values import date_value, datetime_value, for_text, stored_text

__all__ = [
    "DeleteRowsEvent",
    "GtidEvent",
    "HeartbeatLogEvent",
    "LibraryRows",
    "MariadbGtidEvent",
    "MariadbGtidListEvent",
    "NotImplementedEvent",
    "PartialUpdateRowsEvent",
    "QueryEvent",
    "RotateEvent",
    "RowsEvent",
    "UpdateRowsEvent",
    "WriteRowsEvent",
    "XAPrepareEvent",
    "XidEvent",
]


def _read_string(self: Any, size: int, column: Any) -> str | bytes:
    """Replaces ``RowsEvent.__read_string``, which raises UnicodeDecodeError on
    bytes that are invalid in the column's character set (or, with
    ``ignore_decode_errors``, drops them silently). Undecodable values are
    returned as the raw ``bytes``: the fold flags them, the stream goes on. The
    rule is the fast decoder's (:func:`wpcdc.core.binlog_values.for_text`); the
    library puts the Python codec name in the column ("utf8", "cp1252", "binary")."""
    raw: bytes = self.packet.read_length_coded_pascal_string(size)
    return for_text(column.character_set_name)(raw)


def _read_datetime2(self: Any, column: Any) -> datetime.datetime | str | None:
    """Replaces ``RowsEvent.__read_datetime2`` (DATETIME since MySQL 5.6 / MariaDB 10.1),
    which returns None for any date Python's calendar rejects."""
    data = self.packet.read_int_be_by_size(5)
    bits = self._RowsEvent__read_binary_slice
    year, month = divmod(bits(data, 1, 17, 40), 13)
    parts = (year, month, *(bits(data, start, size, 40) for start, size in _DATETIME2_FIELDS))
    micro = self._RowsEvent__read_fsp(column)
    try:
        return datetime.datetime(*parts).replace(microsecond=micro)
    except ValueError:
        return stored_text(parts, micro, column.fsp)


# Day, hour, minute and second in DATETIME2's 40 bits: (first bit, width).
_DATETIME2_FIELDS = ((18, 5), (23, 5), (28, 6), (34, 6))


def _read_datetime(self: Any) -> datetime.datetime | str | None:
    """Replaces ``RowsEvent.__read_datetime`` (the pre-5.6 DATETIME format)."""
    return datetime_value(self.packet.read_uint64().to_bytes(8, "little"))


def _read_date(self: Any) -> datetime.date | str | None:
    """Replaces ``RowsEvent.__read_date``."""
    return date_value(self.packet.read_uint24().to_bytes(3, "little"))


class _DropLibraryReconnectNotice(logging.Filter):
    # The library announces its own reconnect, which wpcdc refuses (see
    # BinlogSource._reader); the source logs what really happens instead.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Re-request the connection" not in record.getMessage()


logging.getLogger("pymysqlreplication").addFilter(_DropLibraryReconnectNotice())

_PATCHED = {
    "_RowsEvent__read_string": _read_string,
    "_RowsEvent__read_datetime2": _read_datetime2,
    "_RowsEvent__read_datetime": _read_datetime,
    "_RowsEvent__read_date": _read_date,
}
_USED = ("_RowsEvent__read_binary_slice", "_RowsEvent__read_fsp")
if not all(hasattr(RowsEvent, name) for name in (*_PATCHED, *_USED)):  # pragma: no cover
    raise ImportError(
        "mysql-replication changed its value decoding; wpcdc.mysql.library needs updating"
    )
for _name, _function in _PATCHED.items():
    setattr(RowsEvent, _name, _function)


_read_known_status_var = QueryEvent._read_status_vars_value_for_key


def _read_status_var(self: Any, key: int) -> None:
    """Replaces ``QueryEvent._read_status_vars_value_for_key``: a key the library
    does not know skips the rest of the status block (each value's length depends on
    its key, so nothing after an unknown one can be read), as MySQL's own event
    reader does with codes newer than itself."""
    end = self.__dict__.get("_wpcdc_status_end")
    if end is None:
        # Called first right after the block's first key byte was read.
        end = self.packet.read_bytes - 1 + self.status_vars_length
        self._wpcdc_status_end = end
    try:
        _read_known_status_var(self, key)
    except StatusVariableMismatch:
        self.packet.advance(end - self.packet.read_bytes)


QueryEvent._read_status_vars_value_for_key = _read_status_var


class _ControlStub:
    """What the library's row events ask of their control connection when the
    table map carries column names (binlog_row_metadata=FULL): no query is sent."""

    charset = "utf8mb4"

    def __init__(self, dbms: str) -> None:
        self._dbms = dbms

    def _get_dbms(self) -> str:
        return self._dbms


_ROW_CLASSES = {
    TableMapEvent,
    WriteRowsEvent,
    UpdateRowsEvent,
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
}


def _version(text: str) -> tuple[int, ...]:
    numbers = text.split("-")[0].split(".")
    try:
        return tuple(int(n) for n in numbers)
    except ValueError:
        return (0, 0, 0)


class LibraryRows:
    """mysql-replication decoding TABLE_MAP and row events from dump packets.

    The fast reader hands it the packets (payload bytes) of a table whose layout its own
    decoder cannot handle: the TABLE_MAP before each row event (so the library's
    table map always matches), then the row event, which comes back as the
    library's event object for :meth:`EventHandler.handle
    <wpcdc.mysql.binlog_events.EventHandler.handle>`, exactly as the library reader
    would have produced it (with wpcdc's value patches above).
    """

    def __init__(
        self,
        *,
        checksum: bool,
        server_version: str,
        mariadb: bool,
        post_header_lengths: tuple[int, ...],
    ) -> None:
        self._checksum = checksum
        self._version = _version(server_version)
        self._control = _ControlStub("mariadb" if mariadb else "mysql")
        self._lengths = post_header_lengths
        self._table_map: dict[int, Any] = {}

    def table_map(self, packet: bytes) -> None:
        """Read a TABLE_MAP packet into the library's table map."""
        self._wrap(packet)

    def rows(self, packet: bytes) -> Any:
        """The library's rows event for a row event packet (None if its table is unknown)."""
        return self._wrap(packet).event

    def _wrap(self, packet: bytes) -> Any:
        # The packet's payload as PyMySQL would hand it to the library: the OK byte,
        # the event header, the body (and the checksum, which the library skips).
        return BinLogPacketWrapper(
            MysqlPacket(packet, "utf8mb4"),
            self._table_map,
            self._control,
            self._version,
            self._checksum,
            _ROW_CLASSES,
            None,  # only_tables: the fast reader chose the table already
            None,
            None,
            None,
            False,  # freeze_schema: each TABLE_MAP is read again
            False,  # ignore_decode_errors: wpcdc's own string patch handles them
            False,  # verify_checksum
            True,  # optional_meta_data: column names from the table map
            False,  # enable_logging
            False,  # use_column_name_cache: never query information_schema
            self._lengths,
        )
