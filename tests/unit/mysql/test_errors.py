"""Which server errors met while reading the binlog are fatal (issue 10: two streamers
with one server_id took turns on the binlog forever)."""

from __future__ import annotations

import pymysql

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.errors import EXIT_PREFLIGHT, PositionLost, PreflightFailed
from wpcdc.core.positions import Position
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.errors import is_replica_id_taken

MARIADB_SAME_ID = pymysql.err.OperationalError(
    4052, "A slave with the same server_uuid/server_id is already connected"
)
MYSQL_SAME_ID = pymysql.err.OperationalError(
    1236,
    "A replica with the same server_uuid/server_id as this replica has connected to the source",
)
PURGED = pymysql.err.OperationalError(1236, "Could not find first log file name in binary log")


def test_mariadb_and_mysql_say_another_replica_took_the_id() -> None:
    assert is_replica_id_taken(MARIADB_SAME_ID)
    assert is_replica_id_taken(MYSQL_SAME_ID)
    assert not is_replica_id_taken(PURGED)
    assert not is_replica_id_taken(pymysql.err.OperationalError(2013, "Lost connection"))


def test_the_binlog_source_stops_with_exit_3_naming_mysql_server_id() -> None:
    source = BinlogSource(mysql=MysqlSettings(server_id=4242), start=Position("binlog.000001", 4))
    for exc in (MARIADB_SAME_ID, MYSQL_SAME_ID):
        failure = source._failure(exc, Position("binlog.000001", 4))
        assert isinstance(failure, PreflightFailed) and failure.exit_code == EXIT_PREFLIGHT
        assert "mysql.server_id 4242" in str(failure)
    assert isinstance(source._failure(PURGED, Position("binlog.000001", 4)), PositionLost)
