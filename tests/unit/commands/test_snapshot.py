"""What `wpcdc snapshot` prints about a finished run."""

from __future__ import annotations

from pathlib import Path

from wpcdc.commands.snapshot import describe_result
from wpcdc.core.checkpoint import Checkpoint, CoveredRange
from wpcdc.core.positions import Position
from wpcdc.core.snapshot_state import Start, covered_through
from wpcdc.runtime.snapshot import SnapshotResult

P = Position("binlog.000001", 1000)
P2 = Position("binlog.000001", 9000)


def test_result_names_the_covered_ranges(tmp_path: Path) -> None:
    checkpoint = Checkpoint(P, covered_ranges=(CoveredRange(1, 5, 9, covered_through(P2)),))
    result = SnapshotResult(Start.RESUME, P2, (), checkpoint=checkpoint, events=3, chunks=1)
    text = describe_result(result, topic="t", checkpoint=Path("c.json"))
    assert "checkpoint c.json saved at binlog.000001:1000 with 1 covered ranges" in text
