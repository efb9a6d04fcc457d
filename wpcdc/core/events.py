"""The event catalog (v1): payload models, the envelope, serialization, oversize policy.

Payloads are dataclasses: orjson serializes them natively (fast on the hot
path) and pydantic derives the JSON Schemas in ``schemas/`` from the same
classes (see wpcdc/commands/schemas.py), so code and schema files cannot
silently differ. They have no ``__slots__`` on purpose: orjson reads a
dataclass's instance ``__dict__`` in one pass but a slotted one field by field,
~4x slower (orjson 3.13: 0.23 vs 0.85 µs for four fields; a post event's value
took 8 µs of the pipeline's time, now ~2).

Every post row change yields exactly one *post event* (created, updated, one of
the status transitions, or deleted); meta and term changes yield
``post_meta_changed`` and ``taxonomy_changed``. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import orjson

from wpcdc.core import envelope
from wpcdc.core.entity_payloads import (
    AUTHOR_EVENT,
    MENU_EVENT,
    TERM_EVENT_TYPES,
    AuthorData,
    MenuData,
    MenuItem,
    TermData,
)
from wpcdc.core.positions import Coordinate

SCHEMA_VERSION: Final = 1

PostEventType = Literal[
    "post_created",
    "post_updated",
    "post_published",
    "post_unpublished",
    "post_scheduled",
    "post_trashed",
    "post_restored",
    "post_deleted",
]
POST_EVENT_TYPES: Final[tuple[str, ...]] = PostEventType.__args__  # type: ignore[attr-defined]
META_EVENT: Final = "post_meta_changed"
TAXONOMY_EVENT: Final = "taxonomy_changed"
SNAPSHOT_EVENT: Final = "post_snapshot"
SITE_EVENT: Final = "site_settings_changed"
EVENT_TYPES: Final[tuple[str, ...]] = (
    *POST_EVENT_TYPES,
    META_EVENT,
    TAXONOMY_EVENT,
    SNAPSHOT_EVENT,
    SITE_EVENT,
    *TERM_EVENT_TYPES,
    AUTHOR_EVENT,
    MENU_EVENT,
)
# The post id of a blog's own events (key "{blog_id}:0", subject "site").
SITE_POST_ID: Final = 0


@dataclass
class Post:
    """A wp_posts row under friendlier names. ``post_password`` is never
    published (``password_protected`` says whether there is one); ``to_ping``,
    ``pinged`` and ``post_content_filtered`` are ping/cache bookkeeping, left out.
    Dates are as stored: ``date``/``modified`` in the site's time zone, the
    ``*_gmt`` ones in UTC, ISO 8601 without offset; null for a zero date."""

    id: int
    type: str
    status: str
    title: str | None
    content: str | None
    excerpt: str | None
    name: str | None
    author: int | None
    parent: int | None
    date: str | None
    date_gmt: str | None
    modified: str | None
    modified_gmt: str | None
    menu_order: int | None
    guid: str | None
    mime_type: str | None
    comment_status: str | None
    ping_status: str | None
    comment_count: int | None
    password_protected: bool


@dataclass
class TermLink:
    """A term and its archive URL (``get_term_link()``)."""

    taxonomy: str
    term_id: int
    slug: str
    link: str


@dataclass
class Links:
    """The URLs a change concerns, as WordPress gives them to an anonymous visitor
    (see wpcdc.core.permalinks): ``permalink`` is ``get_permalink()`` of the post
    now (null when deleted, or for a type with no public URL: revisions, menu
    items, blocks...); ``previous_permalink`` is the URL it had before the
    change, when that differs (slug, parent, date or category changed, or it
    left ``publish``: drafts have the plain ``?p=ID`` form); ``terms`` the
    archives of the terms it has, ``terms_added``/``terms_removed`` those it
    gained and lost; ``author`` the author's archive; ``home`` and
    ``posts_page`` the site's (``get_post_type_archive_link('post')``)."""

    permalink: str | None
    previous_permalink: str | None = None
    terms: list[TermLink] = field(default_factory=list)
    terms_added: list[TermLink] = field(default_factory=list)
    terms_removed: list[TermLink] = field(default_factory=list)
    author: str | None = None
    home: str | None = None
    posts_page: str | None = None


@dataclass
class PostData:
    """Payload of every post event. ``post`` is the row after the change (before
    it, for ``post_deleted``); ``changed`` names the fields that differ and
    ``before`` holds their earlier values."""

    blog_id: int
    post_id: int
    post_type: str | None
    post: Post
    changed: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    previous_status: str | None = None
    # Fields left out to fit the broker's size limit (see README, oversize events).
    omitted: list[str] = field(default_factory=list)
    links: Links | None = None
    # What a cache should purge, as tags (see README, "Cache tags").
    cache_tags: list[str] = field(default_factory=list)


@dataclass
class MetaChange:
    """One meta row's net change. ``value``/``before`` are decoded (PHP arrays and
    objects as JSON); ``raw``/``before_raw`` hold the stored string when it
    differs; ``error`` says why a value that looked serialized did not decode
    (``value`` is then the raw string)."""

    key: str
    op: Literal["added", "updated", "deleted"]
    meta_id: int
    value: Any = None
    before: Any = None
    serialized: bool = False
    raw: str | None = None
    before_raw: str | None = None
    error: str | None = None


@dataclass
class MetaData:
    blog_id: int
    post_id: int
    post_type: str | None
    changes: list[MetaChange]
    omitted: list[str] = field(default_factory=list)
    cache_tags: list[str] = field(default_factory=list)


@dataclass
class TermRef:
    """A term as the in-memory mirror knew it at that binlog position.
    ``taxonomy`` and the rest are null (``resolved`` false) when the mirror had
    never seen ``term_taxonomy_id``."""

    term_taxonomy_id: int
    taxonomy: str | None
    term_id: int | None
    slug: str | None
    name: str | None
    resolved: bool = True


@dataclass
class TaxonomyData:
    blog_id: int
    post_id: int
    post_type: str | None
    added: list[TermRef]
    removed: list[TermRef]
    omitted: list[str] = field(default_factory=list)
    links: Links | None = None
    cache_tags: list[str] = field(default_factory=list)


@dataclass
class MetaEntry:
    """One meta row of a whole-post snapshot; fields as in MetaChange."""

    key: str
    meta_id: int
    value: Any
    serialized: bool = False
    raw: str | None = None
    error: str | None = None


@dataclass
class SnapshotData:
    """A whole post as it was at the event's binlog position: the row, every meta
    row (less the ignored keys) and every term. ``reason`` is "initial" for the
    full ``wpcdc snapshot`` and "requested" for a re-emit asked for by someone: a
    live re-snapshot or a limited ``wpcdc snapshot`` (``--blog``/``--post-type``/``--ids``)."""

    blog_id: int
    post_id: int
    post_type: str | None
    post: Post
    meta: list[MetaEntry]
    terms: list[TermRef]
    reason: Literal["initial", "requested"] = "initial"
    omitted: list[str] = field(default_factory=list)
    links: Links | None = None
    cache_tags: list[str] = field(default_factory=list)


@dataclass
class SiteData:
    """A blog's URL settings changed (``{prefix}options``: home, siteurl,
    permalink_structure, category_base, tag_base, show_on_front, page_on_front,
    page_for_posts, default_category). ``changed`` names the options, ``before``
    and ``after`` their values (null: absent). ``moves_all_urls``: an option
    that every URL of the blog depends on changed (home, the permalink
    structure, the category or tag base): purge the whole site. ``links``
    holds the home and posts page after the change."""

    blog_id: int
    changed: list[str]
    before: dict[str, str | None]
    after: dict[str, str | None]
    moves_all_urls: bool
    links: Links | None = None
    cache_tags: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)


EventData = (
    PostData | MetaData | TaxonomyData | SnapshotData | SiteData | TermData | AuthorData | MenuData
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event comes from in the binlog: its first row change (``file``,
    ``pos`` and ``gtid`` name its transaction) and its last (None: the same)."""

    file: str
    pos: int
    gtid: str | None
    first: Coordinate
    last: Coordinate | None = None


@dataclass(slots=True)
class Event:
    """A domain event ready for the envelope."""

    type: str
    blog_id: int
    post_id: int
    origin: Origin
    # Orders the events made from one group (post event, meta, taxonomy).
    ordinal: int
    # Commit time of the last transaction folded in, seconds since the epoch.
    timestamp: int
    data: EventData
    # What the event is about when not a post: "term/ID", "author/ID", "menu/ID"
    # (the fold's key space of wpcdc.core.group); it replaces the post id in the
    # key and subject.
    entity: str | None = None

    @property
    def id(self) -> str:
        """Deterministic, and the same only for the same content: it names the
        group's first and last row change, so a replay that groups differently
        makes new ids, never an old id with other content."""
        origin = self.origin
        if self.type == SNAPSHOT_EVENT:
            # All posts of a snapshot share its position: the post tells them apart.
            return f"{origin.file}:{origin.pos}/snapshot/{self.blog_id}:{self.post_id}"
        where = origin.gtid or f"{origin.file}:{origin.pos}"
        last = origin.last
        # A blog's menus group makes an event per menu: the menu tells them apart.
        kind = self.type if self.type != MENU_EVENT else f"{self.type}/{self.entity}"
        if last is None or last == origin.first:
            return f"{where}/{origin.first.row}/{kind}"
        return f"{where}/{origin.first.row}..{last.file_index}:{last.pos}:{last.row}/{kind}"

    @property
    def key(self) -> bytes:
        return envelope.record_key(self.blog_id, self.post_id, self.entity)

    @property
    def sequence(self) -> str:
        """Orders the state the event carries (as of its last row change): per
        post, an event is newer than another iff its sequence is greater."""
        return (self.origin.last or self.origin.first).sequence(self.ordinal)


def to_envelope(event: Event, source: str) -> dict[str, Any]:
    """The CloudEvents record for ``event`` (data left as a dataclass for orjson)."""
    record: dict[str, Any] = {
        "specversion": envelope.SPEC_VERSION,
        "id": event.id,
        "source": source,
        "type": event.type,
        "subject": envelope.subject(event.blog_id, event.post_id, event.entity),
        "time": _rfc3339(event.timestamp),
        "datacontenttype": envelope.CONTENT_TYPE,
        "dataschema": envelope.dataschema(event.type, SCHEMA_VERSION),
        "schemaversion": SCHEMA_VERSION,
        "binlogfile": event.origin.file,
        "binlogpos": event.origin.pos,
        "sequence": event.sequence,
        "data": event.data,
    }
    if event.origin.gtid is not None:
        record["binloggtid"] = event.origin.gtid
    return record


def serialize(event: Event, source: str) -> bytes:
    return orjson.dumps(to_envelope(event, source))


# Commit times repeat across the events of a burst: strftime costs ~5 µs.
@functools.lru_cache(maxsize=1024)
def _rfc3339(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- oversize policy -------------------------------------------------------------
#
# A record larger than the broker accepts is shrunk in steps, never dropped:
#   1. post bodies: content and excerpt (in `post` and `before`) become null;
#   2. meta values: value/before/raw/before_raw become null;
#   3. everything but the identifiers: `post` keeps id/type/status, lists empty.
# Each step names what it removed in `data.omitted`, so consumers know to fetch
# the full post from WordPress. The caller counts it in a metric.

_BODY_FIELDS = ("content", "excerpt")


def fit(event: Event, source: str, limit: int) -> tuple[bytes, list[str]]:
    """The serialized event, shrunk per the oversize policy to at most ``limit``
    bytes; returns what was omitted (empty when it fit as it was)."""
    value = serialize(event, source)
    if len(value) <= limit:
        return value, []
    for step in (_omit_bodies, _omit_meta_values, _omit_all):
        event = replace(event, data=step(event.data))
        value = serialize(event, source)
        if len(value) <= limit:
            break
    return value, list(event.data.omitted)


def _omit_bodies(data: EventData) -> EventData:
    if isinstance(data, SnapshotData):
        in_post = [name for name in _BODY_FIELDS if getattr(data.post, name)]
        post = replace(
            data.post,
            content=None if "content" in in_post else data.post.content,
            excerpt=None if "excerpt" in in_post else data.post.excerpt,
        )
        return replace(data, post=post, omitted=[*data.omitted, *(f"post.{n}" for n in in_post)])
    if not isinstance(data, PostData):
        return data
    in_post = [name for name in _BODY_FIELDS if getattr(data.post, name)]
    in_before = [name for name in _BODY_FIELDS if data.before.get(name)]
    post = replace(
        data.post,
        content=None if "content" in in_post else data.post.content,
        excerpt=None if "excerpt" in in_post else data.post.excerpt,
    )
    before = {k: (None if k in in_before else v) for k, v in data.before.items()}
    omitted = [f"post.{name}" for name in in_post] + [f"before.{name}" for name in in_before]
    return replace(data, post=post, before=before, omitted=[*data.omitted, *omitted])


def _omit_meta_values(data: EventData) -> EventData:
    if isinstance(data, SnapshotData):
        meta = [replace(entry, value=None, raw=None) for entry in data.meta]
        return replace(data, meta=meta, omitted=[*data.omitted, "meta.values"])
    if not isinstance(data, MetaData):
        return data
    changes = [
        replace(change, value=None, before=None, raw=None, before_raw=None)
        for change in data.changes
    ]
    return replace(data, changes=changes, omitted=[*data.omitted, "changes.values"])


def _omit_all(data: EventData) -> EventData:
    if isinstance(data, SnapshotData):
        post = _identifiers_only(data.post)
        return replace(
            data, post=post, meta=[], terms=[], omitted=[*data.omitted, "post", "meta", "terms"]
        )
    if isinstance(data, PostData):
        post = _identifiers_only(data.post)
        return replace(data, post=post, before={}, omitted=[*data.omitted, "post", "before"])
    if isinstance(data, MetaData):
        return replace(data, changes=[], omitted=[*data.omitted, "changes"])
    if isinstance(data, SiteData | AuthorData):
        return replace(data, before={}, after={}, omitted=[*data.omitted, "before", "after"])
    if isinstance(data, MenuData):  # which items changed is what a cache needs
        items = [MenuItem(item.id, item.op) for item in data.items]
        return replace(data, before={}, items=items, omitted=[*data.omitted, "items.fields"])
    if isinstance(data, TermData):  # a description is unbounded text
        omitted = [*data.omitted, "description", "before", "after"]
        return replace(data, description=None, before={}, after={}, omitted=omitted)
    return replace(data, added=[], removed=[], omitted=[*data.omitted, "added", "removed"])


def _identifiers_only(post: Post) -> Post:
    nulls: dict[str, Any] = dict.fromkeys(_NULLABLE_POST_FIELDS)
    return Post(
        id=post.id,
        type=post.type,
        status=post.status,
        password_protected=post.password_protected,
        **nulls,
    )


_NULLABLE_POST_FIELDS = (
    "title",
    "content",
    "excerpt",
    "name",
    "author",
    "parent",
    "date",
    "date_gmt",
    "modified",
    "modified_gmt",
    "menu_order",
    "guid",
    "mime_type",
    "comment_status",
    "ping_status",
    "comment_count",
)
