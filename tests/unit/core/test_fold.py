"""Folding WordPress-shaped row changes into domain events."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.binlog_builder import (
    POSTMETA,
    POSTS,
    RELS,
    Binlog,
    delete,
    insert,
    meta,
    post_row,
    rel,
    update,
)
from tests.support.fold import fold_all, insert_post_with_tags_and_meta, make_folder
from wpcdc.core.entity_payloads import TermData
from wpcdc.core.events import Event, MetaData, PostData, TaxonomyData


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_one_save_is_one_event_per_kind() -> None:
    log = Binlog()
    insert_post_with_tags_and_meta(log)
    events = fold_all(make_folder(), log.log)
    # The new tag is a term of its own: its group closed first (touched last earlier).
    assert types(events) == [
        "term_created",
        "post_created",
        "post_meta_changed",
        "taxonomy_changed",
    ]
    tag, *events = events
    assert isinstance(tag.data, TermData)
    assert (tag.key, tag.data.taxonomy, tag.data.slug) == (b"1:term/5", "post_tag", "alpha")
    created, meta_event, taxonomy = (e.data for e in events)
    assert isinstance(created, PostData)
    assert created.post.status == "draft"
    assert created.post.guid == "http://wpcdc.test/?p=10"  # the guid churn folded in
    assert isinstance(meta_event, MetaData)
    assert [(c.key, c.op, c.value) for c in meta_event.changes] == [("colour", "added", {"r": 1})]
    assert isinstance(taxonomy, TaxonomyData)
    assert sorted((t.taxonomy, t.slug) for t in taxonomy.added) == [
        ("category", "uncategorized"),
        ("post_tag", "alpha"),
    ]
    assert taxonomy.removed == []
    assert {e.key for e in events} == {b"1:10"}
    assert [e.ordinal for e in events] == [0, 1, 2]
    assert len({e.id for e in events}) == 3


def test_ids_and_sequences_are_pure_functions_of_the_binlog() -> None:
    log = Binlog()
    insert_post_with_tags_and_meta(log)
    first = fold_all(make_folder(), log.log)
    second = fold_all(make_folder(), log.log)
    assert [(e.id, e.sequence) for e in first] == [(e.id, e.sequence) for e in second]
    # The id names the group's first row change (GTID 0-1-1, row 0) and its last
    # (binlog file 1, the transaction at 1204, row 0): the same id, the same content.
    post = first[1]
    assert (first[0].type, post.type) == ("term_created", "post_created")
    assert post.id == "0-1-1/0..1:1204:0/post_created"
    assert [e.sequence for e in first] == sorted(e.sequence for e in first)
    # The sequence is the last row change: the state the event carries.
    assert post.sequence == "0000000001-0000001204-0000000000-000"
    # The new tag's group: its terms row (GTID 0-1-4) to its term_taxonomy row.
    assert first[0].id == "0-1-4/0..1:604:0/term_created"


def test_auto_draft_is_held_back_until_first_real_save() -> None:
    log = Binlog()
    auto = post_row(20, status="auto-draft", title="Auto Draft", guid="")
    log.txn(insert(POSTS, auto))
    log.txn(update(POSTS, auto, {**auto, "guid": "http://wpcdc.test/?p=20"}))
    log.txn(insert(POSTMETA, meta(200, 20, "_edit_lock", "1800000000:1")))
    folder = make_folder()
    early = fold_all(folder, log.log)
    assert early == []
    saved = {**auto, "guid": "http://wpcdc.test/?p=20", "post_status": "draft", "post_title": "Hi"}
    later = log.txn(
        update(POSTS, {**auto, "guid": "http://wpcdc.test/?p=20"}, saved), after_seconds=30
    )
    events = fold_all(folder, [later])
    assert types(events) == ["post_created"]
    assert isinstance(events[0].data, PostData) and events[0].data.post.title == "Hi"


def test_auto_drafts_reported_when_configured() -> None:
    log = Binlog()
    log.txn(insert(POSTS, post_row(21, status="auto-draft")))
    assert types(fold_all(make_folder(emit_auto_drafts=True), log.log)) == ["post_created"]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("draft", "publish", "post_published"),
        ("publish", "draft", "post_unpublished"),
        ("draft", "future", "post_scheduled"),
        ("future", "publish", "post_published"),
        ("publish", "trash", "post_trashed"),
        ("trash", "draft", "post_restored"),
        ("draft", "pending", "post_updated"),
    ],
)
def test_status_transitions(before: str, after: str, expected: str) -> None:
    log = Binlog()
    row = post_row(30, status=before)
    log.txn(update(POSTS, row, {**row, "post_status": after}))
    (event,) = fold_all(make_folder(), log.log)
    assert event.type == expected
    assert isinstance(event.data, PostData)
    assert event.data.changed == ["status"]
    assert event.data.before == {"status": before}
    assert event.data.previous_status == (None if expected == "post_updated" else before)


def test_update_reports_changed_fields_with_before_values() -> None:
    log = Binlog()
    row = post_row(31, title="Old", content="old body")
    log.txn(
        update(POSTS, row, {**row, "post_title": "New", "post_modified": "2026-11-23 11:00:00"})
    )
    log.txn(
        update(
            POSTS,
            {**row, "post_title": "New"},
            {
                **row,
                "post_title": "New",
                "post_content": "new body",
                "post_modified": "2026-11-23 11:00:00",
            },
        )
    )
    (event,) = fold_all(make_folder(), log.log)
    assert event.type == "post_updated"
    assert isinstance(event.data, PostData)
    assert event.data.changed == ["title", "content", "modified"]
    assert event.data.before == {
        "title": "Old",
        "content": "old body",
        "modified": "2026-11-23 10:00:00",
    }
    assert event.data.post.content == "new body"


def test_bookkeeping_only_update_produces_nothing() -> None:
    log = Binlog()
    row = post_row(32)
    log.txn(update(POSTS, row, {**row, "pinged": "http://example.com"}))
    assert fold_all(make_folder(), log.log) == []


def test_trash_then_permanent_delete() -> None:
    log = Binlog()
    row = post_row(40, status="publish", name="hello")
    log.txn(insert(POSTMETA, meta(400, 40, "_wp_trash_meta_status", "publish")))
    log.txn(insert(POSTMETA, meta(401, 40, "_wp_trash_meta_time", "1800000000")))
    trashed = {**row, "post_status": "trash", "post_name": "hello__trashed"}
    log.txn(update(POSTS, row, trashed))
    folder = make_folder()
    events = fold_all(folder, log.log)
    assert types(events) == ["post_trashed", "post_meta_changed"]
    assert isinstance(events[0].data, PostData)
    assert events[0].data.previous_status == "publish"
    # Permanent delete: meta and terms go first, the post row last: one event.
    later = [
        log.txn(
            delete(POSTMETA, meta(400, 40, "_wp_trash_meta_status", "publish")), after_seconds=60
        ),
        log.txn(delete(POSTMETA, meta(401, 40, "_wp_trash_meta_time", "1800000000"))),
        log.txn(delete(RELS, rel(40, 1))),
        log.txn(delete(POSTS, trashed)),
    ]
    events = fold_all(folder, later)
    assert types(events) == ["post_deleted"]
    assert isinstance(events[0].data, PostData) and events[0].data.post.status == "trash"


def test_created_and_deleted_within_a_group_reports_nothing() -> None:
    log = Binlog()
    row = post_row(41)
    log.txn(insert(POSTS, row))
    log.txn(delete(POSTS, row))
    assert fold_all(make_folder(), log.log) == []


def test_changes_far_apart_are_separate_events() -> None:
    log = Binlog()
    row = post_row(50, title="a")
    log.txn(update(POSTS, row, {**row, "post_title": "b"}))
    log.txn(update(POSTS, {**row, "post_title": "b"}, {**row, "post_title": "c"}), after_seconds=1)
    log.txn(update(POSTS, {**row, "post_title": "c"}, {**row, "post_title": "d"}), after_seconds=2)
    events = fold_all(make_folder(window_seconds=1), log.log)
    assert [e.data.before["title"] for e in events if isinstance(e.data, PostData)] == ["a", "c"]


def test_window_zero_folds_only_within_a_transaction() -> None:
    log = Binlog()
    row = post_row(51, title="a")
    log.txn(update(POSTS, row, {**row, "post_title": "b"}))
    log.txn(update(POSTS, {**row, "post_title": "b"}, {**row, "post_title": "c"}))
    assert len(fold_all(make_folder(window_seconds=0), log.log)) == 2


def test_another_thread_on_the_same_post_closes_the_group() -> None:
    log = Binlog()
    row = post_row(52, title="a")
    log.txn(update(POSTS, row, {**row, "post_title": "b"}), thread_id=7)
    log.txn(update(POSTS, {**row, "post_title": "b"}, {**row, "post_title": "c"}), thread_id=8)
    assert len(fold_all(make_folder(), log.log)) == 2


def test_group_size_is_bounded() -> None:
    log = Binlog()
    log.txn(*(insert(POSTMETA, meta(1000 + i, 60, f"k{i}", "v")) for i in range(25)))
    events = fold_all(make_folder(max_changes_per_group=10), log.log)
    assert types(events) == ["post_meta_changed"] * 3
    assert [len(e.data.changes) for e in events if isinstance(e.data, MetaData)] == [10, 10, 5]
    assert len({e.id for e in events}) == 3


def test_open_groups_are_bounded() -> None:
    log = Binlog()
    for post_id in range(70, 75):
        row = post_row(post_id)
        log.txn(update(POSTS, row, {**row, "post_title": "x"}))
    folder = make_folder(max_open_groups=2)
    closed = [group for part in log.log for group in folder.feed(part)]
    assert [g.post_id for g in closed] == [70, 71, 72]
    assert folder.open_groups == 2


def test_revisions_and_link_categories_produce_nothing() -> None:
    log = Binlog()
    log.txn(insert(POSTS, post_row(80, type="revision", parent=10, status="inherit")))
    log.txn(insert(RELS, rel(3, 7)))  # a link in the Blogroll link category
    assert fold_all(make_folder(), log.log) == []


def test_meta_and_terms_of_known_post_carry_its_type() -> None:
    log = Binlog()
    log.txn(update(POSTMETA, meta(900, 1, "views", "1"), meta(900, 1, "views", "2")))
    log.txn(delete(RELS, rel(1, 1)))
    meta_event, taxonomy = fold_all(make_folder(), log.log)
    assert isinstance(meta_event.data, MetaData) and meta_event.data.post_type == "post"
    assert meta_event.data.changes[0].op == "updated"
    assert meta_event.data.changes[0].before == "1"
    assert isinstance(taxonomy.data, TaxonomyData)
    assert [t.slug for t in taxonomy.data.removed] == ["uncategorized"]


def test_unknown_term_is_flagged_not_dropped() -> None:
    log = Binlog()
    log.txn(insert(RELS, rel(1, 999)))
    (event,) = fold_all(make_folder(), log.log)
    assert isinstance(event.data, TaxonomyData)
    assert event.data.added[0].resolved is False
    assert event.data.added[0].term_taxonomy_id == 999


def test_term_added_and_removed_in_one_group_cancels_out() -> None:
    log = Binlog()
    log.txn(insert(RELS, rel(1, 1)))
    log.txn(delete(RELS, rel(1, 1)))
    assert fold_all(make_folder(), log.log) == []


def test_malformed_serialized_meta_keeps_raw_value_and_flags_it() -> None:
    log = Binlog()
    broken = 'a:1:{s:5:"short";s:3:"toolong";}'
    log.txn(insert(POSTMETA, meta(950, 1, "settings", broken)))
    (event,) = fold_all(make_folder(), log.log)
    assert isinstance(event.data, MetaData)
    change = event.data.changes[0]
    assert change.value == broken
    assert change.raw == broken
    assert change.serialized is True
    assert change.error is not None and "serialize" in change.error


def test_ignored_meta_keys_are_filtered() -> None:
    log = Binlog()
    log.txn(insert(POSTMETA, meta(960, 1, "_edit_lock", "1:1")))
    log.txn(insert(POSTMETA, meta(961, 1, "_edit_last", "1")))
    assert fold_all(make_folder(), log.log) == []


def test_multisite_blogs_are_separate_posts() -> None:
    log = Binlog()
    log.txn(insert(POSTS, post_row(5)), blog_id=1)
    log.txn(insert(POSTS, post_row(5)), blog_id=2)
    events = fold_all(make_folder(), log.log)
    assert sorted(e.key for e in events) == [b"1:5", b"2:5"]


def test_idle_closes_open_groups() -> None:
    log = Binlog()
    row = post_row(90)
    folder = make_folder()
    assert folder.feed(log.txn(update(POSTS, row, {**row, "post_title": "x"}))) == []
    assert folder.oldest_open() == log.log[0].transaction.start
    closed = folder.idle()
    assert [g.post_id for g in closed] == [90]
    assert folder.oldest_open() is None


def test_events_are_dataclasses_all_the_way_down() -> None:
    log = Binlog()
    insert_post_with_tags_and_meta(log)
    for event in fold_all(make_folder(), log.log):
        assert dataclasses.is_dataclass(event.data)
