"""Golden test of menu events against WordPress: one ``menu_changed`` per menu save.

WordPress creates a menu with three items (``wp_create_nav_menu()`` and
``wp_update_nav_menu_item()``), then in one save renames an item and adds one,
then deletes an item (``wp_delete_post()``) while `wpcdc run` streams. Each save
must be exactly one ``menu_changed`` naming the right items and operations, with
the fields WordPress's own ``wp_get_nav_menu_items()`` gives; menu items (posts
of type ``nav_menu_item``) must make no post events, the menu no term events.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of

pytestmark = [pytest.mark.integration]

# A custom link item of the menu $args['menu'] (a new one when $args['id'] is 0).
ITEM = """
function wpcdc_item($menu, $id, $title, $url, $position) {
    return wp_update_nav_menu_item($menu, $id, [
        'menu-item-title' => $title, 'menu-item-url' => $url, 'menu-item-type' => 'custom',
        'menu-item-status' => 'publish', 'menu-item-position' => $position,
    ]);
}
"""

CREATE = (
    ITEM
    + """
$menu = wp_create_nav_menu('Main');
$ids = [];
foreach ([['Home', '/'], ['About', '/about/'], ['Blog', '/blog/']] as $i => [$title, $path]) {
    $ids[] = wpcdc_item($menu, 0, $title, home_url($path), $i + 1);
}
return ['menu' => $menu, 'items' => $ids];
"""
)

SAVE = (
    ITEM
    + """
wpcdc_item($args['menu'], $args['items'][0], 'Start', home_url('/'), 1);
return wpcdc_item($args['menu'], 0, 'Contact', home_url('/contact/'), 4);
"""
)

# WordPress's own reading of the menu's items: id => [title, url, order, parent].
ORACLE = """
$items = [];
foreach (wp_get_nav_menu_items($args['menu']) as $item) {
    $items[$item->ID] = [$item->title, $item->url, $item->menu_order,
                         (int) $item->menu_item_parent];
}
return (object) $items;
"""


def menu_events(wp_stack: WordPressStack, menu: int) -> list[dict[str, Any]]:
    return events_of(wp_stack.read_topic(), f"menu/{menu}")


def fields(item: dict[str, Any]) -> list[Any]:
    return [item["title"], item["url"], item["order"], item["parent"]]


def test_one_menu_changed_per_save(wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    wp_stack.streamer.start()
    wp_stack.wait_caught_up()

    created = site.php(CREATE)
    menu, (home, about, blog) = int(created["menu"]), [int(i) for i in created["items"]]
    wp_stack.wait_caught_up()
    (event,) = menu_events(wp_stack, menu)
    data = event["data"]
    assert event["type"] == "menu_changed"
    assert (data["term_id"], data["name"], data["slug"]) == (menu, "Main", "main")
    assert data["menu_change"] == "created"
    assert [(i["id"], i["op"]) for i in data["items"]] == [
        (home, "added"),
        (about, "added"),
        (blog, "added"),
    ]
    oracle = site.php(ORACLE, {"menu": menu})
    assert {str(i["id"]): fields(i) for i in data["items"]} == oracle
    assert {i["type"] for i in data["items"]} == {"custom"}
    assert {i["status"] for i in data["items"]} == {"publish"}
    assert data["cache_tags"] == [f"menu:1:{menu}", "site:1"]

    contact = int(site.php(SAVE, {"menu": menu, "items": [home, about, blog]}))
    wp_stack.wait_caught_up()
    events = menu_events(wp_stack, menu)[1:]
    assert [e["type"] for e in events] == ["menu_changed"]
    data = events[0]["data"]
    assert data["menu_change"] is None
    assert [(i["id"], i["op"]) for i in data["items"]] == [(home, "updated"), (contact, "added")]
    start, added = data["items"]
    assert (start["changed"], start["before"], start["title"]) == (
        ["title"],
        {"title": "Home"},
        "Start",
    )
    oracle = site.php(ORACLE, {"menu": menu})
    assert fields(added) == oracle[str(contact)]
    assert start["title"] == oracle[str(home)][0]

    site.php("return (bool) wp_delete_post($args, true);", about)
    wp_stack.wait_caught_up()
    events = menu_events(wp_stack, menu)[2:]
    assert [e["type"] for e in events] == ["menu_changed"]
    (removed,) = events[0]["data"]["items"]
    assert (removed["id"], removed["op"], removed["title"]) == (about, "removed", "About")
    assert str(about) not in site.php(ORACLE, {"menu": menu})

    records = wp_stack.read_topic()
    items = {home, about, blog, contact}
    # No post event for a menu item, no term event for the menu: only menu_changed.
    assert [r.event["type"] for r in records if r.event["subject"].startswith("menu/")] == [
        "menu_changed"
    ] * 3
    assert not [r for r in records if r.event["data"].get("post_type") == "nav_menu_item"]
    assert not [r for r in records if r.event["data"].get("post_id") in items]
    assert not events_of(records, f"term/{menu}")
    assert {r.key for r in records if r.event["type"] == "menu_changed"} == {
        f"1:menu/{menu}".encode()
    }
    assert wp_stack.streamer.stop() == 0
