"""The one consistent read: a snapshot transaction tied to its binlog position.

This module owns how wpcdc reads the WordPress database as of one binlog
position: ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` plus the position it
corresponds to (:func:`begin_consistent_snapshot`: the server's own
``binlog_snapshot_*`` status on MariaDB and Percona, a brief FLUSH TABLES WITH
READ LOCK on Oracle MySQL), and the two readers built on it: the chunked reads
of ``wpcdc snapshot`` (:class:`ConsistentSnapshot`) and the database side of
``wpcdc verify`` (:class:`MysqlDatabase`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pymysql

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.derive import AUTO_DRAFT
from wpcdc.core.errors import PreflightFailed, ServerMisconfigured, WpcdcError
from wpcdc.core.facts import Flavor
from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Position
from wpcdc.core.snapshot_events import PostBundle, PostRange
from wpcdc.mysql.connection import MysqlConnection, connect, quote, server_flavor
from wpcdc.mysql.errors import LOCK_WAIT_TIMEOUT, MISSING_GRANT, error_code, error_text
from wpcdc.mysql.facts import binlog_status
from wpcdc.mysql.posts import blog_prefix, read_post_bundles, watched_blogs

logger = logging.getLogger("wpcdc.snapshot")

# MySQL without binlog_snapshot_* status only: how long FLUSH TABLES WITH READ LOCK
# may wait for running statements, and how often it is tried. Writers queue behind
# a waiting FTWRL, so it gives up soon and tries again instead of stalling the site.
FTWRL_WAIT_SECONDS = 2
FTWRL_ATTEMPTS = 5
# A statement running this long when the flush starts is waited for first (see
# _locked_snapshot): the flush would hold writers behind it until it ends.
LONG_STATEMENT_SECONDS = 1
# The tables a snapshot reads, per blog.
SNAPSHOT_TABLES = ("posts", "postmeta", "term_relationships", "term_taxonomy", "terms")


@dataclass(frozen=True, slots=True)
class SnapshotPoint:
    """Where a consistent-snapshot transaction sits in the binlog."""

    position: Position
    # The server's clock when the snapshot opened, seconds since the epoch.
    timestamp: int
    # "binlog_snapshot" (MariaDB, Percona: no lock) or "flush_tables_with_read_lock".
    method: str
    # How long writers were blocked to tie the snapshot to the position.
    locked_seconds: float = 0.0


def begin_consistent_snapshot(conn: MysqlConnection, flavor: Flavor) -> SnapshotPoint:
    """Start a REPEATABLE READ transaction WITH CONSISTENT SNAPSHOT on ``conn``; return
    the binlog position it corresponds to: it sees every transaction committed
    before the position and none after.

    MariaDB (and Percona Server) report that position themselves, in the session
    status ``binlog_snapshot_file``/``binlog_snapshot_position``: the snapshot and
    the position are taken together under the binlog's commit ordering, so no
    lock is needed and writers never wait. A transaction committing between the
    START and the SHOW STATUS is after the position and outside the snapshot.

    Oracle MySQL has no such status; see :func:`_locked_snapshot`.
    """
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    position = snapshot_position(conn, flavor)
    if position is not None:
        return SnapshotPoint(position, _server_time(conn), "binlog_snapshot")
    with conn.cursor() as cursor:
        cursor.execute("ROLLBACK")
    if flavor == "mariadb":
        raise ServerMisconfigured(
            "the server has no binary log (binlog_snapshot_file is empty): start it with "
            "log_bin, binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL"
        )
    return _locked_snapshot(conn)


def snapshot_position(conn: MysqlConnection, flavor: Flavor) -> Position | None:
    """The binlog position of the session's consistent snapshot (MariaDB, Percona), or
    None when the server does not report one (Oracle MySQL, binlog off)."""
    with conn.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        status = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
    file = status.get("binlog_snapshot_file", "")
    if not file:
        return None
    pos = int(status["binlog_snapshot_position"])
    gtid_set: str | None
    if flavor == "mariadb":
        # The GTID state at exactly this file/pos, as wpcdc.mysql.status.current_position.
        with conn.cursor() as cursor:
            cursor.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
            row = cursor.fetchone()
        gtid_set = None if row is None or row[0] is None else str(row[0])
    else:
        gtid_set = status.get("binlog_snapshot_gtid_executed") if _gtid_mode_on(conn) else None
    return Position(file=file, pos=pos, gtid_set=gtid_set)


def _locked_snapshot(conn: MysqlConnection) -> SnapshotPoint:
    """Oracle MySQL: tie the snapshot to a position under FLUSH TABLES WITH READ LOCK.

    The global read lock blocks every write and every COMMIT on the server (all
    databases) from FTWRL to UNLOCK TABLES: while it is held, the transaction
    starts and SHOW BINARY LOG STATUS reads the position, so no commit can fall
    between the two. That takes milliseconds; FTWRL itself may first wait for
    running statements (writers queue behind it meanwhile), which
    ``lock_wait_timeout`` bounds to FTWRL_WAIT_SECONDS per attempt. A plain
    ``FLUSH LOCAL TABLES`` first does most of that waiting without the global
    lock, as mysqldump does. ``UNLOCK TABLES`` leaves the consistent snapshot open.

    A flush that gives up does not release the writers it queued: a table that a
    running statement uses stays "waiting for table flush" for every later
    statement until that statement ends (measured on MySQL 9.7: a 5 s SELECT held
    INSERTs on its table 4.4 s, past a FLUSH that timed out after 1 s). So no
    flush is started while another statement has run LONG_STATEMENT_SECONDS or
    more: wpcdc waits for it (FTWRL_ATTEMPTS times, longer each time) and then
    gives up with its id, rather than stall WordPress behind it. Seeing other
    accounts' statements needs the PROCESS privilege; without it only wpcdc's
    own are seen, and a warning says so.

    LOCK INSTANCE FOR BACKUP with performance_schema.log_status is not enough: it
    blocks DDL and file operations but lets commits through, so the position that
    log_status reports is not tied to the transaction's read view (MySQL writes the
    binlog before the engine commits). Needs the RELOAD privilege.
    """
    began = 0.0
    if not _sees_all_statements(conn):
        logger.warning(
            "the account lacks the PROCESS privilege, so the snapshot cannot see other "
            "accounts' long statements before FLUSH TABLES WITH READ LOCK, and one running "
            "then holds writers on its tables until it ends: GRANT PROCESS ON *.* to it"
        )
    with conn.cursor() as cursor:
        cursor.execute(f"SET SESSION lock_wait_timeout = {FTWRL_WAIT_SECONDS}")
        try:
            for attempt in range(1, FTWRL_ATTEMPTS + 1):
                long_running = _long_statements(conn)
                if long_running:
                    if attempt == FTWRL_ATTEMPTS:
                        raise WpcdcError(
                            "the snapshot did not start FLUSH TABLES WITH READ LOCK: "
                            + "; ".join(long_running[:3])
                            + f" still running after {FTWRL_ATTEMPTS} waits, and the flush "
                            "would hold WordPress's writers until it ends. Run the snapshot "
                            "when no long query or backup runs (SHOW PROCESSLIST)"
                        )
                    time.sleep(attempt)
                    continue
                try:
                    cursor.execute("FLUSH LOCAL TABLES")
                    began = time.monotonic()
                    cursor.execute("FLUSH TABLES WITH READ LOCK")
                    break
                except pymysql.err.MySQLError as exc:
                    code = error_code(exc)
                    if code in MISSING_GRANT:
                        raise PreflightFailed(
                            f"FLUSH TABLES WITH READ LOCK was refused ({error_text(exc)}). "
                            "On MySQL a snapshot needs it for a moment to tie the snapshot to a "
                            "binlog position: GRANT RELOAD ON *.* TO the wpcdc account"
                        ) from None
                    if code != LOCK_WAIT_TIMEOUT:
                        raise
                    if attempt == FTWRL_ATTEMPTS:
                        raise WpcdcError(
                            f"FLUSH TABLES WITH READ LOCK waited {FTWRL_WAIT_SECONDS} s for "
                            f"running statements {FTWRL_ATTEMPTS} times and gave up, so as not "
                            "to hold writers back: run the snapshot when no long query or "
                            "backup runs (SHOW PROCESSLIST)"
                        ) from None
                    # A long statement held a table: let writers through, then retry.
                    time.sleep(attempt)
            try:
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                found, error = binlog_status(conn, "mysql")
                gtid_on = _gtid_mode_on(conn)
                timestamp = _server_time(conn)
            finally:
                cursor.execute("UNLOCK TABLES")
                locked = time.monotonic() - began
        finally:
            cursor.execute("SET SESSION lock_wait_timeout = DEFAULT")
    if found is None:
        raise ServerMisconfigured(f"cannot read the binlog position: {error}")
    position = Position(found.file, found.position, found.gtid_set if gtid_on else None)
    return SnapshotPoint(position, timestamp, "flush_tables_with_read_lock", locked)


def _long_statements(conn: MysqlConnection) -> list[str]:
    """Other sessions' statements running LONG_STATEMENT_SECONDS or more, described."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        own = cursor.fetchone()
        cursor.execute("SHOW FULL PROCESSLIST")
        rows = cursor.fetchall()
    # Id, User, Host, db, Command, Time, State, Info: replicas (Binlog Dump) and
    # idle or daemon threads run no statement on a table.
    return [
        f"statement {row[0]} of {row[1]} ({row[5]} s: {str(row[7])[:60]})"
        for row in rows
        if own is not None
        and row[0] != own[0]
        and row[4] in ("Query", "Execute")
        and row[7] is not None
        and int(row[5] or 0) >= LONG_STATEMENT_SECONDS
    ]


def _sees_all_statements(conn: MysqlConnection) -> bool:
    """Whether the account holds PROCESS (granted directly), so SHOW PROCESSLIST shows
    every session and not only its own."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        row = cursor.fetchone()
        user, _, host = str(row[0] if row else "").rpartition("@")
        cursor.execute(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
            (f"'{user}'@'{host}'",),
        )
        return any(str(r[0]).upper() == "PROCESS" for r in cursor.fetchall())


def _gtid_mode_on(conn: MysqlConnection) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.gtid_mode")
        row = cursor.fetchone()
    return row is not None and str(row[0]).upper() == "ON"


def _server_time(conn: MysqlConnection) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT UNIX_TIMESTAMP()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


class ConsistentSnapshot:
    """One consistent-snapshot transaction of ``wpcdc snapshot``, and the reads done in it.

    Every read sees the database as of ``point.position``. The server leaves out
    ``exclude_post_types`` and ``exclude_statuses`` in counts and chunks alike.
    Blocking: the caller runs the methods in a thread, one at a time.
    """

    def __init__(
        self,
        connection: MysqlConnection,
        settings: MysqlSettings,
        point: SnapshotPoint,
        *,
        exclude_post_types: Sequence[str] = (),
        exclude_statuses: Sequence[str] = (),
    ) -> None:
        self._conn = connection
        self._settings = settings
        self.point = point
        self._exclude_post_types = tuple(exclude_post_types)
        self._exclude_statuses = tuple(exclude_statuses)

    @classmethod
    def open(
        cls,
        settings: MysqlSettings,
        *,
        exclude_post_types: Sequence[str] = (),
        exclude_statuses: Sequence[str] = (),
    ) -> ConsistentSnapshot:
        # No read timeout: a chunk of a large site may take long, and the
        # transaction must survive it.
        connection = connect(settings, read_timeout=None)
        try:
            point = begin_consistent_snapshot(connection, server_flavor(connection))
        except BaseException:
            connection.close()
            raise
        return cls(
            connection,
            settings,
            point,
            exclude_post_types=exclude_post_types,
            exclude_statuses=exclude_statuses,
        )

    def blogs(self) -> list[int]:
        return watched_blogs(self._conn, self._settings)

    def table_engines(self, blogs: Sequence[int]) -> dict[str, str]:
        """Storage engine per table the snapshot reads (consistent reads need InnoDB)."""
        names = [blog_prefix(self._settings, b) + t for b in blogs for t in SNAPSHOT_TABLES]
        if not names:
            return {}
        marks = ", ".join(["%s"] * len(names))
        with self._conn.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
                f"WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ({marks})",
                (self._settings.database, *names),
            )
            return {str(name): str(engine or "") for name, engine in cursor.fetchall()}

    def count(self, posts: PostRange) -> int:
        """How many posts :meth:`chunk` would return, in all."""
        where, params = ["ID > %s"], [posts.after_id]
        if posts.max_id is not None:
            where.append("ID <= %s")
            params.append(posts.max_id)
        for column, values, operator in (
            ("post_type", posts.post_types, "IN"),
            ("post_type", self._exclude_post_types, "NOT IN"),
            ("post_status", self._exclude_statuses, "NOT IN"),
        ):
            if values:
                where.append(f"{column} {operator} ({', '.join(['%s'] * len(values))})")
                params.extend(values)  # type: ignore[arg-type]
        table = quote(blog_prefix(self._settings, posts.blog_id) + "posts")
        with self._conn.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {' AND '.join(where)}", params)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def chunk(self, posts: PostRange, limit: int) -> list[PostBundle]:
        """The first ``limit`` posts of the range, in ID order, with meta and terms."""
        return read_post_bundles(
            self._conn,
            self._settings,
            posts.blog_id,
            after_id=posts.after_id,
            limit=limit,
            max_id=posts.max_id,
            post_types=posts.post_types or None,
            exclude_post_types=self._exclude_post_types,
            exclude_statuses=self._exclude_statuses,
        )

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]:
        """Exactly the posts ``ids`` (those that exist and pass the exclusions)."""
        return read_post_bundles(
            self._conn,
            self._settings,
            blog_id,
            ids=ids,
            exclude_post_types=self._exclude_post_types,
            exclude_statuses=self._exclude_statuses,
        )

    def close(self) -> None:
        """End the transaction (it only read) and the connection."""
        with contextlib.suppress(pymysql.err.MySQLError, OSError), self._conn.cursor() as cursor:
            cursor.execute("ROLLBACK")
        with contextlib.suppress(pymysql.err.MySQLError, OSError):
            self._conn.close()


# --- wpcdc verify's reads ------------------------------------------------------------

# Posts per database read.
VERIFY_CHUNK = 500


class MysqlDatabase:
    """Consistent snapshots of the WordPress database for ``wpcdc verify``, each a
    :class:`ConsistentSnapshot` (tied to its binlog position as ``wpcdc snapshot`` reads).

    Posts of ignored types and unreported auto-drafts are left out by the server
    (revisions carry whole bodies: most of the I/O on many sites).
    """

    def __init__(
        self, settings: MysqlSettings, config: FoldConfig, *, chunk: int = VERIFY_CHUNK
    ) -> None:
        self.settings = settings
        self._chunk = chunk
        self._exclude_types = tuple(sorted(config.ignored_post_types))
        self._exclude_statuses = () if config.emit_auto_drafts else (AUTO_DRAFT,)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[MysqlView]:
        snapshot = ConsistentSnapshot.open(
            self.settings,
            exclude_post_types=self._exclude_types,
            exclude_statuses=self._exclude_statuses,
        )
        try:
            yield MysqlView(snapshot, self._chunk)
        finally:
            snapshot.close()


@dataclass
class MysqlView:
    """The database as one consistent snapshot shows it (verify's ``DatabaseView``)."""

    snapshot: ConsistentSnapshot
    chunk: int
    warnings: tuple[str, ...] = ()

    @property
    def position(self) -> Position:
        return self.snapshot.point.position

    def blogs(self) -> list[int]:
        return self.snapshot.blogs()

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        """Every post of the blog, in ID order, ``chunk`` posts at a time."""
        posts = PostRange(blog_id)
        while bundles := self.snapshot.chunk(posts, self.chunk):
            yield bundles
            posts = posts.after(int(bundles[-1].post["ID"]))

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]:
        return self.snapshot.posts(blog_id, ids)
