"""wpcdc's stages offline, on captured binlog bytes: where a bulk job's time goes.

An end-to-end run (bench_throughput.py) takes minutes and needs a server and a
broker. This bench takes them out: it replays, in one process, the bytes the
fast reader received, so that a change to the hot path can be timed in seconds
and checked to give byte-identical output. It is not quieter on a shared
machine (separate invocations of the same code ranged over 15%): compare two
versions in interleaved pairs.

``DIR --capture`` (needs what the other benches need: Debian's mariadb-server,
wordpress, php-cli, php-mysql) starts a private MariaDB, installs WordPress,
writes the two shapes of bench_throughput.py (``_workload.write_post_rows``:
``autocommit``, every row its own transaction; ``transaction``, one per post)
and keeps in DIR, per shape, what a dump connection received from the server for
that range (the packets as read from the socket), its start and end positions,
and the fold's mirror as ``wpcdc run`` loads it (pickled; a local artifact).

Replaying DIR runs the stages cumulatively, each ``--rounds`` times:

- ``read``: :class:`wpcdc.mysql.dump.DumpReader` over the bytes: packets split,
  events decoded, row changes assembled into transaction parts;
- ``fold``: and :class:`wpcdc.core.fold.Folder` with the default fold settings,
  events derived at close; arrival times paced as the end-to-end pipeline reads
  (``--rate`` row changes/s, so that the quiet rule closes groups as late as it
  does there), a tick after every 1,000 row changes as the pipeline's batches;
- ``encode``: and every event encoded as its Kafka record (wpcdc.core.records).

It prints each stage's median and best time and what the stage adds to the one
before. ``--digest`` also hashes every row change and position (read), event
(fold) or record (encode) of one more round, to compare two versions of the code
(run one from a worktree with ``PYTHONPATH``). Profile a stage with py-spy:
``py-spy record -r 1000 -f raw -o stacks.txt -- .venv/bin/python
benchmarks/bench_stages.py DIR --stages encode --rounds 1``, then
``benchmarks/stacks.py stacks.txt``.

Run on demand, never in CI::

    .venv/bin/python benchmarks/bench_stages.py /tmp/stages --capture    # ~30 s, then a replay
    .venv/bin/python benchmarks/bench_stages.py /tmp/stages
    .venv/bin/python benchmarks/bench_stages.py /tmp/stages --shapes transaction --digest
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import io
import pickle
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _workload import create_tags, install_wordpress, write_post_rows

from wpcdc.config.settings import FoldSettings, MysqlSettings
from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.backoff import Backoff
from wpcdc.core.binlog_rows import DecoderCache
from wpcdc.core.fold import Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.records import Headers, encode
from wpcdc.core.rows import TransactionPart
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.mysql.binlog_events import EventHandler, WatchedTables
from wpcdc.mysql.connection import connect
from wpcdc.mysql.dump import DumpReader
from wpcdc.mysql.dump_stream import READ_SIZE, start_dump
from wpcdc.mysql.posts import load_mirror
from wpcdc.mysql.status import current_position
from wpcdc.runtime.pipeline import YOUNG_COLLECTION_THRESHOLD, StreamConfig

SHAPES = {"autocommit": (10_000, False), "transaction": (20_000, True)}
STAGES = ("read", "fold", "encode")
# What the server's stream ends with once the range was read: an EOF packet.
_EOF = b"\x05\x00\x00\x01\xfe\x00\x00\x02\x00"
# The pipeline hands the fold batches of this many row changes (StreamConfig.queue_rows).
BATCH_ROWS = StreamConfig(source_name="").queue_rows
# What bench_throughput measured wpcdc reading the transaction shape at (row changes/s).
DEFAULT_RATE = 45_000.0


@dataclass(frozen=True)
class Capture:
    """One shape's range: the bytes the dump connection received, and where it ends."""

    start: Position
    end: Position
    database: str
    prefix: str


# --- capture ---------------------------------------------------------------------


class _Tee:
    """The connection's socket file, keeping every chunk the reader takes from it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.chunks: list[bytes] = []

    def read1(self, size: int = READ_SIZE) -> bytes:
        chunk: bytes = self._raw.read1(size)
        self.chunks.append(chunk)
        return chunk


class _Recorded:
    """What DumpReader reads a connection through (no ``_sock``: the file path)."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile


def capture(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wpcdc-stages-") as work:
        server = MariaDBServer.start(Path(work) / "mariadb")
        try:
            site, mysql = install_wordpress(server)
            tags = create_tags(site)
            ranges = {}
            for shape, (posts, per_post) in SHAPES.items():
                start = current_position(mysql)
                write_post_rows(server, posts, tags, transaction_per_post=per_post)
                ranges[shape] = (start, current_position(mysql))
            (directory / "mirror.pickle").write_bytes(pickle.dumps(load_mirror(mysql)))
            for shape, (start, end) in ranges.items():
                data = _record(mysql, start, end)
                (directory / f"{shape}.bytes").write_bytes(data)
                meta = Capture(start, end, mysql.database, mysql.table_prefix)
                (directory / f"{shape}.pickle").write_bytes(pickle.dumps(meta))
                print(f"{shape}: {start} .. {end}, {len(data):,} bytes received", flush=True)
        finally:
            server.stop()


def _record(mysql: MysqlSettings, start: Position, end: Position) -> bytes:
    """The dump stream's bytes from ``start`` until the transaction ending at ``end``."""
    connection = connect(mysql, use_database=False, read_timeout=30.0)
    try:
        checksum = start_dump(connection, server_id=mysql.server_id, position=start, heartbeat=5.0)
        tee = _Tee(connection._rfile)  # type: ignore[attr-defined]
        handler = _handler(start, mysql.database, mysql.table_prefix)
        for item in _reader(_Recorded(tee), handler, mysql.database, checksum).items():
            ended = item.end if isinstance(item, TransactionPart) else None
            if ended is not None and ended.key() >= end.key():
                break
        return b"".join(tee.chunks)
    finally:
        connection.close()


def _handler(start: Position, database: str, prefix: str) -> EventHandler:
    return EventHandler(
        assembler=TransactionAssembler(start=start),
        tables=WatchedTables(prefix),
        database=database,
        prefix=prefix,
        backoff=Backoff(0.1, 1.0),
        clock=time.monotonic,
    )


def _reader(connection: Any, handler: EventHandler, database: str, checksum: bool) -> DumpReader:
    return DumpReader(
        connection,
        checksum=checksum,
        handler=handler,
        tables=handler.tables,
        database=database,
        decoders=DecoderCache(),
        logged=set(),
    )


# --- replay ----------------------------------------------------------------------


def _no_limit(key: bytes, headers: Headers) -> int:
    return 1 << 30


def replay(
    data: bytes, meta: Capture, mirror: Mirror, stage: str, args: argparse.Namespace, digest: bool
) -> tuple[float, str]:
    """One round of the stages up to ``stage``; its seconds and (with ``digest``) hash."""
    handler = _handler(meta.start, meta.database, meta.prefix)
    connection = _Recorded(io.BufferedReader(io.BytesIO(data + _EOF), READ_SIZE))
    reader = _reader(connection, handler, meta.database, checksum=True)
    folder = None
    if stage != "read":
        fold = FoldSettings() if args.quiet is None else FoldSettings(quiet_seconds=args.quiet)
        folder = Folder(config=fold.to_config(), mirror=copy.deepcopy(mirror))
    sha = hashlib.sha256() if digest else None
    now = 0.0
    batch = 0
    end = meta.end.key()
    # As Pipeline.run does while streaming (wpcdc.runtime.pipeline).
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, threshold[1], threshold[2])
    began = time.perf_counter()
    try:
        for item in reader.items():
            if not isinstance(item, TransactionPart):
                continue
            rows = len(item.changes)
            closed = []
            if folder is None:
                if sha is not None:
                    for change in item.changes:
                        sha.update(
                            repr((change.op, change.row, change.before, change.after)).encode()
                        )
                    sha.update(repr(item.end).encode())
            else:
                now += max(rows, 1) / args.rate
                closed = folder.feed(item, now)
                batch += rows
                if batch >= BATCH_ROWS:
                    batch = 0
                    closed += folder.tick(now)
            last = item.end is not None and item.end.key() >= end
            if last and folder is not None:
                closed += folder.close_all()
            for group in closed:
                for event in group.events:
                    if stage == "encode":
                        record = encode(event, "wpcdc://bench", _no_limit)
                        if sha is not None:
                            sha.update(record.key + record.value + repr(record.headers).encode())
                    elif sha is not None:
                        sha.update(repr(event).encode())
            if last:
                break
    finally:
        gc.set_threshold(*threshold)
    return time.perf_counter() - began, sha.hexdigest()[:16] if sha is not None else ""


def run(args: argparse.Namespace) -> None:
    mirror = pickle.loads((args.directory / "mirror.pickle").read_bytes())
    for shape in args.shapes:
        data = (args.directory / f"{shape}.bytes").read_bytes()
        meta: Capture = pickle.loads((args.directory / f"{shape}.pickle").read_bytes())
        print(f"\n### {shape}: {meta.start} .. {meta.end}, {len(data):,} bytes\n")
        print("| stage | median s | best s | adds (median) | digest |")
        print("|---|---|---|---|---|")
        before = 0.0
        for stage in args.stages:
            times = [replay(data, meta, mirror, stage, args, False)[0] for _ in range(args.rounds)]
            digest = replay(data, meta, mirror, stage, args, True)[1] if args.digest else ""
            median = statistics.median(times)
            print(
                f"| {stage} | {median:.3f} | {min(times):.3f} | {median - before:+.3f} "
                f"| {digest} |",
                flush=True,
            )
            before = median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where the capture is (or goes)")
    parser.add_argument("--capture", action="store_true", help="capture into DIRECTORY first")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help="row changes/s the arrival times are paced at (the fold's quiet rule)",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        help="fold.quiet_seconds instead of its default: how long a group waits for more",
    )
    parser.add_argument("--digest", action="store_true", help="hash one more round's output")
    args = parser.parse_args()
    if args.capture:
        capture(args.directory)
    if not (args.directory / "mirror.pickle").exists():
        sys.exit(f"no capture in {args.directory}: run with --capture first")
    run(args)


if __name__ == "__main__":
    main()
