"""`wpcdc check` as a user runs it: the real CLI against real servers and a real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from tests.support.streaming import wpcdc_env
from tests.support.wordpress import install_wordpress
from wpcdc.core.errors import EXIT_OK, EXIT_PREFLIGHT
from wpcdc.core.facts import WORDPRESS_TABLES
from wpcdc.local.ports import free_port
from wpcdc.local.wordpress import WordPressSite

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mariadb", "mysql")]

# The shared test servers run with server_id 1; wpcdc must register as another.
WPCDC_SERVER_ID = "5400"


def env_for(
    server: MysqlEndpoint,
    *,
    database: str,
    bootstrap_servers: str,
    topic: str,
    **overrides: str,
) -> dict[str, str]:
    env = wpcdc_env(server, database, bootstrap_servers, topic, Path(tempfile.gettempdir()))
    # These tests check what `wpcdc check` says about the default partition count.
    del env["WPCDC_KAFKA__PARTITIONS"]
    env.update(
        {
            "WPCDC_MYSQL__SERVER_ID": WPCDC_SERVER_ID,
            "WPCDC_MYSQL__CONNECT_TIMEOUT": "10",
            "WPCDC_KAFKA__REQUEST_TIMEOUT": "10",
        }
    )
    env.update(overrides)
    return env


def run_check(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wpcdc", "check", *args],
        env=env,
        cwd=cwd,  # no stray wpcdc.toml
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_json(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Exit code, the checks by name, and the raw output (for failure messages)."""
    done = run_check(env, cwd, "--json")
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    document = orjson.loads(done.stdout)
    assert document["summary"]["exit_code"] == done.returncode, output
    return done.returncode, {c["name"]: c for c in document["checks"]}, output


def test_passes_on_a_configured_server_with_wordpress(
    mysql_server: MysqlEndpoint,
    wordpress: WordPressSite,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    env = env_for(
        mysql_server,
        database=wordpress.database,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topic=kafka_topic,
        WPCDC_MYSQL__TABLE_PREFIX=wordpress.table_prefix,
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_OK, output
    assert checks["wordpress_tables"]["status"] == "PASS", output
    assert "main site (blog 1)" in checks["wordpress_tables"]["detail"]
    assert checks["topic"]["status"] == "PASS"
    assert "will be created with 6 partitions, replication factor 1" in checks["topic"]["detail"]
    assert checks["binlog_position"]["status"] == "INFO"
    assert ":" in checks["binlog_position"]["detail"]

    # The human-readable form of the same run.
    table = run_check(env, tmp_path)
    assert table.returncode == EXIT_OK, table.stdout + table.stderr
    assert table.stdout.splitlines()[0].split() == ["STATUS", "CHECK", "DETAIL"]
    assert "Preflight passed" in table.stdout


def test_fails_when_the_binary_log_is_off(
    mysql_server_factory: ServerFactory, kafka_broker: KafkaEndpoint, tmp_path: Path
) -> None:
    server = mysql_server_factory(binlog=False)
    env = env_for(
        server, database="mysql", bootstrap_servers=kafka_broker.bootstrap_servers, topic="t"
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks["log_bin"]["status"] == "FAIL", output
    assert "log_bin = mysql-bin" in checks["log_bin"]["fix"]

    table = run_check(env, tmp_path)
    assert table.returncode == EXIT_PREFLIGHT
    assert "fix for log_bin:" in table.stdout


@pytest.mark.parametrize(
    ("extra_args", "name", "wanted"),
    [
        (["--binlog-format=STATEMENT"], "binlog_format", "SET GLOBAL binlog_format = 'ROW';"),
        (["--binlog-row-image=MINIMAL"], "binlog_row_image", "binlog_row_image = FULL"),
    ],
)
def test_fails_on_a_binlog_setting_and_names_it(
    mysql_server_factory: ServerFactory,
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    extra_args: list[str],
    name: str,
    wanted: str,
) -> None:
    server = mysql_server_factory(extra_args=extra_args)
    env = env_for(
        server, database="mysql", bootstrap_servers=kafka_broker.bootstrap_servers, topic="t"
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks[name]["status"] == "FAIL", output
    assert checks[name]["required"] is True
    assert name in checks[name]["detail"]
    assert wanted in checks[name]["fix"]
    assert checks["log_bin"]["status"] == "PASS"


@pytest.fixture
def select_only_user(mysql_server: MysqlEndpoint, wordpress: WordPressSite) -> Iterator[str]:
    """An account with SELECT on the WordPress database and nothing else."""
    name = f"wpcdc_ro_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'ro-password-1'")
    try:
        mysql_server.execute(f"GRANT SELECT ON `{wordpress.database}`.* TO '{name}'@'%'")
        yield name
    finally:
        mysql_server.execute(f"DROP USER IF EXISTS '{name}'@'%'")


def test_fails_for_a_user_without_replication_slave(
    mysql_server: MysqlEndpoint,
    wordpress: WordPressSite,
    select_only_user: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    env = env_for(
        mysql_server,
        database=wordpress.database,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topic=kafka_topic,
        WPCDC_MYSQL__USER=select_only_user,
        WPCDC_MYSQL__PASSWORD="ro-password-1",
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    privileges = checks["privileges"]
    assert privileges["status"] == "FAIL", output
    assert "REPLICATION SLAVE" in privileges["detail"]
    assert (
        f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{select_only_user}'@'%';"
        in privileges["fix"]
    )
    # SELECT on the database is enough for the tables.
    assert "SELECT denied" not in privileges["detail"]
    assert checks["wordpress_tables"]["status"] == "PASS", output
    # Listing replicas needs a privilege this account lacks: a warning, not a failure.
    assert checks["replica_server_ids"]["status"] in ("WARN", "PASS")
    assert "ro-password-1" not in output


def test_wrong_password_fails_the_connection_with_a_message(
    mysql_server: MysqlEndpoint, kafka_broker: KafkaEndpoint, tmp_path: Path
) -> None:
    env = env_for(
        mysql_server,
        database="mysql",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topic="t",
        WPCDC_MYSQL__PASSWORD="definitely-wrong-pw",
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks["connection"]["status"] == "FAIL"
    assert "Access denied" in checks["connection"]["detail"]
    assert "WPCDC_MYSQL__PASSWORD" in checks["connection"]["fix"]
    assert checks["log_bin"]["status"] == "SKIP"
    assert checks["log_bin"]["detail"] == "skipped: needs a database connection"
    assert "Traceback" not in output
    assert "definitely-wrong-pw" not in output


def test_unreachable_broker_fails_the_broker_check(
    mysql_server: MysqlEndpoint, wordpress: WordPressSite, tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    env = env_for(
        mysql_server,
        database=wordpress.database,
        bootstrap_servers=closed,
        topic="t",
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks["broker"]["status"] == "FAIL", output
    assert closed in checks["broker"]["detail"]
    assert "WPCDC_KAFKA__BOOTSTRAP_SERVERS" in checks["broker"]["fix"]
    assert checks["topic"]["status"] == "SKIP"
    # The database side is unaffected.
    assert checks["log_bin"]["status"] == "PASS"
    assert "Traceback" not in output


def test_topic_absent_without_create_fails_then_present_passes(
    mysql_server: MysqlEndpoint,
    wordpress: WordPressSite,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    env = env_for(
        mysql_server,
        database=wordpress.database,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topic=kafka_topic,
        WPCDC_KAFKA__CREATE_TOPIC="false",
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks["topic"]["status"] == "FAIL", output
    assert f"--create --topic {kafka_topic} --partitions 6" in checks["topic"]["fix"]

    asyncio.run(create_topic(kafka_broker.bootstrap_servers, kafka_topic, partitions=3))
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_OK, output
    assert "3 partitions, replication factor 1" in checks["topic"]["detail"]


async def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


def test_finds_multisite_blogs_and_hints_at_the_right_prefix(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    site = install_wordpress(mysql_server, mysql_database, table_prefix="blog_")
    # Blog 2 complete, blog 3 half made: the table names a multisite network uses.
    # Without strict mode, as WordPress creates them: MySQL's default mode refuses
    # their zero-date defaults.
    for suffix in (*WORDPRESS_TABLES, "options"):
        mysql_server.execute(
            f"CREATE TABLE blog_2_{suffix} LIKE blog_{suffix}", site.database, sql_mode=""
        )
    mysql_server.execute("CREATE TABLE blog_3_posts LIKE blog_posts", site.database, sql_mode="")
    env = env_for(
        mysql_server,
        database=site.database,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topic=kafka_topic,
    )
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_PREFLIGHT, output
    assert checks["wordpress_tables"]["status"] == "FAIL"
    assert "missing wp_posts" in checks["wordpress_tables"]["detail"]
    assert "with prefix blog_." in checks["wordpress_tables"]["fix"]

    env["WPCDC_MYSQL__TABLE_PREFIX"] = "blog_"
    code, checks, output = run_json(env, tmp_path)
    assert code == EXIT_OK, output
    tables = checks["wordpress_tables"]
    assert tables["status"] == "WARN"
    assert "main site (blog 1), multisite blogs 2" in tables["detail"]
    assert "blog 3 lacks blog_3_postmeta" in tables["detail"]
    assert "SELECT on 13 of 13 WordPress tables" in checks["privileges"]["detail"]


def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WPCDC_")}
    env["WPCDC_MYSQL__PORT"] = "not-a-port"
    done = run_check(env, tmp_path, "--json")
    assert done.returncode == 2
    assert "mysql.port" in done.stderr
