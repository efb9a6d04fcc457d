"""Golden URL tests: the links in events equal what WordPress itself returns.

For each permalink structure, WordPress makes changes while `wpcdc run` streams
(publish, rename a slug, re-parent a page, change categories, unpublish, edit an
attachment, a custom post type with its own rewrite slug, the static front
page); right after each, WordPress's own ``get_permalink()``,
``get_term_link()``, ``get_author_posts_url()``, ``home_url('/')`` and
``get_post_type_archive_link('post')`` run on the same database, as an
anonymous visitor, and must equal the ``links`` of the post's latest event.
The permalink before the change must be the event's ``previous_permalink``
whenever the two differ.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of
from wpcdc.local.wordpress import WordPressSite

pytestmark = [
    pytest.mark.integration,
    pytest.mark.flavors("mariadb", "mysql"),
    pytest.mark.wordpress_releases("6.1", "7"),
]

# What the site's PHP registers (plugins and themes do this in real sites); wpcdc
# is told the same through its [links] settings.
REGISTER = """
register_post_type('book', ['public' => true, 'rewrite' => ['slug' => 'books']]);
register_taxonomy('genre', ['book', 'post'], ['public' => true, 'hierarchical' => true,
    'rewrite' => ['slug' => 'genres', 'hierarchical' => true]]);
"""
LINKS_ENV = {
    "WPCDC_LINKS__POST_TYPES": json.dumps({"book": {"slug": "books"}}),
    "WPCDC_LINKS__TAXONOMIES": json.dumps({"genre": {"slug": "genres", "hierarchical": True}}),
}

# The oracle: what WordPress returns for these posts now, for an anonymous visitor.
ORACLE = (
    REGISTER
    + """
wp_set_current_user(0);
$out = [];
foreach ($args as $id) {
    $post = get_post($id);
    $terms = [];
    foreach (get_object_taxonomies($post->post_type) as $tax) {
        if (in_array($tax, ['post_format'], true)) { continue; }
        foreach (wp_get_object_terms($id, $tax) as $term) {
            $terms[$term->term_id] = get_term_link($term);
        }
    }
    $out[$id] = [
        'permalink' => get_permalink($id),
        'terms' => (object) $terms,
        'author' => get_author_posts_url((int) $post->post_author),
        'home' => home_url('/'),
        'posts_page' => get_post_type_archive_link('post'),
    ];
}
return $out;
"""
)

SETUP = (
    REGISTER
    + """
update_option('permalink_structure', $args['structure']);
update_option('category_base', $args['category_base']);
update_option('tag_base', $args['tag_base']);
$news = wp_insert_term('News', 'category')['term_id'];
$local = wp_insert_term('Local News', 'category', ['parent' => $news])['term_id'];
$alpha = wp_insert_term('Alpha', 'category')['term_id'];
$fiction = wp_insert_term('Fiction', 'genre')['term_id'];
$crime = wp_insert_term('Crime', 'genre', ['parent' => $fiction])['term_id'];
$page = fn($title, $parent = 0) => wp_insert_post(['post_type' => 'page',
    'post_title' => $title, 'post_status' => 'publish', 'post_parent' => $parent], true);
$about = $page('About us');
$team = $page('Team', $about);
$people = $page('People', $team);
$front = $page('Welcome');
$blog = $page('Blog');
update_option('show_on_front', 'page');
update_option('page_on_front', $front);
update_option('page_for_posts', $blog);
$post = wp_insert_post(['post_title' => 'Old post', 'post_status' => 'publish',
    'post_date' => '2024-03-05 10:20:30', 'post_category' => [$local],
    'tags_input' => ['red']], true);
$attachment = wp_insert_attachment(['post_title' => 'A picture', 'post_mime_type' => 'image/png',
    'post_status' => 'inherit'], false, $post);
$book = wp_insert_post(['post_type' => 'book', 'post_title' => 'A book',
    'post_status' => 'publish'], true);
wp_set_object_terms($book, [$crime], 'genre');
return compact('news', 'local', 'alpha', 'about', 'team', 'people', 'front', 'blog', 'post',
    'attachment', 'book');
"""
)

# Each step: what WordPress does, and the post whose event must carry its links.
STEPS: list[tuple[str, str, str]] = [
    (
        "publish a new post in a child category",
        """$id = wp_insert_post(['post_title' => 'Fresh news', 'post_status' => 'publish',
            'post_category' => [$args['local']], 'tags_input' => ['blue']], true);
        return $id;""",
        "<result>",
    ),
    (
        "rename a post's slug",
        "wp_update_post(['ID' => $args['post'], 'post_name' => 'renamed-post']); return 0;",
        "post",
    ),
    (
        "move a post to another category",
        "wp_set_post_categories($args['post'], [$args['alpha']]); return 0;",
        "post",
    ),
    (
        "re-parent a page",
        "wp_update_post(['ID' => $args['people'], 'post_parent' => $args['about']]); return 0;",
        "people",
    ),
    (
        "edit the static front page",
        "wp_update_post(['ID' => $args['front'], 'post_title' => 'Welcome!']); return 0;",
        "front",
    ),
    (
        "edit the posts page",
        "wp_update_post(['ID' => $args['blog'], 'post_name' => 'journal']); return 0;",
        "blog",
    ),
    (
        "edit an attachment",
        "wp_update_post(['ID' => $args['attachment'], 'post_title' => 'Renamed']); return 0;",
        "attachment",
    ),
    (
        "rename a custom post type's post",
        "wp_update_post(['ID' => $args['book'], 'post_name' => 'the-book']); return 0;",
        "book",
    ),
    (
        "trash a page",
        "wp_trash_post($args['team']); return 0;",
        "team",
    ),
    (
        "unpublish a post",
        "wp_update_post(['ID' => $args['post'], 'post_status' => 'draft']); return 0;",
        "post",
    ),
]

STRUCTURES = {
    "plain": ("", "", ""),
    "postname": ("/%postname%/", "", ""),
    "date": ("/%year%/%monthnum%/%postname%/", "/topics", "/labels"),
    "category": ("/%category%/%postname%/", "", ""),
    "archives": ("/archives/%post_id%", "", ""),
}


def oracle(site: WordPressSite, ids: list[int]) -> dict[int, dict[str, Any]]:
    found = site.php(ORACLE, ids)
    return {int(k): v for k, v in found.items()}


def links_since(wp_stack: WordPressStack, post_id: int, seen: int) -> list[dict[str, Any]]:
    """The links of the post's events after its first ``seen`` events, in order."""
    events = events_of(wp_stack.read_topic(), f"post/{post_id}")[seen:]
    with_links = [e for e in events if e["data"].get("links") is not None]
    assert with_links, f"no event with links for post {post_id}: {[e['type'] for e in events]}"
    for event in events:
        assert f"post:1:{post_id}" in event["data"]["cache_tags"], event["type"]
    return [e["data"]["links"] for e in with_links]


def compare(links: dict[str, Any], want: dict[str, Any], what: str) -> None:
    assert links["permalink"] == want["permalink"], what
    assert links["home"] == want["home"], what
    assert links["posts_page"] == want["posts_page"], what
    assert links["author"] == want["author"], what
    terms = {str(t["term_id"]): t["link"] for t in links["terms"]}
    assert terms == want["terms"], what


@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_links_equal_wordpress(structure: str, wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    permalinks, category_base, tag_base = STRUCTURES[structure]
    ids = site.php(
        SETUP,
        {"structure": permalinks, "category_base": category_base, "tag_base": tag_base},
    )
    wp_stack.streamer.start(extra_env=LINKS_ENV)
    wp_stack.wait_caught_up()
    for what, action, target in STEPS:
        target_id = ids.get(target)
        before = oracle(site, [target_id])[target_id] if target_id else None
        seen = len(events_of(wp_stack.read_topic(), f"post/{target_id}")) if target_id else 0
        result = site.php(REGISTER + action, ids)
        post_id = int(result) if target == "<result>" else int(target_id)
        wp_stack.wait_caught_up()
        want = oracle(site, [post_id])[post_id]
        links = links_since(wp_stack, post_id, seen)
        compare(links[-1], want, f"{structure}: {what}")
        previous = {item["previous_permalink"] for item in links} - {None}
        if before is not None and before["permalink"] != want["permalink"]:
            assert previous == {before["permalink"]}, f"{structure}: {what}"
        else:
            assert not previous, f"{structure}: {what}"
    assert wp_stack.streamer.stop() == 0


# switch_to_blog() keeps blog 1's rewrite rules (its front is /blog/ on a network's main
# site); a request to blog 2 builds them from blog 2's options, as these two calls do.
MULTISITE_ORACLE = """
switch_to_blog(2);
$GLOBALS['wp_rewrite']->init();
create_initial_taxonomies();
wp_set_current_user(0);
$post = get_post($args);
$terms = [];
foreach (wp_get_object_terms($args, ['category', 'post_tag']) as $term) {
    $terms[$term->term_id] = get_term_link($term);
}
$out = ['permalink' => get_permalink($args), 'terms' => (object) $terms,
    'author' => get_author_posts_url((int) $post->post_author), 'home' => home_url('/'),
    'posts_page' => get_post_type_archive_link('post')];
restore_current_blog();
return $out;
"""


def test_links_on_multisite_blog_two(wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress.enable_multisite()
    assert site.create_blog("two", "Blog two") == 2
    site.php(
        """switch_to_blog(2);
        update_option('permalink_structure', '/%year%/%postname%/');
        wp_insert_term('Sport', 'category');
        restore_current_blog(); return 0;"""
    )
    wp_stack.streamer.start()
    post_id = site.php(
        """switch_to_blog(2);
        $sport = get_term_by('slug', 'sport', 'category')->term_id;
        $id = wp_insert_post(['post_title' => 'On blog two', 'post_status' => 'publish',
            'post_category' => [$sport]], true);
        restore_current_blog(); return $id;"""
    )
    wp_stack.wait_caught_up()
    want = site.php(MULTISITE_ORACLE, post_id)
    events = events_of(wp_stack.read_topic(), f"blog/2/post/{post_id}")
    with_links = [e for e in events if e["data"].get("links") is not None]
    assert with_links, [e["type"] for e in events]
    for event in events:
        assert f"post:2:{post_id}" in event["data"]["cache_tags"]
    compare(with_links[-1]["data"]["links"], want, "multisite blog 2")
    assert "/two/" in want["permalink"]
    assert wp_stack.streamer.stop() == 0


@pytest.mark.parametrize("structure", ["category", "archives"])
def test_snapshot_links_equal_wordpress(structure: str, wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    permalinks, category_base, tag_base = STRUCTURES[structure]
    site.php(SETUP, {"structure": permalinks, "category_base": category_base, "tag_base": tag_base})
    done = wp_stack.wpcdc("snapshot", timeout=120, env=LINKS_ENV)
    assert done.returncode == 0, done.stderr
    snapshots = [r.event for r in wp_stack.read_topic() if r.event["type"] == "post_snapshot"]
    ids = [int(e["data"]["post_id"]) for e in snapshots]
    want = oracle(site, ids)
    assert len(ids) >= 10
    for event in snapshots:
        post_id = int(event["data"]["post_id"])
        compare(event["data"]["links"], want[post_id], f"{structure}: snapshot of {post_id}")
        assert f"post:1:{post_id}" in event["data"]["cache_tags"]


def test_a_permalink_settings_change_is_one_site_event(wp_stack: WordPressStack) -> None:
    site = wp_stack.wordpress
    wp_stack.streamer.start()
    site.php(
        """
        set_transient('wpcdc_noise', str_repeat('x', 1000), 60);
        update_option('permalink_structure', '/%year%/%postname%/');
        update_option('category_base', '/topics');
        update_option('tag_base', '');
        for ($i = 0; $i < 50; $i++) { set_transient("wpcdc_noise_$i", $i, 60); }
        return 0;
        """
    )
    wp_stack.wait_caught_up()
    records = wp_stack.read_topic()
    events = [r.event for r in records if r.event["type"] == "site_settings_changed"]
    assert len(events) == 1, [r.event["type"] for r in records]
    event = events[0]
    assert event["subject"] == "site"
    assert {r.key for r in records if r.event is event} == {b"1:0"}
    data = event["data"]
    assert data["changed"] == ["category_base", "permalink_structure"]
    assert data["after"] == {
        "category_base": "/topics",
        "permalink_structure": "/%year%/%postname%/",
    }
    assert data["moves_all_urls"] is True
    assert data["cache_tags"] == ["site:1"]
    assert data["links"]["home"] == site.php("return home_url('/');")
    # Transients made no event and no other record.
    assert all(r.event["type"] == "site_settings_changed" for r in records)
    assert wp_stack.streamer.stop() == 0
