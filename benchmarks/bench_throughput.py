"""Throughput side by side (issue 8): wpcdc end to end, the plain mysql-replication
loop and ``mysqlbinlog -v`` over the same binlog range, for both WordPress shapes;
then the freshness of an editor's save made right behind a bulk job.

Starts a private MariaDB, the Tansu broker and WordPress (for the tags, the
editor's post and its saves), then writes each workload with SQL generated in
Python (_workload.write_post_rows: per post the post row with a 2 KB body, the
guid UPDATE, 8 meta rows, 2 term relationships; one statement per row):

- ``autocommit``: every row its own transaction, how WordPress writes
  (``--autocommit-posts``, default 10,000 posts, 120,000 row changes);
- ``transaction``: one BEGIN..COMMIT per post, a bulk import
  (``--transaction-posts``, default 20,000 posts, 240,000 row changes).

Each shape's binlog range is read ``--rounds`` times by each contestant,
interleaved so that machine noise hits all alike, each in a process of its own
(so that its peak RSS is its own):

- ``wpcdc``: the pipeline built as ``wpcdc run`` builds it
  (``wpcdc.runtime.build``, default settings), each round to a fresh topic,
  timed until the checkpoint reaches the end of the range: every event
  acknowledged by the broker (bench_pipeline.py's ``wpcdc`` variant; setup,
  i.e. producer connect, topic creation, mirror load, is not timed);
- ``library``: a plain ``BinLogStreamReader`` loop touching every value of every
  row (bench_pipeline.py's ``baseline``);
- ``mysqlbinlog``: ``mariadb-binlog --read-from-remote-server -v
  --base64-output=decode-rows`` with ``--start-position``/``--stop-position``,
  output to /dev/null, the process's whole life timed (it connects in ms).

Peak RSS is each process's VmHWM (read by the process itself, or sampled from
/proc every 2 ms for mysqlbinlog), not ``ru_maxrss``: Linux carries a parent's
high-water mark into its children's ``ru_maxrss`` across fork and exec.

Rates are the range's row changes (as the library loop counts them, all tables;
mysqlbinlog's printed rows are counted once, untimed, to check the range) over
the median time. Ratios are throughput ratios: wpcdc/mysqlbinlog is
mysqlbinlog's median time over wpcdc's.

"Editor save behind a bulk job": ``--bulk-rows`` meta rows (default 100,000,
100 bytes each, 100 per post) exist before a real ``wpcdc run`` process starts
(default settings, a topic of its own). Then ``--saves`` times: an editor save
alone (``wp_update_post`` with a new title through WordPress PHP), then one
UPDATE statement rewriting every bulk row followed at once, in the same PHP
process, by the same save. The latency is from the save's post row committed
(when its UPDATE returned, from wpdb's query log with ``SAVEQUERIES``; the
revision written after it is dropped by wpcdc) to a consumer on the topic
reading the post event with that title (same clock).

``--contestants`` also takes ``source`` (``BinlogSource`` alone) and ``fold``
(source and fold, nothing sent), to see where wpcdc's time goes; ``--json PATH``
writes every round's figures.

Run on demand, never in CI::

    .venv/bin/python benchmarks/bench_throughput.py --quick     # smoke run, ~30 s
    .venv/bin/python benchmarks/bench_throughput.py             # the issue's sizes, 3 rounds
    .venv/bin/python benchmarks/bench_throughput.py --shapes transaction --rounds 1 --saves 0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pymysql
from _rss import PeakSampler, vm_hwm_mib
from _workload import (
    DATABASE,
    ROWS_PER_POST,
    create_tags,
    install_wordpress,
    write_post_rows,
)
from aiokafka import AIOKafkaConsumer
from bench_pipeline import Job, Workload, measure, record

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.positions import Position, file_index
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.wordpress import WordPressSite

CONTESTANTS = ("wpcdc", "library", "mysqlbinlog")
# Not run by default: wpcdc's stages alone, to see where its time goes.
STAGES = ("source", "fold")
SHAPES = ("autocommit", "transaction")
# bench_pipeline.py's name for each contestant it measures.
PIPELINE_VARIANT = {"wpcdc": "wpcdc", "library": "baseline", "source": "source", "fold": "fold"}
# Issue 8's targets, printed next to the figures.
TARGET_VS_MYSQLBINLOG = {"autocommit": 0.4}
TARGET_VS_LIBRARY = {"transaction": 2.5}
TARGET_RSS_MB = 150


@dataclass(frozen=True)
class Measurement:
    """One contestant over one range: wall time and its process's peak RSS."""

    seconds: float
    rss_peak_mib: float
    # Row changes the contestant itself counted (None: mysqlbinlog, not counted when timed).
    rows: int | None = None
    # wpcdc only: events acknowledged.
    events: int | None = None
    # The process's CPU time (all threads, user + system).
    cpu_seconds: float | None = None


# --- mysqlbinlog -------------------------------------------------------------------


def mysqlbinlog_binary() -> str:
    """MariaDB's own client for a MariaDB server (``mysqlbinlog`` is its alias on Debian)."""
    for name in ("mariadb-binlog", "mysqlbinlog"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("mariadb-binlog not found: apt-get install -y mariadb-client")


def mysqlbinlog_command(mysql: MysqlSettings, start: Position, end: Position) -> list[str]:
    """Decode [start, end) from the server; --stop-position applies to the last file."""
    with (
        pymysql.connect(
            host=mysql.host,
            port=mysql.port,
            user=mysql.user,
            password=mysql.password.get_secret_value(),
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SHOW BINARY LOGS")
        names = [str(row[0]) for row in cursor.fetchall()]
    files = [n for n in names if file_index(start.file) <= file_index(n) <= file_index(end.file)]
    return [
        mysqlbinlog_binary(),
        "--no-defaults",
        "--read-from-remote-server",
        f"--host={mysql.host}",
        f"--port={mysql.port}",
        f"--user={mysql.user}",
        f"--password={mysql.password.get_secret_value()}",
        "-v",
        "--base64-output=decode-rows",
        f"--start-position={start.pos}",
        f"--stop-position={end.pos}",
        *files,
    ]


def run_mysqlbinlog(command: list[str]) -> Measurement:
    """One timed run, its peak RSS sampled from /proc while it runs."""
    began = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with PeakSampler(process.pid) as sampler:
        _, stderr = process.communicate()
    seconds = time.perf_counter() - began
    # The children waited for since: mysqlbinlog alone.
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    if process.returncode != 0:
        raise RuntimeError(f"mysqlbinlog failed: {stderr.decode(errors='replace')[-500:]}")
    return Measurement(seconds, sampler.peak_mib, cpu_seconds=cpu)


def mysqlbinlog_rows(command: list[str]) -> int:
    """The row changes mysqlbinlog prints for the range (untimed): a check that its
    range is the others' range."""
    prefixes = (b"### INSERT INTO ", b"### UPDATE ", b"### DELETE FROM ")
    rows = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        for line in process.stdout:
            rows += line.startswith(prefixes)
    if process.returncode != 0:
        raise RuntimeError(f"mysqlbinlog exited with {process.returncode}")
    return rows


# --- one shape: write it, read it with every contestant, report --------------------


@dataclass
class ShapeResult:
    shape: str
    workload: Workload
    rows: int  # row changes in the range (library loop, all tables)
    mysqlbinlog_rows: int | None
    wpcdc_rows: int | None  # on watched tables
    transactions: int | None  # in the range (the library loop's count of XIDs)
    runs: dict[str, list[Measurement]] = field(default_factory=dict)

    def median(self, contestant: str) -> float:
        return statistics.median(m.seconds for m in self.runs[contestant])

    def rate(self, contestant: str) -> float:
        return self.rows / self.median(contestant)

    def ratio(self, contestant: str, baseline: str) -> float | None:
        """``contestant``'s throughput over ``baseline``'s, when both ran."""
        if contestant not in self.runs or baseline not in self.runs:
            return None
        return self.median(baseline) / self.median(contestant)


def measure_shape(
    shape: str,
    posts: int,
    args: argparse.Namespace,
    server: MariaDBServer,
    mysql: MysqlSettings,
    broker: TansuBroker,
    tags: list[int],
) -> ShapeResult:
    per_post = shape == "transaction"
    workload = record(
        f"{shape}: {posts:,} posts, {posts * ROWS_PER_POST:,} row changes, "
        + ("one transaction per post" if per_post else "every row its own transaction"),
        server,
        mysql,
        lambda: _write(server, posts, tags, transaction_per_post=per_post),
    )
    command = mysqlbinlog_command(mysql, workload.start, workload.end)
    printed = mysqlbinlog_rows(command) if "mysqlbinlog" in args.contestants else None
    runs: dict[str, list[Measurement]] = {c: [] for c in args.contestants}
    counted: dict[str, int] = {}
    transactions: int | None = None
    for round_number in range(args.rounds):
        for contestant in args.contestants:  # interleaved: noise hits all alike
            if contestant == "mysqlbinlog":
                result = run_mysqlbinlog(command)
            else:
                topic = f"bench-{uuid.uuid4().hex[:12]}"  # a fresh topic each round
                job = Job(mysql, broker.bootstrap_servers, topic, workload.start, workload.end)
                raw = measure(PIPELINE_VARIANT[contestant], job)
                counted[contestant] = raw.rows
                if contestant == "library" or transactions is None:  # the loop counts XIDs
                    transactions = raw.transactions
                result = Measurement(
                    raw.seconds, raw.rss_peak_mib, raw.rows, raw.events, raw.cpu_seconds
                )
            runs[contestant].append(result)
            print(
                f"  round {round_number + 1} {contestant:11} {result.seconds:7.2f}s "
                f"(CPU {_cpu(result.cpu_seconds)}) peak {result.rss_peak_mib:6.1f} MiB",
                flush=True,
            )
    rows = counted.get("library") or printed or counted.get("wpcdc") or 0
    return ShapeResult(shape, workload, rows, printed, counted.get("wpcdc"), transactions, runs)


def _write(
    server: MariaDBServer, posts: int, tags: list[int], *, transaction_per_post: bool
) -> None:
    write_post_rows(server, posts, tags, transaction_per_post=transaction_per_post)


def report_shape(result: ShapeResult) -> None:
    w = result.workload
    print(f"\n### {w.name}\n")
    size = f"{(w.end.pos - w.start.pos) / 1e6:.1f} MB" if w.start.file == w.end.file else "-"
    print(
        f"binlog {w.start} .. {w.end} ({size}); transactions: {_count(result.transactions)}; "
        f"row changes: {result.rows:,} "
        f"(mysqlbinlog printed {_count(result.mysqlbinlog_rows)}; "
        f"wpcdc, watched tables: {_count(result.wpcdc_rows)})\n"
    )
    print("| contestant | median s | CPU s | row changes/s | peak RSS MiB | wpcdc vs it |")
    print("|---|---|---|---|---|---|")
    for contestant, runs in result.runs.items():
        ratio = result.ratio("wpcdc", contestant)
        cpus = [m.cpu_seconds for m in runs if m.cpu_seconds is not None]
        cpu = _cpu(statistics.median(cpus) if cpus else None)
        print(
            f"| {contestant} | {result.median(contestant):.2f} | {cpu} "
            f"| {result.rate(contestant):,.0f} "
            f"| {statistics.median(m.rss_peak_mib for m in runs):.1f} "
            f"| {'-' if ratio is None else f'{ratio:.2f}x'} |"
        )
    print()
    vs_binlog = result.ratio("wpcdc", "mysqlbinlog")
    vs_library = result.ratio("wpcdc", "library")
    if vs_binlog is not None:
        target = TARGET_VS_MYSQLBINLOG.get(result.shape)
        print(f"wpcdc/mysqlbinlog: {vs_binlog:.2f}x" + _target(vs_binlog, target))
    if vs_library is not None:
        target = TARGET_VS_LIBRARY.get(result.shape)
        print(f"wpcdc/library loop: {vs_library:.2f}x" + _target(vs_library, target))
    if "wpcdc" in result.runs:
        events = result.runs["wpcdc"][0].events
        if events:
            print(f"wpcdc events: {events:,} ({events / result.median('wpcdc'):,.0f}/s)")
        peaks = [m.rss_peak_mib for m in result.runs["wpcdc"]]
        mb = max(peaks) * 1.048576
        print(
            f"wpcdc peak RSS: median {statistics.median(peaks):.1f} MiB, max {max(peaks):.1f} MiB "
            f"= {mb:.0f} MB (target <= {TARGET_RSS_MB} MB: {'met' if mb <= TARGET_RSS_MB else 'NOT met'})"
        )


def _cpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _target(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f" (target >= {target}x: {'met' if value >= target else 'NOT met'})"


# --- an editor's save behind a bulk job ---------------------------------------------

EDITOR_POST = """
$id = wp_insert_post(['post_title' => 'Editor', 'post_content' => 'Hello',
                      'post_status' => 'publish'], true);
if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
return $id;
"""

# The editor's save: a new title, as the block editor's save of a title change;
# with $args['bulk'], right behind one UPDATE rewriting every bulk meta row (one
# transaction), from the same PHP process so that nothing but that UPDATE comes
# between them. The save's time is when the UPDATE of its post row returned
# (autocommitted: committed), from wpdb's query log: that row is the last change
# the post's event carries (the revision WordPress writes next is dropped by
# wpcdc, fold.ignored_post_types). Taking it from an action instead ran late by
# whatever PHP did in between, tens of ms on a loaded machine.
SAVE = """
global $wpdb;
$bulk = null;
if ($args['bulk'] !== null) {
    $began = microtime(true);
    $sql = "UPDATE {$wpdb->postmeta} SET meta_value = REPEAT(%s, 100) WHERE meta_key = %s";
    if ($wpdb->query($wpdb->prepare($sql, $args['bulk'], $args['key'])) === false) {
        throw new Exception($wpdb->last_error);
    }
    $bulk = ['seconds' => microtime(true) - $began, 'committed' => microtime(true)];
}
if (!defined('SAVEQUERIES')) { define('SAVEQUERIES', true); }  // read at each query
$wpdb->queries = [];
$done = wp_update_post(['ID' => $args['id'], 'post_title' => $args['title']], true);
if (is_wp_error($done)) { throw new Exception($done->get_error_message()); }
$saved = null;
foreach ($wpdb->queries as $query) {  // [sql, elapsed, caller, start, ...]
    if (str_starts_with($query[0], "UPDATE `{$wpdb->posts}`")
        && str_contains($query[0], "WHERE `ID` = {$args['id']}")) {
        $saved = $query[3] + $query[1];  // when the autocommitted UPDATE returned
        break;
    }
}
if ($saved === null) { throw new Exception('no UPDATE of the post row in the save'); }
return ['saved' => $saved, 'bulk' => $bulk];
"""

BULK_KEY = "bulk_job"
BULK_POST_ROWS = 100  # bulk meta rows per post


@dataclass
class TitleWatch:
    """A consumer on the topic noting when each title of one post became readable."""

    bootstrap: str
    topic: str
    key: bytes
    seen: dict[str, float] = field(default_factory=dict)
    records: int = 0

    async def run(self, stop: asyncio.Event, ready: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=20)
                now = time.time()
                ready.set()
                for records in batches.values():
                    self.records += len(records)
                    for record in records:
                        if record.key != self.key or record.value is None:
                            continue
                        post = orjson.loads(record.value).get("data", {}).get("post") or {}
                        title = post.get("title")
                        if isinstance(title, str):
                            self.seen.setdefault(title, now)
        finally:
            await consumer.stop()

    async def arrival(self, title: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while title not in self.seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no event with title {title!r} on {self.topic} in {timeout}s")
            await asyncio.sleep(0.005)
        return self.seen[title]


@dataclass
class SaveResult:
    alone_ms: list[float] = field(default_factory=list)
    behind_ms: list[float] = field(default_factory=list)
    bulk_commit_s: list[float] = field(default_factory=list)
    # From the bulk UPDATE's commit to the save's (PHP starting up, mostly).
    gap_ms: list[float] = field(default_factory=list)
    rss_peak_mib: float | None = None


def prepare_bulk(server: MariaDBServer, tags: list[int], rows: int) -> None:
    """Posts of BULK_POST_ROWS bulk meta rows each (100 bytes), before wpcdc starts."""
    posts = max(1, rows // BULK_POST_ROWS)
    write_post_rows(server, posts, tags, transaction_per_post=True)
    with server.connect(DATABASE) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT MAX(ID) FROM wp_posts")
        row = cursor.fetchone()
        assert row is not None
        first = int(row[0]) - posts + 1
        # MariaDB's SEQUENCE engine: seq_0_to_N is a table of numbers.
        cursor.execute(
            "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
            f"SELECT {first} + seq % {posts}, '{BULK_KEY}', REPEAT('a', 100) "
            f"FROM seq_0_to_{rows - 1}"
        )


def save(site: WordPressSite, post_id: int, title: str, bulk: str | None) -> dict[str, Any]:
    """The editor's save (behind the bulk UPDATE writing ``bulk`` 100 times into every
    bulk row, when given): when it and the bulk UPDATE committed (``time.time()``)."""
    args = {"id": post_id, "title": title, "bulk": bulk, "key": BULK_KEY}
    result: dict[str, Any] = site.php(SAVE, args)
    return result


def streamer(
    server: MariaDBServer, bootstrap: str, topic: str, work: Path
) -> subprocess.Popen[bytes]:
    """``wpcdc run`` with default settings, from the end of the binlog."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WPCDC_")}
    env.update(
        {
            "WPCDC_MYSQL__HOST": server.host,
            "WPCDC_MYSQL__PORT": str(server.port),
            "WPCDC_MYSQL__USER": server.user,
            "WPCDC_MYSQL__DATABASE": DATABASE,
            "WPCDC_MYSQL__SERVER_ID": "1077",
            "WPCDC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "WPCDC_KAFKA__TOPIC": topic,
            "WPCDC_CHECKPOINT__PATH": str(work / "save.checkpoint.json"),
            "WPCDC_METRICS__PORT": "0",
        }
    )
    log = (work / "save.wpcdc.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "wpcdc", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def editor_save_behind_bulk(
    args: argparse.Namespace,
    server: MariaDBServer,
    site: WordPressSite,
    broker: TansuBroker,
    tags: list[int],
    work: Path,
) -> SaveResult:
    began = time.monotonic()
    post_id = int(site.php(EDITOR_POST))
    await asyncio.to_thread(prepare_bulk, server, tags, args.bulk_rows)
    print(
        f"\nwrote {args.bulk_rows:,} bulk meta rows in {time.monotonic() - began:.1f}s; "
        "starting wpcdc run",
        flush=True,
    )
    topic = f"save-{uuid.uuid4().hex[:12]}"
    process = streamer(server, broker.bootstrap_servers, topic, work)
    result = SaveResult()
    try:
        checkpoint = work / "save.checkpoint.json"
        deadline = time.monotonic() + 60
        while not checkpoint.exists():
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"wpcdc run did not start: see {work / 'save.wpcdc.log'}")
            await asyncio.sleep(0.1)
        watch = TitleWatch(broker.bootstrap_servers, topic, f"1:{post_id}".encode())
        stop, ready = asyncio.Event(), asyncio.Event()
        consuming = asyncio.create_task(watch.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(1.0)  # the reader is connected, the consumer assigned
        try:
            for n in range(args.saves):
                title = f"alone {n}"
                done = await asyncio.to_thread(save, site, post_id, title, None)
                arrived = await watch.arrival(title, 60)
                result.alone_ms.append(1000 * (arrived - done["saved"]))
                await asyncio.sleep(0.5)
                title = f"behind bulk {n}"
                letter = chr(ord("b") + n % 24)  # a new value each time: no row is unchanged
                done = await asyncio.to_thread(save, site, post_id, title, letter)
                arrived = await watch.arrival(title, args.save_timeout)
                result.behind_ms.append(1000 * (arrived - done["saved"]))
                result.bulk_commit_s.append(done["bulk"]["seconds"])
                result.gap_ms.append(1000 * (done["saved"] - done["bulk"]["committed"]))
                print(
                    f"  save {n + 1}: alone {result.alone_ms[-1]:.0f} ms; behind the bulk UPDATE "
                    f"(committed in {result.bulk_commit_s[-1]:.1f}s, the save "
                    f"{result.gap_ms[-1]:.0f} ms later) {result.behind_ms[-1]:.0f} ms",
                    flush=True,
                )
                await asyncio.sleep(1.0)
        finally:
            stop.set()
            await consuming
        result.rss_peak_mib = vm_hwm_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    return result


def report_saves(args: argparse.Namespace, result: SaveResult) -> None:
    if not result.behind_ms:
        return
    print(
        f"\n### Editor save behind a bulk UPDATE of {args.bulk_rows:,} meta rows "
        f"({len(result.behind_ms)} saves)\n"
    )
    print("| save | median ms | min ms | max ms |")
    print("|---|---|---|---|")
    for name, values in (("alone", result.alone_ms), ("behind the bulk job", result.behind_ms)):
        print(
            f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} "
            f"| {max(values):,.0f} |"
        )
    print(
        f"\nbulk UPDATE: median {statistics.median(result.bulk_commit_s):.2f}s to commit; "
        f"the save committed a median {statistics.median(result.gap_ms):.0f} ms after it; "
        f"wpcdc run peak RSS: "
        + ("-" if result.rss_peak_mib is None else f"{result.rss_peak_mib:.1f} MiB")
    )


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def summary(
    args: argparse.Namespace, shapes: list[ShapeResult], saves: SaveResult | None
) -> dict[str, Any]:
    """The figures of the run, for comparing runs by program."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _commit(),
        "load_average": os.getloadavg(),
        "shapes": {
            r.shape: {
                "start": r.workload.start.to_dict(),
                "end": r.workload.end.to_dict(),
                "row_changes": r.rows,
                "transactions": r.transactions,
                "wpcdc_events": r.runs["wpcdc"][0].events if "wpcdc" in r.runs else None,
                "contestants": {
                    c: {
                        "seconds": [m.seconds for m in runs],
                        "median_seconds": r.median(c),
                        "row_changes_per_second": r.rate(c),
                        "peak_rss_mib": [m.rss_peak_mib for m in runs],
                    }
                    for c, runs in r.runs.items()
                },
                "wpcdc_vs_mysqlbinlog": r.ratio("wpcdc", "mysqlbinlog"),
                "wpcdc_vs_library": r.ratio("wpcdc", "library"),
            }
            for r in shapes
        },
        "editor_save": None
        if saves is None
        else {
            "bulk_rows": args.bulk_rows,
            "alone_ms": saves.alone_ms,
            "behind_bulk_ms": saves.behind_ms,
            "bulk_commit_seconds": saves.bulk_commit_s,
            "bulk_commit_to_save_ms": saves.gap_ms,
            "wpcdc_run_peak_rss_mib": saves.rss_peak_mib,
        },
    }


# --- main ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--autocommit-posts",
        type=int,
        default=10_000,
        help="posts of the every-row-its-own-transaction shape",
    )
    parser.add_argument(
        "--transaction-posts",
        type=int,
        default=20_000,
        help="posts of the transaction-per-post shape",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shapes", nargs="*", choices=SHAPES, default=list(SHAPES))
    parser.add_argument(
        "--contestants",
        nargs="+",
        choices=CONTESTANTS + STAGES,
        default=list(CONTESTANTS),
        help="also: source (BinlogSource alone), fold (source + Folder, nothing sent)",
    )
    parser.add_argument(
        "--bulk-rows", type=int, default=100_000, help="meta rows the bulk UPDATE rewrites"
    )
    parser.add_argument(
        "--saves", type=int, default=3, help="editor saves behind the bulk job (0: none)"
    )
    parser.add_argument(
        "--save-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for a save behind the bulk",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~1 min): 500 and 1,000 posts, 1 round, 10,000 bulk rows, 1 save",
    )
    if parser.parse_known_args()[0].quick:  # smaller defaults; options given still win
        parser.set_defaults(
            autocommit_posts=500, transaction_posts=1000, rounds=1, bulk_rows=10_000, saves=1
        )
    args = parser.parse_args()

    began = time.monotonic()
    posts = {"autocommit": args.autocommit_posts, "transaction": args.transaction_posts}
    with tempfile.TemporaryDirectory(prefix="wpcdc-throughput-") as directory:
        work = Path(directory)
        server = MariaDBServer.start(work / "mariadb")
        broker = TansuBroker.start(work / "broker")
        try:
            site, mysql = install_wordpress(server)
            tags = create_tags(site)
            with server.connect() as conn, conn.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                version = cursor.fetchone()
            print(
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}, commit {_commit()}; "
                f"machine: {len(os.sched_getaffinity(0))} CPUs, load average "
                f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {sys.version.split()[0]}, "
                f"server {version[0] if version else '?'}",
                flush=True,
            )
            # Each range is measured before the next is written, so that it ends where
            # the binlog ends and the pipeline has nothing to read beyond it.
            shapes: list[ShapeResult] = []
            for shape in args.shapes:
                shapes.append(measure_shape(shape, posts[shape], args, server, mysql, broker, tags))
                report_shape(shapes[-1])
            saves = None
            if args.saves > 0:
                saves = asyncio.run(editor_save_behind_bulk(args, server, site, broker, tags, work))
                report_saves(args, saves)
            if args.json:
                args.json.write_bytes(
                    orjson.dumps(summary(args, shapes, saves), option=orjson.OPT_INDENT_2)
                )
                print(f"figures written to {args.json}")
        finally:
            broker.stop()
            server.stop()
    print(f"\ntook {time.monotonic() - began:.0f}s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
