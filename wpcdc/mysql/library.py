"""wpcdc's side of mysql-replication (``pymysqlreplication``): its patches and the names used.

This module owns what wpcdc changes in the library, installed on import:

- strings that do not decode must not stop the stream: a text column whose bytes
  are not valid in its character set arrives as ``bytes`` (the fold flags it),
  and MySQL ``latin1`` is decoded the way MySQL does (cp1252 with the five
  undefined bytes mapped to U+0081 etc.);
- the library's "Re-request the connection" notice is dropped from its log: wpcdc
  refuses the library's own reconnect and logs what really happens instead.

It also re-exports the event classes the binlog source tells apart, so that it
and :mod:`wpcdc.mysql.binlog` are the only modules importing the library (every
user gets the patches).
"""

from __future__ import annotations

import codecs
import logging
from typing import Any

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
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    RowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

__all__ = [
    "DeleteRowsEvent",
    "GtidEvent",
    "HeartbeatLogEvent",
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


def _latin1_like_mysql(error: UnicodeError) -> tuple[str, int]:
    # MySQL's latin1 is cp1252 except that 0x81, 0x8D, 0x8F, 0x90, 0x9D map to the
    # control characters with the same code point, where Python's cp1252 fails.
    assert isinstance(error, UnicodeDecodeError)
    return "".join(chr(b) for b in error.object[error.start : error.end]), error.end


codecs.register_error("wpcdc-mysql-latin1", _latin1_like_mysql)


def _read_string(self: Any, size: int, column: Any) -> str | bytes:
    """Replaces ``RowsEvent.__read_string``, which raises UnicodeDecodeError on
    bytes that are invalid in the column's character set (or, with
    ``ignore_decode_errors``, drops them silently). Undecodable values are
    returned as the raw ``bytes``: the fold flags them, the stream goes on."""
    raw: bytes = self.packet.read_length_coded_pascal_string(size)
    # The library puts the Python codec name here ("utf8", "cp1252", "binary").
    encoding = column.character_set_name or "utf-8"
    if encoding == "binary":
        return raw
    try:
        if encoding == "cp1252":
            return raw.decode("cp1252", "wpcdc-mysql-latin1")
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return raw


class _DropLibraryReconnectNotice(logging.Filter):
    # The library announces its own reconnect, which wpcdc refuses (see
    # BinlogSource._reader); the source logs what really happens instead.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Re-request the connection" not in record.getMessage()


logging.getLogger("pymysqlreplication").addFilter(_DropLibraryReconnectNotice())

if not hasattr(RowsEvent, "_RowsEvent__read_string"):  # pragma: no cover - version guard
    raise ImportError(
        "mysql-replication changed its string decoding; wpcdc.mysql.library needs updating"
    )
RowsEvent._RowsEvent__read_string = _read_string
