"""Permalink rules against hand-built site states (the golden tests compare with WordPress)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from wpcdc.core.permalinks import (
    LinkRules,
    PostFacts,
    Rewrite,
    TermFacts,
    author_link,
    home_link,
    post_permalink,
    posts_page_link,
    term_link,
)

HOME = "http://example.test"


@dataclass
class Site:
    structure: str = "/%postname%/"
    options: dict[str, str] = field(default_factory=dict)
    posts: dict[int, PostFacts] = field(default_factory=dict)
    cats: dict[int, list[int]] = field(default_factory=dict)
    terms: dict[int, TermFacts] = field(default_factory=dict)
    rules: LinkRules = field(default_factory=LinkRules)

    def option(self, name: str) -> str:
        if name == "permalink_structure":
            return self.structure
        return {"home": HOME, **self.options}.get(name, "")

    def post(self, post_id: int) -> PostFacts | None:
        return self.posts.get(post_id)

    def categories(self, post_id: int) -> Sequence[int]:
        return self.cats.get(post_id, [])

    def term(self, term_id: int) -> TermFacts | None:
        return self.terms.get(term_id)

    def nicename(self, user_id: int) -> str | None:
        return {3: "jane-doe"}.get(user_id)

    def add(self, *posts: PostFacts) -> Site:
        self.posts.update({p.id: p for p in posts})
        return self


def post(
    post_id: int,
    name: str,
    *,
    type: str = "post",
    status: str = "publish",
    parent: int = 0,
    date: str = "2024-03-05 10:20:30",
) -> PostFacts:
    return PostFacts(post_id, type, status, name, date, parent, 3)


@pytest.mark.parametrize(
    ("structure", "expected"),
    [
        ("", f"{HOME}/?p=7"),
        ("/%postname%/", f"{HOME}/hello/"),
        ("/%year%/%monthnum%/%day%/%postname%/", f"{HOME}/2024/03/05/hello/"),
        ("/archives/%post_id%", f"{HOME}/archives/7"),
        ("/%author%/%hour%%minute%%second%-%postname%", f"{HOME}/jane-doe/102030-hello"),
    ],
)
def test_post_permalink_per_structure(structure: str, expected: str) -> None:
    assert post_permalink(post(7, "hello"), Site(structure)) == expected


def test_category_permalink_uses_the_lowest_term_id_under_its_parents() -> None:
    site = Site("/%category%/%postname%/", cats={7: [9, 5]})
    site.terms = {4: TermFacts("news", 0), 5: TermFacts("local", 4), 9: TermFacts("zeta", 0)}
    assert post_permalink(post(7, "hello"), site) == f"{HOME}/news/local/hello/"
    # A previous category set is given explicitly.
    assert post_permalink(post(7, "hello"), site, categories=[9]) == f"{HOME}/zeta/hello/"
    # No category: the default one.
    site.options["default_category"] = "9"
    assert post_permalink(post(7, "hello"), site, categories=[]) == f"{HOME}/zeta/hello/"


@pytest.mark.parametrize("status", ["draft", "pending", "future", "private", "trash"])
def test_a_post_not_publicly_viewable_has_the_plain_form(status: str) -> None:
    site = Site()
    assert post_permalink(post(7, "hello", status=status), site) == f"{HOME}/?p=7"
    page = post(8, "about", type="page", status=status)
    assert post_permalink(page, site) == f"{HOME}/?page_id=8"


def test_pages_carry_their_ancestors_and_the_front_page_is_home() -> None:
    site = Site("/archives/%post_id%").add(
        post(1, "about", type="page"), post(2, "team", type="page", parent=1)
    )
    people = post(3, "people", type="page", parent=2)
    assert post_permalink(people, site) == f"{HOME}/about/team/people"
    site.options.update(show_on_front="page", page_on_front="3", page_for_posts="1")
    assert post_permalink(people, site) == f"{HOME}/"
    assert posts_page_link(site) == f"{HOME}/about"
    assert home_link(site) == f"{HOME}/"
    site.options["show_on_front"] = "posts"
    assert posts_page_link(site) == HOME


def test_a_parent_loop_ends() -> None:
    site = Site().add(post(1, "a", type="page", parent=2), post(2, "b", type="page", parent=1))
    assert post_permalink(site.posts[1], site) == f"{HOME}/b/a/"


def test_attachments() -> None:
    site = Site().add(post(5, "story"), post(6, "draft-story", status="draft"))
    attached = post(9, "picture", type="attachment", status="inherit", parent=5)
    assert post_permalink(attached, site) == f"{HOME}/story/picture/"
    numeric = attached._replace(name="123")
    assert post_permalink(numeric, site) == f"{HOME}/story/attachment/123/"
    loose = attached._replace(parent=0)
    assert post_permalink(loose, site) == f"{HOME}/picture/"
    # A draft parent: the attachment inherits its status, so the plain form.
    hidden = attached._replace(parent=6)
    assert post_permalink(hidden, site) == f"{HOME}/?attachment_id=9"
    assert post_permalink(attached, Site("")) == f"{HOME}/?attachment_id=9"


def test_custom_post_types_follow_their_rewrite() -> None:
    book = post(4, "dune", type="book")
    rules = LinkRules(post_types={"book": Rewrite(slug="books", with_front=False)})
    assert post_permalink(book, Site("/blog/%postname%/")) == f"{HOME}/blog/book/dune/"
    assert post_permalink(book, Site("/blog/%postname%/", rules=rules)) == f"{HOME}/books/dune/"
    assert post_permalink(book, Site("")) == f"{HOME}/?book=dune"
    draft = book._replace(status="draft")
    assert post_permalink(draft, Site("")) == f"{HOME}/?post_type=book&p=4"
    hidden = LinkRules(post_types={"book": Rewrite(public=False)})
    assert post_permalink(book, Site(rules=hidden)) is None
    assert post_permalink(post(4, "x", type="nav_menu_item"), Site()) is None


def test_term_links() -> None:
    site = Site("/archives/%post_id%")
    site.terms = {4: TermFacts("news", 0), 5: TermFacts("local", 4)}
    assert term_link("category", 5, "local", site) == f"{HOME}/archives/category/news/local"
    assert term_link("post_tag", 8, "red", site) == f"{HOME}/archives/tag/red"
    site.options.update(category_base="/topics", tag_base="/labels")
    assert term_link("category", 5, "local", site) == f"{HOME}/topics/news/local"
    assert term_link("post_tag", 8, "red", site) == f"{HOME}/labels/red"
    assert term_link("genre", 6, "crime", site) == f"{HOME}/archives/genre/crime"
    plain = Site("")
    assert term_link("category", 5, "local", plain) == f"{HOME}/?cat=5"
    assert term_link("post_tag", 8, "red", plain) == f"{HOME}/?tag=red"
    assert term_link("genre", 6, "crime", plain) == f"{HOME}/?genre=crime"


def test_author_links() -> None:
    assert author_link(3, Site("/%postname%/")) == f"{HOME}/author/jane-doe/"
    assert author_link(3, Site("/archives/%post_id%")) == f"{HOME}/archives/author/jane-doe"
    assert author_link(3, Site("")) == f"{HOME}/?author=3"
