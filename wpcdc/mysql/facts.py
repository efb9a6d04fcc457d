"""What ``wpcdc check`` reads from the server: :func:`read_server_facts`.

This module owns the queries behind the MySQL/MariaDB preflight: version and
account, the server variables, TLS, the WordPress tables and whether each can
be read, replicas and the binlog position. It reports what the server says and
judges nothing: the rules live in ``wpcdc.config.preflight``, the facts' shapes
in ``wpcdc.core.facts``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pymysql

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.facts import (
    BinlogPosition,
    Flavor,
    ReplicaHost,
    ServerFacts,
    ServerUnreachable,
    TableProbe,
    wordpress_layout,
)
from wpcdc.mysql.connection import MysqlConnection, connect, dict_rows, quote, server_identity
from wpcdc.mysql.errors import (
    MISSING_GRANT,
    PARSE_ERROR,
    TABLE_MISSING,
    error_code,
    error_text,
    is_connection_lost,
)

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

_T = TypeVar("_T")


class _QueryFailed(Exception):
    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Reader:
    """Runs queries; an expected refusal becomes _QueryFailed, a lost connection
    (no later query can succeed) propagates."""

    def __init__(self, connection: MysqlConnection) -> None:
        self.connection = connection

    def call(self, query: Callable[[MysqlConnection], _T]) -> _T:
        try:
            return query(self.connection)
        except pymysql.err.MySQLError as exc:
            if is_connection_lost(exc):
                raise
            raise _QueryFailed(error_code(exc), error_text(exc)) from exc

    def rows(self, sql: str, args: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        return self.call(lambda connection: dict_rows(connection, sql, args))


def read_server_facts(settings: MysqlSettings) -> ServerFacts | ServerUnreachable:
    """Log in and gather everything the preflight rules need; judge nothing."""
    try:
        # A preflight must come back: a server that accepts the connection and
        # then says nothing is a failed check, not a hang.
        connection = connect(
            settings, use_database=False, read_timeout=max(settings.connect_timeout, 30.0)
        )
    except pymysql.err.MySQLError as exc:
        return ServerUnreachable(message=error_text(exc), error_code=error_code(exc))
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
            message=f"lost the connection while reading: {error_text(exc)}",
            error_code=error_code(exc),
        )
    except _QueryFailed as exc:
        # Only the basic queries get here (the optional ones catch their own).
        return ServerUnreachable(
            message=f"cannot read the server: {exc.message}", error_code=exc.code
        )


def _read(reader: _Reader, settings: MysqlSettings) -> ServerFacts:
    identity = reader.call(server_identity)
    (account,) = reader.rows("SELECT CURRENT_USER() AS account")
    current_user = str(account["account"])

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

    replicas, replicas_error = _replica_hosts(reader, identity.flavor)
    position, position_error = _position(reader, identity.flavor)
    return ServerFacts(
        version=identity.version,
        version_comment=identity.comment,
        flavor=identity.flavor,
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


def _probe(reader: _Reader, database: str, table: str) -> TableProbe:
    # Trying is the only reliable test: grants come from users, roles, wildcards
    # and database patterns that no parser of SHOW GRANTS gets right.
    try:
        reader.rows(f"SELECT 1 FROM {quote(database)}.{quote(table)} LIMIT 0")
    except _QueryFailed as exc:
        if exc.code in TABLE_MISSING:
            return TableProbe("missing", exc.message)
        # Logged in already: a refusal here is a missing grant, never a refused login.
        if exc.code in MISSING_GRANT:
            return TableProbe("denied", exc.message)
        return TableProbe("error", exc.message)
    return TableProbe("ok")


def _first_statement(reader: _Reader, statements: Sequence[str]) -> list[dict[str, Any]]:
    """Run the first statement the server understands (newer names first)."""
    for statement in statements[:-1]:
        try:
            return reader.rows(statement)
        except _QueryFailed as exc:
            if exc.code != PARSE_ERROR:
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


def binlog_status(connection: MysqlConnection, flavor: Flavor) -> tuple[BinlogPosition | None, str]:
    """Where the binlog ends now (SHOW BINARY LOG STATUS), or None and why not."""
    return _position(_Reader(connection), flavor)


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
