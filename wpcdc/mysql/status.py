"""Where the server's binlog stands: its end now, and whether a saved position still exists.

This module owns the two questions ``wpcdc run`` asks before it streams:
:func:`current_position` (where a fresh start begins, with the GTID state there)
and :func:`check_position_available` (whether the binlog still holds what the
checkpoint and the acknowledged events were made from: not purged, not cut
short, not reset; so that the loss is reported before streaming instead of as a
dump error or as old event ids reused for other content; promise "loud
failure", docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.errors import PositionLost, PreflightFailed, ServerMisconfigured, WpcdcError
from wpcdc.core.gtid import GtidState
from wpcdc.core.positions import Coordinate, Position, file_index
from wpcdc.mysql.connection import MysqlConnection, connect, dict_rows, server_flavor
from wpcdc.mysql.errors import PARSE_ERROR, error_code, error_text, is_access_denied

# What to do when the binlog at a saved position is gone. `--force`: a plain
# `wpcdc snapshot` refuses while the checkpoint exists.
RETENTION_ADVICE = (
    "Run `wpcdc snapshot --force` to load the current state and stream on from it (or "
    "reset the checkpoint to accept the gap), and raise the binlog retention "
    "(binlog_expire_logs_seconds, or expire_logs_days on MariaDB) above the longest time "
    "wpcdc may be stopped."
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


# What to do when the server lost transactions wpcdc had read (its binlog was cut
# short by a crash, or reset): their GTIDs and positions will be used again.
LOST_TRANSACTIONS_ADVICE = (
    "Events already on the topic were made from transactions the server no longer "
    "has, and it will reuse their GTIDs and positions for other transactions, so "
    "replaying would send other content under ids consumers already have. Run "
    "`wpcdc snapshot --force` to load the current state and stream on from it; to keep "
    "a crash from losing committed transactions, set sync_binlog = 1 and "
    "innodb_flush_log_at_trx_commit = 1."
)


def check_position_available(
    mysql: MysqlSettings, position: Position, *, acknowledged: Coordinate | None = None
) -> None:
    """Raise PositionLost unless the server still has the binlog at ``position``
    and up to ``acknowledged`` (the furthest row change acknowledged events hold,
    when past ``position``), with a GTID state that includes ``position``'s."""
    with contextlib.closing(_open(mysql)) as connection:
        try:
            rows = dict_rows(connection, "SHOW BINARY LOGS")
            server_gtids = _gtid_state(connection) if position.gtid_set else None
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
    if server_gtids is not None:
        missing = GtidState(server_gtids).missing(GtidState(position.gtid_set))
        if missing:
            raise PositionLost(
                f"the server's GTID state ({server_gtids or 'empty'}) lacks {', '.join(missing)}, "
                f"which the checkpoint at {position} had read: the binlog lost those "
                f"transactions (a crash cut it short, or it was reset). {LOST_TRANSACTIONS_ADVICE}"
            )
    if acknowledged is not None and (acknowledged.file_index, acknowledged.pos) > (
        file_index(position.file),
        position.pos,
    ):
        file = _sibling(position.file, acknowledged.file_index)
        if file not in sizes or acknowledged.pos > sizes[file]:
            raise PositionLost(
                f"acknowledged events hold row changes at {file}:{acknowledged.pos}, but the "
                f"server's binlog ends before ({file}: {sizes.get(file, 'missing')}): it lost "
                f"transactions wpcdc had read (a crash cut it short). {LOST_TRANSACTIONS_ADVICE}"
            )


def _gtid_state(connection: MysqlConnection) -> str:
    """The server's executed GTID state: MariaDB's last GTID per domain, MySQL's set."""
    if server_flavor(connection) == "mariadb":
        (row,) = dict_rows(connection, "SELECT @@GLOBAL.gtid_binlog_pos AS g")
    else:
        (row,) = dict_rows(connection, "SELECT @@GLOBAL.gtid_executed AS g")
    return str(row["g"] or "").replace("\n", "")


def _sibling(file: str, index: int) -> str:
    """The name of binlog file number ``index`` beside ``file`` (same base, same width)."""
    base, _, suffix = file.rpartition(".")
    return f"{base}.{index:0{len(suffix)}d}"
