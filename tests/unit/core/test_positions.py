"""Positions and coordinates: their order, their file form, their sequence."""

from __future__ import annotations

import pytest

from wpcdc.core.positions import Coordinate, Position, file_index


def test_binlog_files_order_by_number_not_name() -> None:
    assert Position("binlog.999999", 900) < Position("binlog.1000000", 4)
    assert file_index("mysql-bin.000042") == 42
    with pytest.raises(ValueError, match="binlog file name"):
        file_index("nonsense")


def test_position_round_trips() -> None:
    position = Position("binlog.000003", 1234, "0-1-42")
    assert Position.from_dict(position.to_dict()) == position
    with pytest.raises(ValueError, match="position"):
        Position.from_dict({"file": "binlog.000003", "pos": -1})


def test_sequences_sort_in_binlog_order() -> None:
    coordinates = [
        Coordinate(2, 4, 0),
        Coordinate(1, 4_000_000_000, 12),
        Coordinate(1, 500, 3),
        Coordinate(1, 500, 2),
        Coordinate(10, 4, 0),
    ]
    by_sequence = sorted(coordinates, key=lambda c: c.sequence())
    assert by_sequence == sorted(coordinates)
    assert Coordinate(1, 500, 2).sequence(1) > Coordinate(1, 500, 2).sequence(0)
