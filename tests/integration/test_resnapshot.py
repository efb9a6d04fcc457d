"""Live re-snapshot: whole posts re-emitted on request while `wpcdc run` streams,
never landing after a newer change of the same post."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.infra import KafkaEndpoint, MysqlEndpoint
from tests.support.streaming import Streamer, events_of, read_topic
from tests.support.wordpress import BackgroundPhp
from wpcdc.local.wordpress import WordPressSite

pytestmark = pytest.mark.integration


def resnapshot(streamer: Streamer, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wpcdc", "resnapshot", *args],
        env=streamer.env,
        cwd=streamer.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "re-snapshot request" in result.stdout


def test_requested_posts_are_re_emitted_whole(
    wordpress: WordPressSite,
    mysql_server: MysqlEndpoint,
    streamer: Streamer,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
) -> None:
    ids = wordpress.php(
        """
        $ids = [];
        for ($i = 0; $i < 7; $i++) {
            $ids[] = wp_insert_post(['post_title' => "r$i", 'post_status' => 'publish',
                'tags_input' => ["tag$i"], 'meta_input' => ['n' => $i]], true);
        }
        return $ids;
        """
    )
    streamer.start()
    resnapshot(streamer, "--post", str(ids[0]), "--post", str(ids[1]))
    resnapshot(streamer, "--ids", f"{ids[2]}:{ids[6]}")
    streamer.wait_caught_up(mysql_server)
    time.sleep(1)
    streamer.wait_caught_up(mysql_server)
    records = read_topic(kafka_broker.bootstrap_servers, kafka_topic)
    snapshots = [r.event for r in records if r.event["type"] == "post_snapshot"]
    assert sorted(e["data"]["post_id"] for e in snapshots) == sorted(ids)
    for event in snapshots:
        data = event["data"]
        index = ids.index(data["post_id"])
        assert data["reason"] == "requested"
        assert data["post"]["title"] == f"r{index}"
        assert sorted(t["slug"] for t in data["terms"]) == [f"tag{index}", "uncategorized"]
        assert [(m["key"], m["value"]) for m in data["meta"]] == [("n", str(index))]
    done = mysql_server.execute(
        "SELECT COUNT(*) FROM wp_wpcdc_signal WHERE kind = 'snapshot' AND done_at IS NOT NULL",
        wordpress.database,
    )
    assert done == [(2,)]
    assert streamer.stop() == 0


def test_resnapshot_of_a_post_edited_at_the_same_moment_ends_with_the_newer_state(
    wordpress: WordPressSite,
    mysql_server: MysqlEndpoint,
    streamer: Streamer,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
) -> None:
    post_id = wordpress.php(
        "return wp_insert_post(['post_title' => 'v0', 'post_status' => 'publish'], true);"
    )
    streamer.start()
    editing = BackgroundPhp(
        wordpress,
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
        resnapshot(streamer, "--post", str(post_id))
        time.sleep(0.25)
    editing.finish(120)
    streamer.wait_caught_up(mysql_server)
    events = events_of(read_topic(kafka_broker.bootstrap_servers, kafka_topic), f"post/{post_id}")
    final = mysql_server.execute(
        f"SELECT post_title FROM wp_posts WHERE ID = {post_id}", wordpress.database
    )[0][0]
    assert final == "v400"
    titles = [int(e["data"]["post"]["title"][1:]) for e in events]
    snapshots = [e for e in events if e["type"] == "post_snapshot"]
    assert snapshots, "no re-snapshot was emitted"
    # In topic order, no event shows an older state than one before it: a
    # re-snapshot never lands after a newer streamed change, nor goes back in time.
    assert titles == sorted(titles), titles
    assert events[-1]["data"]["post"]["title"] == final
    assert streamer.stop() == 0
