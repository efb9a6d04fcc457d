"""wpcdc snapshot, the pure part: options, the start decision, state transitions and
covered ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.binlog_builder import POSTS, Binlog, delete, post_row, update
from tests.support.fold import fold_all
from tests.support.snapshots import run_blog
from wpcdc.core.checkpoint import CoveredRange
from wpcdc.core.errors import ConfigError, SnapshotRefused
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.snapshot_state import (
    MAX_POST_ID,
    Gone,
    IdRange,
    Segment,
    SnapshotOptions,
    SnapshotState,
    Start,
    covered_ranges,
    covered_through,
    decide_start,
    final_checkpoint,
    non_transactional,
    parse_id_range,
    select_blogs,
)

P = Position("binlog.000001", 1000, "0-1-5")
P2 = Position("binlog.000001", 5000, "0-1-9")
P3 = Position("binlog.000002", 400, "0-1-12")


# --- options and the start decision ----------------------------------------------------


def test_id_range_parses_low_high_and_refuses_the_rest() -> None:
    assert parse_id_range("10:200") == IdRange(10, 200)
    assert parse_id_range("7:7") == IdRange(7, 7)
    for bad in ("10", "a:b", "10-20", "20:10", ":5", "-1:4"):
        with pytest.raises(ValueError):
            parse_id_range(bad)


def test_any_filter_makes_a_limited_snapshot() -> None:
    assert not SnapshotOptions().limited
    assert SnapshotOptions().reason == "initial"
    for options in (
        SnapshotOptions(blogs=(2,)),
        SnapshotOptions(post_types=("page",)),
        SnapshotOptions(ids=IdRange(1, 9)),
    ):
        assert options.limited and options.reason == "requested"


def test_start_is_fresh_resumed_refused_or_forced(tmp_path: Path) -> None:
    full, forced = SnapshotOptions(), SnapshotOptions(force=True)
    unfinished = SnapshotState(position=P, blogs=(1,))
    finished = SnapshotState(position=P, blogs=(1,), done=True)
    existing = tmp_path / "checkpoint.json"
    assert decide_start(full, checkpoint=None, state=None) is Start.FRESH
    assert decide_start(full, checkpoint=None, state=finished) is Start.FRESH
    assert decide_start(full, checkpoint=existing, state=unfinished) is Start.RESUME
    with pytest.raises(SnapshotRefused, match="--force") as refused:
        decide_start(full, checkpoint=existing, state=None)
    assert refused.value.exit_code == 2
    with pytest.raises(SnapshotRefused):
        decide_start(full, checkpoint=existing, state=finished)
    assert decide_start(forced, checkpoint=existing, state=None) is Start.FRESH
    assert decide_start(forced, checkpoint=existing, state=unfinished) is Start.FRESH
    limited = SnapshotOptions(blogs=(1,))
    assert decide_start(limited, checkpoint=existing, state=unfinished) is Start.LIMITED


def test_blogs_all_or_the_requested_ones_that_exist() -> None:
    assert select_blogs([3, 1, 2], []) == (1, 2, 3)
    assert select_blogs([1, 2, 3], [3, 1, 3]) == (1, 3)
    with pytest.raises(ConfigError, match="--blog 7"):
        select_blogs([1, 2], [2, 7])


def test_tables_that_are_not_innodb_are_named() -> None:
    engines = {"wp_posts": "InnoDB", "wp_postmeta": "MyISAM", "wp_terms": "Aria"}
    assert non_transactional(engines) == ["wp_postmeta (MyISAM)", "wp_terms (Aria)"]


# --- state transitions and covered ranges ------------------------------------------------


def test_one_run_leaves_a_plain_checkpoint_at_its_position() -> None:
    state = SnapshotState(position=P, blogs=(1, 2))
    state = run_blog(state, 1, P, [[1, 2, 3], [5, 8, 9], [10]])
    assert state.after_id(1) is None and state.after_id(2) == 0 and not state.complete
    state = run_blog(state, 2, P, [[]])
    assert state.complete and state.in_flight == () and state.emitted == 7
    assert state.segments == (Segment(1, 1, MAX_POST_ID, P), Segment(2, 1, MAX_POST_ID, P))
    checkpoint = final_checkpoint(state.finished())
    assert checkpoint.position == P and checkpoint.covered_ranges == ()


def test_resumed_chunks_are_covered_through_the_later_position() -> None:
    state = SnapshotState(position=P, blogs=(1, 2))
    state = state.chunk_acknowledged(1, 0, 100, P, [1, 50, 100])
    # Killed while the next chunk was in flight; the rerun reads at P2.
    state = state.chunk_sent(1, 100, P, [101, 150, 200])
    state = state.chunk_sent(1, 100, P2, [101, 150, 200])
    state = state.chunk_acknowledged(1, 100, 200, P2, [101, 150, 200])
    state = state.chunk_acknowledged(1, 200, MAX_POST_ID, P2, [250])
    state = state.chunk_acknowledged(2, 0, MAX_POST_ID, P2, [1])
    assert state.in_flight == () and state.gone == ()
    through = covered_through(P2)
    assert through == Coordinate(1, 4999, 2**31)
    assert covered_ranges(state) == (
        CoveredRange(1, 101, MAX_POST_ID, through),
        CoveredRange(2, 1, MAX_POST_ID, through),
    )
    assert final_checkpoint(state.finished()).position == P


def test_a_post_sent_in_flight_then_deleted_is_left_out_so_its_deletion_streams() -> None:
    state = SnapshotState(position=P, blogs=(1,))
    state = state.chunk_acknowledged(1, 0, 100, P, [1, 100])
    state = state.chunk_sent(1, 100, P, [101, 120, 150])
    # Rerun at P2: post 120 was deleted in between, its snapshot at P may be on the topic.
    state = state.chunk_sent(1, 100, P2, [101, 150, 170])
    state = state.chunk_acknowledged(1, 100, MAX_POST_ID, P2, [101, 150, 170])
    assert state.gone == (Gone(1, 120, P),)
    assert covered_ranges(state) == (
        CoveredRange(1, 101, 119, covered_through(P2)),
        CoveredRange(1, 121, MAX_POST_ID, covered_through(P2)),
    )


def test_a_post_in_flight_twice_then_deleted_is_covered_up_to_its_last_send() -> None:
    state = SnapshotState(position=P, blogs=(1,))
    state = state.chunk_sent(1, 0, P, [1, 2, 3])
    state = state.chunk_sent(1, 0, P2, [1, 2, 3])  # killed again
    state = state.chunk_acknowledged(1, 0, MAX_POST_ID, P3, [1, 3])
    assert state.gone == (Gone(1, 2, P2),)
    through = covered_through(P3)
    assert covered_ranges(state) == (
        CoveredRange(1, 1, 1, through),
        CoveredRange(1, 2, 2, covered_through(P2)),
        CoveredRange(1, 3, MAX_POST_ID, through),
    )


def test_in_flight_ids_beyond_the_acknowledged_chunk_wait_for_theirs() -> None:
    state = SnapshotState(position=P, blogs=(1,))
    state = state.chunk_sent(1, 0, P, [1, 2, 3, 4])
    state = state.chunk_acknowledged(1, 0, 2, P2, [1, 2])
    assert [r.post_ids for r in state.in_flight] == [(3, 4)]
    state = state.chunk_acknowledged(1, 2, MAX_POST_ID, P2, [4])
    assert state.gone == (Gone(1, 3, P),) and state.in_flight == ()


def test_chunks_are_acknowledged_in_order() -> None:
    state = SnapshotState(position=P, blogs=(1,))
    with pytest.raises(ValueError, match="expected 0"):
        state.chunk_acknowledged(1, 100, 200, P, [150])
    with pytest.raises(ValueError):
        state.finished()


def test_covered_ranges_skip_exactly_what_the_later_read_holds() -> None:
    """Through the real fold: a post read at P2 loses its changes before P2 only; a
    post deleted before P2 after being sent at P keeps its deletion."""
    log = Binlog(pos=1000)
    kept, edited, deleted = post_row(10), post_row(20), post_row(30)
    before = [
        log.txn(update(POSTS, kept, {**kept, "post_title": "kept, before P2"})),
        log.txn(update(POSTS, edited, {**edited, "post_title": "edited, before P2"})),
        log.txn(delete(POSTS, deleted), after_seconds=2),
    ]
    p2 = Position(log.file, log.pos)
    after = [log.txn(update(POSTS, edited, {**edited, "post_title": "after P2"}), after_seconds=2)]
    state = SnapshotState(position=P, blogs=(1,))
    state = state.chunk_acknowledged(1, 0, 10, P, [10])
    state = state.chunk_sent(1, 10, P, [20, 30])
    state = state.chunk_acknowledged(1, 10, MAX_POST_ID, p2, [20])
    checkpoint = final_checkpoint(state.finished())
    fold = Folder(config=FoldConfig(), mirror=Mirror(), covered_ranges=checkpoint.covered_ranges)
    events = [(e.post_id, e.type) for e in fold_all(fold, [*before, *after])]
    assert events == [(10, "post_updated"), (30, "post_deleted"), (20, "post_updated")]
