"""Whole-post events (``post_snapshot``): what a post looked like at a binlog position.

Used by ``wpcdc snapshot`` (the initial load) and by live re-snapshots. The rows
come from the database (a consistent read); this module only turns them into
events, with the same filters the fold applies. Pure: no I/O.

A snapshot event's sequence sorts just before the first change committed at or
after its position (``pos - 1`` is never a transaction start), and its id is
the position plus the post, so loading the same snapshot twice repeats ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from wpcdc.core.decode import decode_meta, text
from wpcdc.core.derive import AUTO_DRAFT, to_post
from wpcdc.core.events import SNAPSHOT_EVENT, Event, MetaEntry, Origin, SnapshotData, TermRef
from wpcdc.core.fold import FoldConfig
from wpcdc.core.links import snapshot_links
from wpcdc.core.menu_events import MENU_ITEM_TYPE
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Coordinate, Position, file_index
from wpcdc.core.rows import Row


@dataclass(frozen=True, slots=True)
class PostBundle:
    """A post and what belongs to it, read together at one position."""

    blog_id: int
    post: Row  # the wp_posts row, column names as in the binlog
    meta: Sequence[Row]  # wp_postmeta rows: meta_id, post_id, meta_key, meta_value
    terms: Sequence[TermRef]


@dataclass(frozen=True, slots=True)
class PostRange:
    """Which posts of a blog a snapshot reads, in ID order: IDs above ``after_id``, up
    to ``max_id`` (no bound: None), of ``post_types`` (every type: empty)."""

    blog_id: int
    after_id: int = 0
    max_id: int | None = None
    post_types: tuple[str, ...] = ()

    def after(self, post_id: int) -> PostRange:
        """The same range from past ``post_id`` on."""
        return replace(self, after_id=post_id)


def wanted(bundle: PostBundle, config: FoldConfig) -> bool:
    """False for posts the stream would not report either (revisions, auto-drafts...;
    menu items, which the stream reports as their menu's ``menu_changed``)."""
    post_type = text(bundle.post.get("post_type"))
    if post_type in config.ignored_post_types or post_type == MENU_ITEM_TYPE:
        return False
    return config.emit_auto_drafts or text(bundle.post.get("post_status")) != AUTO_DRAFT


def snapshot_event(
    bundle: PostBundle,
    *,
    position: Position,
    timestamp: int,
    config: FoldConfig,
    reason: Literal["initial", "requested"] = "initial",
    mirror: Mirror | None = None,
) -> Event:
    """The ``post_snapshot`` of a bundle; with ``mirror``, its links and cache tags."""
    post = to_post(bundle.post)
    meta = []
    for row in sorted(bundle.meta, key=lambda r: int(r["meta_id"])):
        key = str(text(row.get("meta_key")))
        if key in config.ignored_meta_keys:
            continue
        value = decode_meta(row.get("meta_value"))
        meta.append(
            MetaEntry(
                key, int(row["meta_id"]), value.value, value.serialized, value.raw, value.error
            )
        )
    terms = sorted(bundle.terms, key=lambda t: t.term_taxonomy_id)
    origin = Origin(
        file=position.file,
        pos=position.pos,
        gtid=None,
        first=Coordinate(file_index(position.file), position.pos - 1, 0),
    )
    data = SnapshotData(
        blog_id=bundle.blog_id,
        post_id=post.id,
        post_type=post.type,
        post=post,
        meta=meta,
        terms=terms,
        reason=reason,
    )
    if mirror is not None:
        data.links, data.cache_tags = snapshot_links(mirror, bundle.blog_id, bundle.post, terms)
    return Event(
        type=SNAPSHOT_EVENT,
        blog_id=bundle.blog_id,
        post_id=post.id,
        origin=origin,
        ordinal=0,
        timestamp=timestamp,
        data=data,
    )
