"""A checkpoint in its file format."""

from __future__ import annotations

from wpcdc.core.checkpoint import Checkpoint, Covered, CoveredRange
from wpcdc.core.positions import Coordinate, Position


def test_checkpoint_json_round_trips() -> None:
    checkpoint = Checkpoint(
        position=Position("binlog.000002", 1234, "0-1-9"),
        covered=(Covered(1, 5, Coordinate(2, 1000, 3)),),
        covered_ranges=(CoveredRange(2, 1, 500, Coordinate(2, 1200, 0)),),
    )
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
