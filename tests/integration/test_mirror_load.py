"""The start-up load (wpcdc.mysql.posts.load_mirror) against a real WordPress:
what it reads is what links need, and a table WordPress normally has but this
database lacks costs links, never the stream."""

from __future__ import annotations

import logging
import random

import pytest
from pydantic import SecretStr

from tests.support.stack import WordPressStack
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.site import BlogView
from wpcdc.mysql.posts import load_mirror

pytestmark = [pytest.mark.integration]

MAKE = """
$parent = wp_insert_post(['post_type' => 'page', 'post_title' => 'Parent', 'post_status' => 'publish']);
$child = wp_insert_post(['post_type' => 'page', 'post_title' => 'Child', 'post_name' => 'kid',
    'post_parent' => $parent, 'post_status' => 'publish']);
$top = wp_insert_term('Top', 'category');
$sub = wp_insert_term('Sub', 'category', ['parent' => $top['term_id']]);
$post = wp_insert_post(['post_title' => 'In sub', 'post_status' => 'publish',
    'post_category' => [$sub['term_id']], 'post_author' => 1]);
wp_update_post(['ID' => $post, 'post_title' => 'In sub, edited']);  // leaves a revision
return ['parent' => $parent, 'child' => $child, 'post' => $post,
    'top' => $top['term_id'], 'sub' => $sub['term_id']];
"""


def settings(stack: WordPressStack) -> MysqlSettings:
    server = stack.server
    return MysqlSettings(
        host=server.host,
        port=server.port,
        user=server.user,
        password=SecretStr(server.password),
        database=stack.database,
        server_id=random.randint(10_000, 2**31),
    )


def test_the_start_up_load_reads_what_links_need(wp_stack: WordPressStack) -> None:
    made = wp_stack.wordpress.php(MAKE)
    mirror = load_mirror(settings(wp_stack))
    view = BlogView(mirror, 1)

    assert view.option("home") == wp_stack.wordpress.url
    child = view.post(made["child"])
    assert child is not None
    assert (child.type, child.status, child.name, child.parent) == (
        "page",
        "publish",
        "kid",
        made["parent"],
    )
    post = view.post(made["post"])
    assert post is not None and post.author == 1 and post.date[:2] == "20"
    assert view.categories(made["post"]) == [made["sub"]]
    sub = view.term(made["sub"])
    assert sub is not None and sub.parent == made["top"]
    assert view.nicename(1) == "admin"
    # Revisions are in the post mirror (types decide what folds), not among the slugs.
    ((revision,),) = wp_stack.execute(
        f"SELECT MAX(ID) FROM wp_posts WHERE post_type = 'revision' AND post_parent = {made['post']}"
    )
    assert mirror.post(1, int(revision)) is not None
    assert view.post(int(revision)) is None


def test_missing_users_and_options_tables_cost_links_not_the_load(
    wp_stack: WordPressStack, caplog: pytest.LogCaptureFixture
) -> None:
    made = wp_stack.wordpress.php(MAKE)
    wp_stack.execute("DROP TABLE wp_users")
    wp_stack.execute("DROP TABLE wp_options")
    with caplog.at_level(logging.WARNING, logger="wpcdc.mirror"):
        mirror = load_mirror(settings(wp_stack))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("wp_options is missing" in w for w in warnings), warnings
    assert any("wp_users is missing" in w for w in warnings), warnings
    view = BlogView(mirror, 1)
    assert view.option("home") == ""
    assert view.nicename(1) is None
    # Everything after the missing tables was still read.
    assert view.categories(made["post"]) == [made["sub"]]
    assert mirror.post(1, made["child"]) is not None
