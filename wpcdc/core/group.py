"""An open fold group: what the fold holds of one post between its first and its
last row change, and how much memory that is. Pure: no I/O.

:class:`~wpcdc.core.fold.Folder` opens, grows and closes groups; derive and links
read a closed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wpcdc.core.events import TermRef
from wpcdc.core.mirror import Mirror, PostInfo
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.rows import Row, RowChange, TableKind

PostKey = tuple[int, int]  # (blog_id, post_id)

# The fold's keys. A post's group is (blog, post id), the blog's own group (URL
# options) is (blog, 0), SITE_POST_ID. Terms and authors have groups too, in a key
# space no post can reach: WordPress ids (posts, terms, users) are unsigned
# auto-increments, never below 1, so a negative second part is never a post.
# A term is (blog, -term_id); an author, a row of the network's one {prefix}users
# table, is (NETWORK_BLOG_ID, -user_id): blog ids start at 1, so blog 0 is nobody's.
# A blog's navigation menus (every row of its nav_menu_item posts and nav_menu
# terms, wpcdc.core.menu_events) are one group, (-blog, 0): no blog id is negative,
# and a post id of 0 is no term's or author's, so no other key can be it.
# The keys stay pairs of ints, so covered markers, the checkpoint file and the ack
# tracker take them as they take a post's, and a snapshot's covered ranges (a blog
# id from 1 up, post ids from 0 up) never contain them.
NETWORK_BLOG_ID = 0
# The blog whose links an author event carries: the network's main site.
MAIN_BLOG_ID = 1


def term_key(blog_id: int, term_id: int) -> PostKey:
    return (blog_id, -term_id)


def author_key(user_id: int) -> PostKey:
    return (NETWORK_BLOG_ID, -user_id)


def menus_key(blog_id: int) -> PostKey:
    return (-blog_id, 0)


def entity_of(key: PostKey) -> tuple[int, str | None]:
    """The blog an event of this group is about and what it is about beyond a post
    (``term/ID``, ``author/ID``; None for a post or the blog's own group, and for a
    blog's menus, whose events each name their menu)."""
    blog_id, post_id = key
    if blog_id < 0:
        return -blog_id, None
    if post_id >= 0:
        return blog_id, None
    if blog_id == NETWORK_BLOG_ID:
        return MAIN_BLOG_ID, f"author/{-post_id}"
    return blog_id, f"term/{-post_id}"


# The id columns of each table whose rows a term, author or menus group keeps:
# a row is (table, id, second id or 0).
RowId = tuple[TableKind, int, int]
_ROW_IDS: dict[TableKind, tuple[str, str | None]] = {
    TableKind.TERMS: ("term_id", None),
    TableKind.TERM_TAXONOMY: ("term_taxonomy_id", None),
    TableKind.USERS: ("ID", None),
    TableKind.POSTS: ("ID", None),
    TableKind.POSTMETA: ("meta_id", None),
    TableKind.TERM_RELATIONSHIPS: ("object_id", "term_taxonomy_id"),
}


@dataclass(slots=True)
class Group:
    blog_id: int
    post_id: int
    owner: int | None
    origin: Position
    origin_gtid: str | None
    first: Coordinate
    last: Coordinate
    first_timestamp: int
    last_timestamp: int
    # What the mirror knew of the post when the group opened.
    info: PostInfo | None
    # Arrival times (monotonic seconds; None when the caller gives no time).
    opened_at: float | None = None
    touched_at: float | None = None
    # The start of the last transaction that touched it: while that transaction
    # is still being read, time alone never closes the group (its rows commit
    # together; a slow read of a huge transaction is not a quiet writer).
    txn: Position | None = None
    # Estimated memory of the row images held (see _row_bytes).
    size: int = 0
    changes: int = 0
    post_seen: bool = False
    post_before: Row | None = None
    post_after: Row | None = None
    # The last image of the post row seen (for a post created and deleted here).
    post_last: Row | None = None
    # The post type of post_after (or post_before after a delete), once a post row
    # was seen: the fold asks it for every meta and term row of the post.
    post_type: str | None = None
    # Some of its row changes come before where the previous run stopped reading,
    # so events of it may already be on the topic: derive reports the state of
    # everything the group touched, not only net changes (see derive).
    replayed: bool = False
    # meta_id -> [row before the group's first change of it, row after its last]
    meta: dict[int, list[Row | None]] = field(default_factory=dict)
    # term_taxonomy_id -> (net +1 added / -1 removed, the term as resolved then,
    # whether the post has it after the group's last change)
    terms: dict[int, tuple[int, TermRef, bool]] = field(default_factory=dict)
    deleted: bool = False
    # The blog's own group (post id 0): option name -> [row before, row after].
    options: dict[str, list[Row | None]] = field(default_factory=dict)
    # A term's, an author's or a blog's menus' group: its rows as they are,
    # (table, row id, second id or 0) -> [row before the group's first change of
    # it, row after its last] (None in a post's group: made on first use, so a
    # post's group costs nothing more).
    rows: dict[RowId, list[Row | None]] | None = None
    # Whether it keeps its rows as they are (:meth:`keep_row`): any group but a
    # post's and the blog's own (keys above). Set once, read on every row change.
    keeps_rows: bool = False

    def keep_row(self, change: RowChange) -> None:
        """Fold one row change of a term's (terms, term_taxonomy), an author's (users)
        or a blog's menus' group (posts, postmeta, term_relationships, terms,
        term_taxonomy): per row, the image before the first change and after the last."""
        kind = change.table.kind
        row = change.image
        first, second = _ROW_IDS[kind]
        key = (kind, int(row[first]), 0 if second is None else int(row[second]))
        if self.rows is None:
            self.rows = {}
        entry = self.rows.get(key)
        if entry is None:
            self.rows[key] = [change.before, change.after]
        else:
            entry[1] = change.after

    def term_changes(self) -> tuple[list[TermRef], list[TermRef]]:
        """The terms the post gained and lost in this group. A replayed group
        states every term it touched (present or not), as derive explains."""
        if self.replayed:
            added = [term for _, term, present in self.terms.values() if present]
            removed = [term for _, term, present in self.terms.values() if not present]
        else:
            added = [term for net, term, _ in self.terms.values() if net > 0]
            removed = [term for net, term, _ in self.terms.values() if net < 0]
        return added, removed


# What a row image costs in memory, roughly: a dict with its keys (shared
# strings), a boxed value per column, and the text itself. An estimate is
# enough: it only has to grow with what the groups really hold.
_ROW_OVERHEAD = 240
_COLUMN_OVERHEAD = 72


def image_overhead(columns: int) -> int:
    """What one row image of ``columns`` columns costs beyond its text."""
    return _ROW_OVERHEAD + _COLUMN_OVERHEAD * columns


def row_bytes(row: Row | None) -> int:
    if row is None:
        return 0
    size = image_overhead(len(row))
    for value in row.values():
        # Exact classes (the source's values): faster than isinstance on every column.
        if value.__class__ is str or value.__class__ is bytes:
            size += len(value)
    return size


def resolve_term(mirror: Mirror, blog_id: int, tt_id: int) -> TermRef:
    """The term a membership row names, as the mirror knows it now (unresolved
    when the mirror does not know it: the event says so)."""
    found = mirror.term(blog_id, tt_id)
    if found is None:
        return TermRef(tt_id, None, None, None, None, resolved=False)
    info, name = found
    return TermRef(
        term_taxonomy_id=tt_id,
        taxonomy=info.taxonomy,
        term_id=info.term_id,
        slug=name.slug if name else None,
        name=name.name if name else None,
        resolved=name is not None,
    )
