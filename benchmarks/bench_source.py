"""Binlog source throughput: BinlogSource.items() on both readers next to plain library loops.

Starts a private MariaDB, installs WordPress, writes a WordPress-shaped binlog
(``--posts`` wp_insert_post calls with tags, meta, a 2 KB body, and one option
update each, as plugins do; see _workload.py), then reads the same binlog
several ways, each ``--rounds`` times, and prints the median row changes per
second of wall time and of this process's CPU time (steadier on a shared machine):

- ``items(), fast reader``: the source as the app uses it (``mysql.binlog_reader =
  "fast"``: wpcdc reads the dump stream and decodes watched tables' rows itself);
- ``items(), library reader``: the same on mysql-replication (``"library"``);
- ``items(), library, without only_tables``: the library reader with the table
  predicate off;
- plain loops touching every row value, with and without ``only_tables`` and
  ``freeze_schema``.

Run on demand: ``.venv/bin/python benchmarks/bench_source.py --posts 2000``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _workload import DATABASE, install_wordpress, write_posts
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

import wpcdc.mysql.binlog_events as source_events
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.positions import Position
from wpcdc.core.rows import TableKind, TransactionPart
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.status import current_position

MARKER = "bench-end-marker"


def write_binlog(server: MariaDBServer, posts: int) -> tuple[MysqlSettings, Position]:
    site, mysql = install_wordpress(server)
    start = current_position(mysql)
    began = time.monotonic()
    write_posts(site, posts, edits=False)
    with server.connect(DATABASE) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = ''")
        cursor.execute(f"INSERT INTO wp_posts (post_title) VALUES ('{MARKER}')")
    print(f"wrote {posts} posts in {time.monotonic() - began:.1f}s")
    return mysql, start


def through_items(mysql: MysqlSettings, start: Position) -> int:
    source = BinlogSource(mysql=mysql, start=start)
    rows = 0
    for item in source.items():
        if isinstance(item, TransactionPart):
            rows += len(item.changes)
            if any(
                c.table.kind is TableKind.POSTS and c.image.get("post_title") == MARKER
                for c in item.changes
            ):
                source.stop()
    return rows


def on_reader(reader: str) -> Callable[[MysqlSettings, Position], int]:
    def run(mysql: MysqlSettings, start: Position) -> int:
        return through_items(mysql.model_copy(update={"binlog_reader": reader}), start)

    return run


def through_items_without_only_tables(mysql: MysqlSettings, start: Position) -> int:
    original = source_events.WatchedTables.__contains__
    source_events.WatchedTables.__contains__ = lambda self, table: True  # type: ignore[method-assign]
    try:
        return on_reader("library")(mysql, start)
    finally:
        source_events.WatchedTables.__contains__ = original  # type: ignore[method-assign]


WATCHED = [f"wp_{kind}" for kind in TableKind]


def plain_loop(only_tables: bool, freeze_schema: bool) -> Callable[[MysqlSettings, Position], int]:
    def run(mysql: MysqlSettings, start: Position) -> int:
        reader = BinLogStreamReader(
            connection_settings={"host": mysql.host, "port": mysql.port, "user": mysql.user},
            server_id=mysql.server_id + 1,
            log_file=start.file,
            log_pos=start.pos,
            resume_stream=True,
            blocking=False,
            only_schemas=[mysql.database],
            only_tables=WATCHED if only_tables else None,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
            freeze_schema=freeze_schema,
            enable_logging=False,
        )
        rows = 0
        touched: Any = None
        for event in reader:
            for row in event.rows:
                for image in row.values():
                    touched = image  # every value is decoded by now
                rows += 1
        reader.close()
        del touched
        return rows

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    readers: dict[str, Callable[[MysqlSettings, Position], int]] = {
        "items(), fast reader": on_reader("fast"),
        "items(), library reader": on_reader("library"),
        "items(), library, without only_tables": through_items_without_only_tables,
        "plain loop": plain_loop(only_tables=False, freeze_schema=False),
        "plain loop, only_tables": plain_loop(only_tables=True, freeze_schema=False),
        "plain loop, freeze_schema": plain_loop(only_tables=False, freeze_schema=True),
        "plain loop, both": plain_loop(only_tables=True, freeze_schema=True),
    }
    with tempfile.TemporaryDirectory(prefix="wpcdc-bench-") as directory:
        server = MariaDBServer.start(Path(directory))
        try:
            mysql, start = write_binlog(server, args.posts)
            results: dict[str, list[tuple[int, float, float]]] = {name: [] for name in readers}
            for _ in range(args.rounds):
                for name, read in readers.items():  # interleaved: noise hits all alike
                    began, cpu = time.perf_counter(), time.process_time()
                    rows = read(mysql, start)
                    results[name].append(
                        (rows, time.perf_counter() - began, time.process_time() - cpu)
                    )
        finally:
            server.stop()
    # CPU seconds of this process (the reader; the server runs apart) are steadier
    # than wall time on a shared machine.
    baseline = statistics.median(s for _, s, _ in results["plain loop"])
    print(
        f"{'reader':38} {'rows':>8} {'median s':>9} {'rows/s':>9} {'vs plain':>9} "
        f"{'cpu s':>7} {'rows/cpu s':>10}"
    )
    for name, runs in results.items():
        seconds = statistics.median(s for _, s, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        rows = runs[0][0]
        print(
            f"{name:38} {rows:8d} {seconds:9.2f} {rows / seconds:9.0f} {baseline / seconds:8.2f}x "
            f"{cpu:7.2f} {rows / cpu:10.0f}"
        )


if __name__ == "__main__":
    main()
