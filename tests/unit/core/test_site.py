"""Site state for links: what is kept of options and users, and how the stream updates it."""

from __future__ import annotations

from tests.support.binlog_builder import (
    POSTS,
    RELS,
    TAXONOMY,
    TERMS,
    Binlog,
    insert,
    post_row,
    rel,
    tt,
    update,
)
from tests.support.binlog_builder import term as term_row
from tests.support.fold import fold_all
from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.events import PostData, SiteData, TaxonomyData, to_envelope
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, RowChange, TableKind, TableRef, site_row
from wpcdc.core.site import BlogView

OPTIONS = TableRef(1, TableKind.OPTIONS)
USERS = TableRef(1, TableKind.USERS)


def option(name: str, value: str) -> dict[str, object]:
    return {"option_id": 1, "option_name": name, "option_value": value, "autoload": "yes"}


def test_only_watched_options_and_allowed_user_columns_are_kept() -> None:
    assert site_row(TableKind.OPTIONS, option("_transient_feed_abc", "x" * 100)) is None
    assert site_row(TableKind.OPTIONS, option("home", "http://a.test")) == {
        "option_name": "home",
        "option_value": "http://a.test",
    }
    user = {
        "ID": 3,
        "user_login": "jane",
        "user_pass": "$P$secret",
        "user_nicename": "jane-doe",
        "user_email": "jane@example.com",
        "user_activation_key": "key",
        "display_name": "Jane",
    }
    assert site_row(TableKind.USERS, user) == {
        "ID": 3,
        "user_nicename": "jane-doe",
        "display_name": "Jane",
    }


def test_transient_writes_end_in_the_assembler_without_taking_a_row_index() -> None:
    assembler = TransactionAssembler(start=Position("binlog.000001", 4))
    for i in range(50):
        assembler.row(OPTIONS, Op.INSERT, None, option(f"_transient_{i}", "v"), 100)
    assembler.row(OPTIONS, Op.UPDATE, option("home", "a"), option("home", "b"), 100)
    part = assembler.commit(900, 100)
    assert [(c.op, c.row, dict(c.after or {})) for c in part.changes] == [
        (Op.UPDATE, 0, {"option_name": "home", "option_value": "b"})
    ]


def test_the_stream_keeps_options_users_slugs_and_memberships_current() -> None:
    mirror = Mirror()
    mirror.apply(RowChange(OPTIONS, Op.INSERT, None, option("home", "http://a.test"), 0))
    mirror.apply(
        RowChange(
            USERS, Op.INSERT, None, {"ID": 3, "user_nicename": "jane", "display_name": "J"}, 1
        )
    )
    mirror.apply(RowChange(TableRef(1, TAXONOMY), Op.INSERT, None, tt(20, 2, "category"), 2))
    mirror.apply(RowChange(TableRef(1, TERMS), Op.INSERT, None, term_row(2, "news"), 3))
    mirror.apply(RowChange(TableRef(1, POSTS), Op.INSERT, None, post_row(7, status="publish"), 4))
    mirror.apply(RowChange(TableRef(1, RELS), Op.INSERT, None, rel(7, 20), 5))
    view = BlogView(mirror, 1)
    assert view.option("home") == "http://a.test"
    assert view.nicename(3) == "jane"
    assert view.categories(7) == [2]
    facts = view.post(7)
    assert facts is not None and (facts.name, facts.status) == ("title", "publish")
    mirror.apply(RowChange(TableRef(1, RELS), Op.DELETE, rel(7, 20), None, 6))
    mirror.apply(RowChange(OPTIONS, Op.DELETE, option("home", "http://a.test"), None, 7))
    assert view.categories(7) == []
    assert view.option("home") == ""


def test_a_renamed_post_carries_its_previous_permalink_and_stable_cache_tags() -> None:
    mirror = Mirror()
    mirror.site.load_options(
        1, [("home", "http://a.test"), ("permalink_structure", "/%postname%/")]
    )
    mirror.site.load_users([(1, "admin", "Admin")])
    mirror.load_taxonomies(1, [(20, "category", 2)])
    mirror.load_terms(1, [(2, "news", "News")])
    log = Binlog()
    before = post_row(7, status="publish", name="old")
    created = log.txn(insert(POSTS, before))
    after = {**before, "post_name": "new"}
    renamed = log.txn(update(POSTS, before, after), insert(RELS, rel(7, 20)), after_seconds=5)
    folder = Folder(config=FoldConfig(), mirror=mirror)
    fold_all(folder, [created])
    events = fold_all(folder, [renamed])
    post_event = next(e for e in events if isinstance(e.data, PostData))
    taxonomy = next(e for e in events if isinstance(e.data, TaxonomyData))
    assert isinstance(post_event.data, PostData) and post_event.data.links is not None
    links = post_event.data.links
    assert links.permalink == "http://a.test/new/"
    assert links.previous_permalink == "http://a.test/old/"
    assert [t.link for t in links.terms_added] == ["http://a.test/category/news/"]
    assert links.author == "http://a.test/author/admin/"
    assert links.posts_page == "http://a.test"
    assert (
        post_event.data.cache_tags
        == taxonomy.data.cache_tags
        == [
            "author:1:1",
            "post-type:1:post",
            "post:1:7",
            "site:1",
            "taxonomy:1:category",
            "term:1:2",
        ]
    )


def test_term_links_follow_a_renamed_term_a_new_parent_and_new_permalink_settings() -> None:
    # Links of terms are remembered per blog (BlogView.term_links): each change a
    # link depends on must be seen by the next event that names the term.
    mirror = Mirror()
    mirror.site.load_options(
        1, [("home", "http://a.test"), ("permalink_structure", "/%postname%/")]
    )
    mirror.load_taxonomies(1, [(20, "category", 2), (30, "category", 3)])
    mirror.load_terms(1, [(2, "news", "News"), (3, "world", "World")])
    log = Binlog()
    row = post_row(7, status="publish")
    folder = Folder(config=FoldConfig(), mirror=mirror)

    def category_links_after(*changes: tuple) -> list[str]:  # type: ignore[type-arg]
        # ... and an edit of the post, so that it has an event with links.
        nonlocal row
        edited = {**row, "post_title": f"{row['post_title']}+"}
        edit = insert(POSTS, edited) if log.gtid_seq == 0 else update(POSTS, row, edited)
        row = edited
        events = fold_all(folder, [log.txn(*changes, edit, after_seconds=5)])
        data = next(e.data for e in events if isinstance(e.data, PostData))
        assert data.links is not None
        return [t.link for t in data.links.terms]

    assert category_links_after(insert(RELS, rel(7, 20))) == ["http://a.test/category/news/"]
    assert category_links_after(update(TERMS, term_row(2, "news"), term_row(2, "headlines"))) == [
        "http://a.test/category/headlines/"
    ]
    assert category_links_after(
        update(TAXONOMY, tt(20, 2, "category"), {**tt(20, 2, "category"), "parent": 3})
    ) == ["http://a.test/category/world/headlines/"]
    assert category_links_after(
        update(OPTIONS.kind, option("category_base", ""), option("category_base", "topics"))
    ) == ["http://a.test/topics/world/headlines/"]


def test_a_permalink_settings_save_is_one_site_event() -> None:
    mirror = Mirror()
    mirror.site.load_options(1, [("home", "http://a.test"), ("permalink_structure", "")])
    log = Binlog()
    structure = option("permalink_structure", "")
    base = option("category_base", "")
    assembler = TransactionAssembler(start=Position("binlog.000001", 4))
    # What reaches the fold: the assembler has dropped the transient.
    assembler.row(OPTIONS, Op.INSERT, None, option("_transient_doing_cron", "1"), 100)
    assembler.row(OPTIONS, Op.UPDATE, structure, option("permalink_structure", "/%postname%/"), 100)
    kept = assembler.commit(900, 100).changes
    assert len(kept) == 1
    parts = [
        log.txn((TableKind.OPTIONS, Op.UPDATE, kept[0].before, kept[0].after)),
        log.txn(update(TableKind.OPTIONS, base, option("category_base", "/topics"))),
        # Saved again unchanged: not listed.
        log.txn(update(TableKind.OPTIONS, option("tag_base", ""), option("tag_base", ""))),
    ]
    events = fold_all(Folder(config=FoldConfig(), mirror=mirror), parts)
    assert [e.type for e in events] == ["site_settings_changed"]
    event = events[0]
    assert isinstance(event.data, SiteData)
    assert (event.key, to_envelope(event, "s")["subject"]) == (b"1:0", "site")
    assert event.data.changed == ["category_base", "permalink_structure"]
    assert event.data.after == {"category_base": "/topics", "permalink_structure": "/%postname%/"}
    assert event.data.before == {"category_base": "", "permalink_structure": ""}
    assert event.data.moves_all_urls
    assert event.data.cache_tags == ["site:1"]
    assert event.data.links is not None and event.data.links.home == "http://a.test/"


def test_a_blog_s_own_events_are_keyed_and_named_per_blog() -> None:
    log = Binlog(blog_id=2)
    home = option("home", "http://a.test/two")
    part = log.txn(update(TableKind.OPTIONS, home, option("home", "http://b.test/two")))
    events = fold_all(Folder(config=FoldConfig(), mirror=Mirror()), [part])
    assert [(e.type, e.key) for e in events] == [("site_settings_changed", b"2:0")]
    assert to_envelope(events[0], "s")["subject"] == "blog/2/site"
    assert isinstance(events[0].data, SiteData) and events[0].data.cache_tags == ["site:2"]
