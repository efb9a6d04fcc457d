"""The lead of ``ha.enabled``: a MySQL user-level lock on a dedicated connection.

This module owns the SQL side of standby failover. ``GET_LOCK(name, timeout)``
needs no grant and works the same on MySQL and MariaDB: the server hands the
lock to one connection at a time and frees it when that connection ends, so
"holding the lock" is "streaming" (the runtime side is
:mod:`wpcdc.runtime.leader`).

How the lock is freed when its holder goes away:

* the process dies (kill -9, OOM) or the connection is killed (``KILL``): the
  server sees the connection close and frees the lock at once; a standby
  waiting in ``GET_LOCK`` gets it in the same instant.
* the leader is cut off (network partition, frozen host): the server notices
  only when the connection's idle wait runs out. The session's
  ``wait_timeout`` (and ``net_read_timeout``/``net_write_timeout``) is set to
  ``lease_seconds`` on this connection, which is never idle longer than the
  leader's check interval while all is well, so a cut-off leader's lock is
  freed within ``lease_seconds``. TCP keepalive with short intervals on the
  client side makes a half-open connection fail on this side too.

Every call blocks: the runtime runs them in threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from typing import Final

from wpcdc.config.settings import MysqlSettings
from wpcdc.mysql.connection import MysqlConnection, connect, dict_rows
from wpcdc.mysql.errors import MysqlError

# TCP keepalive on the lock connection: first probe after this many idle
# seconds, then every KEEPALIVE_INTERVAL, dropped after KEEPALIVE_COUNT misses.
KEEPALIVE_IDLE: Final = 2
KEEPALIVE_INTERVAL: Final = 1
KEEPALIVE_COUNT: Final = 3


class LockError(Exception):
    """The server could not take the lock (GET_LOCK returned NULL)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the lock: the server's connection id, and where that connection
    comes from when the server shows it (``PROCESSLIST``)."""

    connection_id: int
    host: str | None = None

    def __str__(self) -> str:
        where = f" from {self.host}" if self.host else ""
        return f"connection {self.connection_id}{where}"


class ServerLock:
    """The named lock on a connection of its own. ``timeout`` bounds every wait
    for the server outside GET_LOCK's own wait."""

    def __init__(
        self, settings: MysqlSettings, name: str, *, lease_seconds: int, timeout: float
    ) -> None:
        self._settings = settings
        self.name = name
        self._lease_seconds = lease_seconds
        self._timeout = timeout
        self._connection: MysqlConnection | None = None
        self.connection_id: int | None = None
        # The leader's watcher thread and the checkpoint saves both confirm.
        self._using = threading.Lock()

    def open(self) -> None:
        """Connect and set the session's timeouts. Raises pymysql errors and OSError."""
        self.close()
        connection = connect(self._settings, use_database=False, read_timeout=self._timeout)
        try:
            _keepalive(connection)
            lease = int(self._lease_seconds)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION wait_timeout = %s, net_read_timeout = %s, net_write_timeout = %s",
                    (lease, lease, lease),
                )
                cursor.execute("SELECT CONNECTION_ID()")
                row = cursor.fetchone()
        except BaseException:
            with contextlib.suppress(Exception):
                connection.close()
            raise
        assert row is not None
        self._connection = connection
        self.connection_id = int(row[0])

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    def acquire(self, wait: float) -> bool:
        """Wait up to ``wait`` seconds for the lock; True once this connection holds it."""
        value = self._scalar("SELECT GET_LOCK(%s, %s)", (self.name, wait), wait + self._timeout)
        if value is None:
            raise LockError(f"the server could not take lock {self.name!r}")
        return int(value) == 1

    def confirm(self) -> bool:
        """True while this connection holds the lock. Raises pymysql errors when the
        connection is lost (the lock is then lost too)."""
        value = self._scalar(
            "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,), self._timeout
        )
        return value is not None and int(value) == 1

    def holder(self) -> Holder | None:
        """Who holds the lock now (None: nobody)."""
        value = self._scalar("SELECT IS_USED_LOCK(%s)", (self.name,), self._timeout)
        if value is None:
            return None
        connection_id = int(value)
        host = None
        # Another account's connections are hidden without PROCESS: then no host.
        with contextlib.suppress(MysqlError):
            rows = dict_rows(
                self._open(),
                "SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE ID = %s",
                (connection_id,),
            )
            if rows:
                host = str(rows[0]["host"])
        return Holder(connection_id, host)

    def release(self) -> None:
        """Give the lock up (a standby gets it at once); the connection stays open."""
        self._scalar("SELECT RELEASE_LOCK(%s)", (self.name,), self._timeout)

    def close(self) -> None:
        """Close the connection, which frees the lock if it is held."""
        connection, self._connection = self._connection, None
        self.connection_id = None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def _open(self) -> MysqlConnection:
        if self._connection is None:
            raise MysqlError(2006, "the lock connection is closed")
        return self._connection

    def _scalar(self, sql: str, args: tuple[object, ...], timeout: float) -> int | None:
        with self._using:
            return self._scalar_alone(sql, args, timeout)

    def _scalar_alone(self, sql: str, args: tuple[object, ...], timeout: float) -> int | None:
        connection = self._open()
        # PyMySQL applies _read_timeout to the socket before each read: how long
        # this one statement may take (GET_LOCK waits on the server side).
        connection._read_timeout = timeout  # type: ignore[attr-defined]
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                row = cursor.fetchone()
        except BaseException:
            # A failed statement leaves the connection unusable, and a lock held on
            # it unknowable: close it, which frees the lock on the server if it lives.
            self.close()
            raise
        return None if row is None or row[0] is None else int(row[0])


def _keepalive(connection: MysqlConnection) -> None:
    """Short TCP keepalive on the connection's socket (PyMySQL turns keepalive on
    with the system's two-hour default)."""
    sock = getattr(connection, "_sock", None)
    if not isinstance(sock, socket.socket) or sock.family == socket.AF_UNIX:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
