"""Live re-snapshot: whole posts re-emitted on request while `wpcdc run` streams,
never landing after a newer change of the same post."""

from __future__ import annotations

import time

import pytest

from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import events_of
from tests.support.wordpress import BackgroundPhp

pytestmark = pytest.mark.integration


def resnapshot(stack: Stack, *args: str) -> None:
    result = stack.wpcdc("resnapshot", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "re-snapshot request" in result.stdout


def test_requested_posts_are_re_emitted_whole(wp_stack: WordPressStack) -> None:
    ids = wp_stack.wordpress.php(
        """
        $ids = [];
        for ($i = 0; $i < 7; $i++) {
            $ids[] = wp_insert_post(['post_title' => "r$i", 'post_status' => 'publish',
                'tags_input' => ["tag$i"], 'meta_input' => ['n' => $i]], true);
        }
        return $ids;
        """
    )
    wp_stack.streamer.start()
    resnapshot(wp_stack, "--post", str(ids[0]), "--post", str(ids[1]))
    resnapshot(wp_stack, "--ids", f"{ids[2]}:{ids[6]}")
    wp_stack.wait_caught_up()
    time.sleep(1)
    wp_stack.wait_caught_up()
    records = wp_stack.read_topic()
    snapshots = [r.event for r in records if r.event["type"] == "post_snapshot"]
    assert sorted(e["data"]["post_id"] for e in snapshots) == sorted(ids)
    for event in snapshots:
        data = event["data"]
        index = ids.index(data["post_id"])
        assert data["reason"] == "requested"
        assert data["post"]["title"] == f"r{index}"
        assert sorted(t["slug"] for t in data["terms"]) == [f"tag{index}", "uncategorized"]
        assert [(m["key"], m["value"]) for m in data["meta"]] == [("n", str(index))]
    done = wp_stack.execute(
        "SELECT COUNT(*) FROM wp_wpcdc_signal WHERE kind = 'snapshot' AND done_at IS NOT NULL"
    )
    assert done == [(2,)]
    assert wp_stack.streamer.stop() == 0


def test_resnapshot_of_a_post_edited_at_the_same_moment_ends_with_the_newer_state(
    wp_stack: WordPressStack,
) -> None:
    post_id = wp_stack.wordpress.php(
        "return wp_insert_post(['post_title' => 'v0', 'post_status' => 'publish'], true);"
    )
    wp_stack.streamer.start()
    editing = BackgroundPhp(
        wp_stack.wordpress,
        """
        global $wpdb;
        for ($i = 1; $i <= 400; $i++) {
            $wpdb->update($wpdb->posts, ['post_title' => "v$i"], ['ID' => $args]);
            usleep(5000);
        }
        return true;
        """,
        post_id,
    )
    editing.start()
    for _ in range(8):  # requests land in the middle of the edits
        resnapshot(wp_stack, "--post", str(post_id))
        time.sleep(0.25)
    editing.finish(120)
    wp_stack.wait_caught_up()
    events = events_of(wp_stack.read_topic(), f"post/{post_id}")
    final = wp_stack.execute(f"SELECT post_title FROM wp_posts WHERE ID = {post_id}")[0][0]
    assert final == "v400"
    titles = [int(e["data"]["post"]["title"][1:]) for e in events]
    snapshots = [e for e in events if e["type"] == "post_snapshot"]
    assert snapshots, "no re-snapshot was emitted"
    # In topic order, no event shows an older state than one before it: a
    # re-snapshot never lands after a newer streamed change, nor goes back in time.
    assert titles == sorted(titles), titles
    assert events[-1]["data"]["post"]["title"] == final
    assert wp_stack.streamer.stop() == 0
