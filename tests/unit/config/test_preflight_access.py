"""Preflight rules on server ids, privileges, WordPress tables, binlog retention, the
broker and the topic (wpcdc.config.preflight_access), from hand-made facts."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.preflight import MAIN_TABLES, broker, check, server, settings
from wpcdc.config.preflight import evaluate
from wpcdc.config.preflight_support import SKIPPED_NO_BROKER
from wpcdc.core.facts import (
    WORDPRESS_TABLES,
    BrokerFacts,
    ReplicaHost,
    Status,
    TableProbe,
    TopicFacts,
    passed,
)

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
    assert "SELECT on 7 of 7" in result.detail


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
