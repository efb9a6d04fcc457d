"""The in-memory mirror: what the fold needs to know beyond the rows in hand.

- term_taxonomy_id -> (taxonomy, term_id) and term_id -> (slug, name), per blog,
  to resolve ``term_relationships`` rows;
- the term ids of each blog's navigation menus (taxonomy ``nav_menu``), to
  route a menu's ``terms`` rows (wpcdc.core.menu_events);
- post id -> (type, status, parent), per blog, to classify meta and term rows
  whose post row is not in the same group (WordPress deletes meta and terms
  *before* the post row), to fold revisions into their parent and to hold back
  auto-drafts.

It is loaded once at start (a snapshot of the tables) and then kept current by
the stream itself, so a change is resolved as of its binlog position rather
than by a live query. ``site`` holds what links need beyond that (options,
slugs, users: wpcdc.core.site). Pure: no I/O; the loader lives with the adapters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from wpcdc.core.rows import Op, RowChange, TableKind
from wpcdc.core.site import SiteState

# The taxonomy of navigation menus.
MENU_TAXONOMY = "nav_menu"


class PostInfo(NamedTuple):
    type: str
    status: str
    parent: int


class TermInfo(NamedTuple):
    taxonomy: str
    term_id: int


class TermName(NamedTuple):
    slug: str
    name: str


@dataclass(slots=True)
class BlogMirror:
    posts: dict[int, PostInfo] = field(default_factory=dict)
    taxonomies: dict[int, TermInfo] = field(default_factory=dict)
    terms: dict[int, TermName] = field(default_factory=dict)
    # The term ids of the blog's navigation menus (taxonomy nav_menu), deleted ones
    # kept like their terms: a wp_terms row names no taxonomy, and the fold routes
    # a menu's rows to the blog's menus group (wpcdc.core.menu_events).
    menus: set[int] = field(default_factory=set)


class Mirror:
    def __init__(self) -> None:
        self._blogs: dict[int, BlogMirror] = {}
        self.site = SiteState()

    def blog(self, blog_id: int) -> BlogMirror:
        mirror = self._blogs.get(blog_id)
        if mirror is None:
            mirror = self._blogs[blog_id] = BlogMirror()
        return mirror

    # --- loading (the adapter feeds rows it read from the tables) ----------------

    def load_posts(self, blog_id: int, rows: Iterable[tuple[int, str, str, int]]) -> None:
        posts = self.blog(blog_id).posts
        for post_id, post_type, status, parent in rows:
            posts[int(post_id)] = PostInfo(_s(post_type), _s(status), int(parent or 0))

    def load_taxonomies(self, blog_id: int, rows: Iterable[tuple[int, str, int]]) -> None:
        self.site.forget_term_links(blog_id)
        blog = self.blog(blog_id)
        taxonomies = blog.taxonomies
        for tt_id, taxonomy, term_id in rows:
            info = taxonomies[int(tt_id)] = TermInfo(_s(taxonomy), int(term_id))
            if info.taxonomy == MENU_TAXONOMY:
                blog.menus.add(info.term_id)

    def load_terms(self, blog_id: int, rows: Iterable[tuple[int, str, str]]) -> None:
        self.site.forget_term_links(blog_id)
        terms = self.blog(blog_id).terms
        for term_id, slug, name in rows:
            terms[int(term_id)] = TermName(_s(slug), _s(name))

    # --- keeping current from the stream -----------------------------------------

    def apply(self, change: RowChange) -> None:
        """Update the mirror with one row change (any watched table)."""
        kind = change.table.kind
        if kind is TableKind.POSTMETA:
            return  # most row changes: nothing the mirror keeps
        self.site.apply(change)  # options, users, slugs, memberships (wpcdc.core.site)
        if kind is TableKind.TERM_RELATIONSHIPS:
            return  # only the site state keeps memberships
        blog = self.blog(change.table.blog_id)
        row = change.image
        if kind is TableKind.POSTS:
            post_id = int(row["ID"])
            if change.op is Op.DELETE:
                blog.posts.pop(post_id, None)
            else:
                blog.posts[post_id] = PostInfo(
                    _s(row.get("post_type")),
                    _s(row.get("post_status")),
                    int(row.get("post_parent") or 0),
                )
        elif kind is TableKind.TERM_TAXONOMY:
            tt_id = int(row["term_taxonomy_id"])
            if change.op is Op.DELETE:
                # Kept on purpose: relationship DELETEs for this term may follow.
                return
            info = blog.taxonomies[tt_id] = TermInfo(
                _s(row.get("taxonomy")), int(row.get("term_id") or 0)
            )
            if info.taxonomy == MENU_TAXONOMY:
                blog.menus.add(info.term_id)
        elif kind is TableKind.TERMS:
            if change.op is Op.DELETE:
                return  # kept, as above
            self.site.forget_term_links(change.table.blog_id)
            blog.terms[int(row["term_id"])] = TermName(_s(row.get("slug")), _s(row.get("name")))

    def post(self, blog_id: int, post_id: int) -> PostInfo | None:
        return self.blog(blog_id).posts.get(post_id)

    def term(self, blog_id: int, tt_id: int) -> tuple[TermInfo, TermName | None] | None:
        blog = self.blog(blog_id)
        info = blog.taxonomies.get(tt_id)
        if info is None:
            return None
        return info, blog.terms.get(info.term_id)


def _s(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
