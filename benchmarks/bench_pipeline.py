"""End-to-end throughput and memory: binlog -> fold -> acknowledged Kafka events,
next to a plain mysql-replication loop over the same binlog range.

Starts a private MariaDB and a private Tansu broker, installs WordPress and
writes a WordPress-shaped workload through WordPress's own PHP APIs (see
_workload.py): ``--posts`` posts with a 2 KB body, tags and meta, then a round
of title and meta edits. The binlog range it occupies is then read by each
variant, ``--rounds`` times, interleaved so that machine noise hits all alike:

- ``baseline``: a plain ``BinLogStreamReader`` loop (file/pos, non-blocking,
  ``only_schemas``, ``freeze_schema``, row events) touching every value of every
  row of every table;
- ``source``: ``BinlogSource.items()`` alone (watched tables only);
- ``fold``: ``BinlogSource`` + ``Folder``, events derived but not sent;
- ``wpcdc``: the real ``Pipeline`` built as ``wpcdc run`` builds it (mirror,
  fold, ``KafkaSink`` with acks=all, ack tracker, file checkpoint store), each
  round to a fresh topic, until the checkpoint reaches the end of the range,
  i.e. every event was acknowledged.

Each measurement runs in a fresh process (the script runs itself with
``--variant``), so the peak RSS reported (VmHWM) is that variant's own. The table shows
medians; "vs baseline" is the baseline's median time over the variant's for the
same binlog range, i.e. the throughput ratio. Setup (connecting the producer,
creating the topic, loading the mirror) is not timed.

``--big-transaction N [N ...]`` replaces the posts workload by one transaction
of N add_post_meta rows per N, to show that memory stays bounded: the peak RSS
at 200,000 rows should be close to the one at 50,000, not 4 times it.

Run on demand, never in CI (several minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_pipeline.py
    .venv/bin/python benchmarks/bench_pipeline.py --big-transaction 50000 200000
    .venv/bin/python benchmarks/bench_pipeline.py --posts 200 --rounds 1 --profile fold
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from _rss import peak_rss_mib
from _workload import (
    DATABASE,
    install_wordpress,
    write_big_transaction,
    write_interleaved,
    write_posts,
)
from prometheus_client import CollectorRegistry
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from wpcdc.config.settings import (
    CheckpointSettings,
    FoldSettings,
    KafkaSettings,
    MetricsSettings,
    MysqlSettings,
    Settings,
)
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.fold import Folder
from wpcdc.core.positions import Position, file_index
from wpcdc.core.rows import Idle
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.wordpress import WordPressSite
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.posts import load_mirror
from wpcdc.mysql.status import current_position
from wpcdc.runtime.build import build_pipeline
from wpcdc.runtime.files import FileCheckpointStore
from wpcdc.runtime.metrics import Metrics

VARIANTS = ("baseline", "source", "fold", "wpcdc")
# Small, so that checkpoint saves are part of what is measured.
CHECKPOINT_INTERVAL = 0.5


@dataclass(frozen=True)
class Workload:
    """The binlog range one workload wrote, between two transaction boundaries."""

    name: str
    start: Position
    end: Position


@dataclass(frozen=True)
class Job:
    """What one measurement process needs: where to read, where to send."""

    mysql: MysqlSettings
    bootstrap_servers: str
    topic: str
    start: Position
    end: Position

    def to_json(self) -> str:
        return json.dumps(
            {
                # model_dump masks the password.
                "mysql": {
                    **self.mysql.model_dump(mode="json"),
                    "password": self.mysql.password.get_secret_value(),
                },
                "bootstrap_servers": self.bootstrap_servers,
                "topic": self.topic,
                "start": self.start.to_dict(),
                "end": self.end.to_dict(),
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Job:
        data = json.loads(raw)
        return cls(
            mysql=MysqlSettings(**data["mysql"]),
            bootstrap_servers=data["bootstrap_servers"],
            topic=data["topic"],
            start=Position.from_dict(data["start"]),
            end=Position.from_dict(data["end"]),
        )

    def settings(self, checkpoint: Path) -> Settings:
        """What ``wpcdc run`` would be configured with; the metrics endpoint is off."""
        return Settings(
            mysql=self.mysql,
            kafka=KafkaSettings(bootstrap_servers=self.bootstrap_servers, topic=self.topic),
            checkpoint=CheckpointSettings(path=checkpoint, interval_seconds=CHECKPOINT_INTERVAL),
            metrics=MetricsSettings(port=0),
        )


@dataclass(frozen=True)
class Result:
    """One measurement. ``rows``: row changes read (all tables for the baseline,
    watched tables otherwise); ``events``: None where no event is derived."""

    seconds: float
    transactions: int
    rows: int
    events: int | None
    rss_start_mib: float
    rss_peak_mib: float
    # wpcdc only: the largest checkpoint file it wrote.
    checkpoint_max_bytes: int | None = None
    # CPU time of the process (all threads, user + system) over ``seconds``: below
    # ``seconds`` when the process waited (for the server, the broker or a thread).
    cpu_seconds: float | None = None


# --- the variants (each runs in a process of its own) ----------------------------


def run_baseline(job: Job, rss_start: float) -> Result:
    began, cpu = time.perf_counter(), time.process_time()
    reader = BinLogStreamReader(
        connection_settings={
            "host": job.mysql.host,
            "port": job.mysql.port,
            "user": job.mysql.user,
            "password": job.mysql.password.get_secret_value(),
        },
        server_id=job.mysql.server_id + 1,
        log_file=job.start.file,
        log_pos=job.start.pos,
        resume_stream=True,
        is_mariadb=False,
        blocking=False,
        only_schemas=[job.mysql.database],
        # XID events only to count transactions and to stop at the end position.
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, XidEvent],
        freeze_schema=True,
        enable_logging=False,
    )
    transactions = rows = 0
    touched: Any = None
    try:
        for event in reader:
            if isinstance(event, XidEvent):
                transactions += 1
                if (file_index(reader.log_file), event.packet.log_pos) >= job.end.key():
                    break
                continue
            for row in event.rows:
                for image in row.values():
                    touched = image  # every value is decoded by now
                rows += 1
    finally:
        reader.close()
    del touched
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return Result(seconds, transactions, rows, None, rss_start, peak_rss_mib(), cpu_seconds=cpu)


def run_source(job: Job, rss_start: float, *, fold: bool) -> Result:
    """``BinlogSource.items()`` to the end of the range, through a Folder when ``fold``."""
    fold_settings = FoldSettings()
    folder = None
    if fold:
        folder = Folder(config=fold_settings.to_config(), mirror=load_mirror(job.mysql))
    source = BinlogSource(
        mysql=job.mysql, start=job.start, heartbeat=float(fold_settings.window_seconds + 1)
    )
    transactions = rows = events = 0
    began, cpu = time.perf_counter(), time.process_time()
    for item in source.items():
        if isinstance(item, Idle):
            if folder is not None:
                events += sum(len(group.events) for group in folder.idle())
            continue
        rows += len(item.changes)
        if folder is not None:
            events += sum(len(group.events) for group in folder.feed(item))
        if item.end is not None:
            transactions += 1
            if item.end.key() >= job.end.key():
                break
    if folder is not None:
        events += sum(len(group.events) for group in folder.close_all())
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return Result(
        seconds,
        transactions,
        rows,
        events if fold else None,
        rss_start,
        peak_rss_mib(),
        cpu_seconds=cpu,
    )


def run_wpcdc(job: Job, rss_start: float) -> Result:
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(
            _stream(job.settings(Path(directory) / "checkpoint.json"), job, rss_start)
        )


async def _stream(settings: Settings, job: Job, rss_start: float) -> Result:
    """The pipeline built as ``wpcdc run`` builds it, from a checkpoint at the start
    of the range, until every event up to its end is acknowledged."""
    store = _SizedStore(settings.checkpoint.path)
    checkpoint = Checkpoint(position=job.start)
    store.save(checkpoint)
    registry = CollectorRegistry()
    async with build_pipeline(
        settings, checkpoint=checkpoint, store=store, metrics=Metrics(registry)
    ) as pipeline:
        stop = asyncio.Event()
        began, cpu = time.perf_counter(), time.process_time()
        watcher = asyncio.ensure_future(_stop_at(job.end, pipeline.folder, pipeline.tracker, stop))
        try:
            await pipeline.run(stop)
        finally:
            watcher.cancel()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    saved = store.load()
    if saved is None or saved.position.key() != job.end.key():
        raise RuntimeError(f"the pipeline stopped with checkpoint {saved}, not at {job.end}")
    return Result(
        seconds,
        int(_total(registry, "wpcdc_transactions_total")),
        int(_total(registry, "wpcdc_row_changes_total")),
        int(_total(registry, "wpcdc_events_total")),
        rss_start,
        peak_rss_mib(),
        store.largest,
        cpu,
    )


class _SizedStore(FileCheckpointStore):
    """The file store, noting the largest checkpoint it wrote."""

    largest = 0

    def save(self, document: Checkpoint) -> None:
        super().save(document)
        self.largest = max(self.largest, self.path.stat().st_size)


async def _stop_at(end: Position, folder: Folder, tracker: AckTracker, stop: asyncio.Event) -> None:
    """Set ``stop`` once the checkpoint would be ``end``: the fold consumed it, no
    group is open and no event is unacknowledged (what ``AckTracker.checkpoint``
    takes the minimum of). Polled, because the pipeline saves a checkpoint only
    after a batch from the source, and at the end of the range none comes."""
    while not (
        folder.position is not None
        and folder.position.key() >= end.key()
        and folder.open_groups == 0
        and tracker.in_flight == 0
    ):
        await asyncio.sleep(0.01)
    stop.set()


def _total(registry: CollectorRegistry, sample: str) -> float:
    """A counter's value summed over its labels."""
    return sum(s.value for metric in registry.collect() for s in metric.samples if s.name == sample)


RUNNERS: dict[str, Callable[[Job, float], Result]] = {
    "baseline": run_baseline,
    "source": partial(run_source, fold=False),
    "fold": partial(run_source, fold=True),
    "wpcdc": run_wpcdc,
}


def measure_here(variant: str, job: Job, profile: bool) -> Result:
    """The child's side: one measurement; with ``profile``, cProfile of the main
    thread (the loop, which reads the binlog too; not the worker threads) to stderr."""
    rss_start = peak_rss_mib()
    if not profile:
        return RUNNERS[variant](job, rss_start)
    profiler = cProfile.Profile()
    result = profiler.runcall(RUNNERS[variant], job, rss_start)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    return result


# --- the parent: servers, workloads, rounds, report ------------------------------


def measure(variant: str, job: Job, *, profile: bool = False) -> Result:
    """Run one measurement in a fresh process; its stderr (warnings) passes through.

    With ``BENCH_PY_SPY=DIR`` in the environment, the process runs under py-spy
    (``pip install py-spy``): every thread sampled at 1 kHz without pausing it,
    stacks written as ``DIR/{variant}-{n}.txt`` in py-spy's raw (collapsed) format.
    This is how the hot spots recorded in benchmarks/README.md were found;
    cProfile (``--profile``) sees only the main thread and inflates call-heavy code.
    """
    command = [sys.executable, __file__, "--variant", variant, "--job", job.to_json()]
    if profile:
        command += ["--profile", variant]
    spy = os.environ.get("BENCH_PY_SPY")
    if spy:
        # Next to this interpreter (.venv/bin) first, then on PATH.
        search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        py_spy = shutil.which("py-spy", path=search)
        if py_spy is None:
            raise SystemExit(
                "BENCH_PY_SPY is set but py-spy is missing: .venv/bin/pip install py-spy"
            )
        Path(spy).mkdir(parents=True, exist_ok=True)
        stacks = Path(spy) / f"{variant}-{len(list(Path(spy).glob(f'{variant}-*.txt')))}.txt"
        command = [
            *(py_spy, "record", "--nonblocking", "--threads", "--rate", "1000"),
            *("--format", "raw", "--output", str(stacks), "--"),
            *command,
        ]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    # The result is the last JSON line (py-spy prints its own lines too).
    line = [text for text in done.stdout.splitlines() if text.startswith("{")][-1]
    return Result(**json.loads(line))


def close_fold_window(server: MariaDBServer) -> None:
    """End a workload with a transaction on a table wpcdc does not watch, committed
    after the fold window: it closes every open group, so the end of the range is
    where the checkpoint lands once everything is acknowledged."""
    time.sleep(Settings().fold.window_seconds + 1)
    with server.connect(DATABASE) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO wp_options (option_name, option_value, autoload) "
            "VALUES ('bench_end', NOW(6), 'no') "
            "ON DUPLICATE KEY UPDATE option_value = VALUES(option_value)"
        )


def record(
    name: str, server: MariaDBServer, mysql: MysqlSettings, write: Callable[[], None]
) -> Workload:
    start = current_position(mysql)
    began = time.monotonic()
    write()
    close_fold_window(server)
    end = current_position(mysql)
    print(f"wrote {name} in {time.monotonic() - began:.1f}s ({start} .. {end})", flush=True)
    return Workload(name, start, end)


def workloads(
    args: argparse.Namespace, server: MariaDBServer, site: WordPressSite, mysql: MysqlSettings
) -> Iterator[Workload]:
    if not args.big_transaction and not args.interleaved:
        yield record(
            f"{args.posts} posts, then an edit of each",
            server,
            mysql,
            lambda: write_posts(site, args.posts, edits=True),
        )
    for rows in args.big_transaction:
        yield record(
            f"one transaction of {rows:,} meta rows",
            server,
            mysql,
            partial(write_big_transaction, site, rows),
        )
    if args.interleaved:
        rows, posts = args.interleaved
        yield record(
            f"one transaction of {rows:,} meta rows interleaved across {posts:,} posts",
            server,
            mysql,
            partial(write_interleaved, site, server, rows, posts),
        )


def run_rounds(
    workload: Workload, mysql: MysqlSettings, broker: TansuBroker, args: argparse.Namespace
) -> dict[str, list[Result]]:
    def job() -> Job:  # a fresh topic each time
        topic = f"bench-{uuid.uuid4().hex[:12]}"
        return Job(mysql, broker.bootstrap_servers, topic, workload.start, workload.end)

    results: dict[str, list[Result]] = {variant: [] for variant in args.variants}
    for round_number in range(args.rounds):
        for variant in args.variants:  # interleaved: noise hits all alike
            result = measure(variant, job())
            results[variant].append(result)
            print(
                f"  round {round_number + 1} {variant:8} {result.seconds:7.2f}s "
                f"peak {result.rss_peak_mib:6.1f} MiB",
                flush=True,
            )
    if args.profile:
        print(f"profile of {args.profile} (stderr):", flush=True)
        measure(args.profile, job(), profile=True)
    return results


def report(workload: Workload, results: dict[str, list[Result]]) -> None:
    sizes = {variant: runs[0] for variant, runs in results.items()}
    pipeline = sizes.get("wpcdc") or sizes.get("fold") or sizes.get("source")
    baseline = sizes.get("baseline")
    print(f"\nworkload: {workload.name}; binlog {workload.start} .. {workload.end}")
    if workload.start.file == workload.end.file:
        print(f"  binlog bytes: {(workload.end.pos - workload.start.pos) / 1e6:.1f} MB")
    if pipeline is not None:
        events = "-" if pipeline.events is None else f"{pipeline.events:,}"
        print(
            f"  transactions: {pipeline.transactions:,}; row changes on watched tables: "
            f"{pipeline.rows:,}; events: {events}"
        )
    if baseline is not None:
        print(
            f"  row changes on all tables: {baseline.rows:,} "
            f"(baseline, which counted {baseline.transactions:,} transactions)"
        )
    print(
        f"  machine: {len(os.sched_getaffinity(0))} CPUs (nproc), Python {sys.version.split()[0]}"
    )
    base_seconds = statistics.median(r.seconds for r in results["baseline"]) if baseline else None
    print(
        f"\n{'variant':9} {'median s':>9} {'rows':>9} {'rows/s':>9} {'events/s':>9} "
        f"{'RSS start':>10} {'RSS peak':>9} {'vs baseline':>12}"
    )
    for variant, runs in results.items():
        seconds = statistics.median(r.seconds for r in runs)
        first = runs[0]
        events = "-" if first.events is None else f"{first.events / seconds:9.0f}"
        ratio = "-" if base_seconds is None else f"{base_seconds / seconds:11.2f}x"
        print(
            f"{variant:9} {seconds:9.2f} {first.rows:9d} {first.rows / seconds:9.0f} "
            f"{events:>9} {statistics.median(r.rss_start_mib for r in runs):9.1f}M "
            f"{statistics.median(r.rss_peak_mib for r in runs):8.1f}M {ratio:>12}"
        )
    print("(RSS in MiB: at process start, after imports, and peak; medians over rounds)")
    largest = [r.checkpoint_max_bytes for r in results.get("wpcdc", []) if r.checkpoint_max_bytes]
    if largest:
        print(f"largest checkpoint file written by wpcdc: {max(largest):,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--big-transaction",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="instead of the posts workload, one transaction of N meta rows per N given",
    )
    parser.add_argument(
        "--interleaved",
        type=int,
        nargs=2,
        metavar=("ROWS", "POSTS"),
        help="also one INSERT of ROWS meta rows round-robin across POSTS posts (SQL)",
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--profile", choices=VARIANTS, help="afterwards, profile one more run of this variant"
    )
    # Internal: one measurement in this process (the parent runs these).
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        result = measure_here(args.variant, Job.from_json(args.job), args.profile is not None)
        print(json.dumps(asdict(result)))
        return

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wpcdc-bench-") as directory:
        server = MariaDBServer.start(Path(directory) / "mariadb")
        broker = TansuBroker.start(Path(directory) / "broker")
        try:
            site, mysql = install_wordpress(server)
            # Lazily: each range is measured before the next is written, so that it
            # ends where the binlog ends and the pipeline has nothing to read beyond.
            for workload in workloads(args, server, site, mysql):
                report(workload, run_rounds(workload, mysql, broker, args))
        finally:
            broker.stop()
            server.stop()
    print(f"\ntook {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    main()
