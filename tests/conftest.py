"""Fixtures shared by every test: a clean WPCDC_* environment and the real servers.

The servers start lazily: a unit-test run starts none of them. See
tests/support/infra.py for how each one is chosen. The servers are shared by the
session; each test gets its own database, topic and `wpcdc run`. ``stack`` and
``wp_stack`` hand a test all of these as one value (tests/support/stack.py).

A test runs on MariaDB (or ``WPCDC_TEST_FLAVOR``) and Debian's WordPress (6.1)
unless it asks for more:
``@pytest.mark.flavors("mariadb", "mysql")`` runs it once per server flavor,
``@pytest.mark.wordpress_releases("6.1", "7")`` once per WordPress release (7:
from the Debian sid tree). The shared server of each flavor starts on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import (
    FLAVOR_VAR,
    FLAVORS,
    KAFKA_VAR,
    MYSQL_URL_VAR,
    Flavor,
    InfraMissing,
    KafkaEndpoint,
    MysqlEndpoint,
    ServerFactory,
    SharedServers,
    default_flavor,
    start_kafka,
    start_transactional_kafka,
)
from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Streamer, wpcdc_env
from tests.support.wordpress import (
    DEFAULT_RELEASE,
    RELEASES,
    install_wordpress,
    wordpress_root,
    wordpress_summary,
)
from wpcdc.local.wordpress import WordPressSite

# Only these WPCDC_* variables survive into tests: they choose the infrastructure.
_INFRA_VARS = {MYSQL_URL_VAR, KAFKA_VAR, FLAVOR_VAR}


@pytest.fixture(autouse=True)
def _clean_wpcdc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test sees only the WPCDC_* settings it sets itself."""
    for name in list(os.environ):
        if name.startswith("WPCDC_") and name not in _INFRA_VARS:
            monkeypatch.delenv(name)


def _fail(what: str, exc: Exception) -> None:
    pytest.fail(f"{what} is needed for this test and could not be provided: {exc}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The ``flavors`` and ``wordpress_releases`` markers parametrize the test."""
    for fixture, marker_name, known in (
        ("flavor", "flavors", FLAVORS),
        ("wordpress_release", "wordpress_releases", RELEASES),
    ):
        marker = metafunc.definition.get_closest_marker(marker_name)
        if marker is not None and fixture in metafunc.fixturenames:
            unknown = set(marker.args) - set(known)
            if unknown:
                raise pytest.UsageError(
                    f"{metafunc.definition.nodeid}: {marker_name}{sorted(unknown)} unknown; "
                    f"known: {', '.join(known)}"
                )
            metafunc.parametrize(fixture, marker.args, indirect=True)


@pytest.fixture
def flavor(request: pytest.FixtureRequest) -> Flavor:
    """The server flavor this test runs on (``flavors`` marker; else WPCDC_TEST_FLAVOR,
    MariaDB by default)."""
    if hasattr(request, "param"):
        return request.param  # type: ignore[no-any-return]
    try:
        return default_flavor()
    except InfraMissing as exc:
        _fail("A known server flavor", exc)
        raise  # unreachable: pytest.fail raises


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServers]:
    """One server per flavor (and set of extra settings), started on first use."""
    servers = SharedServers(base=tmp_path_factory.mktemp("mysql"))
    yield servers
    servers.stop_all()


@pytest.fixture
def mysql_server(flavor: Flavor, shared_servers: SharedServers) -> MysqlEndpoint:
    """The session's shared server of this test's flavor, with a ROW/FULL/FULL binlog."""
    try:
        return shared_servers.get(flavor)
    except InfraMissing as exc:
        _fail(f"{flavor} with a binary log", exc)
        raise  # unreachable: pytest.fail raises


@pytest.fixture(scope="session")
def _server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(base=tmp_path_factory.mktemp("mysql-extra"))
    yield factory
    factory.stop_all()


@pytest.fixture
def mysql_server_factory(flavor: Flavor, _server_factory: ServerFactory) -> ServerFactory:
    """Starts throwaway servers of this test's flavor (odd settings, restarts); all
    stopped at session end."""
    return _server_factory.of_flavor(flavor)


@pytest.fixture
def mysql_database(mysql_server: MysqlEndpoint) -> Iterator[str]:
    """A fresh empty database on the shared server, dropped after the test."""
    name = f"wpcdc_test_{uuid.uuid4().hex[:12]}"
    mysql_server.execute(
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    yield name
    with contextlib.suppress(Exception):
        mysql_server.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaEndpoint]:
    """The shared Kafka-compatible broker."""
    try:
        endpoint = start_kafka(tmp_path_factory.mktemp("broker"))
    except InfraMissing as exc:
        _fail("A Kafka-compatible broker", exc)
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def transactional_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaEndpoint]:
    """The shared broker with transactions (kafka.exactly_once tests)."""
    try:
        endpoint = start_transactional_kafka(tmp_path_factory.mktemp("noida"))
    except InfraMissing as exc:
        _fail("A Kafka-compatible broker with transactions", exc)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses."""
    return f"wpcdc-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def wordpress_release(request: pytest.FixtureRequest) -> str:
    """The WordPress release this test installs (``wordpress_releases`` marker; 6.1 by
    default)."""
    return getattr(request, "param", DEFAULT_RELEASE)  # type: ignore[no-any-return]


@pytest.fixture
def wordpress(
    mysql_server: MysqlEndpoint, mysql_database: str, wordpress_release: str
) -> WordPressSite:
    """A real WordPress installed into this test's database."""
    try:
        return install_wordpress(
            mysql_server, mysql_database, root=wordpress_root(wordpress_release)
        )
    except InfraMissing as exc:
        _fail(f"WordPress {wordpress_release} with PHP", exc)
        raise  # unreachable: pytest.fail raises


def pytest_report_header(config: pytest.Config) -> list[str]:
    chosen = [
        f"{MYSQL_URL_VAR}={'set' if os.environ.get(MYSQL_URL_VAR) else 'unset'}",
        f"{KAFKA_VAR}={'set' if os.environ.get(KAFKA_VAR) else 'unset'}",
        f"{FLAVOR_VAR}={os.environ.get(FLAVOR_VAR) or 'unset'}",
    ]
    return [
        "wpcdc infrastructure: "
        + ", ".join(chosen)
        + " (unset: private servers, see tests/support/infra.py)",
        "wpcdc WordPress: " + wordpress_summary(),
    ]


@pytest.fixture
def streamer(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> Iterator[Streamer]:
    """A `wpcdc run` process for this test's database and topic (not started yet)."""
    env = wpcdc_env(
        mysql_server, mysql_database, kafka_broker.bootstrap_servers, kafka_topic, tmp_path
    )
    process = Streamer(env=env, workdir=tmp_path)
    yield process
    process.close()


@pytest.fixture
def stack(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
    streamer: Streamer,
) -> Stack:
    """This test's database and topic on the shared servers, its working directory and
    its `wpcdc run` (not started); each part is torn down by its own fixture."""
    return Stack(
        server=mysql_server,
        database=mysql_database,
        broker=kafka_broker,
        topic=kafka_topic,
        workdir=tmp_path,
        streamer=streamer,
    )


@pytest.fixture
def wp_stack(stack: Stack, wordpress: WordPressSite) -> WordPressStack:
    """The stack with a real WordPress installed in its database."""
    parts = {f.name: getattr(stack, f.name) for f in dataclasses.fields(stack)}
    return WordPressStack(**parts, wordpress=wordpress)
