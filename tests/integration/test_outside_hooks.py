"""A change made behind WordPress's back gives the same events as the same change
made through WordPress: the binlog does not know who wrote it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of

pytestmark = pytest.mark.integration


def essence(event: dict[str, Any]) -> tuple[Any, ...]:
    data = event["data"]
    if event["type"] == "taxonomy_changed":
        return (event["type"], sorted(t["slug"] for t in data["added"]), data["removed"])
    if event["type"] == "post_meta_changed":
        return (event["type"], [(c["key"], c["op"], c["value"]) for c in data["changes"]])
    return (event["type"], data["changed"], {k: data["post"][k] for k in data["changed"]})


def test_sql_and_wordpress_api_changes_give_the_same_events(wp_stack: WordPressStack) -> None:
    ids = wp_stack.wordpress.php(
        """
        $make = fn($t) => wp_insert_post(['post_title' => $t, 'post_status' => 'publish'], true);
        wp_insert_term('shared', 'post_tag');
        return [$make('via api'), $make('via sql')];
        """
    )
    wp_stack.streamer.start()
    wp_stack.wordpress.php(
        """
        global $wpdb;
        [$api, $sql] = $args;
        $term = get_term_by('slug', 'shared', 'post_tag');
        // Through WordPress: hooks fire, caches are cleared.
        wp_set_post_terms($api, ['shared'], 'post_tag', true);
        add_post_meta($api, 'rating', '5');
        $wpdb->update($wpdb->posts, ['post_excerpt' => 'same words'], ['ID' => $api]);
        sleep(2);
        // Behind its back: the same rows, written with plain SQL.
        $wpdb->insert($wpdb->term_relationships, ['object_id' => $sql, 'term_taxonomy_id' => $term->term_taxonomy_id]);
        $wpdb->insert($wpdb->postmeta, ['post_id' => $sql, 'meta_key' => 'rating', 'meta_value' => '5']);
        $wpdb->query($wpdb->prepare("UPDATE {$wpdb->posts} SET post_excerpt = 'same words' WHERE ID = %d", $sql));
        return true;
        """,
        ids,
    )
    wp_stack.wait_caught_up()
    records = wp_stack.read_topic()
    via_api, via_sql = (events_of(records, f"post/{post_id}") for post_id in ids)
    assert [e["type"] for e in via_api] == ["post_updated", "post_meta_changed", "taxonomy_changed"]
    assert [essence(e) for e in via_api] == [essence(e) for e in via_sql]
    assert wp_stack.streamer.stop() == 0
