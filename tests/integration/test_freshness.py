"""Freshness with real WordPress: a save is one event per kind as soon as its burst
ends, distinct saves are distinct events, a busy post holds back neither a title
edit nor the checkpoint, a large interleaved transaction streams in bounded
memory; kill -9 during each, restart, and `wpcdc verify` finds the topic equal
to the database (the consumer rule, README "Delivery")."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of
from tests.support.wordpress import BackgroundPhp

pytestmark = pytest.mark.integration

CREATE = """
$id = wp_insert_post(['post_title' => 'Fresh', 'post_status' => 'publish'], true);
if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
return $id;
"""

# Editor saves, $args['gap'] seconds apart: title + a tag, then one meta value.
SAVES = """
$done = [];
for ($n = 0; $n < $args['saves']; $n++) {
    wp_update_post(['ID' => $args['id'], 'post_title' => "save $n"]);
    wp_set_post_tags($args['id'], ["t$n"], true);
    update_post_meta($args['id'], 'rev', (string) $n);
    $done[] = microtime(true);
    usleep((int) ($args['gap'] * 1000000));
}
return $done;
"""

# A view counter: the post's meta rewritten four times a second.
COUNTER = """
for ($n = 0; $n < $args['ticks']; $n++) {
    update_post_meta($args['id'], 'views', (string) $n);
    usleep(250000);
}
return $args['ticks'];
"""

TITLE = """
wp_update_post(['ID' => $args['id'], 'post_title' => $args['title']]);
return microtime(true);
"""

# One UPDATE over meta rows of many posts, interleaved (meta_id order is post by post
# round-robin): the shape that held every row image before groups were bounded in bytes.
BULK = """
global $wpdb;
$posts = [];
for ($p = 0; $p < $args['posts']; $p++) {
    $posts[] = wp_insert_post(['post_title' => "Bulk $p", 'post_status' => 'publish'], true);
}
$values = [];
for ($i = 0; $i < $args['rows']; $i++) {
    $values[] = $wpdb->prepare('(%d, %s, %s)', $posts[$i % count($posts)], "k$i", str_repeat('v', 1000));
    if (count($values) == 1000) {
        $wpdb->query("INSERT INTO {$wpdb->postmeta} (post_id, meta_key, meta_value) VALUES " . implode(',', $values));
        $values = [];
    }
}
return $posts;
"""


def start_on_an_empty_site(stack: WordPressStack) -> int:
    """WordPress's install posts removed (`wpcdc verify` then needs no snapshot), the
    streamer started, and one post created while it streams and streamed; returns its id."""
    for table in ("wp_posts", "wp_postmeta", "wp_term_relationships"):
        stack.execute(f"DELETE FROM {table}")
    stack.streamer.start()
    # Caught up first: changes still being replayed fold on binlog time (a 1 s window),
    # which would merge the creation with the first save.
    stack.wait_caught_up()
    post_id: int = stack.wordpress.php(CREATE)
    # The creation in events of its own before the test's saves begin: a WordPress
    # bootstrap can start the next save within the 0.15 s quiet gap.
    stack.wait_caught_up()
    return post_id


def wpcdc_verify(stack: WordPressStack) -> subprocess.CompletedProcess[str]:
    return stack.wpcdc(
        "verify", "--wait", "60", "--recheck-delay", "1", env={"NO_COLOR": "1"}, timeout=240
    )


def test_each_save_is_its_own_events_one_per_kind(wp_stack: WordPressStack) -> None:
    post_id = start_on_an_empty_site(wp_stack)
    saved = wp_stack.wordpress.php(SAVES, {"id": post_id, "saves": 5, "gap": 0.6})
    wp_stack.wait_caught_up()
    records = [r for r in wp_stack.read_topic() if r.event["subject"] == f"post/{post_id}"]
    for n, at in enumerate(saved):
        title = [r for r in records if r.event["data"].get("post", {}).get("title") == f"save {n}"]
        tags = [
            r
            for r in records
            if any(t["slug"] == f"t{n}" for t in r.event["data"].get("added", []))
        ]
        meta = [
            r
            for r in records
            if any(c["value"] == str(n) for c in r.event["data"].get("changes", []))
        ]
        # Every save its own events: one post_updated, one taxonomy_changed, one meta.
        assert [r.event["type"] for r in title] == ["post_updated"], n
        assert [r.event["type"] for r in tags] == ["taxonomy_changed"], n
        assert [r.event["type"] for r in meta] == ["post_meta_changed"], n
        # Produced within a second of WordPress returning (the quiet gap is 0.15 s).
        produced = max(r.timestamp_ms for r in title + tags + meta) / 1000
        assert produced - at < 1.0, f"save {n} took {produced - at:.3f}s"
    events = events_of(records, f"post/{post_id}")
    assert len({e["id"] for e in events}) == len(events)
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)
    # kill -9 in the middle of more saves, restart: the topic rebuilds the database.
    more = BackgroundPhp(wp_stack.wordpress, SAVES, {"id": post_id, "saves": 6, "gap": 0.3})
    more.start()
    time.sleep(0.8)
    wp_stack.streamer.kill()
    more.finish()
    wp_stack.streamer.start()
    wp_stack.wait_caught_up()
    done = wpcdc_verify(wp_stack)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_busy_post_holds_back_neither_a_title_edit_nor_the_checkpoint(
    wp_stack: WordPressStack,
) -> None:
    post_id = start_on_an_empty_site(wp_stack)
    counter = BackgroundPhp(wp_stack.wordpress, COUNTER, {"id": post_id, "ticks": 40})
    counter.start()
    time.sleep(2.0)
    before = wp_stack.streamer.checkpoint()
    edited = wp_stack.wordpress.php(TITLE, {"id": post_id, "title": "edited while busy"})
    time.sleep(3.0)
    during = wp_stack.streamer.checkpoint()
    records = wp_stack.read_topic()
    counter_running = counter.is_alive()
    counter.finish()
    assert counter_running, "the counter should still be writing: the test proves nothing"
    assert before is not None and during is not None
    assert before.position < during.position, "the checkpoint stood still behind the busy post"
    (title,) = [
        r for r in records if r.event["data"].get("post", {}).get("title") == "edited while busy"
    ]
    latency = title.timestamp_ms / 1000 - edited
    assert latency < 2.0, f"the title edit took {latency:.2f}s to reach the topic"
    # kill -9 while it is busy again, restart: the topic still rebuilds the database.
    again = BackgroundPhp(wp_stack.wordpress, COUNTER, {"id": post_id, "ticks": 16})
    again.start()
    time.sleep(1.5)
    wp_stack.streamer.kill()
    again.finish()
    wp_stack.streamer.start()
    wp_stack.wait_caught_up()
    done = wpcdc_verify(wp_stack)
    assert done.returncode == 0, done.stdout + done.stderr


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_large_interleaved_transaction_streams_in_bounded_memory(
    wp_stack: WordPressStack,
) -> None:
    # 60,000 meta rows of 1 KB over 300 posts, interleaved: ~60 MB of row images,
    # against the default bound of 32 MiB; the checkpoint must stay small too.
    start_on_an_empty_site(wp_stack)
    writer = BackgroundPhp(wp_stack.wordpress, BULK, {"posts": 300, "rows": 60_000})
    writer.start()
    writer.finish()
    # Every insert in events first: an update folded into the same group as its
    # insert would (rightly) come as "added" with the new value.
    wp_stack.wait_caught_up(timeout=120)
    # One transaction touching 300 posts at once, on top: an UPDATE of all rows.
    wp_stack.execute(
        "UPDATE wp_postmeta SET meta_value = CONCAT(meta_value, '!') WHERE meta_key LIKE 'k%'"
    )
    checkpoint_sizes = []
    deadline = time.monotonic() + 120
    path = wp_stack.workdir / "checkpoint.json"
    while time.monotonic() < deadline:
        if path.exists():
            checkpoint_sizes.append(path.stat().st_size)
        try:
            wp_stack.wait_caught_up(timeout=0.5)
            break
        except AssertionError:
            continue
    wp_stack.wait_caught_up(timeout=1)
    assert wp_stack.streamer.process is not None
    peak = _peak_rss_mib(wp_stack.streamer.process.pid)
    assert peak < 150, f"wpcdc run peaked at {peak:.0f} MiB"
    assert max(checkpoint_sizes, default=0) < 1024 * 1024
    records = wp_stack.read_topic()
    changed = [
        c
        for r in records
        if r.event["type"] == "post_meta_changed"
        for c in r.event["data"]["changes"]
        if c["key"].startswith("k")
    ]
    # Every row in some event (counted by meta_id: a pipeline restart under load may
    # send a change again, under another grouping).
    assert len({c["meta_id"] for c in changed if c["op"] == "added"}) == 60_000
    assert len({c["meta_id"] for c in changed if c["op"] == "updated"}) == 60_000
    # kill -9 in the middle of another one, restart, and the topic still rebuilds the database.
    wp_stack.execute(
        "UPDATE wp_postmeta SET meta_value = CONCAT(meta_value, '?') WHERE meta_key LIKE 'k%'"
    )
    time.sleep(1.0)
    wp_stack.streamer.kill()
    wp_stack.streamer.start()
    wp_stack.wait_caught_up(timeout=120)
    done = wpcdc_verify(wp_stack)
    assert done.returncode == 0, done.stdout + done.stderr
