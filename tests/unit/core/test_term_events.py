"""Term events: a term's terms and term_taxonomy rows fold into one group per term,
which becomes term_created, term_updated or term_deleted with links, the posts
whose permalinks moved, and cache tags."""

from __future__ import annotations

from typing import Any

from tests.support.binlog_builder import (
    POSTS,
    RELS,
    TAXONOMY,
    TERMS,
    Binlog,
    delete,
    insert,
    post_row,
    rel,
    term,
    update,
)
from tests.support.fold import fold_all, refold_after_ack
from wpcdc.core.entity_payloads import TermData
from wpcdc.core.events import Event, PostData, to_envelope
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.term_events import posts_moved

HOME = "http://a.test"


def tt_row(tt_id: int, term_id: int, taxonomy: str, parent: int = 0, **more: Any) -> dict[str, Any]:
    row = {
        "term_taxonomy_id": tt_id,
        "term_id": term_id,
        "taxonomy": taxonomy,
        "description": "",
        "parent": parent,
        "count": 0,
    }
    row.update(more)
    return row


def site(structure: str = "/%category%/%postname%/") -> Mirror:
    """News (2) > Local (3), Alpha (4), a tag red (5); posts 10 (Local, published),
    11 (Local, draft), 12 (Alpha), 13 (a page)."""
    mirror = Mirror()
    mirror.site.load_options(
        1, [("home", HOME), ("permalink_structure", structure), ("default_category", "4")]
    )
    mirror.load_taxonomies(
        1, [(20, "category", 2), (30, "category", 3), (40, "category", 4), (50, "post_tag", 5)]
    )
    mirror.load_terms(
        1, [(2, "news", "News"), (3, "local", "Local"), (4, "alpha", "Alpha"), (5, "red", "Red")]
    )
    mirror.site.load_term_parents(1, [(3, 2)])
    posts = [(10, "post", "publish"), (11, "post", "draft"), (12, "post", "publish")]
    posts.append((13, "page", "publish"))
    mirror.load_posts(1, [(pid, kind, status, 0) for pid, kind, status in posts])
    mirror.site.load_posts(1, [(pid, f"p{pid}", "2026-01-02 03:04:05", 1) for pid, *_ in posts])
    mirror.site.load_post_terms(1, [(10, 30), (10, 50), (11, 30), (12, 40)])
    return mirror


def fold(mirror: Mirror, *parts: Any, **folder: Any) -> list[Event]:
    return fold_all(Folder(config=FoldConfig(), mirror=mirror, **folder), list(parts))


def only(events: list[Event]) -> tuple[Event, TermData]:
    (event,) = events
    assert isinstance(event.data, TermData)
    return event, event.data


def test_wp_insert_term_is_one_term_created_with_its_link() -> None:
    mirror = site()
    log = Binlog()
    log.txn(insert(TERMS, term(6, "sport", "Sport")))
    log.txn(insert(TAXONOMY, tt_row(60, 6, "category", parent=2, description="Games")))
    event, data = only(fold(mirror, *log.log))
    assert event.type == "term_created"
    assert (event.key, to_envelope(event, "s")["subject"]) == (b"1:term/6", "term/6")
    assert (data.term_id, data.term_taxonomy_id, data.taxonomy) == (6, 60, "category")
    assert (data.name, data.slug, data.parent, data.description) == ("Sport", "sport", 2, "Games")
    assert (data.changed, data.before, data.after, data.posts_moved) == ([], {}, {}, 0)
    assert data.links is not None
    assert (data.links.term, data.links.previous) == (f"{HOME}/category/news/sport/", None)
    assert data.cache_tags == ["site:1", "taxonomy:1:category", "term:1:6"]


def test_a_rename_keeps_the_link_and_moves_no_post() -> None:
    log = Binlog()
    log.txn(update(TERMS, term(2, "news", "News"), term(2, "news", "Headlines")))
    event, data = only(fold(site(), *log.log))
    assert event.type == "term_updated"
    assert (data.changed, data.before, data.after) == (
        ["name"],
        {"name": "News"},
        {"name": "Headlines"},
    )
    # The taxonomy, parent and tt id of a term whose term_taxonomy row was not touched:
    # from the mirror; the description it does not keep is null.
    assert (data.taxonomy, data.term_taxonomy_id, data.parent, data.description) == (
        "category",
        20,
        0,
        None,
    )
    assert data.links is not None
    assert (data.links.term, data.links.previous) == (f"{HOME}/category/news/", None)
    assert data.posts_moved == 0


def test_a_new_slug_moves_the_published_posts_under_the_category() -> None:
    log = Binlog()
    log.txn(update(TERMS, term(2, "news", "News"), term(2, "headlines", "News")))
    _, data = only(fold(site(), *log.log))
    assert (data.changed, data.after) == (["slug"], {"slug": "headlines"})
    assert data.links is not None
    assert data.links.term == f"{HOME}/category/headlines/"
    assert data.links.previous == f"{HOME}/category/news/"
    # Post 10 (in Local, a child of News): /news/local/p10/ -> /headlines/local/p10/.
    # Not the draft (plain ?p=), nor post 12 (Alpha), nor the page.
    assert data.posts_moved == 1


def test_no_post_moves_without_category_in_the_permalink_structure() -> None:
    log = Binlog()
    log.txn(update(TERMS, term(2, "news", "News"), term(2, "headlines", "News")))
    _, data = only(fold(site("/%postname%/"), *log.log))
    assert data.changed == ["slug"] and data.posts_moved == 0


def test_a_new_parent_moves_the_link_and_the_posts() -> None:
    log = Binlog()
    log.txn(update(TAXONOMY, tt_row(30, 3, "category", parent=2), tt_row(30, 3, "category", 4)))
    event, data = only(fold(site(), *log.log))
    assert event.type == "term_updated"
    assert (data.changed, data.before, data.after) == (["parent"], {"parent": 2}, {"parent": 4})
    assert (data.name, data.slug, data.description) == ("Local", "local", "")
    assert data.links is not None
    assert data.links.term == f"{HOME}/category/alpha/local/"
    assert data.links.previous == f"{HOME}/category/news/local/"
    assert data.posts_moved == 1


def test_posts_moved_counts_descendants_and_the_default_category() -> None:
    mirror = site()
    # Post 14 has no category: its %category% is the default one, Alpha.
    mirror.load_posts(1, [(14, "post", "publish", 0)])
    mirror.site.load_posts(1, [(14, "p14", "2026-01-02 03:04:05", 1)])
    assert posts_moved(mirror, 1, 2) == 1  # News: post 10, through Local
    assert posts_moved(mirror, 1, 3) == 1  # Local itself
    assert posts_moved(mirror, 1, 4) == 2  # Alpha: post 12, and post 14 by default
    assert posts_moved(mirror, 1, 5) == 0  # a tag is no %category%


def test_a_recount_makes_no_event_and_joins_no_group() -> None:
    mirror = site()
    log = Binlog()
    part = log.txn(update(TAXONOMY, tt_row(50, 5, "post_tag"), tt_row(50, 5, "post_tag", count=3)))
    folder = Folder(config=FoldConfig(), mirror=mirror)
    assert folder.target(part.changes[0]) is None
    assert fold_all(folder, [part]) == []


def test_wp_delete_term_is_term_deleted_and_its_children_move_up() -> None:
    mirror = site()
    log = Binlog()
    # What wp_delete_term() writes for News: its child is re-parented to News's
    # parent, then its term_taxonomy and terms rows go.
    log.txn(update(TAXONOMY, tt_row(30, 3, "category", parent=2), tt_row(30, 3, "category")))
    log.txn(delete(TAXONOMY, tt_row(20, 2, "category")))
    log.txn(delete(TERMS, term(2, "news", "News")))
    events = fold(mirror, *log.log)
    by_type = {e.type: e.data for e in events}
    assert sorted(by_type) == ["term_deleted", "term_updated"]
    deleted, child = by_type["term_deleted"], by_type["term_updated"]
    assert isinstance(deleted, TermData) and isinstance(child, TermData)
    assert (deleted.term_id, deleted.slug, deleted.name, deleted.taxonomy) == (
        2,
        "news",
        "News",
        "category",
    )
    assert deleted.links is not None
    assert (deleted.links.term, deleted.links.previous) == (None, f"{HOME}/category/news/")
    assert deleted.posts_moved == 0
    assert (child.term_id, child.changed, child.after) == (3, ["parent"], {"parent": 0})
    assert child.links is not None
    assert child.links.term == f"{HOME}/category/local/"
    assert child.links.previous == f"{HOME}/category/news/local/"
    assert child.posts_moved == 1


def test_renamed_and_renamed_back_is_nothing_live_and_stated_in_a_replay() -> None:
    log = Binlog()
    log.txn(update(TERMS, term(5, "red"), term(5, "crimson")))
    log.txn(update(TERMS, term(5, "crimson"), term(5, "red")))
    assert fold(site(), *log.log) == []
    replayed = fold(site(), *log.log, replay_until=Position(log.file, log.pos))
    event, data = only(replayed)
    assert event.type == "term_updated"
    assert (data.changed, data.after) == (["name", "slug"], {"name": "Red", "slug": "red"})
    assert data.links is not None and data.links.previous is None
    assert data.links.term == f"{HOME}/tag/red/"


def test_created_and_deleted_within_a_group_is_nothing_live_and_gone_in_a_replay() -> None:
    log = Binlog()
    log.txn(insert(TERMS, term(6, "tmp")))
    log.txn(insert(TAXONOMY, tt_row(60, 6, "post_tag")))
    log.txn(delete(TAXONOMY, tt_row(60, 6, "post_tag")))
    log.txn(delete(TERMS, term(6, "tmp")))
    assert fold(site(), *log.log) == []
    event, data = only(fold(site(), *log.log, replay_until=Position(log.file, log.pos)))
    assert (event.type, data.slug, data.taxonomy) == ("term_deleted", "tmp", "post_tag")


def test_a_term_and_a_post_with_the_same_id_fold_apart() -> None:
    mirror = site()
    log = Binlog()
    row = post_row(5, status="publish", name="five")
    log.txn(
        update(POSTS, row, {**row, "post_title": "Five"}),
        update(TERMS, term(5, "red"), term(5, "red", "Rouge")),
        insert(RELS, rel(5, 50)),
    )
    events = fold(mirror, *log.log)
    assert sorted((e.type, e.key) for e in events) == [
        ("post_updated", b"1:5"),
        ("taxonomy_changed", b"1:5"),
        ("term_updated", b"1:term/5"),
    ]
    post = next(e for e in events if isinstance(e.data, PostData))
    assert "term:1:5" in post.data.cache_tags  # the post's new tag: red
    _, data = only([e for e in events if e.type == "term_updated"])
    assert (data.changed, data.after) == (["name"], {"name": "Rouge"})


def test_a_term_group_is_acknowledged_covered_and_skipped_on_resume() -> None:
    log = Binlog()
    part = log.txn(update(TERMS, term(2, "news", "News"), term(2, "news", "Headlines")))
    folder = Folder(config=FoldConfig(), mirror=site())
    folder.feed(part)
    (closed,) = folder.close_all()
    assert (closed.blog_id, closed.post_id) == (1, -2)  # the term's key, no post's
    # Saved before the transaction (as if another group still held it): a marker.
    covered, again = refold_after_ack(closed, part, site())
    assert covered == [(1, -2)]
    assert again == []


def test_a_term_of_blog_two_is_keyed_and_named_per_blog() -> None:
    log = Binlog(blog_id=2)
    log.txn(insert(TERMS, term(6, "sport")))
    log.txn(insert(TAXONOMY, tt_row(60, 6, "category")))
    event, data = only(fold(Mirror(), *log.log))
    assert (event.key, to_envelope(event, "s")["subject"]) == (b"2:term/6", "blog/2/term/6")
    assert data.blog_id == 2 and data.links is None  # no home known: no links
    assert data.cache_tags == ["site:2", "taxonomy:2:category", "term:2:6"]


def test_a_private_taxonomy_s_term_has_no_link_and_only_the_site_tag() -> None:
    mirror = site()
    log = Binlog()
    log.txn(insert(TERMS, term(7, "post-format-aside")))
    log.txn(insert(TAXONOMY, tt_row(70, 7, "post_format")))
    _, data = only(fold(mirror, *log.log))
    assert data.links is None and data.cache_tags == ["site:1"]
    # A menu (taxonomy nav_menu) is no term event: menu_changed (test_menu_events.py).
