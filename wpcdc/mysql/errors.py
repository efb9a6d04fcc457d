"""What a MySQL/MariaDB error means for wpcdc: the one place that decides.

Every module that talks to the server maps its errors through here, so
"refused login", "missing grant", "connection lost" and "position purged" mean
the same codes everywhere (earlier copies drifted: one lacked 1143).
"""

from __future__ import annotations

from typing import Final

from pymysql.err import MySQLError as MysqlError

__all__ = ["MysqlError"]  # re-exported: the runtime catches it without importing the driver

from wpcdc.core.errors import PreflightFailed

# The login itself was refused: wrong user or password, or an authentication
# plugin the account cannot use.
REFUSED_LOGIN: Final = frozenset({1045, 1698})
# Logged in, but a privilege is missing: on the database (1044), a table (1142),
# a column (1143), or a global one such as REPLICATION CLIENT/RELOAD (1227).
MISSING_GRANT: Final = frozenset({1044, 1142, 1143, 1227})
ACCESS_DENIED: Final = REFUSED_LOGIN | MISSING_GRANT
# Client-side codes: the connection is gone and no later query on it can succeed.
CONNECTION_LOST: Final = frozenset({2006, 2013, 2055})
PARSE_ERROR: Final = 1064
TABLE_MISSING: Final = frozenset({1146, 1049})
LOCK_WAIT_TIMEOUT: Final = 1205
# ER_MASTER_FATAL_ERROR_READING_BINLOG: the dump thread cannot go on from the
# requested position (purged, past the end, or another replica took the id).
FATAL_READING_BINLOG: Final = 1236
# MariaDB's ER_SLAVE_SAME_ID: another replica registered with our server_id and
# the server dropped this one for it. Retrying only takes the binlog back from
# the other (measured: two streamers took turns forever), so it is fatal.
SAME_REPLICA_ID: Final = 4052


def error_code(exc: BaseException) -> int | None:
    """The server's (or PyMySQL's client) error number, if the exception has one."""
    args = exc.args
    if args and isinstance(args[0], int):
        return args[0]
    return None


def error_text(exc: BaseException) -> str:
    """``(code) message`` for server errors, else the exception's own text."""
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


def is_access_denied(exc: BaseException) -> bool:
    """A refused login or a missing grant: retrying cannot fix it."""
    return error_code(exc) in ACCESS_DENIED


def is_connection_lost(exc: BaseException) -> bool:
    return error_code(exc) in CONNECTION_LOST


def is_replica_id_taken(exc: BaseException) -> bool:
    """Another replica (or wpcdc instance) reads the binlog with the same server_id:
    MariaDB says 4052; MySQL says 1236 "...same server_uuid/server_id..."."""
    code = error_code(exc)
    if code == SAME_REPLICA_ID:
        return True
    return code == FATAL_READING_BINLOG and "same server" in error_text(exc).lower()


def replica_id_taken(exc: BaseException, server_id: int) -> PreflightFailed:
    """The failure for a server_id another replica uses: exit 3, naming the setting."""
    return PreflightFailed(
        f"the server dropped wpcdc for another replica with the same id ({error_text(exc)}); "
        f"another wpcdc run (or a replica) uses mysql.server_id {server_id}. Stop the "
        "other streamer if it shares this checkpoint, or set mysql.server_id to a value "
        "no other replica or wpcdc instance uses."
    )


def refused(exc: BaseException) -> PreflightFailed:
    """The failure for a refused login or missing grant met while running: no retry
    fixes credentials or grants, and ``wpcdc check`` names the fix."""
    message = exc.args[-1] if exc.args else type(exc).__name__
    return PreflightFailed(f"the database refused wpcdc: {message}. Run `wpcdc check` for the fix.")
