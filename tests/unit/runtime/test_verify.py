"""`wpcdc verify`'s procedure on a live site (wpcdc.runtime.verify.Verification), with fakes
for the database and the topic: waiting for the streamer's checkpoint, the recheck
of differing posts, and what is reported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support.verify_builders import CONFIG, FILE, bundle, post_event, row
from tests.support.verify_fakes import FakeDatabase, FakeTime, FakeTopic, FakeView
from wpcdc.core.positions import Position
from wpcdc.core.verify_report import VerifyReport
from wpcdc.runtime.verify import Verification, VerifyOptions


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

    report = Verification(
        database=database,
        topic=topic,
        checkpoint=load,
        options=VerifyOptions(topic="t", database="wp", config=CONFIG, **options),
        clock=fake.clock,
        sleep=fake.sleep,
    ).run()
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
