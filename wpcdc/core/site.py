"""Site state for links: what a blog's URLs depend on beyond the mirror's posts and terms.

Per blog: the options that shape URLs (``WATCHED_OPTIONS`` of
``{prefix}[N_]options``), each post's slug, date and author, each term's parent
and each post's term memberships; for the network: each user's nicename and
display name (``{prefix}users``: ID, user_nicename, display_name, nothing else,
see ``KEEP_COLUMNS`` in wpcdc.core.rows). Like the mirror it is loaded once at
start (wpcdc.mysql.posts) and then kept current by the stream, as of each
binlog position; never a live query. :class:`BlogView` reads it, with the
mirror's post types and term names, as the :class:`~wpcdc.core.permalinks.SiteView`
the permalink rules need. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from wpcdc.core.events import TermLink
from wpcdc.core.permalinks import LinkRules, PostFacts, TermFacts
from wpcdc.core.rows import Op, RowChange, TableKind

if TYPE_CHECKING:
    from wpcdc.core.mirror import Mirror

# Revisions have no URL and are most of wp_posts on many sites: not kept.
_UNLINKED_TYPES = frozenset({"revision", b"revision"})
_POSTMETA = TableKind.POSTMETA


class PostSlug(NamedTuple):
    name: str
    date: str
    author: int


class User(NamedTuple):
    nicename: str
    display_name: str


@dataclass(slots=True)
class BlogSite:
    options: dict[str, str] = field(default_factory=dict)
    posts: dict[int, PostSlug] = field(default_factory=dict)
    # term_id -> parent term_id, for terms that have a parent.
    term_parents: dict[int, int] = field(default_factory=dict)
    # post id -> the term_taxonomy ids it has.
    post_terms: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # (taxonomy, term_id) -> its TermLink (or None: no such term), as wpcdc.core.links
    # computed it: most events name the same few terms again. A term's link depends
    # on its slug, its ancestors' slugs and the URL options, so any change to a
    # term, a term_taxonomy row or an option of the blog forgets them all.
    term_links: dict[tuple[str, int], TermLink | None] = field(default_factory=dict)


class SiteState:
    def __init__(self, rules: LinkRules | None = None) -> None:
        self._blogs: dict[int, BlogSite] = {}
        self.users: dict[int, User] = {}
        self.rules = rules or LinkRules()

    def blog(self, blog_id: int) -> BlogSite:
        site = self._blogs.get(blog_id)
        if site is None:
            site = self._blogs[blog_id] = BlogSite()
        return site

    def blog_ids(self) -> list[int]:
        """The blogs this state knows (every watched blog, once loaded)."""
        return sorted(self._blogs)

    # --- loading --------------------------------------------------------------------

    def load_options(self, blog_id: int, rows: Iterable[tuple[object, object]]) -> None:
        self.forget_term_links(blog_id)
        options = self.blog(blog_id).options
        for name, value in rows:
            options[as_text(name)] = as_text(value)

    def load_posts(self, blog_id: int, rows: Iterable[tuple[int, object, object, int]]) -> None:
        posts = self.blog(blog_id).posts
        for post_id, name, date, author in rows:
            posts[int(post_id)] = PostSlug(as_text(name), as_date(date), int(author or 0))

    def load_term_parents(self, blog_id: int, rows: Iterable[tuple[int, int]]) -> None:
        self.forget_term_links(blog_id)
        parents = self.blog(blog_id).term_parents
        for term_id, parent in rows:
            if parent:
                parents[int(term_id)] = int(parent)

    def load_post_terms(self, blog_id: int, rows: Iterable[tuple[int, int]]) -> None:
        """(object_id, term_taxonomy_id) rows."""
        memberships: dict[int, list[int]] = {}
        for object_id, tt_id in rows:
            memberships.setdefault(int(object_id), []).append(int(tt_id))
        site = self.blog(blog_id)
        for post_id, tt_ids in memberships.items():
            site.post_terms[post_id] = tuple(tt_ids)

    def load_users(self, rows: Iterable[tuple[int, object, object]]) -> None:
        for user_id, nicename, display_name in rows:
            self.users[int(user_id)] = User(as_text(nicename), as_text(display_name))

    # --- keeping current from the stream ------------------------------------------------

    def forget_term_links(self, blog_id: int) -> None:
        """A term, its taxonomy row or a URL option changed: links computed before may differ."""
        self.blog(blog_id).term_links.clear()

    def apply(self, change: RowChange) -> None:
        kind = change.table.kind
        if kind is _POSTMETA:
            return  # most row changes: nothing links depend on
        row = change.image
        delete = change.op is Op.DELETE
        if kind is TableKind.POSTS:
            posts = self.blog(change.table.blog_id).posts
            post_id = int(row["ID"])
            if delete:
                posts.pop(post_id, None)
            elif row.get("post_type") not in _UNLINKED_TYPES:
                name, date = row.get("post_name"), row.get("post_date")
                posts[post_id] = PostSlug(
                    name if type(name) is str else as_text(name),
                    date if type(date) is str and "T" not in date else as_date(date),
                    int(row.get("post_author") or 0),
                )
        elif kind is TableKind.TERM_RELATIONSHIPS:
            site = self.blog(change.table.blog_id)
            post_id, tt_id = int(row["object_id"]), int(row["term_taxonomy_id"])
            have = site.post_terms.get(post_id, ())
            if delete:
                if tt_id in have:
                    kept = tuple(t for t in have if t != tt_id)
                    if kept:
                        site.post_terms[post_id] = kept
                    else:
                        del site.post_terms[post_id]
            elif tt_id not in have:
                site.post_terms[post_id] = (*have, tt_id)
        elif kind is TableKind.TERM_TAXONOMY:
            if delete:
                return  # kept, as the mirror keeps the term
            self.forget_term_links(change.table.blog_id)
            parents = self.blog(change.table.blog_id).term_parents
            term_id, parent = int(row["term_id"]), int(row.get("parent") or 0)
            if parent:
                parents[term_id] = parent
            else:
                parents.pop(term_id, None)
        elif kind is TableKind.OPTIONS:
            self.forget_term_links(change.table.blog_id)
            options = self.blog(change.table.blog_id).options
            name = as_text(row.get("option_name"))
            if delete:
                options.pop(name, None)
            else:
                options[name] = as_text(row.get("option_value"))
        elif kind is TableKind.USERS:
            user_id = int(row["ID"])
            if delete:
                self.users.pop(user_id, None)
            else:
                self.users[user_id] = User(
                    as_text(row.get("user_nicename")), as_text(row.get("display_name"))
                )


class BlogView:
    """One blog as the permalink rules see it: the mirror's post types, statuses,
    parents and terms with this state's slugs, dates, options and users."""

    __slots__ = ("_blog", "_mirror", "_site", "rules", "users")

    def __init__(self, mirror: Mirror, blog_id: int) -> None:
        self._mirror = mirror.blog(blog_id)
        self._site = mirror.site.blog(blog_id)
        self._blog = blog_id
        self.rules = mirror.site.rules
        self.users = mirror.site.users

    def option(self, name: str) -> str:
        return self._site.options.get(name, "")

    @property
    def term_links(self) -> dict[tuple[str, int], TermLink | None]:
        """The blog's term links computed so far (see BlogSite.term_links)."""
        return self._site.term_links

    def post(self, post_id: int) -> PostFacts | None:
        info = self._mirror.posts.get(post_id)
        slug = self._site.posts.get(post_id)
        if info is None or slug is None:
            return None
        return PostFacts(
            post_id, info.type, info.status, slug.name, slug.date, info.parent, slug.author
        )

    def terms_of(self, post_id: int) -> list[tuple[str, int]]:
        """(taxonomy, term_id) of each term the post has, as the mirror knows them."""
        found = []
        for tt_id in self._site.post_terms.get(post_id, ()):
            info = self._mirror.taxonomies.get(tt_id)
            if info is not None:
                found.append((info.taxonomy, info.term_id))
        return found

    def categories(self, post_id: int) -> Sequence[int]:
        return [term_id for taxonomy, term_id in self.terms_of(post_id) if taxonomy == "category"]

    def term(self, term_id: int) -> TermFacts | None:
        name = self._mirror.terms.get(term_id)
        if name is None:
            return None
        return TermFacts(name.slug, self._site.term_parents.get(term_id, 0))

    def nicename(self, user_id: int) -> str | None:
        user = self.users.get(user_id)
        return user.nicename if user is not None else None


class AsItWas:
    """A blog view in which one term or one user still has its earlier slug,
    parent or nicename: what a link was before a change (``previous``)."""

    __slots__ = ("_term", "_user", "_view", "rules")

    def __init__(
        self,
        view: BlogView,
        *,
        term: tuple[int, TermFacts] | None = None,
        user: tuple[int, str] | None = None,
    ) -> None:
        self._view = view
        self._term = term
        self._user = user
        self.rules = view.rules

    def option(self, name: str) -> str:
        return self._view.option(name)

    def post(self, post_id: int) -> PostFacts | None:
        return self._view.post(post_id)

    def categories(self, post_id: int) -> Sequence[int]:
        return self._view.categories(post_id)

    def term(self, term_id: int) -> TermFacts | None:
        if self._term is not None and self._term[0] == term_id:
            return self._term[1]
        return self._view.term(term_id)

    def nicename(self, user_id: int) -> str | None:
        if self._user is not None and self._user[0] == user_id:
            return self._user[1]
        return self._view.nicename(user_id)


def as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def as_date(value: object) -> str:
    """post_date as "YYYY-MM-DD HH:MM:SS" whatever the decoder gave (text or datetime)."""
    if value.__class__ is dt.datetime:  # what the decoders give: half the time of str()
        return value.isoformat(" ")
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).replace("T", " ")
