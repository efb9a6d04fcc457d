"""Snapshot throughput and harm: `wpcdc snapshot` next to `mysqldump --single-transaction`.

Starts a private MariaDB and a Tansu broker, installs WordPress and writes
``--posts`` posts through WordPress (2 KB body, a category, 2-3 tags, three meta
of which one an array; every other post edited once, so revisions exist as on
real sites). Then, ``--rounds`` times, interleaved so that noise hits all alike,
each variant runs in a subprocess of its own (peak RSS: its VmHWM, see _rss.py):

- ``wpcdc snapshot``: the real command, every post to the broker with acks=all,
  progress saved per chunk, checkpoint written;
- ``read + serialize``: the same consistent read and events, not sent (what the
  database side and the event building cost without the broker);
- ``mysqldump --single-transaction`` of wp_posts, wp_postmeta,
  wp_term_relationships, wp_term_taxonomy and wp_terms to a file.

Rows are what each reads: the snapshot's posts (revisions and auto-drafts are
not read) plus their meta and term-relationship rows; mysqldump's every row of
the five tables. Last, writer latency: a connection UPDATEs random posts
(autocommit) and times each statement, alone, then during a snapshot, then
during mysqldump; median, p99 and max per phase.

Run on demand: ``.venv/bin/python benchmarks/bench_snapshot.py --posts 5000``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _rss import PeakSampler

from wpcdc.core.snapshot_events import PostRange
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.wordpress import WordPressSite

DATABASE = "bench"
TABLES = ("wp_posts", "wp_postmeta", "wp_term_relationships", "wp_term_taxonomy", "wp_terms")
WANTED = "post_type NOT IN ('revision', 'customize_changeset', 'oembed_cache') AND post_status <> 'auto-draft'"

WRITE_POSTS = """
wp_defer_term_counting(true);
$cats = [];
foreach (['News', 'Guides', 'Reviews'] as $name) { $cats[] = wp_insert_term($name, 'category')['term_id']; }
$body = str_repeat('Lorem ipsum dolor sit amet. ', 73);
for ($i = 0; $i < $args['posts']; $i++) {
    $tags = ['tag' . ($i % 50), 'series' . ($i % 7)];
    if ($i % 2) { $tags[] = 'topic' . ($i % 13); }
    $id = wp_insert_post(['post_title' => "Post $i", 'post_content' => $body,
        'post_status' => 'publish', 'post_category' => [$cats[$i % 3]], 'tags_input' => $tags,
        'meta_input' => ['views' => $i, 'subtitle' => "Subtitle $i",
                         'layout' => ['columns' => $i % 3 + 1, 'blocks' => ['hero', 'text']]]],
        true);
    if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
    if ($i % 2 == 0) { wp_update_post(['ID' => $id, 'post_content' => $body . " (edited)"]); }
}
wp_defer_term_counting(false);
return true;
"""


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float


def run_measured(argv: list[str], env: dict[str, str], out: Path | None = None) -> Run:
    """Run a subprocess; wall time and its peak RSS (its VmHWM, see _rss.py)."""
    began = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.PIPE)
        with PeakSampler(process.pid) as sampler:
            _, errors = process.communicate()  # reads stderr: a full pipe would stall it
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({process.returncode}):\n{errors.decode()[-3000:]}")
    return Run(seconds, sampler.peak_mib)


def read_and_serialize(port: int) -> None:
    """Child process of the ``read + serialize`` variant: the snapshot's reads and
    events, in chunks, nothing sent."""
    from wpcdc.config.settings import FoldSettings, MysqlSettings
    from wpcdc.core.derive import AUTO_DRAFT
    from wpcdc.core.events import serialize
    from wpcdc.core.snapshot_events import snapshot_event, wanted
    from wpcdc.mysql.consistent import ConsistentSnapshot

    mysql = MysqlSettings(port=port, user="root", database=DATABASE)
    fold = FoldSettings().to_config()
    snapshot = ConsistentSnapshot.open(
        mysql, exclude_post_types=sorted(fold.ignored_post_types), exclude_statuses=[AUTO_DRAFT]
    )
    events = 0
    try:
        for blog in snapshot.blogs():
            after = 0
            while True:
                bundles = snapshot.chunk(PostRange(blog, after_id=after), 500)
                for bundle in bundles:
                    if wanted(bundle, fold):
                        event = snapshot_event(
                            bundle,
                            position=snapshot.point.position,
                            timestamp=snapshot.point.timestamp,
                            config=fold,
                        )
                        serialize(event, "wpcdc://bench")
                        events += 1
                if len(bundles) < 500:
                    break
                after = int(bundles[-1].post["ID"])
    finally:
        snapshot.close()
    print(events)


def latencies(server: MariaDBServer, ids: list[int], stop: threading.Event) -> list[float]:
    """UPDATE random posts one by one (autocommit) until ``stop``; seconds per statement."""
    found: list[float] = []
    rng = random.Random(5)
    with server.connect(DATABASE) as conn, conn.cursor() as cursor:
        while not stop.is_set():
            post = rng.choice(ids)
            began = time.perf_counter()
            cursor.execute(
                "UPDATE wp_posts SET comment_count = comment_count + 1 WHERE ID = %s", (post,)
            )
            found.append(time.perf_counter() - began)
            time.sleep(0.002)  # a busy site, not a saturating benchmark
    return found


def during(
    server: MariaDBServer, ids: list[int], action: Any, seconds: float | None = None
) -> list[float]:
    stop = threading.Event()
    result: list[list[float]] = []
    thread = threading.Thread(target=lambda: result.append(latencies(server, ids, stop)))
    thread.start()
    try:
        if seconds is not None:
            time.sleep(seconds)
        else:
            action()
    finally:
        stop.set()
        thread.join()
    return result[0]


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered):5d}  median {statistics.median(ordered) * 1000:6.2f} ms  "
        f"p99 {p99 * 1000:6.2f} ms  max {ordered[-1] * 1000:7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--read-and-serialize", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_and_serialize:
        read_and_serialize(args.read_and_serialize)
        return
    dump = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    if dump is None:
        raise SystemExit("mysqldump not found: apt-get install mariadb-client")
    with tempfile.TemporaryDirectory(prefix="wpcdc-bench-") as directory:
        root = Path(directory)
        server = MariaDBServer.start(root / "mariadb")
        broker = TansuBroker.start(root / "broker")
        try:
            with server.connect() as conn, conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
            site = WordPressSite(
                host=server.host, port=server.port, user=server.user, password="", database=DATABASE
            )
            site.install()
            began = time.monotonic()
            site.php(WRITE_POSTS, {"posts": args.posts}, timeout=3600)
            print(f"wrote {args.posts} posts through WordPress in {time.monotonic() - began:.0f}s")
            with server.connect(DATABASE) as conn, conn.cursor() as cursor:
                cursor.execute(f"SELECT ID FROM wp_posts WHERE {WANTED}")
                ids = [int(row[0]) for row in cursor.fetchall()]
                marks = f"(SELECT ID FROM wp_posts WHERE {WANTED})"
                cursor.execute(f"SELECT COUNT(*) FROM wp_postmeta WHERE post_id IN {marks}")
                meta_rows = int(cursor.fetchone()[0])  # type: ignore[index]
                cursor.execute(
                    f"SELECT COUNT(*) FROM wp_term_relationships WHERE object_id IN {marks}"
                )
                term_rows = int(cursor.fetchone()[0])  # type: ignore[index]
                dump_rows = 0
                for table in TABLES:
                    cursor.execute(f"SELECT COUNT(*) FROM {table}")
                    dump_rows += int(cursor.fetchone()[0])  # type: ignore[index]
            snapshot_rows = len(ids) + meta_rows + term_rows
            print(
                f"snapshot reads {len(ids)} posts + {meta_rows} meta + {term_rows} term rows; "
                f"mysqldump reads {dump_rows} rows of {', '.join(TABLES)}"
            )
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("WPCDC_")},
                "WPCDC_MYSQL__PORT": str(server.port),
                "WPCDC_MYSQL__USER": server.user,
                "WPCDC_MYSQL__DATABASE": DATABASE,
                "WPCDC_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "WPCDC_KAFKA__TOPIC": "bench.snapshot",
                "WPCDC_CHECKPOINT__PATH": str(root / "checkpoint.json"),
            }
            snapshot = [
                sys.executable, "-m", "wpcdc", "snapshot", "--force",
                "--chunk-size", str(args.chunk_size), "--log-level", "WARNING",
            ]  # fmt: skip
            serialize_only = [sys.executable, __file__, "--read-and-serialize", str(server.port)]
            mysqldump = [
                dump, "--single-transaction", "--quick", "-h", server.host, "-P", str(server.port),
                "-u", server.user, DATABASE, *TABLES,
            ]  # fmt: skip
            variants = {
                "wpcdc snapshot": (snapshot, snapshot_rows, None),
                "read + serialize": (serialize_only, snapshot_rows, None),
                "mysqldump --single-transaction": (mysqldump, dump_rows, root / "dump.sql"),
            }
            runs: dict[str, list[Run]] = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, (argv, _, out) in variants.items():
                    runs[name].append(run_measured(argv, env, out))
            baseline = statistics.median(r.seconds for r in runs["mysqldump --single-transaction"])
            print(
                f"\n{'variant':32} {'rows':>8} {'median s':>9} {'rows/s':>9} "
                f"{'posts/s':>8} {'peak RSS':>9} {'time vs dump':>13}"
            )
            for name, (_, rows, _) in variants.items():
                seconds = statistics.median(r.seconds for r in runs[name])
                rss = max(r.peak_rss_mb for r in runs[name])
                posts = f"{len(ids) / seconds:8.0f}" if rows == snapshot_rows else f"{'':8}"
                print(
                    f"{name:32} {rows:8d} {seconds:9.2f} {rows / seconds:9.0f} {posts} "
                    f"{rss:7.0f}MB {seconds / baseline:12.2f}x"
                )

            print("\nwriter latency (UPDATE wp_posts ... WHERE ID = ?, autocommit)")
            print(f"{'alone':32} {describe(during(server, ids, None, seconds=8))}")
            print(
                f"{'during wpcdc snapshot':32} "
                f"{describe(during(server, ids, lambda: run_measured(snapshot, env)))}"
            )
            print(
                f"{'during mysqldump':32} "
                f"{describe(during(server, ids, lambda: run_measured(mysqldump, env, root / 'dump.sql')))}"
            )
        finally:
            broker.stop()
            server.stop()
    print(json.dumps({"posts": args.posts, "rounds": args.rounds, "chunk_size": args.chunk_size}))


if __name__ == "__main__":
    main()
