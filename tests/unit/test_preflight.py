"""Preflight rules, from hand-made server and broker facts (MariaDB and MySQL)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from wpcdc.config.preflight import evaluate
from wpcdc.config.preflight_support import SKIPPED_NO_BROKER, SKIPPED_NO_DATABASE
from wpcdc.config.settings import Settings
from wpcdc.core.facts import (
    WORDPRESS_TABLES,
    BinlogPosition,
    BrokerFacts,
    CheckResult,
    ReplicaHost,
    ServerFacts,
    ServerUnreachable,
    Status,
    TableProbe,
    TopicFacts,
    detect_flavor,
    passed,
    wordpress_layout,
)

MAIN_TABLES = [f"wp_{suffix}" for suffix in WORDPRESS_TABLES]

MARIADB_VARIABLES = {
    "log_bin": "ON",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
    "log_bin_compress": "OFF",
    "server_id": "1",
    "binlog_expire_logs_seconds": "0",
    "expire_logs_days": "0.000000",
    "gtid_binlog_pos": "0-1-42",
    "gtid_strict_mode": "OFF",
}

MYSQL_VARIABLES = {
    "log_bin": "ON",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
    "binlog_transaction_compression": "OFF",
    "server_id": "1",
    "binlog_expire_logs_seconds": "2592000",
    "binlog_expire_logs_auto_purge": "ON",
    "gtid_mode": "ON",
}


def server(
    flavor: str = "mariadb", variables: dict[str, str] | None = None, **changes: Any
) -> ServerFacts:
    """A correctly configured server; ``variables`` are merged over the defaults."""
    base = MARIADB_VARIABLES if flavor == "mariadb" else MYSQL_VARIABLES
    facts = ServerFacts(
        version="10.11.6-MariaDB-log" if flavor == "mariadb" else "8.4.2",
        version_comment="Debian 12" if flavor == "mariadb" else "MySQL Community Server - GPL",
        flavor="mariadb" if flavor == "mariadb" else "mysql",
        current_user="wpcdc@%",
        tls_version="",
        variables={**base, **(variables or {})},
        global_privileges=frozenset(
            {"REPLICATION SLAVE", "BINLOG MONITOR" if flavor == "mariadb" else "REPLICATION CLIENT"}
        ),
        tables=frozenset(MAIN_TABLES),
        table_probes={t: TableProbe("ok") for t in MAIN_TABLES},
        replica_hosts=(),
        position=BinlogPosition("binlog.000003", 1234),
    )
    return dataclasses.replace(facts, **changes)


def broker(**changes: Any) -> BrokerFacts:
    facts = BrokerFacts(
        reachable=True,
        broker_count=1,
        cluster_id="c1",
        topic=TopicFacts(partitions=6, replication_factor=1),
    )
    return dataclasses.replace(facts, **changes)


def settings(**sections: Any) -> Settings:
    return Settings(**sections)


def check(
    name: str,
    server_facts: ServerFacts | ServerUnreachable | None = None,
    broker_facts: BrokerFacts | None = None,
    config: Settings | None = None,
) -> CheckResult:
    results = evaluate(
        server_facts if server_facts is not None else server(),
        broker_facts if broker_facts is not None else broker(),
        config if config is not None else settings(),
    )
    (result,) = [r for r in results if r.name == name]
    return result


# ------------------------------------------------------------------ overall


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_a_well_configured_server_and_broker_pass(flavor: str) -> None:
    results = evaluate(server(flavor), broker(), settings())
    assert passed(results)
    assert {r.status for r in results} <= {Status.PASS, Status.INFO}
    assert [r.name for r in results] == [
        "connection",
        "log_bin",
        "binlog_format",
        "binlog_row_image",
        "binlog_row_metadata",
        "binlog_compression",
        "server_id",
        "replica_server_ids",
        "privileges",
        "wordpress_tables",
        "binlog_retention",
        "gtid",
        "binlog_position",
        "broker",
        "topic",
    ]


def test_flavor_comes_from_the_version_even_when_the_comment_is_a_distribution() -> None:
    assert detect_flavor("10.11.6-MariaDB-0+deb12u1-log", "Debian 12") == "mariadb"
    assert detect_flavor("8.0.36", "MySQL Community Server - GPL") == "mysql"
    assert detect_flavor("5.5.5-10.6.12", "mariadb.org binary distribution") == "mariadb"


# --------------------------------------------------------------- connection


def test_unreachable_server_fails_the_connection_and_skips_the_server_checks() -> None:
    results = evaluate(
        ServerUnreachable("(2003) Can't connect to MySQL server on '127.0.0.1'", 2003),
        broker(),
        settings(),
    )
    assert results[0].name == "connection"
    assert results[0].status is Status.FAIL
    assert "Can't connect" in results[0].detail
    assert results[0].fix is not None and "WPCDC_MYSQL__PORT" in results[0].fix
    skipped = [r for r in results if r.status is Status.SKIP]
    assert len(skipped) == 12
    assert all(r.detail == SKIPPED_NO_DATABASE for r in skipped)
    assert not passed(results)
    # The broker is still checked.
    assert check("broker", ServerUnreachable("x", 2003)).status is Status.PASS


def test_access_denied_names_user_and_password_settings() -> None:
    result = check(
        "connection",
        ServerUnreachable("(1045) Access denied for user 'wpcdc'@'10.0.0.2'", 1045),
        config=settings(mysql={"password": "s3cret-value"}),
    )
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "mysql.password (WPCDC_MYSQL__PASSWORD)" in result.fix
    assert "CREATE USER 'wpcdc'@'%'" in result.fix
    assert "s3cret-value" not in result.detail + result.fix


def test_a_failed_tls_handshake_points_at_the_tls_settings() -> None:
    message = "(2003) Can't connect to MySQL server ([SSL: CERTIFICATE_VERIFY_FAILED] ...)"
    result = check("connection", ServerUnreachable(message, 2003))
    assert result.fix is not None
    assert "mysql.tls.ca (WPCDC_MYSQL__TLS__CA)" in result.fix
    assert "mysql.port" not in result.fix


def test_connection_detail_names_product_account_and_tls() -> None:
    result = check("connection", server(tls_version="TLSv1.3"))
    assert result.detail == "MariaDB 10.11.6-MariaDB-log at 127.0.0.1:3306 as wpcdc@% (TLS TLSv1.3)"


# ------------------------------------------------------------ binlog settings


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_binary_log_off_fails_with_the_mycnf_line(flavor: str) -> None:
    result = check("log_bin", server(flavor, {"log_bin": "OFF"}))
    assert result.status is Status.FAIL and result.required
    assert result.fix is not None
    assert "[mysqld]" in result.fix
    assert "log_bin = mysql-bin" in result.fix
    assert "restart" in result.fix
    assert ("skip-log-bin" in result.fix) == (flavor == "mysql")


@pytest.mark.parametrize("value", ["STATEMENT", "MIXED"])
def test_binlog_format_must_be_row(value: str) -> None:
    result = check("binlog_format", server(variables={"binlog_format": value}))
    assert result.status is Status.FAIL
    assert value in result.detail
    assert result.fix is not None
    assert "binlog_format = ROW" in result.fix
    assert "SET GLOBAL binlog_format = 'ROW';" in result.fix


@pytest.mark.parametrize("value", ["MINIMAL", "NOBLOB"])
def test_binlog_row_image_must_be_full(value: str) -> None:
    result = check("binlog_row_image", server("mysql", {"binlog_row_image": value}))
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "binlog_row_image = FULL" in result.fix
    assert "SET GLOBAL binlog_row_image = 'FULL';" in result.fix


def test_binlog_row_metadata_minimal_fails() -> None:
    result = check("binlog_row_metadata", server(variables={"binlog_row_metadata": "MINIMAL"}))
    assert result.status is Status.FAIL
    assert "column names" in result.detail
    assert result.fix is not None
    assert "SET GLOBAL binlog_row_metadata = 'FULL';" in result.fix


def test_a_server_without_binlog_row_metadata_must_be_upgraded() -> None:
    facts = server("mysql")
    facts = dataclasses.replace(
        facts, variables={k: v for k, v in facts.variables.items() if k != "binlog_row_metadata"}
    )
    result = check("binlog_row_metadata", facts)
    assert result.status is Status.FAIL
    assert result.fix is not None and "MySQL 8.0.14+ or MariaDB 10.5+" in result.fix


def test_mysql_transaction_compression_fails() -> None:
    result = check("binlog_compression", server("mysql", {"binlog_transaction_compression": "ON"}))
    assert result.status is Status.FAIL
    assert "binlog_transaction_compression=ON" in result.detail
    assert result.fix is not None
    assert "binlog_transaction_compression = OFF" in result.fix
    assert "SET GLOBAL binlog_transaction_compression = OFF;" in result.fix


def test_mariadb_log_bin_compress_fails() -> None:
    result = check("binlog_compression", server(variables={"log_bin_compress": "ON"}))
    assert result.status is Status.FAIL
    assert result.fix is not None and "SET GLOBAL log_bin_compress = OFF;" in result.fix


def test_mysql_before_compression_existed_passes() -> None:
    facts = server("mysql")
    variables = {k: v for k, v in facts.variables.items() if k != "binlog_transaction_compression"}
    result = check("binlog_compression", dataclasses.replace(facts, variables=variables))
    assert result.status is Status.PASS


# ------------------------------------------------------------------ server ids


def test_server_without_an_id_fails() -> None:
    result = check("server_id", server(variables={"server_id": "0"}))
    assert result.status is Status.FAIL
    assert result.fix is not None and "server_id = 1" in result.fix


def test_wpcdc_must_not_reuse_the_servers_id() -> None:
    result = check(
        "server_id", server(variables={"server_id": "7"}), config=settings(mysql={"server_id": 7})
    )
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "mysql.server_id (WPCDC_MYSQL__SERVER_ID) to e.g. 8" in result.fix


def test_a_replica_with_wpcdcs_id_fails_and_the_suggestion_is_free() -> None:
    replicas = (ReplicaHost(5400, "10.0.0.9", 3306), ReplicaHost(5401, "10.0.0.8", 3306))
    result = check("replica_server_ids", server(replica_hosts=replicas))
    assert result.status is Status.FAIL
    assert "10.0.0.9:3306" in result.detail
    assert result.fix is not None and "to e.g. 5402" in result.fix


def test_unlisted_replicas_are_a_warning_not_a_failure() -> None:
    facts = server(replica_hosts=None, replica_hosts_error="(1227) Access denied")
    results = evaluate(facts, broker(), settings())
    (result,) = [r for r in results if r.name == "replica_server_ids"]
    assert result.status is Status.WARN
    assert "not verifiable" in result.detail and "1227" in result.detail
    assert passed(results)


# ------------------------------------------------------------------ privileges


def test_missing_replication_slave_gives_the_exact_grant() -> None:
    result = check("privileges", server(global_privileges=frozenset({"BINLOG MONITOR"})))
    assert result.status is Status.FAIL
    assert "REPLICATION SLAVE" in result.detail
    assert result.fix == "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'wpcdc'@'%';"


@pytest.mark.parametrize(
    ("flavor", "client"),
    [
        ("mariadb", "BINLOG MONITOR"),
        ("mariadb", "REPLICATION CLIENT"),
        ("mysql", "REPLICATION CLIENT"),
    ],
)
def test_replication_client_or_binlog_monitor_both_do(flavor: str, client: str) -> None:
    facts = server(flavor, global_privileges=frozenset({"REPLICATION SLAVE", client}))
    assert check("privileges", facts).status is Status.PASS


def test_missing_replication_client_fails() -> None:
    result = check(
        "privileges", server("mysql", global_privileges=frozenset({"REPLICATION SLAVE"}))
    )
    assert result.status is Status.FAIL
    assert "REPLICATION CLIENT" in result.detail


def test_denied_select_gives_both_grants_for_the_logged_in_account() -> None:
    probes = {t: TableProbe("denied", "(1142) SELECT command denied") for t in MAIN_TABLES}
    facts = server(
        current_user="wp'cdc@10.0.%",
        global_privileges=frozenset({"USAGE"}),
        tables=frozenset(),
        table_probes=probes,
    )
    result = check("privileges", facts, config=settings(mysql={"database": "my`db"}))
    assert result.status is Status.FAIL
    assert "SELECT denied on wp_posts" in result.detail
    assert result.fix == (
        "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'wp''cdc'@'10.0.%';\n"
        "GRANT SELECT ON `my``db`.* TO 'wp''cdc'@'10.0.%';"
    )


def test_a_table_that_fails_otherwise_is_reported() -> None:
    probes = {**{t: TableProbe("ok") for t in MAIN_TABLES}, "wp_terms": TableProbe("error", "boom")}
    result = check("privileges", server(table_probes=probes))
    assert result.status is Status.FAIL
    assert "boom" in result.detail


def test_unreadable_global_privileges_are_a_warning() -> None:
    result = check("privileges", server(global_privileges=None))
    assert result.status is Status.WARN
    assert "SELECT on 5 of 5" in result.detail


# ------------------------------------------------------------- WordPress tables


def test_multisite_blogs_are_listed() -> None:
    blog_tables = [f"wp_{n}_{s}" for n in (2, 3) for s in WORDPRESS_TABLES]
    facts = server(tables=frozenset(MAIN_TABLES + blog_tables))
    result = check("wordpress_tables", facts)
    assert result.status is Status.PASS
    assert "main site (blog 1)" in result.detail
    assert "multisite blogs 2, 3" in result.detail


def test_an_incomplete_blog_is_a_warning() -> None:
    facts = server(tables=frozenset([*MAIN_TABLES, "wp_4_posts", "wp_4_postmeta"]))
    result = check("wordpress_tables", facts)
    assert result.status is Status.WARN
    assert "blog 4 lacks wp_4_term_relationships" in result.detail


def test_missing_main_site_fails_and_names_the_blogs_found() -> None:
    blog_tables = [f"wp_2_{s}" for s in WORDPRESS_TABLES]
    facts = server(
        tables=frozenset(["wp_posts", *blog_tables]),
        table_probes={t: TableProbe("missing") for t in MAIN_TABLES},
    )
    result = check("wordpress_tables", facts)
    assert result.status is Status.FAIL
    assert "missing wp_postmeta" in result.detail
    assert "multisite blogs 2" in result.detail
    assert result.fix is not None and "WPCDC_MYSQL__TABLE_PREFIX" in result.fix


def test_a_wrong_prefix_gets_a_hint_at_the_right_one() -> None:
    other = [f"blog_{s}" for s in WORDPRESS_TABLES] + [f"blog_2_{s}" for s in WORDPRESS_TABLES]
    facts = server(tables=frozenset(other), table_probes={})
    result = check("wordpress_tables", facts)
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "with prefix blog_." in result.fix


def test_a_readable_table_counts_even_when_information_schema_hides_it() -> None:
    facts = server(tables=frozenset())
    assert check("wordpress_tables", facts).status is Status.PASS


def test_layout_needs_all_five_tables_per_blog() -> None:
    tables = [*MAIN_TABLES, *(f"wp_2_{s}" for s in WORDPRESS_TABLES), "wp_3_posts", "wp_3x_posts"]
    layout = wordpress_layout("wp_", tables)
    assert layout.main_missing == ()
    assert layout.blogs == (2,)
    assert set(layout.incomplete) == {3}
    assert len(layout.tables()) == 10


# ------------------------------------------------------------------- retention


def test_never_purged_passes_with_a_disk_note() -> None:
    result = check("binlog_retention", server())
    assert result.status is Status.PASS
    assert "never purged" in result.detail


def test_short_mariadb_retention_fails_with_a_longer_one() -> None:
    facts = server(variables={"binlog_expire_logs_seconds": "43200", "expire_logs_days": "0.5"})
    result = check("binlog_retention", facts)
    assert result.status is Status.FAIL
    assert "12 h" in result.detail and "24 h" in result.detail
    assert result.fix is not None
    assert "binlog_expire_logs_seconds = 172800" in result.fix
    assert "SET GLOBAL binlog_expire_logs_seconds = 172800;" in result.fix
    assert "preflight.max_downtime_hours (WPCDC_PREFLIGHT__MAX_DOWNTIME_HOURS) to 12" in result.fix


def test_old_mariadb_is_told_in_days() -> None:
    facts = server(variables={"expire_logs_days": "1"})
    variables = {k: v for k, v in facts.variables.items() if k != "binlog_expire_logs_seconds"}
    result = check(
        "binlog_retention",
        dataclasses.replace(facts, variables=variables),
        config=settings(preflight={"max_downtime_hours": 72}),
    )
    assert result.status is Status.FAIL
    assert result.fix is not None and "SET GLOBAL expire_logs_days = 4;" in result.fix


def test_mysql_default_thirty_days_passes() -> None:
    result = check("binlog_retention", server("mysql"))
    assert result.status is Status.PASS
    assert "30 days" in result.detail


def test_mysql_old_days_setting_counts_when_seconds_are_zero() -> None:
    facts = server("mysql", {"binlog_expire_logs_seconds": "0", "expire_logs_days": "1"})
    result = check("binlog_retention", facts, config=settings(preflight={"max_downtime_hours": 48}))
    assert result.status is Status.FAIL


def test_mysql_auto_purge_off_means_never() -> None:
    facts = server(
        "mysql", {"binlog_expire_logs_seconds": "3600", "binlog_expire_logs_auto_purge": "OFF"}
    )
    assert check("binlog_retention", facts).status is Status.PASS


def test_retention_equal_to_downtime_passes() -> None:
    facts = server("mysql", {"binlog_expire_logs_seconds": "86400"})
    assert check("binlog_retention", facts).status is Status.PASS


def test_a_size_limit_is_a_warning() -> None:
    facts = server(variables={"max_binlog_total_size": "1073741824"})
    result = check("binlog_retention", facts)
    assert result.status is Status.WARN
    assert "max_binlog_total_size" in result.detail


# ------------------------------------------------------- GTID and position


def test_gtid_is_informational() -> None:
    mariadb = check("gtid", server())
    assert (mariadb.status, mariadb.required) == (Status.INFO, False)
    assert "gtid_binlog_pos=0-1-42" in mariadb.detail
    assert "gtid_mode=ON" in check("gtid", server("mysql")).detail
    off = check("gtid", server("mysql", {"gtid_mode": "OFF"}))
    assert "file and position" in off.detail


def test_position_is_reported_or_explained() -> None:
    pos = BinlogPosition("binlog.000009", 77, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
    result = check("binlog_position", server("mysql", position=pos))
    assert result.detail.startswith("binlog.000009:77, executed GTIDs 3e11fa47")
    missing = check("binlog_position", server(position=None, position_error="(1227) denied"))
    assert (missing.status, missing.detail) == (Status.INFO, "not available: (1227) denied")


# ---------------------------------------------------------------------- broker


def test_unreachable_broker_fails_and_skips_the_topic() -> None:
    results = evaluate(
        server(), BrokerFacts(reachable=False, error="no bootstrap server answered"), settings()
    )
    (broker_result,) = [r for r in results if r.name == "broker"]
    (topic_result,) = [r for r in results if r.name == "topic"]
    assert broker_result.status is Status.FAIL
    assert broker_result.fix is not None and "WPCDC_KAFKA__BOOTSTRAP_SERVERS" in broker_result.fix
    assert (topic_result.status, topic_result.detail) == (Status.SKIP, SKIPPED_NO_BROKER)
    assert not passed(results)


def test_existing_topic_reports_its_partitions() -> None:
    result = check("topic", broker_facts=broker(topic=TopicFacts(12, 3)))
    assert result.status is Status.PASS
    assert "12 partitions, replication factor 3" in result.detail


def test_absent_topic_will_be_created() -> None:
    result = check("topic", broker_facts=broker(topic=None))
    assert result.status is Status.PASS
    assert "will be created with 6 partitions, replication factor 1" in result.detail


def test_absent_topic_without_creation_fails_with_the_command() -> None:
    config = settings(
        kafka={"topic": "wp.events", "create_topic": False, "bootstrap_servers": "k1:9092,k2:9092"}
    )
    result = check("topic", broker_facts=broker(topic=None), config=config)
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert (
        "kafka-topics.sh --bootstrap-server k1:9092 --create --topic wp.events "
        "--partitions 6 --replication-factor 1"
    ) in result.fix


def test_replication_factor_beyond_the_brokers_cannot_be_created() -> None:
    result = check(
        "topic",
        broker_facts=broker(topic=None, broker_count=1),
        config=settings(kafka={"replication_factor": 3}),
    )
    assert result.status is Status.FAIL
    assert result.fix is not None and "WPCDC_KAFKA__REPLICATION_FACTOR" in result.fix


def test_topic_metadata_error_fails() -> None:
    facts = broker(topic=TopicFacts(0, 0, error="TopicAuthorizationFailedError"))
    assert check("topic", broker_facts=facts).status is Status.FAIL


# --------------------------------------------------------------------- secrets


def test_no_result_ever_contains_a_secret() -> None:
    config = settings(
        mysql={"password": "db-secret-1"},
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl": {"username": "svc", "password": "kafka-secret-2"},
        },
    )
    unreachable = ServerUnreachable("(1045) Access denied for user 'wpcdc'@'h'", 1045)
    failing = server(
        variables={"log_bin": "OFF", "binlog_format": "MIXED", "server_id": "0"},
        global_privileges=frozenset(),
    )
    for facts in (unreachable, failing):
        for result in evaluate(facts, BrokerFacts(reachable=False, error="x"), config):
            text = f"{result.detail} {result.fix}"
            assert "db-secret-1" not in text and "kafka-secret-2" not in text
