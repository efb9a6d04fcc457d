"""The binlog source: MySQL/MariaDB replication stream in, ``SourceItem``s out.

This module owns reading the binlog and the source's *position*. It is the only
module that imports mysql-replication (``pymysqlreplication``). It turns the
binlog into one :class:`~wpcdc.core.rows.TransactionPart` per transaction (several
for a large one; the last carries ``end``), transactions on unwatched tables
included with no changes so that a checkpoint can still advance, and an
:class:`~wpcdc.core.rows.Idle` whenever the server sends a heartbeat.

Position ownership (DESIGN promise 5). The library's own reconnect re-reads
from wherever it was created, so it is never allowed to run: the reader is
opened on the last transaction boundary, and on any connection error, read
timeout or stall it is closed and a new one is opened on that boundary, after
an exponential backoff. Nothing is buffered across a reconnect: if parts of the
transaction in progress were already handed out, the re-read transaction skips
the row changes with those indexes (indexes are a pure function of the binlog,
so the same bytes give the same indexes). The consumer therefore sees every
row change exactly once per ``items()`` run.

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
state (see :class:`GtidState`) when the start position had one.

Known limits: an XA transaction is handed out at XA PREPARE (a later XA
ROLLBACK is not undone); TRUNCATE or DROP of a watched table logs no row
changes (the source logs a warning). WordPress uses neither.

Loud failures (DESIGN promise 7) raise :mod:`wpcdc.errors` exceptions: a purged
or impossible start position (``PositionLost``), row events without column
names or without full row images, statement-based DML on a watched table, and
compressed events (``ServerMisconfigured``), a refused login (``PreflightFailed``).

Values are what mysql-replication decodes (int, str, Decimal, datetime, bytes,
None; zero dates are None), except for strings: a text column whose bytes are
not valid in its character set arrives as ``bytes`` instead of stopping the
stream, and MySQL ``latin1`` is decoded the way MySQL does (cp1252 with the five
undefined bytes mapped to U+0081 etc.).
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.cursors
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    RowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from wpcdc.config.preflight import detect_flavor
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.errors import PositionLost, PreflightFailed, ServerMisconfigured, WpcdcError
from wpcdc.core.positions import Position
from wpcdc.core.rows import (
    Idle,
    Op,
    Row,
    RowChange,
    SourceItem,
    TableRef,
    Transaction,
    TransactionPart,
    classify_table,
)
from wpcdc.mysql.database import MysqlConnection, connect

logger = logging.getLogger("wpcdc.source")

DEFAULT_HEARTBEAT = 1.0
DEFAULT_MAX_PART_ROWS = 1000
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
# A socket read that waits longer than the read timeout fails, so a silent dead
# connection is noticed within seconds. The watchdog covers what that cannot: a
# connection that trickles bytes but completes no packet. It must exceed the
# time the largest event takes to arrive, hence minutes.
DEFAULT_STALL_TIMEOUT = 300.0

# Binlog event type codes mysql-replication has no class for (NotImplementedEvent).
_ANONYMOUS_GTID = 0x22
_TRANSACTION_PAYLOAD = 0x28  # MySQL binlog_transaction_compression=ON
_HEARTBEAT_V2 = 0x29
_GTID_TAGGED = 0x2A  # MySQL 8.3+ tagged GTIDs, which the library cannot parse
_INCIDENT = 0x1A
_MARIADB_COMPRESSED = frozenset(range(0xA5, 0xAC))  # QUERY_/…ROWS_COMPRESSED_EVENT
_MARIADB_GTID_STANDALONE = 0x01  # Gtid_log_event::FL_STANDALONE: no XID/COMMIT follows

# Server error codes that no reconnect can fix.
_ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236
_ACCESS_DENIED = frozenset({1044, 1045, 1142, 1227, 1698})
_ER_PARSE_ERROR = 1064


# --------------------------------------------------------------------------
# mysql-replication patch: strings that do not decode must not stop the stream
# --------------------------------------------------------------------------


def _latin1_like_mysql(error: UnicodeError) -> tuple[str, int]:
    # MySQL's latin1 is cp1252 except that 0x81, 0x8D, 0x8F, 0x90, 0x9D map to the
    # control characters with the same code point, where Python's cp1252 fails.
    assert isinstance(error, UnicodeDecodeError)
    return "".join(chr(b) for b in error.object[error.start : error.end]), error.end


codecs.register_error("wpcdc-mysql-latin1", _latin1_like_mysql)


def _read_string(self: Any, size: int, column: Any) -> str | bytes:
    """Replaces ``RowsEvent.__read_string``, which raises UnicodeDecodeError on
    bytes that are invalid in the column's character set (or, with
    ``ignore_decode_errors``, drops them silently). Undecodable values are
    returned as the raw ``bytes``: the fold flags them, the stream goes on."""
    raw: bytes = self.packet.read_length_coded_pascal_string(size)
    # The library puts the Python codec name here ("utf8", "cp1252", "binary").
    encoding = column.character_set_name or "utf-8"
    if encoding == "binary":
        return raw
    try:
        if encoding == "cp1252":
            return raw.decode("cp1252", "wpcdc-mysql-latin1")
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return raw


class _DropLibraryReconnectNotice(logging.Filter):
    # The library announces its own reconnect, which wpcdc refuses (see
    # open_connection); the source logs what really happens instead.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Re-request the connection" not in record.getMessage()


logging.getLogger("pymysqlreplication").addFilter(_DropLibraryReconnectNotice())

if not hasattr(RowsEvent, "_RowsEvent__read_string"):  # pragma: no cover - version guard
    raise ImportError(
        "mysql-replication changed its string decoding; wpcdc.mysql.binlog needs updating"
    )
RowsEvent._RowsEvent__read_string = _read_string


# --------------------------------------------------------------------------
# Pure parts: backoff, GTID state, statement classification, assembly
# --------------------------------------------------------------------------


@dataclass
class Backoff:
    """Exponential reconnect delays: initial, 2x, 4x, ... capped at ``maximum``."""

    initial: float = DEFAULT_BACKOFF_INITIAL
    maximum: float = DEFAULT_BACKOFF_MAX
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self}")
        self._next = self.initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


_MARIADB_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_MYSQL_GTID = re.compile(r"^([0-9a-fA-F-]{36}):(\d+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class GtidState:
    """The GTID set executed up to the current position, in the server's notation.

    MariaDB: the last ``domain-server-seq`` per domain, like ``@@gtid_binlog_pos``
    ("0-1-42,1-2-7"). MySQL: ``uuid:1-42:50-60`` intervals, like
    ``@@gtid_executed``. The state is only as good as its base: built on an
    unknown base (``None``) it stays unknown, because a set holding only the
    GTIDs seen since would tell a GTID-based resume to replay everything before
    them. A MariaDB GTID list event (at the start of each binlog file) gives a
    complete base. MySQL tagged GTIDs (8.3+) are not parsed: they make the state
    unknown.
    """

    def __init__(self, gtid_set: str | None) -> None:
        self._known = False
        self._mariadb: dict[int, tuple[int, int]] = {}
        self._mysql: dict[str, list[list[int]]] = {}
        self.reset(gtid_set)

    @property
    def known(self) -> bool:
        return self._known

    def reset(self, gtid_set: str | None) -> None:
        """Replace the state with ``gtid_set`` (None or unparseable: unknown)."""
        self._mariadb, self._mysql = {}, {}
        self._known = gtid_set is not None
        if gtid_set is None:
            return
        for item in gtid_set.replace("\n", "").split(","):
            item = item.strip()
            if item and not self._parse(item):
                logger.warning("GTID set %r is not understood; GTID tracking is off", gtid_set)
                self.forget()
                return

    def _parse(self, item: str) -> bool:
        match = _MARIADB_GTID.match(item)
        if match:
            domain, server, seq = (int(g) for g in match.groups())
            self._add_mariadb(domain, server, seq)
            return True
        uuid, _, intervals = item.partition(":")
        if not _UUID.match(uuid) or not intervals:
            return False
        for interval in intervals.split(":"):
            first, _, last = interval.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                return False  # tagged GTIDs ("uuid:tag:1-5") among others
            self._add_mysql(uuid.lower(), int(first), int(last or first))
        return True

    def forget(self) -> None:
        self._known = False
        self._mariadb, self._mysql = {}, {}

    def add(self, gtid: str) -> None:
        """Record a committed transaction's GTID ("0-1-42" or "uuid:42")."""
        if not self._known:
            return
        match = _MARIADB_GTID.match(gtid)
        if match:
            domain, server, seq = (int(g) for g in match.groups())
            self._add_mariadb(domain, server, seq)
            return
        match = _MYSQL_GTID.match(gtid)
        if match:
            self._add_mysql(match.group(1).lower(), int(match.group(2)), int(match.group(2)))
            return
        logger.warning("GTID %r is not understood; GTID tracking is off", gtid)
        self.forget()

    def _add_mariadb(self, domain: int, server: int, seq: int) -> None:
        current = self._mariadb.get(domain)
        # A GTID list may name several servers per domain; the position is the latest.
        if current is None or seq >= current[1]:
            self._mariadb[domain] = (server, seq)

    def _add_mysql(self, uuid: str, first: int, last: int) -> None:
        intervals = self._mysql.setdefault(uuid, [])
        # The common case: the next number of the last interval.
        if intervals and intervals[-1][0] <= first and first <= intervals[-1][1] + 1:
            intervals[-1][1] = max(intervals[-1][1], last)
            return
        intervals.append([first, last])
        intervals.sort()
        merged: list[list[int]] = []
        for start, end in intervals:
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._mysql[uuid] = merged

    @property
    def value(self) -> str | None:
        if not self._known:
            return None
        parts = [f"{d}-{s}-{n}" for d, (s, n) in sorted(self._mariadb.items())]
        for uuid, intervals in sorted(self._mysql.items()):
            parts.append(uuid + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in intervals))
        return ",".join(parts)


_LEADING_COMMENTS = re.compile(r"^(?:\s+|/\*.*?\*/|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$))*", re.S)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", re.S)
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_QUALIFIED = re.compile(rf"(?:({_IDENT})\s*\.\s*)?({_IDENT})")
_DML_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"})
_DDL_VERBS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})


def statement_kind(query: str) -> str:
    """What a query event means for transaction boundaries.

    ``begin`` opens a transaction, ``commit`` ends one (COMMIT, or ROLLBACK when
    non-transactional changes were logged anyway), ``inner`` is bookkeeping inside
    one (SAVEPOINT, XA END, ...), ``statement`` is anything else: part of the open
    transaction, or a transaction of its own (DDL) when none is open.
    """
    text = _LEADING_COMMENTS.sub("", query, count=1)
    head = text[:40].upper().split()
    if not head:
        return "inner"
    verb = head[0].rstrip(";")
    if verb == "BEGIN" or head[:2] == ["START", "TRANSACTION"] or head[:2] == ["XA", "START"]:
        return "begin"
    if verb == "COMMIT" or (verb == "ROLLBACK" and head[1:2] != ["TO"]):
        return "commit"
    if verb in {"SAVEPOINT", "RELEASE", "ROLLBACK"} or head[:2] == ["XA", "END"]:
        return "inner"
    return "statement"


def opens_transaction(query: str) -> bool:
    """MySQL 8.0.21+ logs CREATE TABLE ... SELECT as one transaction whose DDL
    ends in START TRANSACTION; its rows and an XID follow."""
    return query.rstrip().rstrip(";").upper().endswith("START TRANSACTION")


def _unquote(identifier: str) -> str:
    if identifier.startswith("`"):
        return identifier[1:-1].replace("``", "`")
    return identifier


def named_tables(
    query: str, *, default_schema: str, database: str, prefix: str
) -> tuple[str, list[str]]:
    """The statement's verb and the watched tables of ``database`` it names.

    Conservative on purpose: it also counts a watched name used as a column
    qualifier, and ignores names inside string literals.
    """
    text = _LEADING_COMMENTS.sub("", query, count=1)
    verb = (text[:12].split() or [""])[0].upper()
    if verb not in _DML_VERBS and verb not in _DDL_VERBS:
        return verb, []
    body = _STRING_LITERAL.sub("''", text)
    found: list[str] = []
    for match in _QUALIFIED.finditer(body):
        qualifier = _unquote(match.group(1)) if match.group(1) else None
        name = _unquote(match.group(2))
        in_database = qualifier == database or (qualifier is None and default_schema == database)
        if in_database and classify_table(prefix, name) is not None:
            found.append(name)
        elif (
            qualifier is not None
            and default_schema == database
            and classify_table(prefix, qualifier) is not None
        ):
            found.append(qualifier)  # wp_posts.ID: a column of a watched table
    return verb, sorted(set(found))


@dataclass(slots=True)
class _Open:
    """The transaction being assembled."""

    start: Position
    gtid: str | None
    thread_id: int | None
    timestamp: int
    # True once BEGIN (or a MariaDB GTID announcing a body) was seen: statements
    # then belong to it. False after a bare GTID: the next statement stands alone.
    explicit: bool
    # Row changes with an index below this were handed out already (before a reconnect).
    handed_out: int = 0
    next_row: int = 0
    buffer: list[RowChange] = field(default_factory=list)
    transaction: Transaction | None = None

    def metadata(self) -> Transaction:
        if self.transaction is None:
            self.transaction = Transaction(
                start=self.start,
                gtid=self.gtid,
                thread_id=self.thread_id,
                timestamp=self.timestamp,
            )
        return self.transaction


class TransactionAssembler:
    """Folds binlog events (as plain values) into transaction parts; owns the position.

    Pure: the source feeds it what it reads, it returns parts. ``position`` is the
    current transaction boundary: where the transaction in progress started, or
    where the next one starts. ``rewind()`` prepares for re-reading from there.
    """

    def __init__(self, *, start: Position, max_part_rows: int = DEFAULT_MAX_PART_ROWS) -> None:
        if max_part_rows < 1:
            raise ValueError("max_part_rows must be at least 1")
        self._max_part_rows = max_part_rows
        self._file = start.file
        self._pos = start.pos
        self._gtids = GtidState(start.gtid_set)
        self._position = start
        self._open: _Open | None = None
        self._skip = 0

    @property
    def position(self) -> Position:
        return self._position

    @property
    def in_transaction(self) -> bool:
        return self._open is not None

    def rewind(self) -> None:
        """Forget the transaction in progress; the reader restarts at ``position``.

        Row changes of it that were already handed out are skipped when it is
        read again.
        """
        if self._open is not None:
            self._skip = self._open.handed_out
            self._open = None

    # -- events ----------------------------------------------------------

    def rotate(self, file: str, pos: int) -> None:
        if self._open is not None:
            logger.warning("rotate to %s:%d inside a transaction ignored", file, pos)
            return
        if (file, pos) != (self._file, self._pos):
            self._file, self._pos = file, pos
            self._position = Position(file, pos, self._gtids.value)

    def gtid_list(self, gtid_set: str) -> None:
        """A complete GTID state (MariaDB GTID list event at the start of a file)."""
        if not self._gtids.known and self._open is None:
            self._gtids.reset(gtid_set)
            self._position = Position(self._file, self._pos, self._gtids.value)

    def gtid(
        self, gtid: str | None, timestamp: int, *, opens: bool, understood: bool = True
    ) -> None:
        """A GTID event starts a transaction. ``opens``: a body closed by XID/COMMIT
        follows (MariaDB says so in its flags); otherwise BEGIN or one statement."""
        if self._open is not None:
            self._abandon("a GTID event")
        if not understood:
            self._gtids.forget()
        self._open = self._new(gtid=gtid, thread_id=None, timestamp=timestamp, explicit=opens)

    def begin(self, thread_id: int, timestamp: int) -> None:
        if self._open is None:
            self._open = self._new(
                gtid=None, thread_id=thread_id, timestamp=timestamp, explicit=True
            )
        elif not self._open.explicit:
            self._open.thread_id = thread_id
            self._open.explicit = True

    def statement(self, end_pos: int, timestamp: int) -> TransactionPart | None:
        """A query that is neither BEGIN nor COMMIT: inside the open transaction,
        or a transaction of its own (DDL)."""
        if self._open is not None and self._open.explicit:
            return None
        return self.commit(end_pos, timestamp)

    def row(
        self, table: TableRef, op: Op, before: Row | None, after: Row | None, timestamp: int
    ) -> TransactionPart | None:
        """A row change on a watched table; returns a part when the buffer is full."""
        current = self._open
        if current is None:
            # Rows with no transaction: the start position was inside one.
            current = self._open = self._new(None, None, timestamp, explicit=True)
        index = current.next_row
        current.next_row = index + 1
        if index < current.handed_out:
            return None
        current.buffer.append(RowChange(table=table, op=op, before=before, after=after, row=index))
        if len(current.buffer) >= self._max_part_rows:
            return self._part(current, end=None)
        return None

    def commit(self, end_pos: int, timestamp: int) -> TransactionPart:
        """The commit event (XID, COMMIT, XA PREPARE, or a standalone statement) ends at ``end_pos``."""
        current = self._open
        if current is None:
            current = self._new(None, None, timestamp, explicit=True)
        if current.gtid is not None:
            self._gtids.add(current.gtid)
        self._pos = end_pos
        self._position = Position(self._file, end_pos, self._gtids.value)
        self._open = None
        return self._part(current, end=self._position)

    # -- helpers ---------------------------------------------------------

    def _new(
        self, gtid: str | None, thread_id: int | None, timestamp: int, *, explicit: bool
    ) -> _Open:
        skip, self._skip = self._skip, 0
        return _Open(
            start=self._position,
            gtid=gtid,
            thread_id=thread_id,
            timestamp=timestamp,
            explicit=explicit,
            handed_out=skip,
        )

    def _part(self, current: _Open, end: Position | None) -> TransactionPart:
        if current.buffer:
            current.handed_out = current.buffer[-1].row + 1
        part = TransactionPart(
            transaction=current.metadata(), changes=tuple(current.buffer), end=end
        )
        current.buffer = []
        return part

    def _abandon(self, reason: str) -> None:
        current = self._open
        assert current is not None
        if current.next_row > 0:
            # Its changes cannot be placed: refusing beats dropping them silently.
            raise WpcdcError(
                f"the binlog transaction at {current.start} has row changes but no commit "
                f"before {reason}; wpcdc cannot tell whether they were committed. "
                "Please report this with the output of mysqlbinlog around that position."
            )
        logger.debug("transaction at %s without commit before %s", current.start, reason)
        self._open = None


# --------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------


class _Retry(Exception):
    """The connection is unusable; reopen it at the transaction boundary."""


class _LibraryReconnect(Exception):
    """mysql-replication tried to reconnect on its own (on errors 2006/2013): refused."""


class _WatchedTables:
    """Stands in for the list mysql-replication takes as ``only_tables``.

    The library only asks ``table in only_tables`` (for each TableMap and rows
    event), so a predicate is enough: watched tables are recognised by name, and
    a table created later (a new multisite blog, ``wp_7_posts``) is watched from
    its first row without re-reading ``information_schema`` or rebuilding the
    reader. Rows of other tables are skipped before they are decoded.
    """

    __slots__ = ("_cache", "_prefix")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._cache: dict[str, TableRef | None] = {}

    def ref(self, table: str) -> TableRef | None:
        try:
            return self._cache[table]
        except KeyError:
            ref = classify_table(self._prefix, table)
            if len(self._cache) < 100_000:
                self._cache[table] = ref
            return ref

    def __contains__(self, table: object) -> bool:
        return isinstance(table, str) and self.ref(table) is not None

    def __repr__(self) -> str:
        return f"<tables matching {self._prefix}[N_]posts|postmeta|term_*|terms>"


_ONLY_EVENTS = [
    QueryEvent,
    XidEvent,
    XAPrepareEvent,
    GtidEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    RotateEvent,
    HeartbeatLogEvent,
    WriteRowsEvent,
    UpdateRowsEvent,
    PartialUpdateRowsEvent,
    DeleteRowsEvent,
    # Unknown event types arrive as this: compressed payloads, anonymous GTIDs.
    NotImplementedEvent,
]


def _error_code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = exc.args
    return args[0] if args and isinstance(args[0], int) else None


def _error_text(exc: BaseException) -> str:
    args: tuple[Any, ...] = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


def _shutdown(connection: Any) -> None:
    """Make a read blocked on ``connection`` in another thread fail at once."""
    sock = getattr(connection, "_sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        # socket.socket's own shutdown, also for an SSLSocket: the TLS layer
        # belongs to the reading thread and must not be torn down under it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _full(bitmap: bytes, columns: int) -> bool:
    mask = (1 << columns) - 1
    return int.from_bytes(bitmap, "little") & mask == mask


class BinlogSource:
    """Reads the binlog from ``start`` and yields :data:`~wpcdc.core.rows.SourceItem`s.

    ``items()`` blocks (run it in a worker thread) and ends when ``stop()`` is
    called from any thread, or raises a :class:`~wpcdc.core.errors.WpcdcError` when
    continuity cannot be guaranteed. Connection problems are retried forever
    with exponential backoff, each attempt logged on ``wpcdc.source``.
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
        self._clock = clock
        self._assembler = TransactionAssembler(start=start, max_part_rows=max_part_rows)
        self._tables = _WatchedTables(mysql.table_prefix)
        self._database = mysql.database
        self._stopping = threading.Event()
        self._started = False
        # Shared with stop() and the watchdog thread; plain attribute reads/writes.
        self._connection: MysqlConnection | None = None
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

    def items(self) -> Iterator[SourceItem]:
        """The binlog from ``start``, as transaction parts and idle markers."""
        if self._started:
            raise RuntimeError("BinlogSource.items() can only be iterated once")
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
            only_events=_ONLY_EVENTS,
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
        while not finished.wait(interval):
            if not self._fetching:
                continue  # the consumer holds the stream; that is not a stall
            waiting = time.monotonic() - max(self._fetch_started, self._last_packet)
            connection = self._connection
            if waiting > self._stall_timeout and connection is not None:
                logger.warning("no binlog packet for %.0fs: dropping the connection", waiting)
                self._stalled = True
                _shutdown(connection)

    def _stream(self) -> Iterator[SourceItem]:
        """One connection's worth of items; raises _Retry when it breaks."""
        position = self._assembler.position
        logger.info("reading the binlog from %s", position)
        reader = self._reader(position)
        self._stalled = False
        self._read_error = None
        try:
            while True:
                self._fetch_started = time.monotonic()
                self._fetching = True
                try:
                    event = reader.fetchone()
                except Exception as exc:
                    failure = self._failure(exc, position)
                    if failure is exc:
                        raise
                    raise failure from exc
                finally:
                    self._fetching = False
                if event is None:
                    raise _Retry("the server ended the binlog stream")
                yield from self._handle(event)
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
            return _Retry(_error_text(cause) if cause is not None else "connection lost")
        code = _error_code(exc)
        if code == _ER_MASTER_FATAL_ERROR_READING_BINLOG:
            return self._fatal_reading(exc, position)
        if code in _ACCESS_DENIED:
            return PreflightFailed(
                f"MySQL refused wpcdc ({_error_text(exc)}). Check mysql.user/mysql.password "
                "and grant: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>; "
                f"GRANT SELECT ON `{self._database}`.* TO <user>; (`wpcdc check` shows the "
                "exact statements)."
            )
        text = _error_text(exc)
        if isinstance(exc, FileNotFoundError | PermissionError) or "CERTIFICATE_VERIFY" in text:
            # A TLS file or certificate problem: retrying cannot fix it.
            return PreflightFailed(f"TLS to MySQL failed ({text}); check mysql.tls.*")
        if isinstance(exc, pymysql.err.MySQLError | OSError | EOFError | struct.error):
            return _Retry(text)
        return exc

    def _fatal_reading(self, exc: Exception, position: Position) -> WpcdcError:
        text = _error_text(exc)
        if "same server" in text.lower():
            return PreflightFailed(
                f"the server dropped wpcdc for another replica with the same id ({text}); "
                f"set mysql.server_id (now {self._mysql.server_id}) to a value no other "
                "replica or wpcdc instance uses."
            )
        return PositionLost(
            f"the server cannot send the binlog from {position}: {text}. The binlog file "
            "holding this position was purged (or the position is past its end), so the "
            "changes since then cannot be read. Run `wpcdc snapshot` to load the current "
            "state (or reset the checkpoint to accept the gap), and raise the binlog "
            "retention (binlog_expire_logs_seconds, or expire_logs_days on MariaDB) above "
            "the longest time wpcdc may be stopped."
        )

    # -- events ----------------------------------------------------------

    def _handle(self, event: Any) -> Iterator[SourceItem]:
        assembler = self._assembler
        if isinstance(event, RowsEvent):
            yield from self._rows(event)
        elif isinstance(event, XidEvent | XAPrepareEvent):
            yield assembler.commit(event.packet.log_pos, event.timestamp)
            self._backoff.reset()
        elif isinstance(event, MariadbGtidEvent):
            opens = not event.flags & _MARIADB_GTID_STANDALONE
            assembler.gtid(event.gtid, event.timestamp, opens=opens)
        elif isinstance(event, GtidEvent):
            assembler.gtid(event.gtid, event.timestamp, opens=False)
        elif isinstance(event, QueryEvent):
            yield from self._query_event(event)
        elif isinstance(event, HeartbeatLogEvent):
            yield from self._idle()
        elif isinstance(event, RotateEvent):
            assembler.rotate(event.next_binlog, event.position)
        elif isinstance(event, MariadbGtidListEvent):
            assembler.gtid_list(",".join(g.gtid for g in event.gtid_list))
        elif isinstance(event, NotImplementedEvent):
            yield from self._unknown(event)

    def _idle(self) -> Iterator[SourceItem]:
        self._backoff.reset()
        if not self._assembler.in_transaction:
            yield Idle(position=self._assembler.position, wall_time=self._clock())

    def _query_event(self, event: Any) -> Iterator[SourceItem]:
        assembler = self._assembler
        query: str = event.query
        kind = statement_kind(query)
        if kind == "begin":
            assembler.begin(event.slave_proxy_id, event.timestamp)
        elif kind == "commit":
            yield assembler.commit(event.packet.log_pos, event.timestamp)
            self._backoff.reset()
        elif kind == "statement":
            self._check_statement(event)
            if opens_transaction(query):
                assembler.begin(event.slave_proxy_id, event.timestamp)
                return
            part = assembler.statement(event.packet.log_pos, event.timestamp)
            if part is not None:
                yield part
                self._backoff.reset()

    def _check_statement(self, event: Any) -> None:
        schema = event.schema.decode("utf-8", "replace") if event.schema else ""
        verb, tables = named_tables(
            event.query,
            default_schema=schema,
            database=self._database,
            prefix=self._mysql.table_prefix,
        )
        if not tables:
            return
        where = f"{self._assembler.position.file}:{event.packet.log_pos}"
        if verb in _DML_VERBS:
            raise ServerMisconfigured(
                f"the binlog holds a {verb} on {', '.join(tables)} as an SQL statement "
                f"(at {where}), not as row changes, so wpcdc cannot see which rows changed. "
                "Set binlog_format=ROW globally and in the server configuration, make sure "
                "no client sets a session binlog_format, then restart wpcdc from a snapshot "
                "(`wpcdc snapshot`)."
            )
        if verb in {"TRUNCATE", "DROP"}:
            logger.warning(
                "%s of watched table(s) %s at %s: their rows go without row changes; "
                "consumers keep the last state they saw",
                verb,
                ", ".join(tables),
                where,
            )
        else:
            logger.info("%s on watched table(s) %s at %s", verb, ", ".join(tables), where)

    def _unknown(self, event: Any) -> Iterator[SourceItem]:
        kind = event.event_type
        if kind in (_ANONYMOUS_GTID, _GTID_TAGGED):
            self._assembler.gtid(
                None, event.timestamp, opens=False, understood=kind == _ANONYMOUS_GTID
            )
        elif kind == _HEARTBEAT_V2:
            yield from self._idle()
        elif kind == _TRANSACTION_PAYLOAD:
            raise ServerMisconfigured(
                "the server writes compressed transactions (binlog_transaction_compression=ON), "
                "which wpcdc cannot decode. Set binlog_transaction_compression=OFF (globally "
                "and in the server configuration); the transactions already compressed can only "
                "be recovered by `wpcdc snapshot`."
            )
        elif kind in _MARIADB_COMPRESSED:
            raise ServerMisconfigured(
                "the server writes compressed binlog events (log_bin_compress=ON), which wpcdc "
                "cannot decode. Set log_bin_compress=OFF (globally and in the server "
                "configuration); the events already compressed can only be recovered by "
                "`wpcdc snapshot`."
            )
        elif kind == _INCIDENT:
            raise PositionLost(
                f"the server logged an INCIDENT event after {self._assembler.position}: changes "
                "may be missing from the binlog there. Run `wpcdc snapshot` to reload the "
                "current state."
            )

    def _rows(self, event: Any) -> Iterator[SourceItem]:
        ref = self._tables.ref(event.table)
        if ref is None or event.schema != self._database:
            return  # the library filters these already
        columns = event.columns
        if columns and columns[0].name is None:
            raise ServerMisconfigured(
                f"row events for {event.table} carry no column names, so wpcdc cannot tell "
                "the columns apart. Set binlog_row_metadata=FULL (MySQL 8.0.14+, MariaDB "
                "10.5+) globally and in the server configuration, then restart wpcdc."
            )
        count = event.number_of_columns
        if not _full(event.columns_present_bitmap, count) or (
            isinstance(event, UpdateRowsEvent) and not _full(event.columns_present_bitmap2, count)
        ):
            raise ServerMisconfigured(
                f"row events for {event.table} carry only some columns, so the before and "
                "after images are incomplete. Set binlog_row_image=FULL globally and in the "
                "server configuration, then restart wpcdc."
            )
        assembler = self._assembler
        timestamp = event.timestamp
        if isinstance(event, UpdateRowsEvent):
            for row in event.rows:
                part = assembler.row(
                    ref, Op.UPDATE, row["before_values"], row["after_values"], timestamp
                )
                if part is not None:
                    yield part
        elif isinstance(event, WriteRowsEvent):
            for row in event.rows:
                part = assembler.row(ref, Op.INSERT, None, row["values"], timestamp)
                if part is not None:
                    yield part
        else:
            for row in event.rows:
                part = assembler.row(ref, Op.DELETE, row["values"], None, timestamp)
                if part is not None:
                    yield part


# --------------------------------------------------------------------------
# Helpers for the app: where the binlog ends now, and whether a position exists
# --------------------------------------------------------------------------


def _dict_rows(connection: MysqlConnection, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with connection.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def _open(mysql: MysqlSettings) -> MysqlConnection:
    try:
        return connect(mysql, use_database=False, read_timeout=max(mysql.connect_timeout, 30.0))
    except pymysql.err.MySQLError as exc:
        if _error_code(exc) in _ACCESS_DENIED:
            raise PreflightFailed(
                f"MySQL refused wpcdc ({_error_text(exc)}); check mysql.user and mysql.password"
            ) from None
        raise WpcdcError(
            f"cannot connect to MySQL at {mysql.host}:{mysql.port}: {_error_text(exc)}"
        ) from None
    except OSError as exc:
        raise WpcdcError(f"cannot connect to MySQL at {mysql.host}:{mysql.port}: {exc}") from None


def _binlog_query(connection: MysqlConnection, statements: list[str]) -> list[dict[str, Any]]:
    """Run the first statement the server knows (MySQL 8.4 removed the old names)."""
    for statement in statements:
        try:
            return _dict_rows(connection, statement)
        except pymysql.err.ProgrammingError as exc:
            if _error_code(exc) != _ER_PARSE_ERROR or statement == statements[-1]:
                raise
        except pymysql.err.MySQLError as exc:
            if _error_code(exc) in _ACCESS_DENIED:
                raise PreflightFailed(
                    f"{statement} was refused ({_error_text(exc)}): grant REPLICATION CLIENT "
                    "(BINLOG MONITOR on MariaDB 10.5+) to the wpcdc account"
                ) from None
            raise
    raise AssertionError("unreachable")


def current_position(mysql: MysqlSettings) -> Position:
    """Where the binlog ends now, with the GTID state there (None without GTIDs).

    A stream started here sees every transaction committed after the call.
    """
    with contextlib.closing(_open(mysql)) as connection:
        (identity,) = _dict_rows(connection, "SELECT VERSION() AS v, @@version_comment AS c")
        flavor = detect_flavor(str(identity["v"]), str(identity["c"] or ""))
        if flavor == "mariadb":
            rows = _binlog_query(connection, ["SHOW MASTER STATUS"])
        else:
            rows = _binlog_query(connection, ["SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"])
        if not rows:
            raise ServerMisconfigured(
                "the server has no binary log: start it with log_bin (and binlog_format=ROW, "
                "binlog_row_image=FULL, binlog_row_metadata=FULL)"
            )
        file, pos = str(rows[0]["File"]), int(rows[0]["Position"])
        gtid_set: str | None
        if flavor == "mariadb":
            # The GTID state at exactly this file/pos (reading @@gtid_binlog_pos
            # separately could include a transaction committed in between).
            (row,) = _dict_rows(connection, "SELECT BINLOG_GTID_POS(%s, %s) AS g", (file, pos))
            gtid_set = None if row["g"] is None else str(row["g"])
        else:
            (mode,) = _dict_rows(connection, "SELECT @@GLOBAL.gtid_mode AS m")
            executed = str(rows[0].get("Executed_Gtid_Set") or "").replace("\n", "")
            gtid_set = executed if str(mode["m"]).upper() == "ON" else None
        return Position(file=file, pos=pos, gtid_set=gtid_set)


def check_position_available(mysql: MysqlSettings, position: Position) -> None:
    """Raise PositionLost unless the server still has the binlog at ``position``."""
    with contextlib.closing(_open(mysql)) as connection:
        try:
            rows = _dict_rows(connection, "SHOW BINARY LOGS")
        except pymysql.err.MySQLError as exc:
            if _error_code(exc) in _ACCESS_DENIED:
                raise PreflightFailed(
                    f"SHOW BINARY LOGS was refused ({_error_text(exc)}): grant REPLICATION "
                    "CLIENT (BINLOG MONITOR on MariaDB 10.5+) to the wpcdc account"
                ) from None
            raise WpcdcError(f"cannot list the binary logs: {_error_text(exc)}") from None
    sizes = {str(row["Log_name"]): int(row["File_size"]) for row in rows}
    advice = (
        "Run `wpcdc snapshot` to load the current state (or reset the checkpoint to accept "
        "the gap), and raise the binlog retention (binlog_expire_logs_seconds, or "
        "expire_logs_days on MariaDB) above the longest time wpcdc may be stopped."
    )
    if position.file not in sizes:
        oldest = min(sizes, key=lambda name: (len(name), name)) if sizes else "none"
        raise PositionLost(
            f"the checkpoint's binlog file {position.file} is no longer on the server "
            f"(oldest: {oldest}); it was purged. {advice}"
        )
    if position.pos > sizes[position.file]:
        raise PositionLost(
            f"the checkpoint position {position} is past the end of {position.file} "
            f"({sizes[position.file]} bytes): the binlog was reset or belongs to another "
            f"server. {advice}"
        )
