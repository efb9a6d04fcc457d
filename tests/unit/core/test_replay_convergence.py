"""The delivery contract, tested on random histories: whatever grouping a replay
chooses after a crash, a consumer that applies, per post and kind, only events
newer than the last it applied ends in the database's state, and an id never
names two different contents.

A history is random row changes of a few posts (titles, meta added, updated and
deleted, terms added and removed; single rows and bulk transactions), read at
random paces: the time-based fold rules (quiet gap, maximum age) group them one
way live and another way on the replay. The broker holds a prefix of what was
sent (per partition order), acknowledges part of it, and wpcdc crashes at a
random point with the last checkpoint it saved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

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
from tests.support.fold import without_links
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.events import (
    META_EVENT,
    POST_EVENT_TYPES,
    TAXONOMY_EVENT,
    Event,
    MetaData,
    PostData,
    TaxonomyData,
)
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.rows import TransactionPart

POSTS_IN_PLAY = 6
CONFIG = FoldConfig(quiet_seconds=0.15, max_age_seconds=1.0, max_open_groups=4)


@dataclass
class PostState:
    title: str = "t0"
    meta: dict[int, Any] = field(default_factory=dict)
    terms: set[int] = field(default_factory=set)


def history(rng: random.Random, steps: int) -> tuple[list[TransactionPart], dict[int, PostState]]:
    """Random row changes, and the state they leave in the database."""
    log = Binlog()
    rows = {p: post_row(p, title="t0") for p in range(1, POSTS_IN_PLAY + 1)}
    state = {p: PostState() for p in rows}
    metas: dict[int, dict[str, Any]] = {}
    next_meta = 100

    def change(post: int, step: int) -> tuple[Any, ...]:
        nonlocal next_meta
        roll = rng.random()
        own = [m for m, row in metas.items() if row["post_id"] == post]
        if roll < 0.35:
            before = rows[post]
            rows[post] = after = {**before, "post_title": f"t{step}"}
            state[post].title = f"t{step}"
            return update(POSTS, before, after)
        if roll < 0.55 or not own:
            next_meta += 1
            metas[next_meta] = meta(next_meta, post, "k", f"v{step}")
            state[post].meta[next_meta] = f"v{step}"
            return insert(POSTMETA, metas[next_meta])
        if roll < 0.75:
            meta_id = rng.choice(own)
            before = metas[meta_id]
            metas[meta_id] = after = {**before, "meta_value": f"v{step}"}
            state[post].meta[meta_id] = f"v{step}"
            return update(POSTMETA, before, after)
        if roll < 0.85:
            meta_id = rng.choice(own)
            del state[post].meta[meta_id]
            return delete(POSTMETA, metas.pop(meta_id))
        tt_id = rng.randint(1, 4)
        if tt_id in state[post].terms:
            state[post].terms.discard(tt_id)
            return delete(RELS, rel(post, tt_id))
        state[post].terms.add(tt_id)
        return insert(RELS, rel(post, tt_id))

    for step in range(steps):
        if rng.random() < 0.1:  # a bulk transaction over several posts
            changes = [
                change(rng.randint(1, POSTS_IN_PLAY), step) for _ in range(rng.randint(2, 9))
            ]
        else:
            changes = [change(rng.randint(1, POSTS_IN_PLAY), step)]
        log.txn(*changes, after_seconds=rng.choice([0, 0, 0, 1, 2]))
    return log.log, state


LIVE_GAPS = (0.002, 0.01, 0.05, 0.2, 0.4, 1.5)
# A replay reads a backlog: much faster than it was written, so it groups more.
BACKLOG_GAPS = (0.0005, 0.001, 0.002, 0.01, 0.3)


def pace(
    rng: random.Random, parts: list[TransactionPart], gaps: tuple[float, ...] = LIVE_GAPS
) -> list[float]:
    """When each part is read: bursts a few ms apart, pauses, or a backlog."""
    now, times = 0.0, []
    for _ in parts:
        now += rng.choice(gaps)
        times.append(now)
    return times


def mirror() -> Mirror:
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "draft", 0) for p in range(1, POSTS_IN_PLAY + 1)])
    return mirror


@dataclass
class Broker:
    """Per-partition order: the topic is a prefix of what was sent, acks in order per post."""

    sent: list[tuple[int, Event]] = field(default_factory=list)
    on_topic: int = 0
    acked: set[int] = field(default_factory=set)  # indexes into sent

    def receive(self, rng: random.Random, tracker: AckTracker) -> None:
        self.on_topic = rng.randint(self.on_topic, len(self.sent))
        blocked: set[int] = set()
        for index, (group_id, event) in enumerate(self.sent[: self.on_topic]):
            if index in self.acked:
                continue
            if event.post_id in blocked or rng.random() < 0.4:
                blocked.add(event.post_id)  # a later event of this post waits for this one
                continue
            self.acked.add(index)
            tracker.ack(group_id)


def live_until_crash(
    rng: random.Random, parts: list[TransactionPart], crash: int
) -> tuple[list[Event], Checkpoint]:
    fold, tracker, broker = Folder(config=CONFIG, mirror=mirror()), AckTracker(), Broker()
    saved = Checkpoint(position=parts[0].transaction.start)
    for part, now in zip(parts[:crash], pace(rng, parts[:crash]), strict=True):
        closed: list[ClosedGroup] = fold.feed(part, now)
        if rng.random() < 0.3:
            closed += fold.tick(now + rng.choice([0.1, 0.3, 2.0]))
        for group in closed:
            group_id = tracker.track(group)
            broker.sent.extend((group_id, event) for event in group.events)
        broker.receive(rng, tracker)
        if rng.random() < 0.5:
            assert fold.position is not None
            oldest = fold.oldest_open_first()
            saved = tracker.checkpoint(
                fold.position,
                fold.oldest_open(),
                open_first=None if oldest is None else oldest[0],
                fed=fold.fed,
            )
    return [event for _, event in broker.sent[: broker.on_topic]], saved


def replay(
    rng: random.Random, parts: list[TransactionPart], checkpoint: Checkpoint, crash: int
) -> list[Event]:
    fold = Folder(
        # Where the crashed run stopped reading: the binlog's end when it restarts.
        replay_until=parts[crash - 1].end,
        config=CONFIG,
        mirror=mirror(),
        covered={(c.blog_id, c.post_id): c.through for c in checkpoint.covered},
        covered_ranges=checkpoint.covered_ranges,
        covered_rows=checkpoint.covered_rows,
    )
    start = next(i for i, p in enumerate(parts) if p.transaction.start == checkpoint.position)
    events: list[Event] = []
    rest = parts[start:]
    for part, now in zip(rest, pace(rng, rest, BACKLOG_GAPS), strict=True):
        for group in fold.feed(part, now):
            events.extend(group.events)
    for group in fold.close_all():
        events.extend(group.events)
    return events


def kind(event: Event) -> str:
    if event.type in POST_EVENT_TYPES:
        return "post"
    return {META_EVENT: "meta", TAXONOMY_EVENT: "terms"}[event.type]


def consume(events: list[Event]) -> dict[int, PostState]:
    """The consumer rule of the README: per post and kind, apply only newer events."""
    state = {p: PostState() for p in range(1, POSTS_IN_PLAY + 1)}
    applied: dict[tuple[int, str], str] = {}
    for event in events:
        register = (event.post_id, kind(event))
        if register in applied and event.sequence <= applied[register]:
            continue
        applied[register] = event.sequence
        post = state[event.post_id]
        data = event.data
        if isinstance(data, PostData):
            post.title = str(data.post.title)
        elif isinstance(data, MetaData):
            for change in data.changes:
                if change.op == "deleted":
                    post.meta.pop(change.meta_id, None)
                else:
                    post.meta[change.meta_id] = change.value
        elif isinstance(data, TaxonomyData):
            post.terms |= {t.term_taxonomy_id for t in data.added}
            post.terms -= {t.term_taxonomy_id for t in data.removed}
    return state


@pytest.mark.parametrize("seed", range(250))
def test_replays_with_any_grouping_converge_to_the_database(seed: int) -> None:
    rng = random.Random(seed)
    parts, database = history(rng, steps=rng.randint(20, 120))
    crash = rng.randint(1, len(parts))
    on_topic, checkpoint = live_until_crash(rng, parts, crash)
    topic = on_topic + replay(rng, parts, checkpoint, crash)

    assert consume(topic) == database, f"seed {seed}: crash after {crash} of {len(parts)}"
    # The same id is always the same content (links aside: see without_links).
    by_id: dict[str, Event] = {}
    for event in map(without_links, topic):
        assert by_id.setdefault(event.id, event) == event, event.id


def test_the_same_history_grouped_twice_gives_different_ids_for_different_groups() -> None:
    rng = random.Random(7)
    parts, _ = history(rng, steps=80)
    first = Folder(config=CONFIG, mirror=mirror())
    second = Folder(config=CONFIG, mirror=mirror())
    one: list[Event] = []
    two: list[Event] = []
    for part, a, b in zip(parts, pace(rng, parts), pace(rng, parts), strict=True):
        one += [e for g in first.feed(part, a) for e in g.events]
        two += [e for g in second.feed(part, b) for e in g.events]
    one += [e for g in first.close_all() for e in g.events]
    two += [e for g in second.close_all() for e in g.events]
    ids_one = {e.id: e for e in one}
    ids_two = {e.id: e for e in two}
    assert set(ids_one) != set(ids_two), "the two paces should group differently"
    for shared in set(ids_one) & set(ids_two):
        assert ids_one[shared] == ids_two[shared]
