"""When groups close: a save's burst ends (quiet), a busy post's group ages out,
memory passes its bound; and what the checkpoint keeps of a huge transaction.
Time is passed in (seconds on a monotonic clock): no sleeps."""

from __future__ import annotations

import pytest

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, insert, meta, post_row, update
from tests.support.fold import insert_post_with_tags_and_meta, make_folder
from wpcdc.core import acks
from wpcdc.core.acks import AckTracker
from wpcdc.core.events import Event, MetaData, PostData
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.mirror import Mirror


def events(groups: list[ClosedGroup]) -> list[Event]:
    return [event for group in groups for event in group.events]


def test_a_save_closes_once_its_post_is_quiet_and_not_before() -> None:
    log = Binlog()
    insert_post_with_tags_and_meta(log)  # one wp_insert_post(): several transactions
    fold = make_folder(quiet_seconds=0.15)
    closed = []
    for i, part in enumerate(log.log):
        closed += fold.feed(part, now=10.0 + i * 0.005)
    assert closed == []
    last = 10.0 + (len(log.log) - 1) * 0.005
    # The new tag's own group (its terms and term_taxonomy rows, transactions 3
    # and 4; the recount is no term change) goes quiet first.
    tag_touched = 10.0 + 4 * 0.005
    assert fold.next_deadline() == pytest.approx(tag_touched + 0.15)
    assert [e.type for e in events(fold.tick(tag_touched + 0.15))] == ["term_created"]
    assert fold.next_deadline() == pytest.approx(last + 0.15)
    assert fold.tick(last + 0.1) == []
    saved = events(fold.tick(last + 0.15))
    assert [e.type for e in saved] == ["post_created", "post_meta_changed", "taxonomy_changed"]
    assert fold.open_groups == 0 and fold.next_deadline() is None


def test_ticks_with_nothing_due_close_nothing_and_a_group_opened_later_still_closes() -> None:
    # tick keeps a bound before which nothing can be due; a group opened while
    # none was open brings it back, whatever ticks came before.
    log = Binlog()
    first = log.txn(update(POSTS, post_row(1), {**post_row(1), "post_title": "a"}))
    second = log.txn(update(POSTS, post_row(2), {**post_row(2), "post_title": "b"}))
    # Times exact in binary: the comparisons are at the boundaries.
    fold = make_folder(quiet_seconds=0.25, max_age_seconds=1.0)
    assert fold.tick(5.0) == []  # nothing open: nothing is ever due
    fold.feed(first, now=10.0)
    assert fold.tick(10.125) == []
    fold.feed(second, now=10.125)
    assert [g.post_id for g in fold.tick(10.25)] == [1]
    assert fold.tick(10.3125) == []
    assert [g.post_id for g in fold.tick(10.375)] == [2]
    fold.feed(log.txn(update(POSTS, post_row(1), {**post_row(1), "post_title": "c"})), now=20.0)
    assert fold.tick(20.125) == []
    assert [g.post_id for g in fold.tick(20.25)] == [1]


def test_two_saves_apart_are_two_events_even_within_one_binlog_second() -> None:
    log = Binlog()
    row = post_row(1, title="a")
    first = log.txn(update(POSTS, row, {**row, "post_title": "b"}))
    second = log.txn(update(POSTS, {**row, "post_title": "b"}, {**row, "post_title": "c"}))
    assert first.transaction.timestamp == second.transaction.timestamp
    fold = make_folder()
    assert fold.feed(first, now=1.0) == []
    (closed,) = fold.feed(second, now=1.3)  # the first went quiet before the second
    (event,) = closed.events
    assert isinstance(event.data, PostData) and event.data.post.title == "b"
    (later,) = events(fold.tick(2.0))
    assert isinstance(later.data, PostData) and later.data.post.title == "c"
    assert event.id != later.id and event.sequence < later.sequence


def test_a_post_busy_four_times_a_second_still_closes_within_the_maximum_age() -> None:
    log = Binlog()
    fold = make_folder(quiet_seconds=0.15, max_age_seconds=1.0)
    row = post_row(1)
    out: list[tuple[float, Event]] = []
    for i in range(40):  # a view counter, every 250 ms for 10 s
        now = i * 0.25
        if i == 9:  # an editor's title edit in the middle of it
            part = log.txn(update(POSTS, row, {**row, "post_title": "edited"}))
        else:
            part = log.txn(
                update(POSTMETA, meta(5, 1, "views", str(i)), meta(5, 1, "views", str(i + 1)))
            )
        out += [(now, e) for e in events(fold.feed(part, now))]
        oldest = fold.oldest_open_first()
        # The checkpoint is never held back by a group older than the maximum age.
        assert fold.next_deadline() is not None and fold.next_deadline() <= now + 1.0  # type: ignore[operator]
        assert oldest is not None
    titles = [(now, e) for now, e in out if isinstance(e.data, PostData)]
    assert len(titles) == 1
    when, title = titles[0]
    assert isinstance(title.data, PostData) and title.data.post.title == "edited"
    # Out with the first change past the group's maximum age: within 1.25 s of the edit.
    assert 2.25 < when <= 2.25 + 1.25
    assert len([e for _, e in out if isinstance(e.data, MetaData)]) >= 8


def test_open_groups_stay_within_their_byte_bound_whatever_the_transaction_shape() -> None:
    log = Binlog()
    big = "x" * 2000
    # One UPDATE of 3,000 meta rows interleaved across 300 posts (the worst shape).
    changes = [
        update(
            POSTMETA,
            meta(10_000 + i, 1 + i % 300, "k", big),
            meta(10_000 + i, 1 + i % 300, "k", big + "!"),
        )
        for i in range(3000)
    ]
    part = log.txn(*changes)
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, 301)])
    bound = 1024 * 1024
    fold = Folder(config=FoldConfig(max_open_bytes=bound), mirror=mirror)
    peak = 0
    closed: list[ClosedGroup] = []
    for change in part.changes:  # fed one row at a time to watch the peak
        closed += fold.feed(type(part)(part.transaction, (change,), None))
        peak = max(peak, fold.open_bytes)
    closed += fold.close_all()
    assert peak <= bound
    changed = sum(len(e.data.changes) for e in events(closed) if isinstance(e.data, MetaData))
    assert changed == 3000  # nothing lost by closing early


def test_the_memory_bound_counts_the_size_the_source_estimated() -> None:
    # A source that knows what a row change's images cost (the fast reader, from
    # the event's bytes) says so in RowChange.size; the fold takes it as it is.
    log = Binlog()
    part = log.txn(update(POSTMETA, meta(1, 5, "k", "a"), meta(1, 5, "k", "b")))
    (change,) = part.changes
    sized = type(change)(change.table, change.op, change.before, change.after, 0, 700_000)
    mirror = Mirror()
    mirror.load_posts(1, [(5, "post", "draft", 0)])
    fold = Folder(config=FoldConfig(max_open_bytes=1024 * 1024), mirror=mirror)
    fold.feed(type(part)(part.transaction, (sized,), None))
    assert fold.open_bytes == 700_000
    # A second one passes the bound: the group closes with it.
    closed = fold.feed(type(part)(part.transaction, (sized,), None))
    assert [g.post_id for g in closed] == [5]
    assert fold.open_bytes == 0


def test_a_huge_transaction_keeps_a_small_checkpoint() -> None:
    log = Binlog()
    posts = 20_000
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, posts + 1)])
    part = log.txn(*[insert(POSTMETA, meta(p, p, "k", "v")) for p in range(1, posts + 1)])
    fold = Folder(config=FoldConfig(max_open_groups=100), mirror=mirror)
    tracker = AckTracker()
    middle = type(part)(part.transaction, part.changes[:15_000], None)
    for group in fold.feed(middle):
        group_id = tracker.track(group)
        for _ in group.events:
            tracker.ack(group_id)
    oldest = fold.oldest_open_first()
    assert fold.position is None
    checkpoint = tracker.checkpoint(
        part.transaction.start,
        fold.oldest_open(),
        open_first=None if oldest is None else oldest[0],
        fed=fold.fed,
    )
    # 14,900 posts are in acknowledged events; one coordinate says so.
    assert checkpoint.position == part.transaction.start
    assert checkpoint.covered_rows is not None and checkpoint.covered_rows.row == 14_899
    assert len(checkpoint.covered) == 0
    assert len(checkpoint.to_json()) < 1000
    # A resume skips exactly those row changes.
    resumed = Folder(
        config=FoldConfig(max_open_groups=100), mirror=mirror, covered_rows=checkpoint.covered_rows
    )
    replayed = [e.post_id for g in resumed.feed(part) + resumed.close_all() for e in g.events]
    assert sorted(replayed) == list(range(14_901, posts + 1))


def test_markers_are_capped_and_a_capped_one_only_costs_a_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acks, "MAX_MARKERS", 10)
    log = Binlog()
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, 51)])
    # Post 1 first, left open; 49 others closed and acknowledged after it.
    part = log.txn(*[insert(POSTMETA, meta(p, p, "k", "v")) for p in range(1, 51)])
    fold = Folder(config=FoldConfig(), mirror=mirror)
    tracker = AckTracker()
    assert fold.feed(part) == []
    for group in fold.close_posts([(1, p) for p in range(2, 51)]):
        group_id = tracker.track(group)
        for _ in group.events:
            tracker.ack(group_id)
    oldest = fold.oldest_open_first()
    assert oldest is not None and oldest[0].row == 0  # post 1 still open: no covered_rows
    checkpoint = tracker.checkpoint(
        part.transaction.start, fold.oldest_open(), open_first=oldest[0], fed=fold.fed
    )
    assert checkpoint.covered_rows is None
    assert len(checkpoint.covered) == 10
    # The latest ones are kept: the most replay saved.
    assert [c.post_id for c in checkpoint.covered] == list(range(41, 51))


def test_time_never_splits_a_transaction_that_is_still_being_read() -> None:
    # 3,000 rows round-robin over 30 posts in one transaction, read slowly: each
    # post's next row comes 0.3 s after its last (more than the quiet gap), and the
    # read takes 30 s (more than the maximum age). Its rows commit together: one
    # group per post, closed once the transaction is over and quiet.
    log = Binlog()
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, 31)])
    part = log.txn(*[insert(POSTMETA, meta(100 + i, 1 + i % 30, "k", "v")) for i in range(3000)])
    fold = Folder(config=FoldConfig(), mirror=mirror)
    closed: list[ClosedGroup] = []
    for i, change in enumerate(part.changes):
        last = i == len(part.changes) - 1
        piece = type(part)(part.transaction, (change,), part.end if last else None)
        closed += fold.feed(piece, now=i * 0.01)
        if not last:
            assert fold.tick(i * 0.01 + 0.005) == []
            assert fold.next_deadline() is None
    assert closed == []
    closed = fold.tick(30.0 + 0.2)
    assert len(events(closed)) == 30
