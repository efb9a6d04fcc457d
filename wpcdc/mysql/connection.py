"""The SQL connection to MySQL/MariaDB: logging in from the settings, and what the server is.

This module owns how wpcdc logs in to the server with PyMySQL (TLS, timeouts,
character set), the one query that tells MySQL from MariaDB
(:func:`server_identity`, :func:`server_flavor`), and the small helpers every
query module shares (dict rows, identifier quoting). Nothing here imports
mysql-replication.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from wpcdc.config.settings import MysqlSettings
from wpcdc.config.tls import client_context
from wpcdc.core.facts import Flavor, detect_flavor

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


def dict_rows(
    connection: MysqlConnection, sql: str, args: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """Run one query; its rows as dicts keyed by column name (or alias)."""
    with connection.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def quote(identifier: str) -> str:
    """``identifier`` as a backquoted SQL name."""
    return "`" + identifier.replace("`", "``") + "`"


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """What the server says it is: ``VERSION()``, ``@@version_comment``, and the flavor
    wpcdc reads from them."""

    version: str
    comment: str
    flavor: Flavor


def server_identity(connection: MysqlConnection) -> ServerIdentity:
    """Ask the server its version and comment (raises pymysql errors)."""
    (row,) = dict_rows(connection, "SELECT VERSION() AS version, @@version_comment AS comment")
    version, comment = str(row["version"]), str(row["comment"] or "")
    return ServerIdentity(version, comment, detect_flavor(version, comment))


def server_flavor(connection: MysqlConnection) -> Flavor:
    """MySQL or MariaDB: the statements and status names differ between them."""
    return server_identity(connection).flavor
