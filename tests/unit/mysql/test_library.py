"""String decoding in row events: bad bytes come through instead of stopping the stream."""

from __future__ import annotations

from types import SimpleNamespace

from pymysqlreplication.event import QueryEvent
from pymysqlreplication.row_event import RowsEvent

import wpcdc.mysql.library  # noqa: F401  (installs the decoding used for row events)


def decode(raw: bytes, charset: str | None) -> str | bytes:
    event = SimpleNamespace(packet=SimpleNamespace(read_length_coded_pascal_string=lambda n: raw))
    column = SimpleNamespace(character_set_name=charset)
    result: str | bytes = RowsEvent._RowsEvent__read_string(event, 4, column)
    return result


def test_valid_text_decodes() -> None:
    assert decode("emoji 😀".encode(), "utf8") == "emoji 😀"
    assert decode("é".encode(), None) == "é"  # no charset known: UTF-8


def test_invalid_utf8_arrives_as_bytes() -> None:
    assert decode(b"A\xc3(\xffB", "utf8") == b"A\xc3(\xffB"


def test_binary_and_unknown_charsets_arrive_as_bytes() -> None:
    assert decode(b"\xff\x00", "binary") == b"\xff\x00"
    assert decode(b"abc", "swe7") == b"abc"


def test_latin1_decodes_as_mysql_does() -> None:
    # cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined; MySQL maps them to U+0081 etc.
    assert decode(b"\xc3\x81 caf\xe9 \x80", "cp1252") == "Ã\x81 café €"


class _Packet:
    """Just what QueryEvent's status-variable reader uses of a binlog packet."""

    def __init__(self, data: bytes) -> None:
        self._data, self.read_bytes = data, 0

    def read_uint8(self) -> int:
        self.read_bytes += 1
        return self._data[self.read_bytes - 1]

    def advance(self, size: int) -> None:
        self.read_bytes += size


def read_status_block(block: bytes) -> SimpleNamespace:
    """Run QueryEvent's loop over a status-variable block, as its __init__ does."""
    event = SimpleNamespace(packet=_Packet(block), status_vars_length=len(block))
    while event.packet.read_bytes < len(block):
        key = event.packet.read_uint8()
        QueryEvent._read_status_vars_value_for_key(event, key)
    assert event.packet.read_bytes == len(block)
    return event


def test_known_status_variables_are_read() -> None:
    # Q_SQL_REQUIRE_PRIMARY_KEY (0x13) = 1, Q_DEFAULT_TABLE_ENCRYPTION (0x14) = 0
    event = read_status_block(bytes([0x13, 1, 0x14, 0]))
    assert event.sql_require_primary_key == 1 and event.default_table_encryption == 0


def test_an_unknown_status_variable_skips_the_rest_of_the_block() -> None:
    # MySQL 9.7 writes 0x15 (one byte) on statement-based DML; the library raised
    # StatusVariableMismatch, which stopped the stream with no explanation.
    event = read_status_block(bytes([0x13, 0, 0x15, 0, 0x13, 1]))
    assert event.sql_require_primary_key == 0  # read before the unknown key
