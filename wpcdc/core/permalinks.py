"""Permalinks: the URLs WordPress gives a post, a term, an author, the home and posts page.

This module imitates WordPress core (wp-includes/link-template.php,
taxonomy.php ``get_term_link``, author-template.php, class-wp-rewrite.php; the
same in WordPress 6.1 and 7.1) for an anonymous visitor, with no plugin
filters: :func:`post_permalink` is ``get_permalink()``, :func:`term_link`
``get_term_link()``, :func:`author_link` ``get_author_posts_url()``,
:func:`home_link` ``home_url('/')`` and :func:`posts_page_link`
``get_post_type_archive_link('post')``. The golden tests
(tests/integration/test_urls.py) compare them with WordPress itself.

What WordPress keeps in PHP rather than the database, the rewrite slugs of
custom post types and taxonomies, comes from :class:`LinkRules` (settings
``[links]``), with WordPress's defaults. Rewrite "root" for ``/index.php/``
(PATHINFO) structures is not imitated. Pure: the site's state is read through
:class:`SiteView`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What ``register_post_type``/``register_taxonomy`` say about URLs. ``slug``
    None is WordPress's default: the type or taxonomy name."""

    slug: str | None = None
    with_front: bool = True
    hierarchical: bool = False
    # False: the type has no public URL (``public => false`` or ``rewrite => false``
    # with no query var); its events carry no permalink.
    public: bool = True


@dataclass(frozen=True, slots=True)
class LinkRules:
    post_types: Mapping[str, Rewrite] = field(default_factory=dict)
    taxonomies: Mapping[str, Rewrite] = field(default_factory=dict)


class PostFacts(NamedTuple):
    """What a post's permalink depends on (``date``: post_date as stored, local time)."""

    id: int
    type: str
    status: str
    name: str
    date: str
    parent: int
    author: int


class TermFacts(NamedTuple):
    slug: str
    parent: int


class SiteView(Protocol):
    """One blog's state as of a binlog position (see wpcdc.core.site)."""

    rules: LinkRules

    def option(self, name: str) -> str: ...

    def post(self, post_id: int) -> PostFacts | None: ...

    def categories(self, post_id: int) -> Sequence[int]:
        """The term ids of the post's categories."""
        ...

    def term(self, term_id: int) -> TermFacts | None: ...

    def nicename(self, user_id: int) -> str | None: ...


# Post types of WordPress core that have no public URL of their own.
_PRIVATE_BUILTIN_TYPES: Final = frozenset(
    {
        "revision",
        "nav_menu_item",
        "custom_css",
        "customize_changeset",
        "oembed_cache",
        "user_request",
        "wp_block",
        "wp_template",
        "wp_template_part",
        "wp_global_styles",
        "wp_navigation",
        "wp_font_family",
        "wp_font_face",
    }
)
# Registered statuses that are not publicly viewable: wp_force_plain_post_permalink()
# gives such posts the plain ?p= form. An unregistered status keeps the pretty form,
# as in WordPress. "private" is plain too: an anonymous visitor cannot read it.
_PLAIN_STATUSES: Final = frozenset(
    {
        "future",
        "draft",
        "pending",
        "private",
        "trash",
        "auto-draft",
        "inherit",
        "request-pending",
        "request-confirmed",
        "request-failed",
        "request-completed",
    }
)
_DATE_PARTS: Final = re.compile(r"\d+")


def has_permalink(post_type: str, rules: LinkRules) -> bool:
    if post_type in _PRIVATE_BUILTIN_TYPES:
        return False
    rewrite = rules.post_types.get(post_type)
    return rewrite is None or rewrite.public


def home_url(site: SiteView, path: str = "") -> str:
    """``home_url($path)``: the home option, then "/" and the path without leading slashes."""
    url = site.option("home")
    if path:
        url += "/" + path.lstrip("/")
    return url


def home_link(site: SiteView) -> str:
    return home_url(site, "/")


def posts_page_link(site: SiteView) -> str:
    """``get_post_type_archive_link('post')``: the posts page, or the home without a slash."""
    page = _int(site.option("page_for_posts"))
    if site.option("show_on_front") == "page" and page:
        facts = site.post(page)
        if facts is not None:
            link = post_permalink(facts, site)
            if link is not None:
                return link
    return site.option("home")


def post_permalink(
    post: PostFacts, site: SiteView, *, categories: Sequence[int] | None = None
) -> str | None:
    """``get_permalink()``; None for types with no public URL. ``categories``: the
    post's category term ids when they differ from the site's (a previous state)."""
    if not has_permalink(post.type, site.rules):
        return None
    if post.type == "page":
        if site.option("show_on_front") == "page" and _int(site.option("page_on_front")) == post.id:
            return home_url(site, "/")
        return _page_link(post, site)
    if post.type == "attachment":
        return _attachment_link(post, site)
    if post.type != "post":
        return _custom_type_link(post, site)
    structure = site.option("permalink_structure")
    if not structure or _plain(post, site):
        return home_url(site, f"?p={post.id}")
    link = structure
    if "%category%" in link:
        link = link.replace("%category%", _category_path(post, site, categories))
    if "%author%" in link:
        link = link.replace("%author%", site.nicename(post.author) or "")
    date = [*_DATE_PARTS.findall(post.date), "", "", "", "", "", ""][:6]
    for code, value in zip(
        ("%year%", "%monthnum%", "%day%", "%hour%", "%minute%", "%second%"), date, strict=True
    ):
        link = link.replace(code, value)
    link = link.replace("%postname%", post.name).replace("%post_id%", str(post.id))
    link = link.replace("%pagename%", post.name)
    return _trailing(home_url(site, link), structure)


def term_link(taxonomy: str, term_id: int, slug: str, site: SiteView) -> str:
    """``get_term_link()`` of a term of ``taxonomy``."""
    structure = site.option("permalink_structure")
    rewrite = _taxonomy_rewrite(taxonomy, site)
    if not structure:
        if taxonomy == "category":
            return home_url(site, f"?cat={term_id}")
        query_var = "tag" if taxonomy == "post_tag" else taxonomy
        return home_url(site, f"?{query_var}={slug}")
    base = rewrite.slug or taxonomy
    link = (_front(structure) if rewrite.with_front else "") + f"{base}/%{taxonomy}%"
    path = slug
    if rewrite.hierarchical:
        path = "/".join([*_ancestor_slugs(term_id, site), slug])
    return home_url(site, _trailing(link.replace(f"%{taxonomy}%", path), structure))


def author_link(user_id: int, site: SiteView) -> str:
    """``get_author_posts_url()``."""
    structure = site.option("permalink_structure")
    if not structure:
        return home_url(site, "/") + f"?author={user_id}"
    link = _front(structure) + "author/" + (site.nicename(user_id) or "")
    return home_url(site, _trailing(link, structure))


# --- the rules per kind of post ---------------------------------------------------


def _plain(post: PostFacts, site: SiteView) -> bool:
    """``wp_force_plain_post_permalink()`` for an anonymous visitor."""
    return _effective_status(post, site) in _PLAIN_STATUSES


def _effective_status(post: PostFacts, site: SiteView) -> str:
    """``get_post_status()``: an attachment inherits its parent's status."""
    if post.type != "attachment" or post.status != "inherit":
        return post.status
    if post.parent == 0:
        return "publish"
    if post.parent == post.id:
        return post.status
    parent = site.post(post.parent)
    if parent is None:
        return post.status  # get_post_status() of a missing post is false
    return _effective_status(parent, site)


def _page_uri(post: PostFacts, site: SiteView) -> str:
    """``get_page_uri()``: the slugs of the ancestors, then the post's own."""
    parts = [post.name]
    seen = {post.id}
    parent = post.parent
    while parent and parent not in seen:
        seen.add(parent)
        ancestor = site.post(parent)
        if ancestor is None:
            break
        if ancestor.name:
            parts.append(ancestor.name)
        parent = ancestor.parent
    return "/".join(reversed(parts))


def _page_link(post: PostFacts, site: SiteView) -> str:
    """``_get_page_link()`` (ignores the static front page)."""
    structure = site.option("permalink_structure")
    if structure and not _plain(post, site):
        return _trailing(home_url(site, _page_uri(post, site)), structure)
    return home_url(site, f"?page_id={post.id}")


def _attachment_link(post: PostFacts, site: SiteView) -> str:
    structure = site.option("permalink_structure")
    parent = site.post(post.parent) if post.parent else None
    parent_valid = not post.parent or (
        post.parent != post.id and parent is not None and has_permalink(parent.type, site.rules)
    )
    link = ""
    if _plain(post, site) or not parent_valid:
        link = ""
    elif structure and parent is not None:
        if parent.type == "page":
            parent_link = _page_link(parent, site)
        else:
            parent_link = post_permalink(parent, site) or ""
        name = post.name
        if post.name.isdigit() or "%category%" in structure:
            name = "attachment/" + post.name
        if "?" not in parent_link:
            link = _trailing(parent_link.rstrip("/") + "/" + name, structure)
    elif structure:
        link = home_url(site, _trailing(post.name, structure))
    return link or home_url(site, f"/?attachment_id={post.id}")


def _custom_type_link(post: PostFacts, site: SiteView) -> str:
    """``get_post_permalink()`` of a custom post type."""
    rewrite = site.rules.post_types.get(post.type, _DEFAULT_REWRITE)
    structure = site.option("permalink_structure")
    slug = _page_uri(post, site) if rewrite.hierarchical else post.name
    plain = _plain(post, site)
    if structure and not plain:
        base = rewrite.slug or post.type
        link = (_front(structure) if rewrite.with_front else "") + f"{base}/{slug}"
        return home_url(site, _trailing(link, structure))
    if not plain:
        return home_url(site, f"?{post.type}={slug}")
    return home_url(site, f"?post_type={post.type}&p={post.id}")


_DEFAULT_REWRITE: Final = Rewrite()


def _taxonomy_rewrite(taxonomy: str, site: SiteView) -> Rewrite:
    """The built-in taxonomies take their base from the options (create_initial_taxonomies)."""
    if taxonomy in ("category", "post_tag"):
        base = site.option("category_base" if taxonomy == "category" else "tag_base")
        default = "category" if taxonomy == "category" else "tag"
        return Rewrite(
            slug=base or default, with_front=not base, hierarchical=taxonomy == "category"
        )
    return site.rules.taxonomies.get(taxonomy, _DEFAULT_REWRITE)


def _category_path(post: PostFacts, site: SiteView, categories: Sequence[int] | None) -> str:
    """The ``%category%`` of a post: its category with the lowest term id, under its
    parents' slugs; the default category when it has none."""
    term_ids = sorted(site.categories(post.id) if categories is None else categories)
    for term_id in term_ids:
        term = site.term(term_id)
        if term is not None:
            return "/".join([*_ancestor_slugs(term_id, site), term.slug])
    default = site.term(_int(site.option("default_category")))
    return default.slug if default is not None else ""


def permalink_category(post: PostFacts, site: SiteView) -> int | None:
    """The category whose path is the ``%category%`` of the post's permalink (the
    one :func:`_category_path` spells), or None when its permalink has none: not
    a post, a plain permalink, or no ``%category%`` in the structure."""
    structure = site.option("permalink_structure")
    if post.type != "post" or "%category%" not in structure or _plain(post, site):
        return None
    for term_id in sorted(site.categories(post.id)):
        if site.term(term_id) is not None:
            return term_id
    default = _int(site.option("default_category"))
    return default if site.term(default) is not None else None


def ancestors(term_id: int, site: SiteView) -> list[int]:
    """The term ids of a term's ancestors, its parent first."""
    found: list[int] = []
    seen = {term_id}
    term = site.term(term_id)
    parent = term.parent if term is not None else 0
    while parent and parent not in seen:
        seen.add(parent)
        found.append(parent)
        ancestor = site.term(parent)
        parent = ancestor.parent if ancestor is not None else 0
    return found


def _ancestor_slugs(term_id: int, site: SiteView) -> list[str]:
    """The slugs of a term's ancestors, the root first (up to the first one unknown)."""
    slugs: list[str] = []
    for ancestor_id in ancestors(term_id, site):
        ancestor = site.term(ancestor_id)
        if ancestor is None:
            break
        slugs.append(ancestor.slug)
    return slugs[::-1]


def _front(structure: str) -> str:
    """``WP_Rewrite::$front``: the structure up to its first tag."""
    index = structure.find("%")
    return structure if index < 0 else structure[:index]


def _trailing(link: str, structure: str) -> str:
    """``user_trailingslashit()``: a slash at the end iff the structure ends with one."""
    return link.rstrip("/") + "/" if structure.endswith("/") else link.rstrip("/")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
