"""The SQL connection to MySQL/MariaDB: opening it from settings, and reading server facts.

This module owns how wpcdc logs in to the server with PyMySQL (TLS, timeouts,
character set) and the queries behind ``wpcdc check``. It reports what the
server says and judges nothing: the rules live in ``wpcdc.preflight``. The
binlog itself is read elsewhere (the binlog source); nothing here imports
mysql-replication.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from wpcdc.config.preflight import (
    BinlogPosition,
    Flavor,
    ReplicaHost,
    ServerFacts,
    ServerUnreachable,
    TableProbe,
    detect_flavor,
    wordpress_layout,
)
from wpcdc.config.settings import MysqlSettings
from wpcdc.config.tls import client_context
from wpcdc.core.errors import PreflightFailed, ServerMisconfigured, WpcdcError
from wpcdc.core.events import TermRef
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.resnapshot import HIGH, LOW, REQUEST, Chunk, watermark_data
from wpcdc.core.rows import TableKind, classify_table
from wpcdc.core.snapshot_events import PostBundle

# The server variables the preflight rules look at. Absent ones (older servers,
# the other flavor) are simply missing from ServerFacts.variables.
VARIABLES = (
    "log_bin",
    "log_bin_basename",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "binlog_transaction_compression",
    "log_bin_compress",
    "server_id",
    "binlog_expire_logs_seconds",
    "binlog_expire_logs_auto_purge",
    "expire_logs_days",
    "max_binlog_total_size",
    "gtid_mode",
    "gtid_binlog_pos",
    "gtid_strict_mode",
)

# Client error codes meaning the connection itself is gone: no later query can
# succeed, so the whole read is reported as the server being unreachable.
_CONNECTION_LOST = frozenset({2006, 2013, 2055})
_PARSE_ERROR = 1064
_TABLE_MISSING = frozenset({1146, 1049})
_DENIED = frozenset({1142, 1143, 1044, 1227})

# Generic only in the type stubs, so the alias is a string.
MysqlConnection: TypeAlias = "Connection[pymysql.cursors.Cursor]"


def connect(
    settings: MysqlSettings, *, use_database: bool = True, read_timeout: float | None = None
) -> MysqlConnection:
    """Open an autocommit utf8mb4 connection, with TLS when the settings ask for it.

    ``use_database=False`` logs in without selecting ``mysql.database``, so that a
    missing database or a missing grant on it does not prevent the login itself.
    ``read_timeout`` bounds each wait for the server (None: wait as long as it takes,
    which long snapshot queries may need).
    Raises pymysql errors, and OSError (ssl.SSLError included) for TLS problems.
    """
    options: dict[str, Any] = {}
    if settings.tls.active:
        options["ssl"] = client_context(
            ca=settings.tls.ca,
            cert=settings.tls.cert,
            key=settings.tls.key,
            key_password=None,
            verify_identity=settings.tls.verify_identity,
        )
    else:
        # The settings promise TLS is off unless asked for; PyMySQL would
        # otherwise try an unverified TLS handshake on its own.
        options["ssl_disabled"] = True
    return pymysql.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password.get_secret_value(),
        database=settings.database if use_database else None,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=settings.connect_timeout,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
        **options,
    )


class _QueryFailed(Exception):
    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error_code(exc: BaseException) -> int | None:
    args = exc.args
    if args and isinstance(args[0], int):
        return args[0]
    return None


def _error_message(exc: BaseException) -> str:
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


class _Reader:
    """Runs queries; an expected refusal becomes _QueryFailed, a lost connection propagates."""

    def __init__(self, connection: MysqlConnection) -> None:
        self._connection = connection

    def rows(self, sql: str, args: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self._connection.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            code = _error_code(exc)
            if code in _CONNECTION_LOST:
                raise
            raise _QueryFailed(code, _error_message(exc)) from exc


def read_server_facts(settings: MysqlSettings) -> ServerFacts | ServerUnreachable:
    """Log in and gather everything the preflight rules need; judge nothing."""
    try:
        # A preflight must come back: a server that accepts the connection and
        # then says nothing is a failed check, not a hang.
        connection = connect(
            settings, use_database=False, read_timeout=max(settings.connect_timeout, 30.0)
        )
    except pymysql.err.MySQLError as exc:
        return ServerUnreachable(message=_error_message(exc), error_code=_error_code(exc))
    except OSError as exc:
        # Loading the TLS files, or the handshake (certificate, host name).
        return ServerUnreachable(message=f"mysql.tls: {exc}")
    except RuntimeError as exc:
        # PyMySQL's "cryptography package is required" for sha256 authentication.
        return ServerUnreachable(message=str(exc))
    try:
        with contextlib.closing(connection):
            return _read(_Reader(connection), settings)
    except pymysql.err.MySQLError as exc:
        return ServerUnreachable(
            message=f"lost the connection while reading: {_error_message(exc)}",
            error_code=_error_code(exc),
        )
    except _QueryFailed as exc:
        # Only the basic queries get here (the optional ones catch their own).
        return ServerUnreachable(
            message=f"cannot read the server: {exc.message}", error_code=exc.code
        )


def _read(reader: _Reader, settings: MysqlSettings) -> ServerFacts:
    (identity,) = reader.rows(
        "SELECT VERSION() AS version, @@version_comment AS comment, CURRENT_USER() AS account"
    )
    version, comment = str(identity["version"]), str(identity["comment"] or "")
    current_user = str(identity["account"])
    flavor = detect_flavor(version, comment)

    placeholders = ", ".join(["%s"] * len(VARIABLES))
    variables = {
        str(row["Variable_name"]).lower(): str(row["Value"])
        for row in reader.rows(
            f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({placeholders})", VARIABLES
        )
    }
    tls_rows = reader.rows("SHOW SESSION STATUS LIKE 'Ssl_version'")
    tls_version = str(tls_rows[0]["Value"]) if tls_rows else ""

    tables = frozenset(
        str(row["TABLE_NAME"])
        for row in reader.rows(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (settings.database,),
        )
    )
    layout = wordpress_layout(settings.table_prefix, tables)
    probes = {table: _probe(reader, settings.database, table) for table in layout.tables()}

    replicas, replicas_error = _replica_hosts(reader, flavor)
    position, position_error = _position(reader, flavor)
    return ServerFacts(
        version=version,
        version_comment=comment,
        flavor=flavor,
        current_user=current_user,
        tls_version=tls_version,
        variables=variables,
        global_privileges=_global_privileges(reader, current_user),
        tables=tables,
        table_probes=probes,
        replica_hosts=replicas,
        replica_hosts_error=replicas_error,
        position=position,
        position_error=position_error,
    )


def _grantee(current_user: str) -> str:
    user, _, host = current_user.rpartition("@")
    return f"'{user}'@'{host}'"


def _global_privileges(reader: _Reader, current_user: str) -> frozenset[str] | None:
    # USER_PRIVILEGES shows a plain account only its own rows, but shows an
    # administrator everyone's: filter on the account we are logged in as.
    try:
        rows = reader.rows(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
            (_grantee(current_user),),
        )
    except _QueryFailed:
        return None
    return frozenset(str(row["PRIVILEGE_TYPE"]).upper() for row in rows)


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _probe(reader: _Reader, database: str, table: str) -> TableProbe:
    # Trying is the only reliable test: grants come from users, roles, wildcards
    # and database patterns that no parser of SHOW GRANTS gets right.
    try:
        reader.rows(f"SELECT 1 FROM {_quote(database)}.{_quote(table)} LIMIT 0")
    except _QueryFailed as exc:
        if exc.code in _TABLE_MISSING:
            return TableProbe("missing", exc.message)
        if exc.code in _DENIED:
            return TableProbe("denied", exc.message)
        return TableProbe("error", exc.message)
    return TableProbe("ok")


def _first_statement(reader: _Reader, statements: Sequence[str]) -> list[dict[str, Any]]:
    """Run the first statement the server understands (newer names first)."""
    for statement in statements[:-1]:
        try:
            return reader.rows(statement)
        except _QueryFailed as exc:
            if exc.code != _PARSE_ERROR:
                raise
    return reader.rows(statements[-1])


def _replica_hosts(reader: _Reader, flavor: Flavor) -> tuple[tuple[ReplicaHost, ...] | None, str]:
    # MySQL 8.0.22 added SHOW REPLICAS and 8.4 removed SHOW SLAVE HOSTS;
    # MariaDB understands SHOW SLAVE HOSTS in every version.
    statements = (
        ["SHOW SLAVE HOSTS"] if flavor == "mariadb" else ["SHOW REPLICAS", "SHOW SLAVE HOSTS"]
    )
    try:
        rows = _first_statement(reader, statements)
    except _QueryFailed as exc:
        return None, exc.message
    return tuple(_replica(row) for row in rows), ""


def _replica(row: dict[str, Any]) -> ReplicaHost:
    port = row.get("Port")
    return ReplicaHost(
        server_id=int(row.get("Server_id") or row.get("Server_Id") or 0),
        host=str(row.get("Host") or ""),
        port=int(port) if port else None,
    )


def _position(reader: _Reader, flavor: Flavor) -> tuple[BinlogPosition | None, str]:
    # MySQL 8.2 added SHOW BINARY LOG STATUS and 8.4 removed SHOW MASTER STATUS.
    statements = (
        ["SHOW MASTER STATUS"]
        if flavor == "mariadb"
        else ["SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"]
    )
    try:
        rows = _first_statement(reader, statements)
    except _QueryFailed as exc:
        return None, exc.message
    if not rows:
        return None, "the server reports no binary log"
    row = rows[0]
    gtid_set = str(row.get("Executed_Gtid_Set") or "").replace("\n", "")
    return BinlogPosition(
        file=str(row["File"]), position=int(row["Position"]), gtid_set=gtid_set
    ), ""


def watched_blogs(conn: MysqlConnection, settings: MysqlSettings) -> list[int]:
    """The blogs whose post tables exist: 1 (the main site) and each multisite blog."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (settings.database,),
        )
        names = [str(row[0]) for row in cursor.fetchall()]
    blogs = {
        ref.blog_id
        for ref in (classify_table(settings.table_prefix, name) for name in names)
        if ref is not None and ref.kind is TableKind.POSTS
    }
    return sorted(blogs)


def load_mirror(settings: MysqlSettings) -> Mirror:
    """Read what the fold's mirror starts from: post types/statuses and terms of every blog.

    Rows stream through an unbuffered cursor, so a large site does not need the
    whole result in memory twice.
    """
    mirror = Mirror()
    with contextlib.closing(connect(settings)) as conn:
        for blog in watched_blogs(conn, settings):
            prefix = blog_prefix(settings, blog)
            with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                cursor.execute(
                    f"SELECT ID, post_type, post_status, post_parent FROM {_quote(prefix + 'posts')}"
                )
                mirror.load_posts(blog, cursor)
            with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                cursor.execute(
                    "SELECT term_taxonomy_id, taxonomy, term_id FROM "
                    + _quote(prefix + "term_taxonomy")
                )
                mirror.load_taxonomies(blog, cursor)
            with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                cursor.execute(f"SELECT term_id, slug, name FROM {_quote(prefix + 'terms')}")
                mirror.load_terms(blog, cursor)
    return mirror


def blog_prefix(settings: MysqlSettings, blog_id: int) -> str:
    return settings.table_prefix if blog_id == 1 else f"{settings.table_prefix}{blog_id}_"


_ZERO_DATE = "0000-00-00 00:00:00"


def read_post_bundles(
    conn: MysqlConnection,
    settings: MysqlSettings,
    blog_id: int,
    *,
    after_id: int = 0,
    limit: int = 500,
    ids: Sequence[int] | None = None,
    max_id: int | None = None,
    post_types: Sequence[str] | None = None,
    exclude_post_types: Sequence[str] = (),
    exclude_statuses: Sequence[str] = (),
) -> list[PostBundle]:
    """Posts of one blog in primary-key order (``ID > after_id``, at most ``limit``),
    or exactly ``ids``, each with its meta rows and resolved terms. The server
    leaves out ``exclude_post_types`` and ``exclude_statuses`` (revisions carry
    whole bodies: not reading them is most of a snapshot's I/O on many sites).

    Three queries per chunk, all in the caller's transaction: run them inside a
    consistent snapshot to get one point in time.
    """
    prefix = blog_prefix(settings, blog_id)
    where, params = ["ID > %s"], [after_id]
    if ids is not None:
        if not ids:
            return []
        where = [f"ID IN ({', '.join(['%s'] * len(ids))})"]
        params = list(ids)
    if max_id is not None:
        where.append("ID <= %s")
        params.append(max_id)
    if post_types:
        where.append(f"post_type IN ({', '.join(['%s'] * len(post_types))})")
        params.extend(post_types)  # type: ignore[arg-type]
    if exclude_post_types:
        where.append(f"post_type NOT IN ({', '.join(['%s'] * len(exclude_post_types))})")
        params.extend(exclude_post_types)  # type: ignore[arg-type]
    if exclude_statuses:
        where.append(f"post_status NOT IN ({', '.join(['%s'] * len(exclude_statuses))})")
        params.extend(exclude_statuses)  # type: ignore[arg-type]
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(
            f"SELECT * FROM {_quote(prefix + 'posts')} WHERE {' AND '.join(where)} "
            f"ORDER BY ID LIMIT {int(limit) if ids is None else len(ids)}",
            params,
        )
        posts: list[dict[str, Any]] = [
            {k: (None if v == _ZERO_DATE else v) for k, v in row.items()}
            for row in cursor.fetchall()
        ]
        if not posts:
            return []
        found = [int(row["ID"]) for row in posts]
        marks = ", ".join(["%s"] * len(found))
        cursor.execute(
            f"SELECT meta_id, post_id, meta_key, meta_value FROM {_quote(prefix + 'postmeta')} "
            f"WHERE post_id IN ({marks}) ORDER BY meta_id",
            found,
        )
        meta: dict[int, list[dict[str, Any]]] = {}
        for row in cursor.fetchall():
            meta.setdefault(int(row["post_id"]), []).append(row)
        cursor.execute(
            "SELECT r.object_id, tt.term_taxonomy_id, tt.taxonomy, t.term_id, t.slug, t.name "
            f"FROM {_quote(prefix + 'term_relationships')} r "
            f"JOIN {_quote(prefix + 'term_taxonomy')} tt ON tt.term_taxonomy_id = r.term_taxonomy_id "
            f"JOIN {_quote(prefix + 'terms')} t ON t.term_id = tt.term_id "
            f"WHERE r.object_id IN ({marks}) AND tt.taxonomy <> 'link_category'",
            found,
        )
        terms: dict[int, list[TermRef]] = {}
        for row in cursor.fetchall():
            terms.setdefault(int(row["object_id"]), []).append(
                TermRef(
                    term_taxonomy_id=int(row["term_taxonomy_id"]),
                    taxonomy=str(row["taxonomy"]),
                    term_id=int(row["term_id"]),
                    slug=str(row["slug"]),
                    name=str(row["name"]),
                )
            )
    return [
        PostBundle(
            blog_id=blog_id,
            post=post,
            meta=meta.get(int(post["ID"]), []),
            terms=terms.get(int(post["ID"]), []),
        )
        for post in posts
    ]


# --- the signal table (live re-snapshot requests and watermarks) ---------------------

SIGNAL_TABLE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  data TEXT NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  done_at DATETIME NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def signal_table(settings: MysqlSettings) -> str:
    return f"{settings.table_prefix}{TableKind.SIGNAL.value}"


def request_resnapshot(settings: MysqlSettings, request_json: str) -> int:
    """Insert a re-snapshot request (creating the signal table when missing); its id."""
    table = _quote(signal_table(settings))
    with contextlib.closing(connect(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(SIGNAL_TABLE_DDL.format(table=table))
        cursor.execute(f"INSERT INTO {table} (kind, data) VALUES (%s, %s)", (REQUEST, request_json))
        return int(cursor.lastrowid)


class SignalTable:
    """The streamer's side of the signal table: watermarks, chunk reads, completion."""

    def __init__(self, settings: MysqlSettings) -> None:
        self._settings = settings
        self._table = _quote(signal_table(settings))
        self._conn: MysqlConnection | None = None

    def _cursor(self) -> pymysql.cursors.Cursor:
        if self._conn is None:
            self._conn = connect(self._settings)
        self._conn.ping(reconnect=True)
        return self._conn.cursor()

    def is_done(self, request_id: int) -> bool:
        with self._cursor() as cursor:
            cursor.execute(f"SELECT done_at FROM {self._table} WHERE id = %s", (request_id,))
            row = cursor.fetchone()
        return row is None or row[0] is not None

    def read_window(self, chunk: Chunk, token: str) -> list[PostBundle]:
        """Low watermark, the chunk's posts, high watermark (each committed on its own)."""
        data = watermark_data(token, chunk)
        with self._cursor() as cursor:
            cursor.execute(f"INSERT INTO {self._table} (kind, data) VALUES (%s, %s)", (LOW, data))
        assert self._conn is not None
        request = chunk.request
        if request.ids:
            bundles = read_post_bundles(self._conn, self._settings, request.blog_id, ids=chunk.ids)
        else:
            bundles = read_post_bundles(
                self._conn,
                self._settings,
                request.blog_id,
                after_id=chunk.after_id,
                limit=chunk.limit,
                max_id=request.high,
            )
        with self._cursor() as cursor:
            cursor.execute(f"INSERT INTO {self._table} (kind, data) VALUES (%s, %s)", (HIGH, data))
        return bundles

    def mark_done(self, request_id: int) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"UPDATE {self._table} SET done_at = NOW() WHERE id = %s", (request_id,))
            # The watermark rows have done their work in the binlog.
            cursor.execute(
                f"DELETE FROM {self._table} WHERE kind IN (%s, %s) AND JSON_VALUE(data, '$.request') = %s",
                (LOW, HIGH, request_id),
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- consistent snapshots (wpcdc snapshot) ----------------------------------------

# MySQL without binlog_snapshot_* status only: how long FLUSH TABLES WITH READ LOCK
# may wait for running statements, and how often it is tried. Writers queue behind
# a waiting FTWRL, so it gives up soon and tries again instead of stalling the site.
FTWRL_WAIT_SECONDS = 2
FTWRL_ATTEMPTS = 5
_LOCK_WAIT_TIMEOUT = 1205
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
        # The GTID state at exactly this file/pos, as wpcdc.mysql.binlog.current_position.
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
    ``FLUSH LOCAL TABLES`` first does that waiting without blocking anyone, as
    mysqldump does. ``UNLOCK TABLES`` leaves the consistent snapshot open.

    LOCK INSTANCE FOR BACKUP with performance_schema.log_status is not enough: it
    blocks DDL and file operations but lets commits through, so the position that
    log_status reports is not tied to the transaction's read view (MySQL writes the
    binlog before the engine commits). Needs the RELOAD privilege.
    """
    began = 0.0
    with conn.cursor() as cursor:
        cursor.execute(f"SET SESSION lock_wait_timeout = {FTWRL_WAIT_SECONDS}")
        try:
            for attempt in range(1, FTWRL_ATTEMPTS + 1):
                try:
                    cursor.execute("FLUSH LOCAL TABLES")
                    began = time.monotonic()
                    cursor.execute("FLUSH TABLES WITH READ LOCK")
                    break
                except pymysql.err.MySQLError as exc:
                    code = _error_code(exc)
                    if code in _DENIED:
                        raise PreflightFailed(
                            f"FLUSH TABLES WITH READ LOCK was refused ({_error_message(exc)}). "
                            "On MySQL a snapshot needs it for a moment to tie the snapshot to a "
                            "binlog position: GRANT RELOAD ON *.* TO the wpcdc account"
                        ) from None
                    if code != _LOCK_WAIT_TIMEOUT:
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
                found, error = _position(_Reader(conn), "mysql")
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
            with connection.cursor() as cursor:
                cursor.execute("SELECT VERSION(), @@version_comment")
                row = cursor.fetchone()
            assert row is not None
            point = begin_consistent_snapshot(connection, detect_flavor(str(row[0]), str(row[1])))
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

    def count(
        self,
        blog_id: int,
        *,
        after_id: int = 0,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> int:
        """How many posts :meth:`chunk` would return from ``after_id`` on, in all."""
        where, params = ["ID > %s"], [after_id]
        if max_id is not None:
            where.append("ID <= %s")
            params.append(max_id)
        for column, values, operator in (
            ("post_type", post_types or (), "IN"),
            ("post_type", self._exclude_post_types, "NOT IN"),
            ("post_status", self._exclude_statuses, "NOT IN"),
        ):
            if values:
                where.append(f"{column} {operator} ({', '.join(['%s'] * len(values))})")
                params.extend(values)  # type: ignore[arg-type]
        table = _quote(blog_prefix(self._settings, blog_id) + "posts")
        with self._conn.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {' AND '.join(where)}", params)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def chunk(
        self,
        blog_id: int,
        *,
        after_id: int,
        limit: int,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> list[PostBundle]:
        """The next ``limit`` posts after ``after_id``, in ID order, with meta and terms."""
        return read_post_bundles(
            self._conn,
            self._settings,
            blog_id,
            after_id=after_id,
            limit=limit,
            max_id=max_id,
            post_types=post_types,
            exclude_post_types=self._exclude_post_types,
            exclude_statuses=self._exclude_statuses,
        )

    def close(self) -> None:
        """End the transaction (it only read) and the connection."""
        with contextlib.suppress(pymysql.err.MySQLError, OSError), self._conn.cursor() as cursor:
            cursor.execute("ROLLBACK")
        with contextlib.suppress(pymysql.err.MySQLError, OSError):
            self._conn.close()
