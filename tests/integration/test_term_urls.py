"""Golden tests of term and author events: their links equal what WordPress returns.

WordPress creates, renames, re-slugs, re-parents, describes and deletes terms
(``wp_insert_term``, ``wp_update_term``, ``wp_delete_term``) and renames an
author (``wp_update_user``) while `wpcdc run` streams; right before and right
after each change WordPress's own ``get_term_link()``,
``get_author_posts_url()`` and ``get_permalink()`` run on the same database, as
an anonymous visitor. The event's ``links`` must equal the link after the
change and, when it differs, the one before; ``posts_moved`` must equal the
number of posts whose permalink WordPress now gives differently.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_urls import LINKS_ENV, REGISTER, STRUCTURES
from tests.support.stack import WordPressStack
from tests.support.streaming import events_of
from wpcdc.local.wordpress import WordPressSite

pytestmark = [
    pytest.mark.integration,
    pytest.mark.flavors("mariadb", "mysql"),
    pytest.mark.wordpress_releases("6.1", "7"),
]

# The oracle: every term's link (null once it is gone), every post's permalink.
ORACLE = (
    REGISTER
    + """
wp_set_current_user(0);
$terms = [];
foreach ($args as $id) {
    $term = get_term((int) $id);
    $terms[$id] = ($term instanceof WP_Term) ? get_term_link($term) : null;
}
$posts = [];
foreach (get_posts(['post_type' => 'post', 'post_status' => 'any', 'numberposts' => -1]) as $p) {
    $posts[$p->ID] = get_permalink($p);
}
return ['terms' => (object) $terms, 'posts' => (object) $posts];
"""
)

SETUP = (
    REGISTER
    + """
update_option('permalink_structure', $args['structure']);
update_option('category_base', $args['category_base']);
update_option('tag_base', $args['tag_base']);
$news = wp_insert_term('News', 'category')['term_id'];
$local = wp_insert_term('Local', 'category', ['parent' => $news])['term_id'];
$alpha = wp_insert_term('Alpha', 'category')['term_id'];
$red = wp_insert_term('Red', 'post_tag')['term_id'];
$fiction = wp_insert_term('Fiction', 'genre')['term_id'];
$crime = wp_insert_term('Crime', 'genre', ['parent' => $fiction])['term_id'];
foreach (['publish', 'publish', 'draft'] as $i => $status) {
    wp_insert_post(['post_title' => "Local $i", 'post_status' => $status,
        'post_date' => '2024-03-05 10:20:30', 'post_category' => [$local],
        'tags_input' => ['red']], true);
}
return compact('news', 'local', 'alpha', 'red', 'fiction', 'crime');
"""
)

# Each step: what WordPress does, and the terms whose events it must make:
# (term, event type, changed fields). "<result>" is the term the step returns.
STEPS: list[tuple[str, str, list[tuple[str, str, list[str]]]]] = [
    (
        "create a category under another",
        "return wp_insert_term('Sport', 'category', ['parent' => $args['news']])['term_id'];",
        [("<result>", "term_created", [])],
    ),
    (
        "rename a category",
        "wp_update_term($args['news'], 'category', ['name' => 'Headlines']); return 0;",
        [("news", "term_updated", ["name"])],
    ),
    (
        "re-slug a category with posts below it",
        "wp_update_term($args['news'], 'category', ['slug' => 'headlines']); return 0;",
        [("news", "term_updated", ["slug"])],
    ),
    (
        "re-parent a category",
        "wp_update_term($args['local'], 'category', ['parent' => $args['alpha']]); return 0;",
        [("local", "term_updated", ["parent"])],
    ),
    (
        "re-slug a tag",
        "wp_update_term($args['red'], 'post_tag', ['slug' => 'crimson']); return 0;",
        [("red", "term_updated", ["slug"])],
    ),
    (
        "re-parent a custom taxonomy's term",
        "wp_update_term($args['crime'], 'genre', ['parent' => 0]); return 0;",
        [("crime", "term_updated", ["parent"])],
    ),
    (
        "describe a category",
        "wp_update_term($args['alpha'], 'category', ['description' => 'All of A']); return 0;",
        [("alpha", "term_updated", ["description"])],
    ),
    (
        "delete a category whose child moves up",
        "wp_delete_term($args['alpha'], 'category'); return 0;",
        [("alpha", "term_deleted", []), ("local", "term_updated", ["parent"])],
    ),
]


def oracle(site: WordPressSite, ids: dict[str, int]) -> dict[str, Any]:
    return site.php(ORACLE, sorted(set(ids.values())))  # type: ignore[no-any-return]


def term_events(wp_stack: WordPressStack, term_id: int) -> list[dict[str, Any]]:
    return events_of(wp_stack.read_topic(), f"term/{term_id}")


@pytest.mark.parametrize("structure", ["category", "date", "plain"])
def test_term_links_equal_wordpress(structure: str, wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    permalinks, category_base, tag_base = STRUCTURES[structure]
    ids: dict[str, int] = site.php(
        SETUP, {"structure": permalinks, "category_base": category_base, "tag_base": tag_base}
    )
    wp_stack.streamer.start(extra_env=LINKS_ENV)
    wp_stack.wait_caught_up()
    for what, action, targets in STEPS:
        before = oracle(site, ids)
        seen = {name: len(term_events(wp_stack, ids[name])) for name in ids}
        result = site.php(REGISTER + action, ids)
        if result:
            ids["<result>"] = int(result)
        wp_stack.wait_caught_up()
        after = oracle(site, ids)
        step = f"{structure}: {what}"
        moved = 0
        for name, event_type, changed in targets:
            term_id = ids[name]
            events = term_events(wp_stack, term_id)[seen.get(name, 0) :]
            assert [e["type"] for e in events] == [event_type], step
            data = events[0]["data"]
            assert events[0]["subject"] == f"term/{term_id}", step
            assert data["term_id"] == term_id and data["changed"] == changed, step
            assert {"site:1", f"term:1:{term_id}"} <= set(data["cache_tags"]), step
            now, was = after["terms"][str(term_id)], before["terms"].get(str(term_id))
            assert data["links"]["term"] == now, step
            assert data["links"]["previous"] == (was if was != now else None), step
            moved += data["posts_moved"]
        # The posts whose permalink WordPress now gives differently: all counted.
        changed_posts = [p for p, link in after["posts"].items() if before["posts"][p] != link]
        assert moved == len(changed_posts), f"{step}: {changed_posts}"
        if structure == "category" and "category with posts" in what:
            assert moved == 2, step  # the two published posts in Local, below News
    assert wp_stack.streamer.stop() == 0


AUTHOR_ORACLE = "wp_set_current_user(0); return get_author_posts_url(1);"


def test_author_links_equal_wordpress(wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    site.php("update_option('permalink_structure', '/%postname%/'); return 0;")
    wp_stack.streamer.start()
    wp_stack.wait_caught_up()
    changes = [
        (
            "['user_nicename' => 'chief', 'display_name' => 'The Chief']",
            ["nicename", "display_name"],
        ),
        ("['display_name' => 'Boss']", ["display_name"]),
    ]
    for fields, changed in changes:
        before = site.php(AUTHOR_ORACLE)
        seen = len(events_of(wp_stack.read_topic(), "author/1"))
        site.php(f"wp_update_user(['ID' => 1] + {fields}); return 0;")
        wp_stack.wait_caught_up()
        after = site.php(AUTHOR_ORACLE)
        records = [r for r in wp_stack.read_topic() if r.event["subject"] == "author/1"]
        assert [r.event["type"] for r in records[seen:]] == ["author_updated"], fields
        assert {r.key for r in records} == {b"1:author/1"}
        data = records[-1].event["data"]
        assert data["user_id"] == 1 and data["changed"] == changed
        assert data["links"]["author"] == after
        assert data["links"]["previous"] == (before if before != after else None)
        assert data["cache_tags"] == ["author:1:1"]
    assert site.php(AUTHOR_ORACLE).endswith("/author/chief/")
    assert wp_stack.streamer.stop() == 0
