"""The rules of `wpcdc verify`: rebuilding posts from envelopes, comparing with the
database, the recheck on a live site, and the report.

Envelopes are made by the real serializer (wpcdc.events, wpcdc.core.snapshot_events)
from hand-built events; the database is a list of PostBundles.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pytest

from tests.support.fold import meta_row
from wpcdc.core.derive import to_post
from wpcdc.core.events import (
    Event,
    MetaChange,
    MetaData,
    Origin,
    PostData,
    TaxonomyData,
    TermRef,
    fit,
    serialize,
)
from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.snapshot_events import PostBundle, snapshot_event
from wpcdc.core.verify_report import PostDiff, VerifyReport, compare_post, database_post
from wpcdc.core.verify_state import LONG_STRING, TopicState, sequence_cutoff
from wpcdc.runtime.verify import DatabaseView, VerifyOptions, verify

FILE = "binlog.000001"
SOURCE = "wpcdc://test/wordpress"
CONFIG = FoldConfig(ignored_meta_keys=frozenset({"_edit_lock"}))
IGNORED = CONFIG.ignored_meta_keys


# --- building blocks ---------------------------------------------------------------


def row(post_id: int, **columns: Any) -> dict[str, Any]:
    """A wp_posts row as PyMySQL returns it."""
    return {
        "ID": post_id,
        "post_type": "post",
        "post_status": "publish",
        "post_title": f"Post {post_id}",
        "post_content": "Body",
        "post_excerpt": "",
        "post_name": f"post-{post_id}",
        "post_author": 1,
        "post_parent": 0,
        "post_date": "2026-11-23T10:00:00",
        "post_date_gmt": "2026-11-23T09:00:00",
        "post_modified": "2026-11-23T10:00:00",
        "post_modified_gmt": "2026-11-23T09:00:00",
        "menu_order": 0,
        "guid": f"http://wpcdc.test/?p={post_id}",
        "post_mime_type": "",
        "comment_status": "open",
        "ping_status": "open",
        "comment_count": 0,
        "post_password": "",
        **columns,
    }


def term(tt_id: int) -> TermRef:
    return TermRef(tt_id, "post_tag", tt_id + 100, f"t{tt_id}", f"T{tt_id}")


def bundle(
    post: dict[str, Any],
    meta: Sequence[dict[str, Any]] = (),
    terms: Sequence[int] = (),
    blog_id: int = 1,
) -> PostBundle:
    return PostBundle(blog_id, post, list(meta), [term(t) for t in terms])


def _event(kind: str, post_id: int, pos: int, data: Any, ordinal: int, blog_id: int) -> Event:
    origin = Origin(FILE, pos, None, Coordinate(1, pos, 0))
    return Event(kind, blog_id, post_id, origin, ordinal, 0, data)


def envelope(event: Event, limit: int | None = None) -> dict[str, Any]:
    if limit is None:
        return dict(orjson.loads(serialize(event, SOURCE)))
    value, _ = fit(event, SOURCE, limit)
    return dict(orjson.loads(value))


def post_event(
    kind: str, post: dict[str, Any], pos: int, *, blog_id: int = 1, limit: int | None = None
) -> dict[str, Any]:
    p = to_post(post)
    data = PostData(blog_id, p.id, p.type, p)
    return envelope(_event(kind, p.id, pos, data, 0, blog_id), limit)


def meta_event(
    post_id: int,
    pos: int,
    *changes: tuple[Literal["added", "updated", "deleted"], int, str, str],
    limit: int | None = None,
) -> dict[str, Any]:
    data = MetaData(
        1,
        post_id,
        "post",
        [MetaChange(key, op, meta_id, value) for op, meta_id, key, value in changes],
    )
    return envelope(_event("post_meta_changed", post_id, pos, data, 1, 1), limit)


def terms_event(
    post_id: int, pos: int, added: Sequence[int] = (), removed: Sequence[int] = ()
) -> dict[str, Any]:
    data = TaxonomyData(1, post_id, "post", [term(t) for t in added], [term(t) for t in removed])
    return envelope(_event("taxonomy_changed", post_id, pos, data, 2, 1))


def snapshot(b: PostBundle, pos: int, limit: int | None = None) -> dict[str, Any]:
    event = snapshot_event(b, position=Position(FILE, pos), timestamp=0, config=CONFIG)
    return envelope(event, limit)


def state_of(*events: dict[str, Any], cutoff: str | None = None) -> TopicState:
    state = TopicState(ignored_meta_keys=IGNORED, cutoff=cutoff)
    for e in events:
        state.add_record(f"{e['data']['blog_id']}:{e['data']['post_id']}".encode(), orjson.dumps(e))
    return state


def diff_of(b: PostBundle, state: TopicState) -> PostDiff | None:
    return compare_post(
        database_post(b, IGNORED), state.posts.get((b.blog_id, int(b.post["ID"])))
    ).diff


# --- materializing and comparing ------------------------------------------------------


def test_created_then_updated_matches_the_database() -> None:
    state = state_of(
        post_event("post_created", row(4, post_status="draft"), 100),
        post_event("post_published", row(4, post_title="Final"), 200),
    )
    assert diff_of(bundle(row(4, post_title="Final")), state) is None


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


# --- verify(): the live-site procedure ---------------------------------------------------


@dataclass
class FakeView:
    position: Position
    bundles: dict[int, list[PostBundle]]
    warnings: list[str] = field(default_factory=list)

    def blogs(self) -> list[int]:
        return sorted(self.bundles)

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        posts = self.bundles[blog_id]
        for start in range(0, len(posts), 2):
            yield posts[start : start + 2]

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]:
        return [b for b in self.bundles[blog_id] if int(b.post["ID"]) in ids]


class FakeDatabase:
    def __init__(self, *views: FakeView) -> None:
        self.views = list(views)
        self.opened = 0

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[DatabaseView]:
        self.opened += 1
        yield self.views.pop(0)


class FakeTopic:
    """Each read sees the records of the next list (the topic grows)."""

    def __init__(self, *reads: list[dict[str, Any]]) -> None:
        self.reads = list(reads)

    def read(self, state: TopicState) -> None:
        records = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        for e in records:
            state.add_record(
                f"{e['data']['blog_id']}:{e['data']['post_id']}".encode(), orjson.dumps(e)
            )


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run_verify(
    database: FakeDatabase,
    topic: FakeTopic,
    checkpoint: Sequence[Position | None] = (Position(FILE, 10_000),),
    **options: Any,
) -> tuple[VerifyReport, FakeTime]:
    fake = FakeTime()
    saved = iter(checkpoint)
    last: list[Position | None] = [None]

    def load() -> Position | None:
        last[0] = next(saved, last[0])
        return last[0]

    report = verify(
        database=database,
        topic=topic,
        checkpoint=load,
        options=VerifyOptions(topic="t", database="wp", config=CONFIG, **options),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    return report, fake


def test_a_matching_site_reports_every_post_and_exits_clean() -> None:
    posts = [bundle(row(i)) for i in (1, 2, 3)]
    revision = bundle(row(9, post_type="revision", post_parent=1))
    view = FakeView(Position(FILE, 1000), {1: [*posts, revision]})
    topic = FakeTopic([post_event("post_created", row(i), 100 + i) for i in (1, 2, 3)])
    report, _ = run_verify(FakeDatabase(view), topic)
    assert report.ok and report.rechecked == 0
    assert report.counts() == {
        "posts_in_database": 3,
        "posts_on_topic": 3,
        "matching": 3,
        "missing": 0,
        "stale": 0,
        "extra": 0,
        "unverifiable": 0,
    }


def test_a_difference_that_catches_up_on_the_recheck_is_not_reported() -> None:
    # The first read saw the database before a change that the topic already has
    # (an event folded across the position); the second sees both agree.
    first = FakeView(Position(FILE, 1000), {1: [bundle(row(1, post_title="A"))]})
    second = FakeView(Position(FILE, 2000), {1: [bundle(row(1, post_title="B"))]})
    topic = FakeTopic([post_event("post_created", row(1, post_title="B"), 500)])
    report, fake = run_verify(FakeDatabase(first, second), topic, recheck_delay=3)
    assert report.ok and (report.rechecked, report.settled) == (1, 1)
    assert report.counts()["matching"] == 1
    assert fake.now >= 3


def test_a_deletion_folded_across_the_position_settles_on_the_recheck() -> None:
    # The group's first change (at 500) is before the first read's position (1000),
    # the row deletion after it: the topic says deleted, the first read still has it.
    first = FakeView(Position(FILE, 1000), {1: [bundle(row(1)), bundle(row(2))]})
    second = FakeView(Position(FILE, 2000), {1: [bundle(row(1))]})
    topic = FakeTopic(
        [
            post_event("post_created", row(1), 100),
            post_event("post_created", row(2), 100),
            post_event("post_deleted", row(2), 500),
        ]
    )
    report, _ = run_verify(FakeDatabase(first, second), topic)
    assert report.ok and (report.rechecked, report.settled) == (1, 1)
    assert report.counts()["posts_in_database"] == 2


def test_the_recheck_waits_for_the_checkpoint_to_pass_its_own_position() -> None:
    views = [
        FakeView(Position(FILE, pos), {1: [bundle(row(1, post_title="B"))]}) for pos in (1000, 2000)
    ]
    early = [post_event("post_created", row(1, post_title="A"), 100)]
    late = [*early, post_event("post_updated", row(1, post_title="B"), 1500)]
    # The first read's topic lacks the update at 1500 (after its position 1000 anyway);
    # the checkpoint reaches 2000 only on the third look.
    checkpoints = [
        Position(FILE, 1000),
        Position(FILE, 1000),
        Position(FILE, 1500),
        Position(FILE, 2000),
    ]
    report, _ = run_verify(FakeDatabase(*views), FakeTopic(early, late), checkpoint=checkpoints)
    assert report.ok and report.settled == 1 and report.warnings == []
    assert report.checkpoint == str(Position(FILE, 2000))


def test_a_lasting_difference_is_reported_once_per_post() -> None:
    views = [
        FakeView(
            Position(FILE, pos),
            {1: [bundle(row(1)), bundle(row(2, post_title="Changed behind the binlog"))]},
        )
        for pos in (1000, 2000)
    ]
    topic = FakeTopic(
        [
            post_event("post_created", row(2), 100),
            post_event("post_created", row(3), 100),
        ]
    )
    report, _ = run_verify(FakeDatabase(*views), topic)
    assert not report.ok
    assert [(d.kind, d.post_id) for d in report.differences] == [
        ("extra", 3),
        ("missing", 1),
        ("stale", 2),
    ]
    assert report.counts()["matching"] == 0
    assert report.differences[2].fields[0].field == "title"


def test_verify_waits_for_the_streamer_checkpoint_to_reach_the_database_read() -> None:
    view = FakeView(Position(FILE, 1000), {1: [bundle(row(1))]})
    topic = FakeTopic([post_event("post_created", row(1), 100)])
    behind, caught_up = Position(FILE, 500), Position(FILE, 1000)
    report, fake = run_verify(
        FakeDatabase(view), topic, checkpoint=[behind, behind, caught_up], wait=60
    )
    assert report.ok and not report.warnings and report.checkpoint == str(caught_up)
    assert 0 < fake.now < 60


def test_a_checkpoint_that_never_arrives_is_a_warning_after_the_wait() -> None:
    view = FakeView(Position(FILE, 1000), {1: [bundle(row(1))]})
    topic = FakeTopic([post_event("post_created", row(1), 100)])
    report, fake = run_verify(FakeDatabase(view), topic, checkpoint=[Position(FILE, 500)], wait=5)
    assert report.ok and fake.now >= 5
    assert "did not reach" in report.warnings[0]
    report, _ = run_verify(FakeDatabase(view), topic, checkpoint=[None])
    assert "no streamer checkpoint" in report.warnings[0]


def test_unverifiable_posts_are_counted_per_field() -> None:
    big = "y" * 3000
    view = FakeView(Position(FILE, 1000), {1: [bundle(row(1, post_content=big))]})
    topic = FakeTopic([post_event("post_created", row(1, post_content=big), 100, limit=2000)])
    report, _ = run_verify(FakeDatabase(view), topic)
    assert report.ok and report.unverifiable_posts == 1
    assert dict(report.unverifiable) == {"content": 1}


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
