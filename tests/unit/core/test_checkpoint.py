"""A checkpoint in its file format."""

from __future__ import annotations

from wpcdc.core.checkpoint import Checkpoint, Covered, CoveredChanges, CoveredRange
from wpcdc.core.positions import Coordinate, Position


def test_checkpoint_json_round_trips() -> None:
    checkpoint = Checkpoint(
        position=Position("binlog.000002", 1234, "0-1-9"),
        covered=(Covered(1, 5, Coordinate(2, 1000, 3)),),
        covered_ranges=(CoveredRange(2, 1, 500, Coordinate(2, 1200, 0)),),
    )
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


def test_a_resumed_fold_skips_covered_changes_until_it_is_past_them() -> None:
    covered = CoveredChanges({(1, 5): Coordinate(1, 200, 3)}, [], Coordinate(1, 100, 2))
    assert covered.left
    assert covered.skips((1, 9), Coordinate(1, 100, 1))  # the checkpoint's own rows
    assert not covered.skips((1, 9), Coordinate(1, 100, 3))  # past them: dropped
    assert covered.skips((1, 5), Coordinate(1, 200, 3))  # the post's marker
    assert covered.left
    assert not covered.skips((1, 5), Coordinate(1, 300, 0))  # past it: dropped
    assert not covered.left  # nothing left: the fold stops asking
    ranged = CoveredChanges(None, [CoveredRange(1, 10, 20, Coordinate(2, 50, 0))], None)
    assert ranged.skips((1, 15), Coordinate(2, 40, 7))
    assert not ranged.skips((1, 25), Coordinate(2, 40, 7))
    assert not ranged.skips((1, 15), Coordinate(2, 60, 0))
    assert ranged.left  # a snapshot's ranges stay for the run
