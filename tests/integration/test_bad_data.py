"""Bad or big data never stops the stream (promise "loud failure", docs/ARCHITECTURE.md),
and stopping is clean."""

from __future__ import annotations

import time

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of

pytestmark = pytest.mark.integration

MALFORMED = 'a:2:{s:4:"name";s:9:"too short";s:3:"url";s:20:"http://example.com";}'


def test_malformed_meta_emoji_title_and_5mb_body_are_streamed_per_policy(
    wp_stack: WordPressStack,
) -> None:
    wp_stack.streamer.start()
    post_id = wp_stack.wordpress.php(
        """
        global $wpdb;
        $id = wp_insert_post(['post_title' => 'Grüße 😀🎉 naïve', 'post_status' => 'publish'], true);
        // A serialized value whose lengths a naive search/replace broke.
        $wpdb->insert($wpdb->postmeta, ['post_id' => $id, 'meta_key' => 'broken', 'meta_value' => $args['malformed']]);
        sleep(2);
        // 5 MB of content: more than kafka.max_message_bytes (1,000,000 by default).
        $wpdb->query($wpdb->prepare("UPDATE {$wpdb->posts} SET post_content = %s WHERE ID = %d",
            str_repeat('big body ', 582542), $id));
        sleep(2);
        wp_update_post(['ID' => $id, 'post_title' => 'Still streaming 🚀']);
        return $id;
        """,
        {"malformed": MALFORMED},
    )
    wp_stack.wait_caught_up()
    events = events_of(wp_stack.read_topic(), f"post/{post_id}")
    types = [e["type"] for e in events]
    assert types == [
        "post_created",
        "post_meta_changed",
        "taxonomy_changed",
        "post_updated",
        "post_updated",
    ]
    created, meta, _, big, after = events
    assert created["data"]["post"]["title"] == "Grüße 😀🎉 naïve"
    (change,) = meta["data"]["changes"]
    assert change["key"] == "broken"
    assert change["value"] == MALFORMED and change["raw"] == MALFORMED
    assert change["serialized"] is True and "serialize" in change["error"]
    # Oversize: the body is left out and flagged; the event itself is delivered.
    assert big["data"]["changed"] == ["content"]
    assert big["data"]["post"]["content"] is None
    assert big["data"]["omitted"] == ["post.content"]
    assert after["data"]["post"]["title"] == "Still streaming 🚀"
    assert "exceeds kafka.max_message_bytes" in wp_stack.streamer.log_text()
    assert wp_stack.streamer.stop() == 0


def test_sigterm_flushes_checkpoints_and_exits_0_within_10s(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    wp_stack.wordpress.php(
        "for ($i = 0; $i < 50; $i++) { wp_insert_post(['post_title' => \"p$i\", 'post_status' => 'publish']); } return true;"
    )
    started = time.monotonic()
    assert streamer.stop(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "checkpoint saved at" in streamer.log_text()
    saved = streamer.checkpoint()
    assert saved is not None
    # A restart resumes from that checkpoint and catches up with the rest.
    streamer.start()
    assert f"resuming at {saved.position}" in streamer.log_text()
    wp_stack.wait_caught_up()
    assert streamer.stop() == 0
