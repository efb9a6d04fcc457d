"""wpcdc snapshot, the pure part: options, start decision, state transitions, covered
ranges, progress; and the Snapshotter run with in-memory adapters."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from tests.support.fold import fold_all
from tests.unit.binlog_builder import POSTS, Binlog, delete, post_row, update
from wpcdc.core.checkpoint import CoveredRange
from wpcdc.core.errors import CheckpointError, ConfigError, SnapshotRefused, SnapshotUnfinished
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
from wpcdc.runtime.progress import LogProgress, Progress, TerminalProgress, format_duration
from wpcdc.runtime.snapshot import SnapshotStateFile, refuse_unfinished, state_path

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


def run_blog(
    state: SnapshotState, blog: int, position: Position, chunks: list[list[int]]
) -> SnapshotState:
    """Send and acknowledge chunks; the last one is short (the end of the blog)."""
    for index, ids in enumerate(chunks):
        after = state.after_id(blog)
        assert after is not None
        high = MAX_POST_ID if index == len(chunks) - 1 else ids[-1]
        state = state.chunk_sent(blog, after, position, ids)
        state = state.chunk_acknowledged(blog, after, high, position, ids)
    return state


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


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = SnapshotState(position=P, blogs=(1, 2))
    state = state.chunk_acknowledged(1, 0, 100, P, [1, 100])
    state = state.chunk_sent(1, 100, P, [101, 102])
    state = state.chunk_acknowledged(1, 100, MAX_POST_ID, P2, [101])
    state = state.chunk_sent(2, 0, P2, [5])
    store = SnapshotStateFile(state_path(tmp_path / "checkpoint.json"))
    assert store.path == tmp_path / "checkpoint.json.snapshot"
    assert store.load() is None
    store.save(state)
    assert store.load() == state
    store.path.write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        store.load()


def test_run_refuses_while_a_snapshot_is_unfinished(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    refuse_unfinished(checkpoint)  # no state file
    store = SnapshotStateFile(state_path(checkpoint))
    store.save(SnapshotState(position=P, blogs=(1,)))
    with pytest.raises(SnapshotUnfinished, match="wpcdc snapshot") as refused:
        refuse_unfinished(checkpoint)
    assert refused.value.exit_code == 1
    store.save(run_blog(SnapshotState(position=P, blogs=(1,)), 1, P, [[1]]).finished())
    refuse_unfinished(checkpoint)


# --- progress ----------------------------------------------------------------------------


def test_progress_line_has_rate_and_eta() -> None:
    progress = Progress(total=10_000, done=1_000, started_at=100.0, done_at_start=1_000)
    assert progress.eta(100.0) is None
    progress.done = 3_000
    assert progress.rate(104.0) == 500.0
    assert progress.eta(104.0) == 14.0
    assert progress.line(104.0) == "3,000/10,000 posts (30%)  500 posts/s  ETA 0:14"
    assert progress.bar(10) == "[###-------]"
    assert format_duration(3725) == "1:02:05" and format_duration(65.4) == "1:05"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_terminal_progress_rewrites_one_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = TerminalProgress(out, clock)
    progress.start(total=100, done=0)
    clock.now = 0.05
    progress.advance(10)  # too soon after the last draw: not shown
    clock.now = 1.0
    progress.advance(50)
    progress.finish()
    lines = out.getvalue().split("\r")[1:]
    assert len(lines) == 3 and out.getvalue().endswith("\n")
    assert "50/100 posts (50%)" in lines[1] and "50 posts/s" in lines[1] and "ETA 0:01" in lines[1]


def test_log_progress_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = LogProgress(clock, interval=5.0)
    with caplog.at_level(logging.INFO, logger="wpcdc.snapshot"):
        progress.start(total=100, done=0)
        for second in range(1, 12):
            clock.now = float(second)
            progress.advance(second * 5)
        progress.finish()
    assert len(caplog.records) == 4  # start, at 5 s, at 10 s, finish
    assert "50/100 posts" in caplog.records[2].getMessage()
