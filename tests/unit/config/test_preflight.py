"""Preflight rules on connecting and on the binlog (wpcdc.config.preflight), and the
order and secrecy of all results, from hand-made facts (MariaDB and MySQL)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.preflight import broker, check, server, settings
from wpcdc.config.preflight import evaluate
from wpcdc.config.preflight_support import SKIPPED_NO_DATABASE
from wpcdc.core.facts import BinlogPosition, BrokerFacts, ServerUnreachable, Status, passed

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
