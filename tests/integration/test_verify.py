"""`wpcdc verify` as operators run it: the real CLI against real WordPress, MariaDB,
`wpcdc run` and the broker.

A site streamed from its first post verifies clean, also while WordPress keeps
writing; a topic missing events and rows changed behind the binlog's back are
reported with exit 6, naming the posts and fields.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Record, eventually
from wpcdc.core.errors import EXIT_DIFFERENCES

pytestmark = pytest.mark.integration

# Posts with tags and meta, then (a window later, so they are events of their
# own) edits, a trash, a permanent delete and a publish.
WRITE = """
$ids = [];
for ($i = 0; $i < $args['posts']; $i++) {
    $ids[] = wp_insert_post(['post_title' => "post $i", 'post_content' => "body $i",
        'post_status' => $i % 3 ? 'publish' : 'draft', 'tags_input' => ['t' . ($i % 4)],
        'meta_input' => ['n' => $i, 'arr' => ['a' => $i, 'b' => [1, 2]]]], true);
}
sleep(2);
foreach ($ids as $k => $id) {
    if ($k % 2 == 0) { wp_update_post(['ID' => $id, 'post_title' => "post $k edited"]); }
    if ($k % 3 == 0) { update_post_meta($id, 'n', $k * 10); }
    if ($k % 5 == 0) { wp_set_post_tags($id, ['t9'], true); }
}
wp_trash_post($ids[1]);
wp_delete_post($ids[2], true);
wp_publish_post($ids[3]);
return $ids;
"""

# Rounds of edits across the posts, as a busy site makes them.
EDIT_ROUNDS = """
for ($round = 1; $round <= $args['rounds']; $round++) {
    foreach ($args['ids'] as $k => $id) {
        wp_update_post(['ID' => $id, 'post_title' => "post $k round $round"]);
        update_post_meta($id, 'n', $round);
        usleep($args['pause_ms'] * 1000);
    }
}
return true;
"""

# What `wpcdc run` would report: the stream's default filters.
COUNTED = (
    "SELECT COUNT(*) FROM wp_posts WHERE post_status <> 'auto-draft' "
    "AND post_type NOT IN ('revision', 'customize_changeset', 'oembed_cache')"
)


def stream_a_site(stack: WordPressStack, posts: int) -> list[int]:
    """WordPress's install posts removed, then every post written while `wpcdc run` streams."""
    for table in ("wp_posts", "wp_postmeta", "wp_term_relationships"):
        stack.execute(f"DELETE FROM {table}")
    stack.streamer.start()
    ids: list[int] = stack.wordpress.php(WRITE, {"posts": posts})
    stack.wait_caught_up()
    return ids


def wpcdc_verify(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return stack.wpcdc(
        "verify", "--wait", "30", "--recheck-delay", "1", *args, env={"NO_COLOR": "1"}, timeout=180
    )


def test_a_streamed_site_verifies_clean_in_text_and_json(wp_stack: WordPressStack) -> None:
    stream_a_site(wp_stack, posts=20)
    ((expected,),) = wp_stack.execute(COUNTED)
    assert expected == 19  # 20 posts, one deleted; the trashed one is still a post

    done = wpcdc_verify(wp_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for label, value in (("posts in the database", 19), ("matching", 19), ("stale", 0)):
        assert f"  {label:<24} {value}" in lines, done.stdout
    assert "OK: the topic matches the database." in done.stdout

    done = wpcdc_verify(wp_stack, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(done.stdout)
    assert report["ok"] is True and report["differences"] == []
    assert report["counts"] == {
        "posts_in_database": 19,
        "posts_on_topic": 19,
        "matching": 19,
        "missing": 0,
        "stale": 0,
        "extra": 0,
        "unverifiable": 0,
    }
    assert report["warnings"] == []


def test_a_site_verifies_clean_while_wordpress_keeps_writing(wp_stack: WordPressStack) -> None:
    ids = stream_a_site(wp_stack, posts=40)
    edits: dict[str, Any] = {"ids": ids, "rounds": 3, "pause_ms": 150}
    writer = threading.Thread(target=wp_stack.wordpress.php, args=(EDIT_ROUNDS, edits), daemon=True)
    before = wp_stack.streamer.checkpoint()
    writer.start()
    try:
        # Verify once the edits are flowing through `wpcdc run`, not before.
        eventually(lambda: wp_stack.streamer.checkpoint() != before, 30, "edits streamed")
        done = wpcdc_verify(wp_stack, "--json")
        assert writer.is_alive(), "the writer finished before verify: nothing was live"
    finally:
        writer.join(300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(done.stdout)
    assert report["counts"]["matching"] == 39 and report["warnings"] == []


async def _copy(bootstrap: str, records: list[Record], topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic, record.value, key=record.key, partition=record.partition
            )
    finally:
        await producer.stop()


def _last(records: list[Record], kind: str, post_id: int) -> tuple[int, int]:
    """Where the post's last event of this kind is: (partition, offset)."""
    return [
        (r.partition, r.offset)
        for r in records
        if r.event["type"] == kind and r.event["data"]["post_id"] == post_id
    ][-1]


def test_a_topic_missing_events_is_reported(wp_stack: WordPressStack) -> None:
    ids = stream_a_site(wp_stack, posts=8)
    records = wp_stack.read_topic()
    edited, created = ids[4], ids[5]  # post 4 got a title edit; post 5 no post event after
    dropped = {_last(records, "post_updated", edited), _last(records, "post_created", created)}
    copy = f"{wp_stack.topic}-copy"
    asyncio.run(
        _copy(
            wp_stack.broker.bootstrap_servers,
            [r for r in records if (r.partition, r.offset) not in dropped],
            copy,
            partitions=3,
        )
    )

    done = wpcdc_verify(wp_stack, "--topic", copy)
    assert done.returncode == EXIT_DIFFERENCES, done.stdout + done.stderr
    assert f"stale    post/{edited}  title" in done.stdout
    assert 'title: topic "post 4"  database "post 4 edited"' in done.stdout
    assert f"missing  post/{created}  only meta or term events on the topic" in done.stdout
    assert (
        "missing                  1" in done.stdout and "stale                    1" in done.stdout
    )
    assert "2 posts differ" in done.stderr
    # The original topic still matches; a topic that is not there is an error, not a verdict.
    assert wpcdc_verify(wp_stack).returncode == 0
    absent = wpcdc_verify(wp_stack, "--topic", f"{wp_stack.topic}-absent")
    assert absent.returncode == 1 and "does not exist" in absent.stderr


def test_rows_changed_behind_the_binlog_are_reported(wp_stack: WordPressStack) -> None:
    ids = stream_a_site(wp_stack, posts=6)
    retitled, planted = ids[0], ids[4]
    conn = wp_stack.server.connect(wp_stack.database)
    try:
        with conn.cursor() as cursor:
            # As a restore or a replica repair would: nothing reaches the binlog.
            cursor.execute("SET SESSION sql_log_bin = 0")
            cursor.execute(
                "UPDATE wp_posts SET post_title = 'Changed behind the binlog' WHERE ID = %s",
                (retitled,),
            )
            cursor.execute(
                "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (%s, %s, %s)",
                (planted, "planted", "yes"),
            )
            meta_id = cursor.lastrowid
    finally:
        conn.close()

    done = wpcdc_verify(wp_stack)
    assert done.returncode == EXIT_DIFFERENCES, done.stdout + done.stderr
    assert f"stale    post/{retitled}  title" in done.stdout
    assert '"Changed behind the binlog"' in done.stdout
    assert f"stale    post/{planted}  meta" in done.stdout
    assert f'meta planted #{meta_id}: topic (absent)  database "yes"' in done.stdout
    # Both persist on the recheck: they were never in the binlog.
    assert "read again 2 differing posts: 0 had caught up" in done.stdout

    done = wpcdc_verify(wp_stack, "--json", "--max-report", "1")
    assert done.returncode == EXIT_DIFFERENCES
    report = orjson.loads(done.stdout)
    assert report["counts"]["stale"] == 2 and report["counts"]["matching"] == 3
    assert report["differences_total"] == 2 and len(report["differences"]) == 1
    (first,) = report["differences"]
    assert first["kind"] == "stale" and first["fields"][0]["field"] in ("title", "meta")

    # --blog narrows both sides: this site has no blog 2, and blog 1's events are skipped.
    done = wpcdc_verify(wp_stack, "--json", "--blog", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert orjson.loads(done.stdout)["counts"]["posts_on_topic"] == 0
