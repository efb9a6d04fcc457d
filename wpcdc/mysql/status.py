"""Where the server's binlog stands: its end now, and whether a saved position still exists.

This module owns the two questions ``wpcdc run`` asks before it streams:
:func:`current_position` (where a fresh start begins, with the GTID state there)
and :func:`check_position_available` (whether the checkpoint's binlog file was
purged, so that the loss is reported before streaming instead of as a dump
error; promise "loud failure", docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.errors import PositionLost, PreflightFailed, ServerMisconfigured, WpcdcError
from wpcdc.core.positions import Position
from wpcdc.mysql.connection import MysqlConnection, connect, dict_rows, server_flavor
from wpcdc.mysql.errors import PARSE_ERROR, error_code, error_text, is_access_denied

# What to do when the binlog at a saved position is gone.
RETENTION_ADVICE = (
    "Run `wpcdc snapshot` to load the current state (or reset the checkpoint to accept "
    "the gap), and raise the binlog retention (binlog_expire_logs_seconds, or "
    "expire_logs_days on MariaDB) above the longest time wpcdc may be stopped."
)


def _open(mysql: MysqlSettings) -> MysqlConnection:
    try:
        return connect(mysql, use_database=False, read_timeout=max(mysql.connect_timeout, 30.0))
    except pymysql.err.MySQLError as exc:
        if is_access_denied(exc):
            raise PreflightFailed(
                f"MySQL refused wpcdc ({error_text(exc)}); check mysql.user and mysql.password"
            ) from None
        raise WpcdcError(
            f"cannot connect to MySQL at {mysql.host}:{mysql.port}: {error_text(exc)}"
        ) from None
    except OSError as exc:
        raise WpcdcError(f"cannot connect to MySQL at {mysql.host}:{mysql.port}: {exc}") from None


def _monitor_refused(statement: str, exc: BaseException) -> PreflightFailed:
    return PreflightFailed(
        f"{statement} was refused ({error_text(exc)}): grant REPLICATION CLIENT "
        "(BINLOG MONITOR on MariaDB 10.5+) to the wpcdc account"
    )


def _binlog_query(connection: MysqlConnection, statements: list[str]) -> list[dict[str, Any]]:
    """Run the first statement the server knows (MySQL 8.4 removed the old names)."""
    for statement in statements:
        try:
            return dict_rows(connection, statement)
        except pymysql.err.ProgrammingError as exc:
            if error_code(exc) != PARSE_ERROR or statement == statements[-1]:
                raise
        except pymysql.err.MySQLError as exc:
            if is_access_denied(exc):
                raise _monitor_refused(statement, exc) from None
            raise
    raise AssertionError("unreachable")


def current_position(mysql: MysqlSettings) -> Position:
    """Where the binlog ends now, with the GTID state there (None without GTIDs).

    A stream started here sees every transaction committed after the call.
    """
    with contextlib.closing(_open(mysql)) as connection:
        flavor = server_flavor(connection)
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
            (row,) = dict_rows(connection, "SELECT BINLOG_GTID_POS(%s, %s) AS g", (file, pos))
            gtid_set = None if row["g"] is None else str(row["g"])
        else:
            (mode,) = dict_rows(connection, "SELECT @@GLOBAL.gtid_mode AS m")
            executed = str(rows[0].get("Executed_Gtid_Set") or "").replace("\n", "")
            gtid_set = executed if str(mode["m"]).upper() == "ON" else None
        return Position(file=file, pos=pos, gtid_set=gtid_set)


def check_position_available(mysql: MysqlSettings, position: Position) -> None:
    """Raise PositionLost unless the server still has the binlog at ``position``."""
    with contextlib.closing(_open(mysql)) as connection:
        try:
            rows = dict_rows(connection, "SHOW BINARY LOGS")
        except pymysql.err.MySQLError as exc:
            if is_access_denied(exc):
                raise _monitor_refused("SHOW BINARY LOGS", exc) from None
            raise WpcdcError(f"cannot list the binary logs: {error_text(exc)}") from None
    sizes = {str(row["Log_name"]): int(row["File_size"]) for row in rows}
    if position.file not in sizes:
        oldest = min(sizes, key=lambda name: (len(name), name)) if sizes else "none"
        raise PositionLost(
            f"the checkpoint's binlog file {position.file} is no longer on the server "
            f"(oldest: {oldest}); it was purged. {RETENTION_ADVICE}"
        )
    if position.pos > sizes[position.file]:
        raise PositionLost(
            f"the checkpoint position {position} is past the end of {position.file} "
            f"({sizes[position.file]} bytes): the binlog was reset or belongs to another "
            f"server. {RETENTION_ADVICE}"
        )
