"""Fixtures shared by every test: a clean WPCDC_* environment and the real servers.

The servers start lazily: a unit-test run starts none of them. See
tests/support/infra.py for how each one is chosen. The servers are shared by the
session; each test gets its own database, topic and `wpcdc run`. ``stack`` and
``wp_stack`` hand a test all of these as one value (tests/support/stack.py).
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
    KAFKA_VAR,
    MYSQL_URL_VAR,
    InfraMissing,
    KafkaEndpoint,
    MysqlEndpoint,
    ServerFactory,
    start_kafka,
    start_mysql,
)
from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Streamer, wpcdc_env
from tests.support.wordpress import install_wordpress
from wpcdc.local.wordpress import WordPressSite

# Only these WPCDC_* variables survive into tests: they choose the infrastructure.
_INFRA_VARS = {MYSQL_URL_VAR, KAFKA_VAR}


@pytest.fixture(autouse=True)
def _clean_wpcdc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test sees only the WPCDC_* settings it sets itself."""
    for name in list(os.environ):
        if name.startswith("WPCDC_") and name not in _INFRA_VARS:
            monkeypatch.delenv(name)


def _fail(what: str, exc: Exception) -> None:
    pytest.fail(f"{what} is needed for this test and could not be provided: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MysqlEndpoint]:
    """The shared MySQL/MariaDB server with a ROW/FULL/FULL binlog."""
    try:
        endpoint = start_mysql(tmp_path_factory.mktemp("mysql"))
    except InfraMissing as exc:
        _fail("MySQL/MariaDB with a binary log", exc)
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def mysql_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Starts throwaway servers (odd settings, restarts); all stopped at session end."""
    factory = ServerFactory(base=tmp_path_factory.mktemp("mysql-extra"))
    yield factory
    factory.stop_all()


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


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses."""
    return f"wpcdc-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def wordpress(mysql_server: MysqlEndpoint, mysql_database: str) -> WordPressSite:
    """A real WordPress installed into this test's database."""
    try:
        return install_wordpress(mysql_server, mysql_database)
    except InfraMissing as exc:
        _fail("WordPress (Debian's wordpress, php-cli, php-mysql)", exc)
        raise  # unreachable: pytest.fail raises


def pytest_report_header(config: pytest.Config) -> list[str]:
    chosen = [
        f"{MYSQL_URL_VAR}={'set' if os.environ.get(MYSQL_URL_VAR) else 'unset'}",
        f"{KAFKA_VAR}={'set' if os.environ.get(KAFKA_VAR) else 'unset'}",
    ]
    return [
        "wpcdc infrastructure: " + ", ".join(chosen) + " (unset: Docker if it answers, else local)"
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
