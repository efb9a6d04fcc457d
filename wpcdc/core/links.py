"""Links and cache tags of events: which URLs and tags a change asks caches to purge.

A post event (and ``taxonomy_changed``, ``post_snapshot``) carries
:class:`~wpcdc.core.events.Links` computed by wpcdc.core.permalinks from the
row in hand and the site state (wpcdc.core.site) as of the group's close;
every event carries ``cache_tags`` (:func:`cache_tags`), stable strings:

- ``site:{blog}``: anything on the blog (home, feeds);
- ``post:{blog}:{post_id}``; ``post-type:{blog}:{type}``: lists of that type;
- ``term:{blog}:{term_id}`` and ``taxonomy:{blog}:{taxonomy}`` for every term
  the post has, gained or lost;
- ``author:{blog}:{user_id}``: the author's archive.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from wpcdc.core.events import EventData, Links, PostData, TaxonomyData, TermLink, TermRef
from wpcdc.core.permalinks import (
    PostFacts,
    author_link,
    home_link,
    post_permalink,
    posts_page_link,
    term_link,
)
from wpcdc.core.rows import Row
from wpcdc.core.site import BlogView, as_date, as_text

if TYPE_CHECKING:
    from wpcdc.core.group import Group
    from wpcdc.core.mirror import Mirror

# Taxonomies with no public archive: no link, no tag.
PRIVATE_TAXONOMIES: Final = frozenset(
    {"nav_menu", "link_category", "post_format", "wp_theme", "wp_template_part_area"}
)


def annotate(
    datas: Sequence[tuple[str, EventData]],
    group: Group,
    mirror: Mirror,
    terms: tuple[list[TermRef], list[TermRef]] | None = None,
) -> None:
    """Set the links and cache tags of a closed group's events (see derive);
    ``terms``: the group's term changes, when the caller has them already."""
    added, removed = group.term_changes() if terms is None else terms
    links = change_links(
        mirror,
        group.blog_id,
        group.post_id,
        before=group.post_before if group.post_seen else None,
        after=group.post_after if group.post_seen else None,
        post_seen=group.post_seen,
        added=added,
        removed=removed,
    )
    # Tags come from the group's own rows only (never from the site state), so that
    # an event id always names the same tags (promise "recognisable replays").
    row = group.post_after or group.post_before
    if row is not None:
        post_type: str | None = as_text(row.get("post_type"))
        author: int | None = int(row.get("post_author") or 0)
    else:
        post_type = group.info.type if group.info is not None else None
        author = None
    touched = [(t.taxonomy, t.term_id) for t in [*added, *removed] if t.term_id is not None]
    tags = cache_tags(group.blog_id, group.post_id, post_type, author, touched)
    for _, data in datas:
        data.cache_tags = tags
        if isinstance(data, PostData | TaxonomyData):
            data.links = links


def facts(row: Row) -> PostFacts:
    """What a permalink depends on, from a wp_posts row."""
    return PostFacts(
        id=int(row["ID"]),
        type=as_text(row.get("post_type")),
        status=as_text(row.get("post_status")),
        name=as_text(row.get("post_name")),
        date=as_date(row.get("post_date")),
        parent=int(row.get("post_parent") or 0),
        author=int(row.get("post_author") or 0),
    )


def change_links(
    mirror: Mirror,
    blog_id: int,
    post_id: int,
    *,
    before: Row | None,
    after: Row | None,
    post_seen: bool,
    added: Sequence[TermRef],
    removed: Sequence[TermRef],
) -> Links:
    """The links of a group's change to a post. ``before``/``after``: the
    post row around the group (when ``post_seen``); otherwise the post is as the
    mirror knows it now. The mirror has applied the whole group already."""
    view = BlogView(mirror, blog_id)
    now = facts(after) if after is not None else None
    was = facts(before) if before is not None else None
    if not post_seen:
        now = was = view.post(post_id)
    categories = view.categories(post_id)
    gained = {t.term_id for t in added if t.taxonomy == "category"}
    lost = {t.term_id for t in removed if t.taxonomy == "category"}
    categories_before = [t for t in categories if t not in gained] + [
        t for t in lost if t is not None and t not in categories
    ]
    links = Links(permalink=None)
    if now is not None:
        links.permalink = post_permalink(now, view)
    if was is not None:
        previous = post_permalink(was, view, categories=categories_before)
        if previous is not None and previous != links.permalink:
            links.previous_permalink = previous
    has = _term_links(view, view.terms_of(post_id))
    links.terms = has
    links.terms_added = _term_links(view, _refs(added))
    links.terms_removed = _term_links(view, _refs(removed))
    _site_links(links, view, now or was)
    return links


def snapshot_links(
    mirror: Mirror, blog_id: int, row: Row, terms: Sequence[TermRef]
) -> tuple[Links, list[str]]:
    """Links and cache tags of a whole post read from the database (a snapshot)."""
    view = BlogView(mirror, blog_id)
    post = facts(row)
    categories = [t.term_id for t in terms if t.taxonomy == "category" and t.term_id is not None]
    links = Links(permalink=post_permalink(post, view, categories=categories))
    links.terms = _term_links(view, _refs(terms))
    _site_links(links, view, post)
    terms_of = [(t.taxonomy, t.term_id) for t in terms if t.term_id is not None]
    return links, cache_tags(blog_id, post.id, post.type, post.author, terms_of)


def cache_tags(
    blog_id: int,
    post_id: int,
    post_type: str | None,
    author: int | None,
    terms: Iterable[tuple[str | None, int]],
) -> list[str]:
    """The cache tags of an event about a post (see the module docstring)."""
    tags = {f"site:{blog_id}", f"post:{blog_id}:{post_id}"}
    if post_type:
        tags.add(f"post-type:{blog_id}:{post_type}")
    if author:
        tags.add(f"author:{blog_id}:{author}")
    for taxonomy, term_id in terms:
        if taxonomy in PRIVATE_TAXONOMIES:
            continue
        tags.add(f"term:{blog_id}:{term_id}")
        if taxonomy:
            tags.add(f"taxonomy:{blog_id}:{taxonomy}")
    return sorted(tags)


def _site_links(links: Links, view: BlogView, post: PostFacts | None) -> None:
    if post is not None and post.author:
        links.author = author_link(post.author, view)
    if view.option("home"):
        links.home = home_link(view)
        links.posts_page = posts_page_link(view)


def _refs(terms: Iterable[TermRef]) -> list[tuple[str, int]]:
    return [
        (t.taxonomy, t.term_id) for t in terms if t.taxonomy is not None and t.term_id is not None
    ]


def _term_links(view: BlogView, terms: Iterable[tuple[str, int]]) -> list[TermLink]:
    # Each term's link is computed once per state of the blog's terms and URL
    # options (BlogView.term_links): a bulk job names the same few terms per post.
    cache = view.term_links
    links = []
    for key in sorted(set(terms), key=lambda t: t[1]):
        if key not in cache:
            cache[key] = _term_link(view, *key)
        link = cache[key]
        if link is not None:
            links.append(link)
    return links


def _term_link(view: BlogView, taxonomy: str, term_id: int) -> TermLink | None:
    if taxonomy in PRIVATE_TAXONOMIES:
        return None
    term = view.term(term_id)
    if term is None:
        return None
    return TermLink(taxonomy, term_id, term.slug, term_link(taxonomy, term_id, term.slug, view))
