"""Nothing committed is lost: crashes, database restarts and broker outages mid-stream.

Each test lets real WordPress write while `wpcdc run` streams, breaks something,
then rebuilds every post from the topic (deduplicated by id, ordered by
sequence) and compares it with the database.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from tests.support.materialize import compare_with_database, deduplicate, materialize
from tests.support.proxy import broker_behind_proxy
from tests.support.stack import WordPressStack, throwaway_site
from tests.support.streaming import binlog_end, read_topic
from tests.support.wordpress import BackgroundPhp
from wpcdc.local.wordpress import WordPressSite

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mariadb", "mysql")]

# One PHP process making many changes, as a bulk import or a busy site would:
# posts created with tags and meta, then rounds of title, meta and tag edits.
WRITER = """
$ids = [];
for ($i = 0; $i < $args['posts']; $i++) {
    $ids[] = wp_insert_post(['post_title' => "post $i", 'post_status' => 'publish',
        'tags_input' => ['t' . ($i % 5)], 'meta_input' => ['round' => 0]], true);
}
for ($round = 1; $round <= $args['rounds']; $round++) {
    foreach ($ids as $k => $id) {
        wp_update_post(['ID' => $id, 'post_title' => "post $k round $round"]);
        update_post_meta($id, 'round', $round);
        if ($round % 2 == 0) {
            wp_set_post_tags($id, ['t' . (($k + $round) % 5)]);
        }
        if ($args['pause_ms']) { usleep($args['pause_ms'] * 1000); }
    }
}
return $ids;
"""


def writer(site: WordPressSite, **args: Any) -> BackgroundPhp:
    """The WRITER snippet in the background; ``finish()`` gives the post ids."""
    return BackgroundPhp(site, WRITER, {"pause_ms": 0, **args})


def assert_topic_matches_database(
    server: MysqlEndpoint, database: str, bootstrap: str, topic: str, ids: list[int]
) -> int:
    records = read_topic(bootstrap, topic)
    problems = compare_with_database(materialize(deduplicate(records)), server, database, ids)
    assert problems == [], "\n".join(problems[:20])
    return len(records)


def test_kill_9_mid_stream_then_restart_loses_nothing(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    # 250 creates + 250 x 8 rounds x ~2.5 changes: about 5,000 WordPress changes.
    background = writer(wp_stack.wordpress, posts=250, rounds=8)
    background.start()
    start = streamer.checkpoint()
    assert start is not None
    deadline = time.monotonic() + 120
    while streamer.checkpoint().position == start.position:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no progress before the crash"
        time.sleep(0.2)
    time.sleep(2)
    streamer.kill()
    crashed_at = streamer.checkpoint()
    time.sleep(1)
    streamer.start()
    ids = background.finish()
    final = wp_stack.wait_caught_up(timeout=120)
    assert crashed_at is not None and crashed_at.position.key() < final.position.key()
    assert streamer.stop() == 0
    count = assert_topic_matches_database(
        wp_stack.server, wp_stack.database, wp_stack.broker.bootstrap_servers, wp_stack.topic, ids
    )
    assert count >= 250 * 8  # every round changed every post


def test_database_restart_mid_stream_loses_nothing(
    mysql_server_factory: ServerFactory,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    database = "wp_restart"
    server, site, streamer = throwaway_site(
        mysql_server_factory, kafka_broker, kafka_topic, tmp_path, database
    )
    try:
        streamer.start()
        site.php(WRITER, {"posts": 40, "rounds": 2, "pause_ms": 0})
        before = binlog_end(server)
        server.restart(kill=True, down_seconds=3)
        # The streamer reconnects by itself; WordPress writes again after the restart.
        ids = site.php(WRITER, {"posts": 40, "rounds": 2, "pause_ms": 0})
        checkpoint = streamer.wait_caught_up(server, timeout=90)
        assert before.key() < checkpoint.position.key()
        assert streamer.process is not None and streamer.process.poll() is None, "it must not exit"
        assert streamer.stop() == 0
        all_ids = [
            int(row[0])
            for row in server.execute(
                "SELECT ID FROM wp_posts WHERE post_type = 'post' AND post_title LIKE 'post %'",
                database,
            )
        ]
        assert len(all_ids) == 80 and set(ids) <= set(all_ids)
        assert_topic_matches_database(
            server, database, kafka_broker.bootstrap_servers, kafka_topic, all_ids
        )
    finally:
        streamer.close()


def test_broker_down_30s_backs_off_resumes_and_never_checkpoints_past_unacked(
    wp_stack: WordPressStack,
) -> None:
    streamer = wp_stack.streamer
    with broker_behind_proxy(wp_stack.workdir / "broker") as (proxy, bootstrap):
        streamer.env["WPCDC_KAFKA__BOOTSTRAP_SERVERS"] = bootstrap
        streamer.start()
        background = writer(wp_stack.wordpress, posts=60, rounds=6, pause_ms=20)
        background.start()
        time.sleep(3)
        proxy.cut()
        cut_at = binlog_end(wp_stack.server)
        highest = None
        outage_end = time.monotonic() + 30
        while time.monotonic() < outage_end:
            checkpoint = streamer.checkpoint()
            assert checkpoint is not None
            # Nothing written after the cut can have been acknowledged.
            assert checkpoint.position.key() <= cut_at.key(), (checkpoint.position, cut_at)
            highest = checkpoint.position
            assert streamer.process is not None and streamer.process.poll() is None
            time.sleep(0.5)
        proxy.restore()
        ids = background.finish()
        final = wp_stack.wait_caught_up(timeout=120)
        assert highest is not None and highest.key() < final.position.key()
        assert "restarting from the checkpoint" in streamer.log_text()
        assert streamer.stop() == 0
        assert_topic_matches_database(
            wp_stack.server, wp_stack.database, bootstrap, wp_stack.topic, ids
        )
