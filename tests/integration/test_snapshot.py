"""wpcdc snapshot against real WordPress, MariaDB and a broker: every post once, at one
position that `wpcdc run` continues from; killed and resumed; under a busy writer.

Each test creates its posts through WordPress in one PHP loop, runs the real
`wpcdc snapshot` as a process, then streams with the real `wpcdc run`, and
checks the topic (schemas validated by read_topic) against the database.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.infra import MysqlEndpoint
from tests.support.materialize import compare_with_database, deduplicate, materialize
from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Record, binlog_end
from tests.support.wordpress import BackgroundPhp
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.positions import Position
from wpcdc.core.rows import TableKind, TransactionPart
from wpcdc.core.snapshot_events import PostRange
from wpcdc.core.snapshot_state import MAX_POST_ID, SnapshotState, covered_through
from wpcdc.local.wordpress import WordPressSite
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.connection import connect
from wpcdc.mysql.consistent import ConsistentSnapshot, snapshot_position

pytestmark = pytest.mark.integration

# Posts with a category, tags, a scalar and an array meta; every tenth a draft.
CREATE_POSTS = """
wp_defer_term_counting(true);
$cat = wp_insert_term('News', 'category')['term_id'];
$ids = [];
for ($i = 0; $i < $args['posts']; $i++) {
    $id = wp_insert_post(['post_title' => "Post $i", 'post_content' => "Body of post $i",
        'post_status' => ($i % 10 == 0) ? 'draft' : 'publish', 'post_category' => [$cat],
        'tags_input' => ['tag' . ($i % 7), 'all'],
        'meta_input' => ['views' => $i, 'settings' => ['size' => $i, 'flags' => ['a', 'b']]]],
        true);
    if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
    $ids[] = $id;
}
wp_defer_term_counting(false);
return $ids;
"""

# What a busy site does meanwhile: edits, meta, retags, status changes, new posts,
# trash and permanent deletes, until the stop file appears.
WRITER = """
mt_srand(7);
$ids = $args['ids'];
$n = 0;
while (!file_exists($args['stop']) && $n < $args['max']) {
    $k = mt_rand(0, count($ids) - 1);
    $id = $ids[$k];
    switch ($n % 8) {
        case 0: wp_update_post(['ID' => $id, 'post_title' => "edit $n"]); break;
        case 1: update_post_meta($id, 'views', $n); break;
        case 2: wp_set_post_tags($id, ['w' . ($n % 5), 'all']); break;
        case 3: wp_update_post(['ID' => $id, 'post_status' => ($n % 16 < 8) ? 'draft' : 'publish']); break;
        case 4: $ids[] = wp_insert_post(['post_title' => "new $n", 'post_status' => 'publish',
                    'tags_input' => ['fresh'], 'meta_input' => ['views' => $n]]); break;
        case 5: wp_trash_post($id); break;
        case 6: if ($n % 24 == 6) { wp_delete_post($id, true); array_splice($ids, $k, 1); }
                else { wp_untrash_post($id); } break;
        case 7: delete_post_meta($id, 'settings'); break;
    }
    $n++;
}
return $n;
"""

WANTED = (
    "SELECT ID FROM {table} WHERE post_type NOT IN ('revision', 'customize_changeset', "
    "'oembed_cache') AND post_status <> 'auto-draft'"
)


def snapshot_cli(
    stack: Stack, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return stack.wpcdc("snapshot", *args, timeout=timeout)


def wanted_ids(stack: Stack, table: str = "wp_posts") -> set[int]:
    return {int(row[0]) for row in stack.execute(WANTED.format(table=table))}


def snapshots_by_post(records: list[Record]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    found: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.event["type"] == "post_snapshot":
            data = record.event["data"]
            found[(data["blog_id"], data["post_id"])].append(record.event)
    return found


def position_of(event: dict[str, Any]) -> Position:
    return Position(event["binlogfile"], event["binlogpos"])


def assert_partition_order_follows_the_binlog(records: list[Record]) -> None:
    """In each post's partition, no event is older (by sequence) than one before it:
    no older state lands after a newer one."""
    last: dict[bytes | None, str] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        sequence = record.event["sequence"]
        assert sequence >= last.get(record.key, ""), (
            f"{record.event['id']} comes after a newer event of {record.key!r}"
        )
        last[record.key] = sequence


def test_snapshot_emits_every_post_once_and_run_continues_from_its_position(
    wp_stack: WordPressStack,
) -> None:
    site = wp_stack.wordpress.enable_multisite()
    blog = site.create_blog("/second/", "Second")
    ids = site.php(CREATE_POSTS, {"posts": 150})
    extra = site.php(
        """
        require_once ABSPATH . 'wp-admin/includes/post.php';
        $first = $args['ids'][1];
        wp_update_post(['ID' => $first, 'post_content' => 'Second version']);  // a revision
        update_post_meta($first, '_edit_lock', '1700000000:1');  // ignored meta
        $draft = get_default_post_to_edit('post', true);  // an auto-draft: not wanted
        $page = wp_insert_post(['post_title' => 'About', 'post_type' => 'page',
                                'post_status' => 'publish'], true);
        switch_to_blog($args['blog']);
        for ($i = 0; $i < 5; $i++) {
            wp_insert_post(['post_title' => "Blog two $i", 'post_status' => 'publish'], true);
        }
        restore_current_blog();
        return ['first' => $first, 'auto_draft' => $draft->ID, 'page' => $page];
        """,
        {"ids": ids, "blog": blog},
    )
    expected = {(1, i) for i in wanted_ids(wp_stack)}
    expected |= {(blog, i) for i in wanted_ids(wp_stack, f"wp_{blog}_posts")}
    assert (1, extra["auto_draft"]) not in expected and (1, extra["page"]) in expected

    done = snapshot_cli(wp_stack, "--chunk-size", "40")
    assert done.returncode == 0, done.stderr
    assert f"emitted {len(expected)} post_snapshot events" in done.stdout

    records = wp_stack.read_topic()
    found = snapshots_by_post(records)
    assert set(found) == expected
    assert all(len(events) == 1 for events in found.values())
    positions = {position_of(events[0]) for events in found.values()}
    assert len(positions) == 1
    (position,) = positions
    checkpoint = wp_stack.streamer.checkpoint()
    assert checkpoint is not None and checkpoint.position.key() == position.key()
    assert checkpoint.covered_ranges == () and position <= binlog_end(wp_stack.server)

    first = found[(1, extra["first"])][0]
    assert first["data"]["post"]["content"] == "Second version"
    assert first["data"]["reason"] == "initial" and first["subject"] == f"post/{extra['first']}"
    meta = {m["key"]: m for m in first["data"]["meta"]}
    assert "_edit_lock" not in meta
    assert meta["settings"]["value"] == {"size": 1, "flags": ["a", "b"]}
    assert meta["settings"]["serialized"] is True
    terms = {(t["taxonomy"], t["slug"]) for t in first["data"]["terms"]}
    assert terms == {("category", "news"), ("post_tag", "tag1"), ("post_tag", "all")}
    assert all(t["resolved"] for t in first["data"]["terms"])
    assert found[(blog, 1)][0]["subject"] == f"blog/{blog}/post/1"

    wp_stack.streamer.start()
    assert f"resuming at {position}" in wp_stack.streamer.log_text()
    site.php(
        "wp_update_post(['ID' => $args['id'], 'post_title' => 'After the snapshot']);",
        {"id": ids[5]},
    )
    wp_stack.wait_caught_up()
    assert wp_stack.streamer.stop() == 0
    records = wp_stack.read_topic()
    events = [r.event for r in records if r.event["subject"] == f"post/{ids[5]}"]
    assert [e["type"] for e in events] == ["post_snapshot", "post_updated"]
    assert events[1]["data"]["before"]["title"] == events[0]["data"]["post"]["title"] == "Post 5"
    assert events[1]["sequence"] > events[0]["sequence"]


def test_killed_snapshot_resumes_where_it_stopped(wp_stack: WordPressStack) -> None:
    chunk = 50
    ids = wp_stack.wordpress.php(CREATE_POSTS, {"posts": 800})
    wanted = wanted_ids(wp_stack)
    state_file = Path(str(wp_stack.streamer.checkpoint_path) + ".snapshot")
    process = subprocess.Popen(
        [sys.executable, "-m", "wpcdc", "snapshot", "--chunk-size", str(chunk)],
        env=wp_stack.streamer.env,
        cwd=wp_stack.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        state = None
        while state is None or not state.segments:
            assert process.poll() is None, "the snapshot ended before it could be killed"
            assert time.monotonic() < deadline, "no progress in the state file"
            if state_file.exists():
                state = SnapshotState.from_json(state_file.read_bytes())
            time.sleep(0.005)
        process.kill()
    finally:
        process.kill()
        process.wait()
    state = SnapshotState.from_json(state_file.read_bytes())
    done_through = state.after_id(1)
    assert not state.done and done_through is not None and done_through < max(ids)
    in_flight = {i for record in state.in_flight for i in record.post_ids}
    assert len(in_flight) <= chunk
    sent_before = snapshots_by_post(wp_stack.read_topic())

    # `wpcdc run` refuses to start while the snapshot is unfinished.
    refused = wp_stack.wpcdc("run", timeout=60)
    assert refused.returncode == 1 and "wpcdc snapshot" in refused.stderr

    # Changes between the runs: in a done chunk, in a resumed chunk, and the
    # deletion of a post of the chunk that was in flight.
    in_done = min(i for i in ids if i <= done_through)
    resumed = max(ids)
    gone = min(in_flight) if in_flight else None
    wp_stack.wordpress.php(
        """
        wp_update_post(['ID' => $args['done'], 'post_title' => 'changed in a done chunk']);
        wp_update_post(['ID' => $args['resumed'], 'post_title' => 'changed in a resumed chunk']);
        if ($args['gone']) { wp_delete_post($args['gone'], true); }
        return true;
        """,
        {"done": in_done, "resumed": resumed, "gone": gone},
    )
    second = snapshot_cli(wp_stack, "--chunk-size", str(chunk))
    assert second.returncode == 0, second.stderr
    assert "resuming the snapshot" in second.stderr

    checkpoint = wp_stack.streamer.checkpoint()
    assert checkpoint is not None and checkpoint.position == state.position
    assert checkpoint.covered_ranges, "the resumed part must be covered"
    # From the first unacknowledged ID on, but for the deleted in-flight post (sent at P).
    first_low = done_through + (2 if gone == done_through + 1 else 1)
    assert checkpoint.covered_ranges[0].low == first_low
    assert not any(r.low <= (gone or 0) <= r.high for r in checkpoint.covered_ranges)
    assert checkpoint.covered_ranges[-1].high == MAX_POST_ID

    wp_stack.streamer.start()
    wp_stack.wordpress.php(
        "wp_update_post(['ID' => $args['id'], 'post_title' => 'while streaming']);", {"id": resumed}
    )
    wp_stack.wait_caught_up()
    assert wp_stack.streamer.stop() == 0
    records = wp_stack.read_topic()
    found = snapshots_by_post(records)

    # Every post once, but the in-flight chunk's: sent at P, then again at P2.
    expected = wanted - {gone} | ({gone} if (1, gone) in sent_before else set())
    assert {post for _, post in found} == expected
    twice = {post for (_, post), events in found.items() if len(events) > 1}
    assert twice <= in_flight and len(twice) <= chunk
    assert all(len(events) <= 2 for events in found.values())
    for post in twice:
        first, again = found[(1, post)]
        assert position_of(first) == state.position and state.position < position_of(again)
        assert first["id"] != again["id"] and first["data"]["post_id"] == again["data"]["post_id"]
    resumed_at = position_of(found[(1, resumed)][-1])
    assert state.position < resumed_at
    assert {r.through for r in checkpoint.covered_ranges if r.low <= resumed <= r.high} == {
        covered_through(resumed_at)
    }
    assert found[(1, done_through)][0]["binlogpos"] == state.position.pos

    by_subject = defaultdict(list)
    for record in records:
        by_subject[record.event["data"]["post_id"]].append(record.event["type"])
    # Streamed: the done chunk's change. Not streamed again: the resumed one's.
    assert by_subject[in_done] == ["post_snapshot", "post_updated"]
    assert found[(1, resumed)][-1]["data"]["post"]["title"] == "changed in a resumed chunk"
    assert (
        by_subject[resumed][-1] == "post_updated" and by_subject[resumed].count("post_updated") == 1
    )
    if gone is not None:
        assert by_subject[gone][-1] == "post_deleted"
    assert_partition_order_follows_the_binlog(records)
    states = materialize(deduplicate(records))
    problems = compare_with_database(states, wp_stack.server, wp_stack.database, sorted(wanted))
    assert problems == [], "\n".join(problems[:20])


def test_snapshot_under_a_busy_writer_then_run_matches_the_database(
    wp_stack: WordPressStack,
) -> None:
    ids = wp_stack.wordpress.php(CREATE_POSTS, {"posts": 2000})
    stop = wp_stack.workdir / "stop-writer"
    writer = BackgroundPhp(
        wp_stack.wordpress, WRITER, {"ids": ids, "stop": str(stop), "max": 50_000}, timeout=300
    )
    began = binlog_end(wp_stack.server)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while binlog_end(wp_stack.server).pos - began.pos < 50_000:  # the writer is going
            assert writer.is_alive() and time.monotonic() < deadline, writer.error
            time.sleep(0.05)
        done = snapshot_cli(wp_stack)
        assert done.returncode == 0, done.stderr
        during = binlog_end(wp_stack.server)
        time.sleep(1)
    finally:
        stop.touch()
        writer.join(120)
    assert writer.finish(0) > 0
    checkpoint = wp_stack.streamer.checkpoint()
    assert checkpoint is not None
    # The writer committed before the snapshot's position and while it was read.
    assert began < checkpoint.position < during

    wp_stack.streamer.start()
    wp_stack.wait_caught_up(timeout=120)
    assert wp_stack.streamer.stop() == 0
    records = wp_stack.read_topic()
    found = snapshots_by_post(records)
    assert all(len(events) == 1 for events in found.values())
    assert {position_of(e[0]).key() for e in found.values()} == {checkpoint.position.key()}
    assert_partition_order_follows_the_binlog(records)
    states = materialize(deduplicate(records))
    # Every post there is, and every post the topic knows (posts deleted before the
    # snapshot's position were never on it, and need not be).
    posts = sorted(wanted_ids(wp_stack) | set(states))
    assert len(posts) > 2000
    problems = compare_with_database(states, wp_stack.server, wp_stack.database, posts)
    assert problems == [], "\n".join(problems[:20])
    # And the operator's proof says the same.
    verified = wp_stack.wpcdc("verify", "--json", "--wait", "30", timeout=300)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    summary = json.loads(verified.stdout)
    assert (
        summary["counts"]["missing"]
        == summary["counts"]["stale"]
        == summary["counts"]["extra"]
        == 0
    )


@pytest.mark.flavors("mariadb", "mysql")
def test_the_snapshot_position_splits_commits_exactly(
    wordpress: WordPressSite, mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    mariadb = mysql_server.flavor == "mariadb"
    settings = MysqlSettings(
        host=mysql_server.host,
        port=mysql_server.port,
        user=mysql_server.user,
        password=SecretStr(mysql_server.password),
        database=mysql_database,
        server_id=random.randint(10_000, 2**31),
    )
    post = int(wordpress.php("return wp_insert_post(['post_title' => 'n0'], true);"))
    update = f"UPDATE wp_posts SET post_title = %s WHERE ID = {post}"

    # MariaDB: a commit between START TRANSACTION and SHOW STATUS is after the
    # position and outside the snapshot. (MySQL has no such status: it holds
    # FLUSH TABLES WITH READ LOCK between the two, so no commit can fall there.)
    with contextlib.closing(connect(settings)) as conn, conn.cursor() as cursor:
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        before = binlog_end(mysql_server)
        mysql_server.execute(update.replace("%s", "'between'"), mysql_database)
        assert before < binlog_end(mysql_server)
        position = snapshot_position(conn, "mariadb" if mariadb else "mysql")
        assert position is None if not mariadb else position.key() == before.key()  # type: ignore[union-attr]
        cursor.execute(f"SELECT post_title FROM wp_posts WHERE ID = {post}")
        assert cursor.fetchone() == ("n0",)

    # Under a stream of commits, the first change after each snapshot's position
    # starts from the value that snapshot saw: nothing between them is lost or doubled.
    stop = threading.Event()

    def write() -> None:
        with contextlib.closing(connect(settings)) as conn, conn.cursor() as cursor:
            n = 0
            while not stop.is_set():
                n += 1
                cursor.execute(update, (f"n{n}",))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    points = []
    try:
        for _ in range(8):
            snapshot = ConsistentSnapshot.open(settings)
            try:
                (bundle,) = snapshot.chunk(PostRange(1, after_id=post - 1), 1)
                points.append((snapshot.point, bundle.post["post_title"]))
            finally:
                snapshot.close()
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join(10)
    for point, seen in points:
        if mariadb:
            assert point.method == "binlog_snapshot" and point.locked_seconds == 0
        else:
            assert point.method == "flush_tables_with_read_lock"
        source = BinlogSource(mysql=settings, start=point.position, heartbeat=1.0)
        first: Any = None
        for item in source.items():
            if isinstance(item, TransactionPart):
                first = next(c for c in item.changes if c.table.kind is TableKind.POSTS)
                source.stop()
                break
        assert first is not None and first.before["post_title"] == seen
    assert len({seen for _, seen in points}) > 1, "the writer did not move between snapshots"


def test_dry_run_bad_options_and_an_existing_checkpoint(wp_stack: WordPressStack) -> None:
    wp_stack.wordpress.php(CREATE_POSTS, {"posts": 20})
    posts = len(wanted_ids(wp_stack))
    dry = snapshot_cli(wp_stack, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would emit {posts} post_snapshot events (blog 1: {posts})" in dry.stdout
    assert not wp_stack.streamer.checkpoint_path.exists()
    assert not Path(str(wp_stack.streamer.checkpoint_path) + ".snapshot").exists()

    for bad in (["--ids", "9:1"], ["--chunk-size", "0"], ["--blog", "7"], ["--nope"]):
        result = snapshot_cli(wp_stack, *bad)
        assert result.returncode == 2, (bad, result.stderr)
    assert "--blog 7: no such blog" in snapshot_cli(wp_stack, "--blog", "7").stderr

    assert snapshot_cli(wp_stack).returncode == 0
    first = wp_stack.streamer.checkpoint()
    wp_stack.wordpress.php(
        "wp_insert_post(['post_title' => 'one more', 'post_status' => 'publish']);"
    )
    again = snapshot_cli(wp_stack)
    assert again.returncode == 2 and "--force" in again.stderr
    assert wp_stack.streamer.checkpoint() == first
    assert "would be refused" in snapshot_cli(wp_stack, "--dry-run").stdout
    # A limited snapshot is a re-emit: allowed, and the checkpoint stays.
    limited = snapshot_cli(wp_stack, "--post-type", "post", "--ids", "1:5")
    assert limited.returncode == 0 and "checkpoint is unchanged" in limited.stdout
    assert wp_stack.streamer.checkpoint() == first
    forced = snapshot_cli(wp_stack, "--force")
    assert forced.returncode == 0, forced.stderr
    replaced = wp_stack.streamer.checkpoint()
    assert first is not None and replaced is not None and first.position < replaced.position
    records = wp_stack.read_topic()
    # Nothing from the dry run: two full snapshots and the limited one.
    reasons = Counter(r.event["data"]["reason"] for r in records)
    selected = wp_stack.execute(
        "SELECT COUNT(*) FROM wp_posts WHERE ID <= 5 AND post_type = 'post'"
    )[0][0]
    assert reasons == {"initial": 2 * posts + 1, "requested": selected}
