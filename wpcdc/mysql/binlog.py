"""The binlog source: MySQL/MariaDB replication stream in, ``SourceItem``s out.

This module owns the connection to the binlog and its lifecycle: opening a
reader on the source's position, reconnecting, the stall watchdog, and what
each reader error means. Two readers sit behind it, chosen by
``mysql.binlog_reader``: "fast" (the default) reads the dump stream and decodes
row events itself (:mod:`wpcdc.mysql.dump`, with mysql-replication decoding the
layouts its decoder cannot); "library" is mysql-replication's
``BinLogStreamReader``, the way back should the fast reader misbehave. Both
feed the same :class:`~wpcdc.mysql.binlog_events.EventHandler`, and every
guarantee below holds for both. It turns the binlog into one
:class:`~wpcdc.core.rows.TransactionPart` per transaction (several for a large
one; the last carries ``end``), transactions on unwatched tables included with
no changes so that a checkpoint can still advance, and an
:class:`~wpcdc.core.rows.Idle` whenever the server sends a heartbeat. What each
event means is decided in :mod:`wpcdc.mysql.binlog_events`, transactions are
assembled by :class:`~wpcdc.core.assembly.TransactionAssembler`, and the
library's patches live in :mod:`wpcdc.mysql.library`.

Position ownership (promise "own position", docs/ARCHITECTURE.md). The
library's own reconnect re-reads from wherever it was created, so it is never
allowed to run: the reader is opened on the last transaction boundary, and on
any connection error, read timeout or stall it is closed and a new one is
opened on that boundary, after an exponential backoff. Nothing is buffered
across a reconnect: if parts of the transaction in progress were already handed
out, the re-read transaction skips the row changes with those indexes (indexes
are a pure function of the binlog, so the same bytes give the same indexes).
The consumer therefore sees every row change exactly once per ``items()`` run.

Binlog shapes handled (``|`` separates events of one transaction)::

    MySQL     GTID | BEGIN | rows... | XID        (or | COMMIT for MyISAM)
              GTID | DDL                            standalone statement
    MariaDB   GTID(trans) | rows... | XID           no BEGIN event: thread_id None
              GTID(standalone) | DDL

A transaction starts where the previous one's commit event ends (or at the
start a RotateEvent names); that start is the transaction's position and the
place a resume replays it from. Its ``timestamp`` is the header time of its
first event (GTID or BEGIN), the same in every part; for WordPress's
autocommitted statements that is the commit second. Positions carry the GTID
state (see :class:`~wpcdc.core.gtid.GtidState`) when the start position had one.

Known limits: an XA transaction is handed out at XA PREPARE (a later XA
ROLLBACK is not undone); TRUNCATE or DROP of a watched table logs no row
changes (the source logs a warning). WordPress uses neither.

Loud failures (promise "loud failure", docs/ARCHITECTURE.md) raise
:mod:`wpcdc.core.errors` exceptions: a purged or impossible start position
(``PositionLost``), row events without column names or without full row
images, statement-based DML on a watched table, and compressed events
(``ServerMisconfigured``), a refused login or missing grant, and another
replica registered with the same ``mysql.server_id`` (``PreflightFailed``): which
server errors are fatal is decided in :mod:`wpcdc.mysql.errors`.

Values are what mysql-replication decodes (int, str, Decimal, datetime, bytes,
None; zero dates are None; the fast reader's decoder gives the same values), except
for strings (see :mod:`wpcdc.mysql.library`):
a text column whose bytes are not valid in its character set arrives as
``bytes`` instead of stopping the stream, and MySQL ``latin1`` is decoded the
way MySQL does.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pymysql
import pymysql.cursors
from pymysqlreplication import BinLogStreamReader

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.assembly import DEFAULT_MAX_PART_ROWS, TransactionAssembler
from wpcdc.core.backoff import DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, Backoff
from wpcdc.core.binlog_rows import DecoderCache
from wpcdc.core.errors import PositionLost, PreflightFailed, WpcdcError
from wpcdc.core.positions import Position
from wpcdc.core.rows import BLOCKING, SourceItem, SourceStep, Wait
from wpcdc.mysql.binlog_events import HANDLED_EVENTS, EventHandler, WatchedTables
from wpcdc.mysql.connection import MysqlConnection, connect
from wpcdc.mysql.dump import DumpReader
from wpcdc.mysql.dump_stream import start_dump
from wpcdc.mysql.errors import (
    FATAL_READING_BINLOG,
    error_code,
    error_text,
    is_access_denied,
    is_replica_id_taken,
    replica_id_taken,
)
from wpcdc.mysql.status import RETENTION_ADVICE

logger = logging.getLogger("wpcdc.source")

DEFAULT_HEARTBEAT = 1.0
# A socket read that waits longer than the read timeout fails, so a silent dead
# connection is noticed within seconds. The watchdog covers what that cannot: a
# connection that trickles bytes but completes no packet. It must exceed the
# time the largest event takes to arrive, hence minutes.
DEFAULT_STALL_TIMEOUT = 300.0


class _Retry(Exception):
    """The connection is unusable; reopen it at the transaction boundary."""


class _LibraryReconnect(Exception):
    """mysql-replication tried to reconnect on its own (on errors 2006/2013): refused."""


def _shutdown(connection: Any) -> None:
    """Make a read blocked on ``connection`` in another thread fail at once."""
    sock = getattr(connection, "_sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        # socket.socket's own shutdown, also for an SSLSocket: the TLS layer
        # belongs to the reading thread and must not be torn down under it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _wait_readable(wait: Wait) -> None:
    """Block until ``wait``'s socket is readable or its deadline passes."""
    timeout = None if wait.deadline is None else max(wait.deadline - time.monotonic(), 0.0)
    # poll, not select: select refuses descriptors past 1023.
    poller = select.poll()
    # Closed under it (stop, the watchdog): the next read says so.
    with contextlib.suppress(OSError, ValueError):
        poller.register(wait.sock, select.POLLIN)
        poller.poll(None if timeout is None else timeout * 1000)


class BinlogSource:
    """Reads the binlog from ``start`` and yields :data:`~wpcdc.core.rows.SourceItem`s.

    ``items()`` blocks (run it in a worker thread) and ends when ``stop()`` is
    called from any thread, or raises a :class:`~wpcdc.core.errors.WpcdcError` when
    continuity cannot be guaranteed. Connection problems are retried forever
    with exponential backoff, each attempt logged on ``wpcdc.source``.

    ``steps()`` is the same stream for a caller that must not block (the asyncio
    loop, :class:`wpcdc.runtime.handoff.LoopReader`): between the items it yields a
    :class:`~wpcdc.core.rows.Wait` where ``items()`` would wait for the socket, and
    :data:`~wpcdc.core.rows.BLOCKING` before a step that blocks anyway (connecting,
    a backoff wait, every read of the library reader).
    """

    def __init__(
        self,
        *,
        mysql: MysqlSettings,
        start: Position,
        heartbeat: float = DEFAULT_HEARTBEAT,
        read_timeout: float | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        max_part_rows: int = DEFAULT_MAX_PART_ROWS,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if heartbeat <= 0:
            raise ValueError("heartbeat must be positive")
        self._mysql = mysql
        self._heartbeat = heartbeat
        # The server sends a heartbeat every `heartbeat` seconds of silence, so
        # three missed ones mean the connection is dead.
        self._read_timeout = read_timeout if read_timeout is not None else 3 * heartbeat
        if self._read_timeout <= heartbeat:
            raise ValueError("read_timeout must exceed the heartbeat period")
        self._stall_timeout = stall_timeout
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._assembler = TransactionAssembler(start=start, max_part_rows=max_part_rows)
        self._tables = WatchedTables(mysql.table_prefix)
        self._database = mysql.database
        self._events = EventHandler(
            assembler=self._assembler,
            tables=self._tables,
            database=mysql.database,
            prefix=mysql.table_prefix,
            backoff=self._backoff,
            clock=clock,
        )
        # The fast reader's generated decoders and the fallbacks it logged outlive
        # reconnects: a layout is compiled once, a fallback logged once.
        self._decoders = DecoderCache()
        self._fallbacks_logged: set[tuple[str, str]] = set()
        self._stopping = threading.Event()
        self._started = False
        # Shared with stop() and the watchdog thread; plain attribute reads/writes.
        self._connection: MysqlConnection | None = None
        self._dump: DumpReader | None = None  # the fast reader's, for its last packet time
        self._fetching = False
        self._fetch_started = 0.0
        self._last_packet = 0.0
        self._stalled = False
        self._read_error: Exception | None = None

    @property
    def position(self) -> Position:
        """The current transaction boundary: where a resume would start."""
        return self._assembler.position

    def stop(self) -> None:
        """End ``items()`` promptly; safe to call from any thread, more than once."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            _shutdown(connection)

    @property
    def reads_on_loop(self) -> bool:
        """Whether ``steps()`` waits on a socket rather than blocking: the fast
        reader's, not the library's (whose reads all block)."""
        return self._mysql.binlog_reader != "library"

    def items(self) -> Iterator[SourceItem]:
        """The binlog from ``start``, as transaction parts and idle markers."""
        for step in self.steps():
            if step.__class__ is Wait:
                _wait_readable(step)
            elif step is not BLOCKING:
                yield step  # type: ignore[misc]

    def steps(self) -> Iterator[SourceStep]:
        """The binlog from ``start``, and what it waits for (see the class)."""
        if self._started:
            raise RuntimeError("BinlogSource can only be iterated once")
        self._started = True
        finished = threading.Event()
        watchdog = None
        if self._stall_timeout is not None:
            watchdog = threading.Thread(
                target=self._watch, args=(finished,), name="wpcdc-source-watchdog", daemon=True
            )
            watchdog.start()
        try:
            while not self._stopping.is_set():
                try:
                    yield from self._stream()
                except _Retry as exc:
                    if self._stopping.is_set():
                        break
                    self._assembler.rewind()
                    delay = self._backoff.next_delay()
                    logger.warning(
                        "binlog stream interrupted (%s); reconnecting at %s in %.1fs",
                        exc,
                        self._assembler.position,
                        delay,
                    )
                    yield BLOCKING
                    self._stopping.wait(delay)
        finally:
            finished.set()
            if watchdog is not None:
                watchdog.join(timeout=5)

    # -- the reader ------------------------------------------------------

    def _reader(self, position: Position) -> Any:
        connected = False

        def open_connection(**settings: Any) -> MysqlConnection:
            nonlocal connected
            control = settings.get("db") == "information_schema"
            if not control:
                if connected or self._stopping.is_set():
                    raise _LibraryReconnect("the library's own reconnect is not used")
                connected = True
            connection = connect(self._mysql, use_database=False, read_timeout=self._read_timeout)
            if control:
                # The library reads SHOW VARIABLES results by column name.
                connection.cursorclass = pymysql.cursors.DictCursor
                return connection
            self._watch_packets(connection)
            self._connection = connection
            if self._stopping.is_set():
                _shutdown(connection)
            return connection

        return BinLogStreamReader(
            # Only read_timeout is used from these (it caps the heartbeat period);
            # connections are opened by open_connection from the settings.
            connection_settings={"read_timeout": self._read_timeout, "charset": "utf8mb4"},
            server_id=self._mysql.server_id,
            pymysql_wrapper=open_connection,
            # is_mariadb=True would make the library ignore log_file/log_pos on
            # MariaDB; with False, file/pos work on both and MariaDB still sends
            # its GTID events (the library announces the GTID capability).
            is_mariadb=False,
            log_file=position.file,
            log_pos=position.pos,
            resume_stream=True,
            blocking=True,
            slave_heartbeat=self._heartbeat,
            only_schemas=[self._database],
            only_tables=self._tables,
            only_events=HANDLED_EVENTS,
            filter_non_implemented_events=False,
            # Table ids change whenever a table's definition does (measured on
            # MariaDB: ALTER gives a new id), and each reconnect starts with an
            # empty map, so a known id never needs its TableMap parsed again.
            freeze_schema=True,
            enable_logging=False,
        )

    def _watch_packets(self, connection: Any) -> None:
        read_packet = connection._read_packet

        def timed_read_packet(*args: Any, **kwargs: Any) -> Any:
            try:
                packet = read_packet(*args, **kwargs)
            except Exception as exc:
                # The library swallows 2006/2013 and tries to reconnect (which
                # open_connection refuses): keep the cause for the log line.
                self._read_error = exc
                raise
            self._last_packet = time.monotonic()
            return packet

        connection._read_packet = timed_read_packet

    def _watch(self, finished: threading.Event) -> None:
        assert self._stall_timeout is not None
        interval = min(1.0, self._stall_timeout / 4)
        # The fast reader counts packets; a packet came when the count moved
        # (known to within ``interval``, a fraction of the stall timeout).
        counted: tuple[DumpReader | None, int] = (None, 0)
        counted_at = 0.0
        while not finished.wait(interval):
            dump = self._dump
            if dump is not None and (dump, dump.packets) != counted:
                counted, counted_at = (dump, dump.packets), time.monotonic()
            if not self._fetching:
                continue  # the consumer holds the stream; that is not a stall
            last_packet = max(self._last_packet, counted_at)
            waiting = time.monotonic() - max(self._fetch_started, last_packet)
            connection = self._connection
            if waiting > self._stall_timeout and connection is not None:
                logger.warning("no binlog packet for %.0fs: dropping the connection", waiting)
                self._stalled = True
                _shutdown(connection)

    def _stream(self) -> Iterator[SourceStep]:
        """One connection's worth of items; raises _Retry when it breaks."""
        position = self._assembler.position
        logger.info("reading the binlog from %s", position)
        self._stalled = False
        self._read_error = None
        items: Generator[SourceStep]
        if self._mysql.binlog_reader == "library":
            items = self._library_items(position)
        else:
            items = self._dump_items(position)
        try:
            while True:
                if not self._fetching:
                    self._fetch_started = time.monotonic()
                    self._fetching = True
                try:
                    item = next(items)
                except StopIteration:
                    self._fetching = False
                    raise _Retry("the server ended the binlog stream") from None
                except WpcdcError:
                    self._fetching = False
                    raise
                except Exception as exc:
                    self._fetching = False
                    failure = self._failure(exc, position)
                    if failure is exc:
                        raise
                    raise failure from exc
                # Waiting for the socket is still fetching, for the stall watchdog;
                # once an item is out, the consumer holds the stream.
                if item.__class__ is not Wait:
                    self._fetching = False
                yield item
        finally:
            items.close()

    def _dump_items(self, position: Position) -> Generator[SourceStep]:
        """The fast reader (:mod:`wpcdc.mysql.dump`) on a connection of its own."""
        yield BLOCKING  # connecting, and the queries before the dump
        connection = connect(self._mysql, use_database=False, read_timeout=self._read_timeout)
        try:
            self._connection = connection
            if self._stopping.is_set():
                _shutdown(connection)
            checksum = start_dump(
                connection,
                server_id=self._mysql.server_id,
                position=position,
                # As the library does: a heartbeat well inside the read timeout.
                heartbeat=min(self._read_timeout / 2, self._heartbeat),
            )
            reader = self._dump = DumpReader(
                connection,
                checksum=checksum,
                handler=self._events,
                tables=self._tables,
                database=self._database,
                decoders=self._decoders,
                logged=self._fallbacks_logged,
                read_timeout=self._read_timeout,
            )
            yield from reader.items()
        finally:
            self._connection = None
            self._dump = None
            with contextlib.suppress(Exception):
                connection.close()

    def _library_items(self, position: Position) -> Generator[SourceStep]:
        """mysql-replication's reader; ``mysql.binlog_reader = "library"``."""
        reader = self._reader(position)
        try:
            while True:
                yield BLOCKING
                event = reader.fetchone()
                if event is None:
                    return
                yield from self._events.handle(event)
        finally:
            self._connection = None
            with contextlib.suppress(Exception):
                reader.close()

    def _failure(self, exc: Exception, position: Position) -> Exception:
        """The exception to raise for an error from the reader."""
        if self._stopping.is_set():
            return _Retry("stopped")
        if self._stalled:
            return _Retry("stalled")
        if isinstance(exc, _LibraryReconnect):
            cause = self._read_error
            return _Retry(error_text(cause) if cause is not None else "connection lost")
        if is_replica_id_taken(exc):
            return replica_id_taken(exc, self._mysql.server_id)
        if error_code(exc) == FATAL_READING_BINLOG:
            return self._fatal_reading(exc, position)
        if is_access_denied(exc):
            return PreflightFailed(
                f"MySQL refused wpcdc ({error_text(exc)}). Check mysql.user/mysql.password "
                "and grant: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>; "
                f"GRANT SELECT ON `{self._database}`.* TO <user>; (`wpcdc check` shows the "
                "exact statements)."
            )
        text = error_text(exc)
        if isinstance(exc, FileNotFoundError | PermissionError) or "CERTIFICATE_VERIFY" in text:
            # A TLS file or certificate problem: retrying cannot fix it.
            return PreflightFailed(f"TLS to MySQL failed ({text}); check mysql.tls.*")
        if isinstance(exc, pymysql.err.MySQLError | OSError | EOFError | struct.error):
            return _Retry(text)
        return exc

    def _fatal_reading(self, exc: Exception, position: Position) -> WpcdcError:
        text = error_text(exc)
        return PositionLost(
            f"the server cannot send the binlog from {position}: {text}. The binlog file "
            "holding this position was purged (or the position is past its end), so the "
            f"changes since then cannot be read. {RETENTION_ADVICE}"
        )
