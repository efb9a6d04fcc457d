"""The ack tracker, and a crash-and-replay through fold + checkpoint, in memory."""

from __future__ import annotations

import random

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, insert, meta, post_row, update
from tests.support.fold import fold_all, without_links
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CoveredRange
from wpcdc.core.events import Event
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.rows import TransactionPart


def busy_log(posts: int = 40, seed: int = 3) -> Binlog:
    """Interleaved edits of many posts, as several editors and a cron would make."""
    rng = random.Random(seed)
    log = Binlog()
    rows = {p: post_row(p, title="t0") for p in range(1, posts + 1)}
    meta_id = 1000
    for step in range(600):
        post_id = rng.randint(1, posts)
        before = rows[post_id]
        after = {**before, "post_title": f"t{step}"}
        rows[post_id] = after
        advance = 2 if rng.random() < 0.1 else 0
        if rng.random() < 0.3:
            meta_id += 1
            log.txn(insert(POSTMETA, meta(meta_id, post_id, "k", str(step))), after_seconds=advance)
        else:
            log.txn(update(POSTS, before, after), after_seconds=advance)
    return log


def folder(checkpoint: Checkpoint | None = None) -> Folder:
    covered = {(c.blog_id, c.post_id): c.through for c in checkpoint.covered} if checkpoint else {}
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, 41)])
    return Folder(config=FoldConfig(max_open_groups=8), mirror=mirror, covered=covered)


def test_checkpoint_waits_for_the_oldest_unacknowledged_event() -> None:
    log = Binlog()
    a, b = post_row(1), post_row(2)
    parts = [
        log.txn(update(POSTS, a, {**a, "post_title": "x"})),
        log.txn(update(POSTS, b, {**b, "post_title": "y"})),
    ]
    fold = folder()
    tracker = AckTracker()
    for part in parts:
        fold.feed(part)
    groups = fold.close_all()
    ids = [tracker.track(g) for g in groups]
    assert fold.position is not None
    assert (
        tracker.checkpoint(fold.position, fold.oldest_open()).position == parts[0].transaction.start
    )
    tracker.ack(ids[1])  # the later one first: still held back by the first
    assert tracker.checkpoint(fold.position, None).position == parts[0].transaction.start
    tracker.ack(ids[0])
    checkpoint = tracker.checkpoint(fold.position, None)
    assert checkpoint.position == parts[-1].end
    assert checkpoint.covered == ()


def test_open_groups_hold_the_checkpoint_back() -> None:
    log = Binlog()
    a = post_row(1)
    first = log.txn(update(POSTS, a, {**a, "post_title": "x"}))
    fold, tracker = folder(), AckTracker()
    fold.feed(first)
    assert fold.position == first.end
    assert tracker.checkpoint(fold.position, fold.oldest_open()).position == first.transaction.start


def run_until_crash(
    parts: list[TransactionPart], crash_after: int, ack_probability: float, seed: int
) -> tuple[list[Event], Checkpoint]:
    """Fold and 'send' until the crash; some sends are acknowledged, some not."""
    rng = random.Random(seed)
    fold, tracker = folder(), AckTracker()
    acked: list[Event] = []
    unacked: list[tuple[int, ClosedGroup]] = []
    checkpoint = Checkpoint(position=parts[0].transaction.start)
    for part in parts[:crash_after]:
        for group in fold.feed(part):
            group_id = tracker.track(group)
            unacked.append((group_id, group))
        # The broker acknowledges a random subset of what is in flight.
        still = []
        for group_id, group in unacked:
            if rng.random() < ack_probability:
                for event in group.events:
                    tracker.ack(group_id)
                    acked.append(event)
            else:
                still.append((group_id, group))
        unacked = still
        assert fold.position is not None
        checkpoint = tracker.checkpoint(fold.position, fold.oldest_open())
    return acked, checkpoint


def test_replay_after_crash_recreates_exactly_the_missing_events() -> None:
    parts = busy_log().log
    expected = fold_all(folder(), parts)
    expected_by_id = {e.id: e for e in expected}
    assert len(expected_by_id) == len(expected)
    straddled = 0
    for crash_after, probability, seed in [
        (150, 0.5, 1),
        (333, 0.2, 2),
        (599, 0.9, 3),
        (10, 0.0, 4),
    ]:
        acked, checkpoint = run_until_crash(parts, crash_after, probability, seed)
        straddled += len(checkpoint.covered)
        resume = next(i for i, p in enumerate(parts) if p.transaction.start == checkpoint.position)
        replayed = fold_all(folder(checkpoint), parts[resume:])
        seen = {e.id for e in acked} | {e.id for e in replayed}
        # Nothing missed, nothing new: the union is exactly the uninterrupted run...
        assert seen == set(expected_by_id), (crash_after, probability)
        # ...and a re-sent event is identical to its original (links aside: see
        # without_links).
        for event in replayed:
            assert without_links(event) == without_links(expected_by_id[event.id])
    assert straddled > 0, "no scenario had groups straddling the checkpoint"


def test_covered_markers_are_forgotten_once_passed() -> None:
    tracker = AckTracker()
    log = Binlog()
    a = post_row(1)
    part = log.txn(update(POSTS, a, {**a, "post_title": "x"}))
    group_id = tracker.track(
        ClosedGroup(
            1, 1, part.transaction.start, Coordinate.of(part.transaction.start, 0), events=[]
        )
    )
    assert tracker.in_flight == 0  # a group with no events is never waited for
    del group_id
    later = Position("binlog.000002", 4)
    assert tracker.checkpoint(later, None).covered == ()


def test_covered_ranges_skip_changes_a_resumed_snapshot_already_holds() -> None:
    log = Binlog()
    a, b = post_row(5), post_row(50)
    early = [
        log.txn(update(POSTS, a, {**a, "post_title": "early a"})),
        log.txn(update(POSTS, b, {**b, "post_title": "early b"})),
    ]
    later = log.txn(update(POSTS, b, {**b, "post_title": "later b"}), after_seconds=5)
    # Posts 10..99 were read at the position of `later`: changes before it are in them.
    snapshot_at = later.transaction.start
    through = Coordinate.of(snapshot_at, 0)
    through = Coordinate(through.file_index, through.pos - 1, 2**31)
    ranges = (CoveredRange(1, 10, 99, through),)
    fold = Folder(config=FoldConfig(), mirror=Mirror(), covered_ranges=ranges)
    events = fold_all(fold, [*early, later])
    assert [(e.post_id, e.data.post.title) for e in events] == [(5, "early a"), (50, "later b")]  # type: ignore[union-attr]
    tracker = AckTracker(covered_ranges=ranges)
    assert tracker.checkpoint(early[0].transaction.start, None).covered_ranges == ranges
    assert tracker.checkpoint(later.end, None).covered_ranges == ()  # type: ignore[arg-type]
