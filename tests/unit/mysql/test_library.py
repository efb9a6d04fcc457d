"""String decoding in row events: bad bytes come through instead of stopping the stream."""

from __future__ import annotations

from types import SimpleNamespace

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
