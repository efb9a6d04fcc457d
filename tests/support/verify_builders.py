"""Building blocks of the verify tests: wp_posts rows and PostBundles as the database
returns them, envelopes made by the real serializer (``wpcdc.core.events``,
``wpcdc.core.snapshot_events``) from hand-built events, and the topic state and
comparison they give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

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
from wpcdc.core.verify_report import PostDiff, compare_post, database_post
from wpcdc.core.verify_state import TopicState

FILE = "binlog.000001"
SOURCE = "wpcdc://test/wordpress"
CONFIG = FoldConfig(ignored_meta_keys=frozenset({"_edit_lock"}))
IGNORED = CONFIG.ignored_meta_keys


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
