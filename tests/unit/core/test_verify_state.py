"""The topic's posts as `wpcdc verify` rebuilds them (wpcdc.core.verify_state): sequence
order, duplicates, deletions, snapshots, the cutoff at the database's position,
fingerprints, and records that are not wpcdc events."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from tests.support.binlog_builder import meta as meta_row
from tests.support.verify_builders import (
    FILE,
    bundle,
    diff_of,
    meta_event,
    post_event,
    row,
    snapshot,
    state_of,
    terms_event,
)
from wpcdc.core.positions import Position
from wpcdc.core.verify_state import LONG_STRING, TopicState, sequence_cutoff


def test_created_then_updated_matches_the_database() -> None:
    state = state_of(
        post_event("post_created", row(4, post_status="draft"), 100),
        post_event("post_published", row(4, post_title="Final"), 200),
    )
    assert diff_of(bundle(row(4, post_title="Final")), state) is None


def _history() -> list[dict[str, Any]]:
    """A post snapshotted at 150, with changes before and after the snapshot."""
    snap = bundle(row(4, post_title="At 150"), [meta_row(1, 4, "colour", "red")], [7])
    return [
        post_event("post_created", row(4, post_title="At 100"), 100),
        meta_event(4, 100, ("added", 1, "colour", "blue"), ("added", 2, "gone", "x")),
        terms_event(4, 100, added=[8]),
        snapshot(snap, 151),
        post_event("post_updated", row(4, post_title="At 200"), 200),
        meta_event(4, 200, ("updated", 1, "colour", "green"), ("added", 3, "size", "L")),
        terms_event(4, 200, added=[9], removed=[7]),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_the_order_records_arrive_in_does_not_matter(order: tuple[int, ...]) -> None:
    # Sequence order wins: a snapshot may land on the topic after later changes.
    events = _history()
    shuffled = [events[i] for i in order] + events[4:]
    database = bundle(
        row(4, post_title="At 200"),
        [meta_row(1, 4, "colour", "green"), meta_row(3, 4, "size", "L")],
        [9],
    )
    assert diff_of(database, state_of(*shuffled)) is None
    assert diff_of(database, state_of(*reversed(events))) is None


def test_duplicates_change_nothing() -> None:
    events = _history()
    state = state_of(*events, *events[:3], *events)
    database = bundle(
        row(4, post_title="At 200"),
        [meta_row(1, 4, "colour", "green"), meta_row(3, 4, "size", "L")],
        [9],
    )
    assert diff_of(database, state) is None


def test_meta_rows_follow_their_meta_id_and_a_late_add_does_not_resurrect_a_deletion() -> None:
    state = state_of(
        post_event("post_created", row(4), 100),
        meta_event(4, 300, ("deleted", 5, "price", "")),
        meta_event(4, 100, ("added", 5, "price", "10"), ("added", 6, "tax", "a:1:{i:0;i:1;}")),
        meta_event(4, 200, ("updated", 6, "tax", "a:1:{i:0;i:2;}")),
    )
    assert diff_of(bundle(row(4), [meta_row(6, 4, "tax", "a:1:{i:0;i:2;}")]), state) is None


def test_a_deletion_clears_meta_and_terms_and_the_post_is_not_extra() -> None:
    state = state_of(
        post_event("post_created", row(4), 100),
        meta_event(4, 100, ("added", 1, "k", "v")),
        terms_event(4, 100, added=[1]),
        post_event("post_deleted", row(4), 200),
    )
    post = state.posts[(1, 4)]
    assert not post.exists and not post.present_meta() and not post.present_terms()
    diff = diff_of(bundle(row(4)), state)
    assert diff is not None and diff.kind == "missing" and "post_deleted" in diff.reason


def test_snapshot_replaces_what_came_before_it_and_keeps_what_came_after() -> None:
    snap = bundle(row(4), [meta_row(2, 4, "b", "2")], [2])
    state = state_of(
        meta_event(4, 100, ("added", 1, "a", "1")),
        terms_event(4, 100, added=[1]),
        meta_event(4, 300, ("added", 3, "c", "3")),
        terms_event(4, 300, added=[3]),
        snapshot(snap, 201),
    )
    expected = bundle(row(4), [meta_row(2, 4, "b", "2"), meta_row(3, 4, "c", "3")], [2, 3])
    assert diff_of(expected, state) is None


def test_an_older_snapshot_arriving_after_a_newer_one_changes_nothing() -> None:
    older = bundle(row(4, post_title="Old"), [meta_row(1, 4, "a", "1")], [1])
    newer = bundle(row(4, post_title="New"), [meta_row(2, 4, "b", "2")], [2])
    state = state_of(
        snapshot(newer, 301), snapshot(older, 151), meta_event(4, 200, ("added", 3, "c", "3"))
    )
    assert diff_of(newer, state) is None


def test_events_after_the_database_position_are_ignored() -> None:
    cutoff = sequence_cutoff(Position(FILE, 300))
    state = state_of(
        snapshot(bundle(row(4, post_title="Snapshot")), 300),  # sorts just before 300
        post_event("post_updated", row(4, post_title="Later"), 300),
        meta_event(4, 400, ("added", 1, "k", "v")),
        cutoff=cutoff,
    )
    assert state.after_cutoff == 2
    assert diff_of(bundle(row(4, post_title="Snapshot")), state) is None


def test_long_strings_are_kept_as_fingerprints() -> None:
    body = "long body " * 100
    assert len(body) > LONG_STRING
    state = state_of(post_event("post_created", row(4, post_content=body), 100))
    kept = state.posts[(1, 4)].post
    assert kept is not None and not isinstance(kept["content"], str)
    assert diff_of(bundle(row(4, post_content=body)), state) is None
    diff = diff_of(bundle(row(4, post_content=body + ".")), state)
    assert diff is not None and diff.fields[0].field == "content"
    assert "1001 chars" in diff.fields[0].database


def test_records_that_are_not_wpcdc_events_are_counted_not_fatal() -> None:
    state = TopicState()
    state.add_record(b"x", b"junk")
    state.add_record(None, orjson.dumps({"specversion": "1.0", "id": "1", "type": "t"}))
    bad = post_event("post_created", row(4), 100)
    bad["data"]["post"] = "not an object"
    state.add_record(b"1:4", orjson.dumps(bad))
    assert (state.foreign, state.unreadable, state.events) == (2, 1, 0)


def test_blog_and_post_filters_skip_records_by_key() -> None:
    state = TopicState(blog_id=2)
    state.add_record(b"1:4", b"not even decoded")
    state.add(post_event("post_created", row(4), 100))
    state.add(post_event("post_created", row(5), 100, blog_id=2))
    assert list(state.posts) == [(2, 5)] and state.foreign == 0


def test_term_and_author_events_are_no_post_and_not_unreadable() -> None:
    state = TopicState()
    term = {"specversion": "1.0", "id": "a", "type": "term_updated", "subject": "term/5"}
    term |= {"sequence": "0000000001-0000000004-0000000000-000", "data": {"blog_id": 1}}
    author = {**term, "id": "b", "type": "author_updated", "subject": "author/1", "data": {}}
    state.add_record(b"1:term/5", orjson.dumps(term))
    state.add_record(b"1:author/1", orjson.dumps(author))
    assert (state.posts, state.foreign, state.unreadable, state.events) == ({}, 0, 0, 0)


def test_menu_events_and_old_menu_item_post_events_are_no_post() -> None:
    state = TopicState()
    menu = {"specversion": "1.0", "id": "a", "type": "menu_changed", "subject": "menu/7"}
    menu |= {"sequence": "0000000001-0000000004-0000000000-000", "data": {"blog_id": 1}}
    state.add_record(b"1:menu/7", orjson.dumps(menu))
    # A menu item's post event from before menu_changed existed: not compared.
    state.add(post_event("post_created", row(11, post_type="nav_menu_item"), 100))
    assert (state.posts, state.foreign, state.unreadable, state.events) == ({}, 0, 0, 0)
