"""What `wpcdc verify` finds (wpcdc.core.verify_report): a post in the database compared
with the topic's, fields that cannot be verified, and the text and JSON report."""

from __future__ import annotations

import orjson

from tests.support.binlog_builder import meta as meta_row
from tests.support.verify_builders import (
    IGNORED,
    bundle,
    diff_of,
    meta_event,
    post_event,
    row,
    snapshot,
    state_of,
    terms_event,
)
from wpcdc.core.verify_report import PostDiff, VerifyReport, compare_post, database_post

# --- comparing a post with the topic's -------------------------------------------------


def test_a_stale_title_is_named_with_both_values() -> None:
    state = state_of(post_event("post_created", row(4, post_title="Old title"), 100))
    diff = diff_of(bundle(row(4, post_title="New title")), state)
    assert diff is not None and diff.kind == "stale"
    assert [(f.field, f.topic, f.database) for f in diff.fields] == [
        ("title", '"Old title"', '"New title"')
    ]


def test_a_long_difference_is_excerpted_where_the_values_part() -> None:
    before = "x" * 200 + " the old ending"
    state = state_of(post_event("post_created", row(4, post_excerpt=before), 100))
    diff = diff_of(bundle(row(4, post_excerpt="x" * 200 + " the new ending")), state)
    assert diff is not None
    (excerpt,) = diff.fields
    assert "old ending" in excerpt.topic and "new ending" in excerpt.database
    assert len(excerpt.topic) < 80


def test_a_meta_row_only_in_the_database_is_reported() -> None:
    state = state_of(post_event("post_created", row(4), 100))
    diff = diff_of(bundle(row(4), [meta_row(9, 4, "planted", "yes")]), state)
    assert diff is not None
    assert [(f.field, f.detail, f.topic, f.database) for f in diff.fields] == [
        ("meta", "planted #9", "(absent)", '"yes"')
    ]


def test_a_serialized_meta_value_is_compared_as_stored() -> None:
    stored = 'a:1:{s:1:"k";s:1:"v";}'
    state = state_of(
        post_event("post_created", row(4), 100), meta_event(4, 100, ("added", 1, "arr", stored))
    )
    assert diff_of(bundle(row(4), [meta_row(1, 4, "arr", stored)]), state) is None
    changed = 'a:1:{s:1:"k";s:1:"w";}'
    diff = diff_of(bundle(row(4), [meta_row(1, 4, "arr", changed)]), state)
    assert diff is not None and diff.fields[0].database == orjson.dumps(changed).decode()


def test_ignored_meta_keys_are_not_compared() -> None:
    state = state_of(post_event("post_created", row(4), 100))
    assert diff_of(bundle(row(4), [meta_row(1, 4, "_edit_lock", "123:1")]), state) is None


def test_terms_are_compared_by_term_taxonomy_id() -> None:
    state = state_of(
        post_event("post_created", row(4), 100),
        terms_event(4, 100, added=[1, 2]),
        terms_event(4, 200, added=[3], removed=[1]),
    )
    assert diff_of(bundle(row(4), terms=[2, 3]), state) is None
    diff = diff_of(bundle(row(4), terms=[2, 5]), state)
    assert diff is not None
    assert [(f.field, f.topic, f.database) for f in diff.fields] == [
        ("terms", "3 only on the topic", "5 only in the database")
    ]


def test_a_post_missing_from_the_topic() -> None:
    assert diff_of(bundle(row(4)), state_of()) == PostDiff(1, 4, "missing", "no event on the topic")
    only_meta = state_of(meta_event(4, 100, ("added", 1, "k", "v")))
    diff = diff_of(bundle(row(4), [meta_row(1, 4, "k", "v")]), only_meta)
    assert diff is not None and diff.kind == "missing" and "no post event" in diff.reason


def test_omitted_content_is_unverifiable_not_a_difference() -> None:
    big = "é" * 3000
    state = state_of(post_event("post_created", row(4, post_content=big), 100, limit=2500))
    result = compare_post(
        database_post(bundle(row(4, post_content=big + "!")), IGNORED), state.posts[(1, 4)]
    )
    assert result.diff is None
    assert result.unverifiable == ("content",)
    # A later event with the whole post makes it comparable again.
    state = state_of(
        post_event("post_created", row(4, post_content=big), 100, limit=2500),
        post_event("post_updated", row(4, post_content="short"), 200),
    )
    assert diff_of(bundle(row(4, post_content="other")), state) is not None


def test_a_post_reduced_to_identifiers_leaves_only_them_comparable() -> None:
    big = "x" * 5000
    event = post_event("post_created", row(4, post_content=big, post_excerpt=big), 100, limit=900)
    assert "post" in event["data"]["omitted"]
    result = compare_post(
        database_post(bundle(row(4, post_title="anything")), IGNORED), state_of(event).posts[(1, 4)]
    )
    assert result.diff is None and "title" in result.unverifiable
    moved = database_post(bundle(row(4, post_status="draft")), IGNORED)
    assert compare_post(moved, state_of(event).posts[(1, 4)]).diff is not None


def test_omitted_meta_values_are_unverifiable_but_their_rows_are_not() -> None:
    big = "v" * 3000
    state = state_of(
        post_event("post_created", row(4), 100),
        meta_event(4, 100, ("added", 1, "big", big), ("added", 2, "big2", big), limit=2000),
    )
    assert not state.posts[(1, 4)].meta[1].value_known
    database = bundle(row(4), [meta_row(1, 4, "big", "other"), meta_row(2, 4, "big2", big)])
    result = compare_post(database_post(database, IGNORED), state.posts[(1, 4)])
    assert result.diff is None and result.unverifiable == ("meta.values",)
    missing_row = bundle(row(4), [meta_row(1, 4, "big", big)])
    assert diff_of(missing_row, state) is not None


def test_a_meta_event_reduced_to_identifiers_makes_meta_unverifiable_until_a_snapshot() -> None:
    many = [("added", i, f"k{i}", "v" * 200) for i in range(1, 40)]
    dropped = meta_event(4, 200, *many, limit=2000)  # type: ignore[arg-type]
    assert "changes" in dropped["data"]["omitted"]
    state = state_of(post_event("post_created", row(4), 100), dropped)
    result = compare_post(database_post(bundle(row(4)), IGNORED), state.posts[(1, 4)])
    assert result.diff is None and result.unverifiable == ("meta",)
    state = state_of(
        post_event("post_created", row(4), 100), dropped, snapshot(bundle(row(4)), 301)
    )
    planted = bundle(row(4), [meta_row(1, 4, "k", "v")])
    assert diff_of(planted, state) is not None


# --- the report ---------------------------------------------------------------------------


def _failed_report() -> VerifyReport:
    report = VerifyReport(topic="events", database="wordpress", position="binlog.000001:1000")
    report.posts_in_database = 3
    report.posts_on_topic = 2
    report.matching = 1
    report.differences = [
        PostDiff(1, 4, "missing", "no event on the topic"),
        PostDiff(2, 5, "extra", "on the topic, not in the database"),
    ]
    return report


def test_the_text_report_lists_counts_and_differences() -> None:
    text = _failed_report().as_text(max_report=1)
    assert "posts in the database    3" in text
    assert "missing                  1" in text
    assert "missing  post/4  no event on the topic" in text
    assert "blog/2/post/5" not in text and "... and 1 more (--max-report)" in text
    assert text.endswith("DIFFERENT: 2 posts differ between the topic and the database.")


def test_the_json_report_has_the_counts() -> None:
    data = orjson.loads(_failed_report().as_json(max_report=20))
    assert data["ok"] is False
    assert data["counts"] == {
        "posts_in_database": 3,
        "posts_on_topic": 2,
        "matching": 1,
        "missing": 1,
        "stale": 0,
        "extra": 1,
        "unverifiable": 0,
    }
    assert [d["subject"] for d in data["differences"]] == ["post/4", "blog/2/post/5"]
    assert data["differences_total"] == 2
