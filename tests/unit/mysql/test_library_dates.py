"""Dates the calendar does not have arrive as the server's text, not as null (issue 10:
``ALLOW_INVALID_DATES`` lets MariaDB store 2024-02-30)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from pymysqlreplication.row_event import RowsEvent

import wpcdc.mysql.library  # noqa: F401  (installs the decoding used for row events)


class Packet:
    def __init__(self, *values: int) -> None:
        self._values = list(values)

    def read_int_be_by_size(self, size: int) -> int:
        return self._values.pop(0)

    read_uint64 = read_uint24 = lambda self: self._values.pop(0)


def event(*values: int) -> Any:
    instance = RowsEvent.__new__(RowsEvent)
    instance.packet = Packet(*values)
    return instance


def datetime2(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> int:
    # DATETIME2: sign, year*13+month (17 bits), day (5), hour (5), minute (6), second (6).
    value = 1 << 39
    value |= (year * 13 + month) << 22
    return value | day << 17 | hour << 12 | minute << 6 | second


def read_datetime2(packed: int, fsp: int = 0, *fraction: int) -> Any:
    return event(packed, *fraction)._RowsEvent__read_datetime2(SimpleNamespace(fsp=fsp))


def test_valid_datetimes_are_datetimes() -> None:
    assert read_datetime2(datetime2(2024, 2, 29, 10, 30, 5)) == dt.datetime(2024, 2, 29, 10, 30, 5)
    # fsp 3: two bytes holding the milliseconds times 10 (as MySQL stores them).
    assert read_datetime2(datetime2(2024, 2, 29), 3, 1230) == dt.datetime(
        2024, 2, 29, 0, 0, 0, 123000
    )


def test_invalid_dates_are_the_servers_text_and_the_zero_date_is_none() -> None:
    assert read_datetime2(datetime2(2024, 2, 30, 10, 0, 0)) == "2024-02-30 10:00:00"
    assert read_datetime2(datetime2(2024, 0, 0)) == "2024-00-00 00:00:00"
    assert read_datetime2(datetime2(2024, 4, 31), 3, 50) == "2024-04-31 00:00:00.005"
    assert read_datetime2(datetime2(0, 0, 0)) is None


def test_old_datetime_and_date_formats_too() -> None:
    assert event(20240230_103000)._RowsEvent__read_datetime() == "2024-02-30 10:30:00"
    assert event(20240229_103000)._RowsEvent__read_datetime() == dt.datetime(2024, 2, 29, 10, 30)
    assert event(0)._RowsEvent__read_datetime() is None
    assert event(2024 << 9 | 2 << 5 | 30)._RowsEvent__read_date() == "2024-02-30"
    assert event(2024 << 9 | 2 << 5 | 29)._RowsEvent__read_date() == dt.date(2024, 2, 29)
    assert event(0)._RowsEvent__read_date() is None
