"""Folding for tests: a whole binlog excerpt at once, the folder and site most fold
tests start from, and the rows ``wp_insert_post()`` writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from tests.support.binlog_builder import (
    POSTMETA,
    POSTS,
    RELS,
    TAXONOMY,
    TERMS,
    Binlog,
    insert,
    meta,
    post_row,
    rel,
    term,
    tt,
    update,
)
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.events import Event
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.rows import TransactionPart

NOISE = frozenset({"_edit_lock", "_edit_last", "_pingme", "_encloseme"})


def fold_all(folder: Folder, parts: Iterable[TransactionPart]) -> list[Event]:
    """Fold ``parts`` and close what stays open: events in emission order."""
    events: list[Event] = []
    for part in parts:
        for closed in folder.feed(part):
            events.extend(closed.events)
    for closed in folder.close_all():
        events.extend(closed.events)
    return events


def refold_after_ack(
    closed: ClosedGroup, part: TransactionPart, mirror: Mirror
) -> tuple[list[tuple[int, int]], list[Event]]:
    """Acknowledge ``closed``, save the checkpoint before ``part`` (as if another
    group still held it) and read it back: the keys of its covered markers, and the
    events a folder resumed from it makes of ``part`` again."""
    tracker = AckTracker()
    tracker.ack(tracker.track(closed))
    saved = Checkpoint.from_json(tracker.checkpoint(part.transaction.start, None).to_json())
    resumed = Folder(
        config=FoldConfig(),
        mirror=mirror,
        covered={(c.blog_id, c.post_id): c.through for c in saved.covered},
    )
    return [(c.blog_id, c.post_id) for c in saved.covered], fold_all(resumed, [part])


def make_folder(mirror: Mirror | None = None, **config: object) -> Folder:
    options: dict[str, object] = {"ignored_meta_keys": NOISE}
    options.update(config)
    return Folder(config=FoldConfig(**options), mirror=mirror or site_mirror())  # type: ignore[arg-type]


def site_mirror() -> Mirror:
    mirror = Mirror()
    mirror.load_taxonomies(1, [(1, "category", 1), (7, "link_category", 7)])
    mirror.load_terms(1, [(1, "uncategorized", "Uncategorized"), (7, "blogroll", "Blogroll")])
    mirror.load_posts(1, [(1, "post", "publish", 0)])
    return mirror


def insert_post_with_tags_and_meta(log: Binlog, post_id: int = 10) -> None:
    """What wp_insert_post() with tags_input and meta_input writes (FIELD-NOTES)."""
    row = post_row(post_id, status="draft", guid="")
    log.txn(insert(POSTS, row))
    log.txn(update(POSTS, row, {**row, "guid": f"http://wpcdc.test/?p={post_id}"}))
    log.txn(insert(RELS, rel(post_id, 1)))  # default category
    log.txn(insert(TERMS, term(5, "alpha")))
    log.txn(insert(TAXONOMY, tt(5, 5, "post_tag")))
    log.txn(insert(RELS, rel(post_id, 5)))
    log.txn(update(TAXONOMY, tt(5, 5, "post_tag"), tt(5, 5, "post_tag", count=1)))
    log.txn(insert(POSTMETA, meta(100, post_id, "colour", 'a:1:{s:1:"r";i:1;}')))
    log.txn(insert(POSTMETA, meta(101, post_id, "_edit_last", "1")))


def without_links(event: Event) -> Event:
    """The event without ``links``: they are computed from the site state known when
    the group closed (wpcdc.core.links), which a replay may know newer; everything
    else, cache tags included, is a function of the event id."""
    data = event.data
    if getattr(data, "links", None) is None:
        return event
    return dataclasses.replace(event, data=dataclasses.replace(data, links=None))  # type: ignore[arg-type]
