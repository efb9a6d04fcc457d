"""Menu events: every row of a blog's nav_menu_item posts and nav_menu terms folds into
one group per blog, which becomes one menu_changed per menu it changed, with the items
added, updated or removed, the menu's own change and cache tags; menu items make no
post events, menus no term events."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support.binlog_builder import (
    POSTMETA,
    POSTS,
    RELS,
    TAXONOMY,
    TERMS,
    Binlog,
    delete,
    insert,
    meta,
    post_row,
    rel,
    term,
    tt,
    update,
)
from tests.support.fold import fold_all, refold_after_ack
from wpcdc.core.entity_payloads import MenuData, MenuItem
from wpcdc.core.events import Event, PostData, fit, to_envelope
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, RowChange, TableKind, TableRef
from wpcdc.core.snapshot_events import PostBundle, wanted

CLASSES = 'a:1:{i:0;s:0:"";}'


def item_row(item_id: int, title: str = "", order: int = 1, **fields: Any) -> dict[str, Any]:
    """A nav_menu_item's wp_posts row as wp_update_nav_menu_item() writes it."""
    fields.setdefault("status", "publish")
    return post_row(
        item_id, type="nav_menu_item", title=title, menu_order=order, content="", **fields
    )


def item_meta(item_id: int, first_meta_id: int, url: str = "", **more: Any) -> list[dict[str, Any]]:
    """The eight _menu_item_* rows of a custom link item."""
    values = {
        "_menu_item_type": "custom",
        "_menu_item_menu_item_parent": "0",
        "_menu_item_object_id": str(item_id),
        "_menu_item_object": "custom",
        "_menu_item_target": "",
        "_menu_item_classes": CLASSES,
        "_menu_item_xfn": "",
        "_menu_item_url": url,
    }
    values.update(more)
    return [meta(first_meta_id + i, item_id, k, v) for i, (k, v) in enumerate(values.items())]


def add_item(log: Binlog, item_id: int, tt_id: int, title: str, order: int, url: str) -> None:
    """What wp_update_nav_menu_item() writes for a new item: the post, its menu, its meta."""
    log.txn(insert(POSTS, item_row(item_id, title, order)))
    log.txn(insert(RELS, rel(item_id, tt_id)))
    log.txn(update(TAXONOMY, tt(tt_id, 7, "nav_menu", order - 1), tt(tt_id, 7, "nav_menu", order)))
    for row in item_meta(item_id, item_id * 10, url):
        log.txn(insert(POSTMETA, row))


def delete_item(log: Binlog, item_id: int, tt_id: int, title: str, order: int, url: str) -> None:
    """What wp_delete_post() writes for an item: its relationships, its meta, its row."""
    log.txn(delete(RELS, rel(item_id, tt_id)))
    for row in item_meta(item_id, item_id * 10, url):
        log.txn(delete(POSTMETA, row))
    log.txn(delete(POSTS, item_row(item_id, title, order)))


def site() -> Mirror:
    """Menu "Main" (term 7, tt 70) with items 11 Home, 12 About, 13 Blog; menu "Footer"
    (term 8, tt 80), empty; post 5, a published post in category 1."""
    mirror = Mirror()
    mirror.site.load_options(1, [("home", "http://a.test")])
    mirror.load_taxonomies(1, [(1, "category", 1), (70, "nav_menu", 7), (80, "nav_menu", 8)])
    mirror.load_terms(1, [(1, "uncategorized", "Uncategorized"), (7, "main", "Main")])
    mirror.load_terms(1, [(8, "footer", "Footer")])
    posts = [(5, "post", "publish", 0)] + [(i, "nav_menu_item", "publish", 0) for i in (11, 12, 13)]
    mirror.load_posts(1, posts)
    mirror.site.load_posts(1, [(p, f"p{p}", "2026-01-02 03:04:05", 1) for p, *_ in posts])
    mirror.site.load_post_terms(1, [(5, 1), (11, 70), (12, 70), (13, 70)])
    return mirror


MAIN = [(11, "Home", 1, "http://a.test/"), (12, "About", 2, "http://a.test/about/")]
MAIN.append((13, "Blog", 3, "http://a.test/blog/"))


def fold(mirror: Mirror, log: Binlog, **folder: Any) -> list[Event]:
    return fold_all(Folder(config=FoldConfig(), mirror=mirror, **folder), log.log)


def only(events: list[Event]) -> tuple[Event, MenuData]:
    (event,) = events
    assert event.type == "menu_changed" and isinstance(event.data, MenuData)
    return event, event.data


def ops(data: MenuData) -> list[tuple[int, str]]:
    return [(item.id, item.op) for item in data.items]


def test_a_new_menu_with_three_items_is_one_menu_changed() -> None:
    mirror = Mirror()
    mirror.site.load_options(1, [("home", "http://a.test")])
    log = Binlog()
    log.txn(insert(TERMS, term(7, "main", "Main")))  # wp_create_nav_menu()
    log.txn(insert(TAXONOMY, tt(70, 7, "nav_menu")))
    for item_id, title, order, url in MAIN:
        add_item(log, item_id, 70, title, order, url)
    event, data = only(fold(mirror, log))
    envelope = to_envelope(event, "s")
    assert (event.key, envelope["subject"]) == (b"1:menu/7", "menu/7")
    assert event.id.endswith("/menu_changed/menu/7")
    assert (data.blog_id, data.term_id, data.name, data.slug) == (1, 7, "Main", "main")
    assert (data.menu_change, data.before) == ("created", {})
    assert ops(data) == [(11, "added"), (12, "added"), (13, "added")]
    home = data.items[0]
    assert home == MenuItem(
        id=11,
        op="added",
        title="Home",
        url="http://a.test/",
        type="custom",
        object="custom",
        object_id=11,
        parent=0,
        order=1,
        status="publish",
        target="",
        classes=[""],
        xfn="",
        attr_title="",
        description="",
    )
    assert data.cache_tags == ["menu:1:7", "site:1"]
    # It serializes, and the oracle of its shape is the generated schema's.
    assert orjson.loads(orjson.dumps(envelope))["data"]["items"][2]["title"] == "Blog"


def test_a_save_that_renames_an_item_and_adds_one_lists_both() -> None:
    log = Binlog()
    before = item_row(12, "About", 2)
    log.txn(update(POSTS, before, {**before, "post_title": "About us", "post_modified": "x"}))
    for item_id, title, order, _ in MAIN:  # "Save Menu" writes every item
        if item_id != 12:
            row = item_row(item_id, title, order)
            log.txn(update(POSTS, row, {**row, "post_modified": "2026-11-24 10:00:00"}))
    add_item(log, 14, 70, "Contact", 4, "http://a.test/contact/")
    _, data = only(fold(site(), log))
    assert data.menu_change is None and (data.name, data.slug) == ("Main", "main")
    assert ops(data) == [(12, "updated"), (14, "added")]
    about, contact = data.items
    assert (about.changed, about.before, about.title) == (["title"], {"title": "About"}, "About us")
    # Its meta was not written: what the save did not show is null.
    assert (about.url, about.type, about.order, about.status) == (None, None, 2, "publish")
    assert (contact.title, contact.url, contact.order) == ("Contact", "http://a.test/contact/", 4)


def test_a_save_that_changes_nothing_shown_makes_no_event() -> None:
    log = Binlog()
    for item_id, title, order, _ in MAIN:
        row = item_row(item_id, title, order)
        log.txn(update(POSTS, row, {**row, "post_modified": "2026-11-24 10:00:00"}))
    assert fold(site(), log) == []


def test_deleting_an_item_removes_it_with_its_fields_as_they_were() -> None:
    log = Binlog()
    delete_item(log, 12, 70, "About", 2, "http://a.test/about/")
    log.txn(update(TAXONOMY, tt(70, 7, "nav_menu", 3), tt(70, 7, "nav_menu", 2)))
    mirror = site()
    _, data = only(fold(mirror, log))
    assert ops(data) == [(12, "removed")]
    (about,) = data.items
    assert (about.title, about.url, about.order, about.changed) == (
        "About",
        "http://a.test/about/",
        2,
        [],
    )
    assert mirror.post(1, 12) is None


def test_a_moved_parent_and_a_new_order_are_item_updates() -> None:
    log = Binlog()
    row = item_row(13, "Blog", 3)
    log.txn(update(POSTS, row, {**row, "menu_order": 2}))
    parent = meta(130 + 1, 13, "_menu_item_menu_item_parent", "0")
    log.txn(update(POSTMETA, parent, {**parent, "meta_value": "11"}))
    _, data = only(fold(site(), log))
    (blog,) = data.items
    assert (blog.changed, blog.before) == (["parent", "order"], {"parent": 0, "order": 3})
    assert (blog.parent, blog.order) == (11, 2)


def test_another_meta_key_of_an_item_is_an_update_named_meta() -> None:
    log = Binlog()
    log.txn(insert(POSTMETA, meta(999, 11, "_menu_icon", "house")))
    _, data = only(fold(site(), log))
    (home,) = data.items
    assert (home.op, home.changed, home.before, home.title) == ("updated", ["meta"], {}, None)


def test_deleting_a_menu_is_one_event_with_every_item_removed() -> None:
    log = Binlog()
    for item_id, title, order, url in MAIN:  # wp_delete_nav_menu(): the items first
        delete_item(log, item_id, 70, title, order, url)
    log.txn(delete(TAXONOMY, tt(70, 7, "nav_menu")))
    log.txn(delete(TERMS, term(7, "main", "Main")))
    _, data = only(fold(site(), log))
    assert (data.menu_change, data.name, data.slug) == ("deleted", "Main", "main")
    assert ops(data) == [(11, "removed"), (12, "removed"), (13, "removed")]


def test_renaming_a_menu_is_its_own_change_and_a_description_none() -> None:
    log = Binlog()
    log.txn(update(TERMS, term(7, "main", "Main"), term(7, "top", "Top")))
    event, data = only(fold(site(), log))
    assert (data.menu_change, data.name, data.slug) == ("renamed", "Top", "top")
    assert (data.before, data.items, event.key) == (
        {"name": "Main", "slug": "main"},
        [],
        b"1:menu/7",
    )
    described = Binlog()
    row = tt(70, 7, "nav_menu", 3)
    described.txn(update(TAXONOMY, row, {**row, "description": "Top of every page"}))
    assert fold(site(), described) == []


def test_an_item_moved_to_another_menu_leaves_one_and_joins_the_other() -> None:
    log = Binlog()
    log.txn(delete(RELS, rel(13, 70)), insert(RELS, rel(13, 80)))
    events = fold(site(), log)
    assert [(e.key, ops(e.data)) for e in events if isinstance(e.data, MenuData)] == [
        (b"1:menu/7", [(13, "removed")]),
        (b"1:menu/8", [(13, "added")]),
    ]
    # One group, two events: the menu tells their ids apart.
    assert len({e.id for e in events}) == 2 and len({e.sequence for e in events}) == 1


def test_menu_items_and_menus_make_no_post_or_term_events() -> None:
    log = Binlog()
    post = post_row(5, status="publish", title="Post")
    log.txn(update(POSTS, post, {**post, "post_title": "Post!"}))
    row = item_row(11, "Home", 1)
    log.txn(update(POSTS, row, {**row, "post_title": "Start"}))
    log.txn(update(TERMS, term(7, "main", "Main"), term(7, "main", "Primary")))
    events = fold(site(), log)
    assert sorted((e.type, e.key) for e in events) == [
        ("menu_changed", b"1:menu/7"),
        ("post_updated", b"1:5"),
    ]
    post_event = next(e for e in events if isinstance(e.data, PostData))
    assert post_event.data.post.title == "Post!"
    _, data = only([e for e in events if e.type == "menu_changed"])
    assert (data.menu_change, ops(data)) == ("renamed", [(11, "updated")])


def test_the_fold_routes_menu_rows_to_the_blog_s_menus_group() -> None:
    folder = Folder(config=FoldConfig(), mirror=site())

    def target(kind: TableKind, row: dict[str, Any], blog: int = 1) -> Any:
        return folder.target(RowChange(TableRef(blog, kind), Op.INSERT, None, row, 0))

    assert target(POSTS, item_row(11)) == (-1, 0)
    assert target(POSTS, item_row(11), blog=2) == (-2, 0)
    assert target(POSTMETA, meta(1, 12, "_menu_item_url", "")) == (-1, 0)
    assert target(RELS, rel(13, 70)) == (-1, 0)
    assert target(TERMS, term(7, "main")) == (-1, 0)
    assert target(TAXONOMY, tt(80, 8, "nav_menu")) == (-1, 0)
    # Everything else as before.
    assert target(POSTS, post_row(5)) == (1, 5)
    assert target(POSTMETA, meta(1, 5, "k", "v")) == (1, 5)
    assert target(TERMS, term(1, "uncategorized")) == (1, -1)


def test_snapshots_and_verify_leave_menu_items_out_like_the_stream() -> None:
    config = FoldConfig()
    assert not wanted(PostBundle(1, item_row(11), [], []), config)
    assert wanted(PostBundle(1, post_row(5), [], []), config)


def test_an_item_in_no_menu_makes_no_event_until_it_joins_one() -> None:
    log = Binlog()
    log.txn(insert(POSTS, item_row(20, "Draft", 1, status="draft")))
    for row in item_meta(20, 200, "http://a.test/x/", _menu_item_orphaned="1800000000"):
        log.txn(insert(POSTMETA, row))
    mirror = site()
    assert fold(mirror, log) == []
    joined = Binlog(pos=log.pos)
    joined.txn(insert(RELS, rel(20, 80)))
    joined.txn(delete(POSTMETA, meta(208, 20, "_menu_item_orphaned", "1800000000")))
    _, data = only(fold(mirror, joined))
    assert (data.term_id, ops(data), data.items[0].status) == (8, [(20, "added")], None)


def test_a_replayed_group_states_every_item_and_menu_it_touched() -> None:
    log = Binlog()
    row = item_row(11, "Home", 1)
    log.txn(update(POSTS, row, {**row, "post_modified": "2026-11-24 10:00:00"}))
    log.txn(update(TERMS, term(7, "main", "Main"), term(7, "main", "Main")))
    add_item(log, 14, 70, "Tmp", 4, "")
    delete_item(log, 14, 70, "Tmp", 4, "")
    assert fold(site(), log) == []
    _, data = only(fold(site(), log, replay_until=Position(log.file, log.pos)))
    assert (data.menu_change, data.before) == ("renamed", {"name": "Main", "slug": "main"})
    assert ops(data) == [(11, "updated"), (14, "removed")]
    home = data.items[0]
    assert home.changed == ["title", "order", "status", "attr_title", "description"]


def test_a_menus_group_is_acknowledged_covered_and_skipped_on_resume() -> None:
    log = Binlog()
    row = item_row(11, "Home", 1)
    part = log.txn(update(POSTS, row, {**row, "post_title": "Start"}))
    folder = Folder(config=FoldConfig(), mirror=site())
    folder.feed(part)
    (closed,) = folder.close_all()
    assert (closed.blog_id, closed.post_id) == (-1, 0)  # the menus key, no post's or blog's
    assert [e.key for e in closed.events] == [b"1:menu/7"]
    covered, again = refold_after_ack(closed, part, site())
    assert covered == [(-1, 0)]
    assert again == []


def test_a_menu_of_blog_two_is_keyed_and_named_per_blog() -> None:
    mirror = Mirror()
    mirror.load_taxonomies(2, [(70, "nav_menu", 7)])
    mirror.load_terms(2, [(7, "main", "Main")])
    log = Binlog(blog_id=2)
    log.txn(update(TERMS, term(7, "main", "Main"), term(7, "main", "Top")))
    event, data = only(fold(mirror, log))
    assert (event.key, to_envelope(event, "s")["subject"]) == (b"2:menu/7", "blog/2/menu/7")
    assert data.blog_id == 2 and data.cache_tags == ["menu:2:7", "site:2"]


def test_an_oversize_menu_event_keeps_its_item_ids() -> None:
    log = Binlog()
    for item_id, title, order, url in MAIN:
        delete_item(log, item_id, 70, title * 500, order, url)
    event, _ = only(fold(site(), log))
    value, omitted = fit(event, "s", 2000)
    assert omitted == ["items.fields"]
    items = orjson.loads(value)["data"]["items"]
    assert [(i["id"], i["op"], i["title"]) for i in items] == [
        (11, "removed", None),
        (12, "removed", None),
        (13, "removed", None),
    ]
