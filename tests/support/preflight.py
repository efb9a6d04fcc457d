"""Hand-made facts for the preflight rules: a correctly configured MariaDB or MySQL
server and broker to change one thing on, and the one result a rule gives."""

from __future__ import annotations

import dataclasses
from typing import Any

from wpcdc.config.preflight import evaluate
from wpcdc.config.settings import Settings
from wpcdc.core.facts import (
    WORDPRESS_TABLES,
    BinlogPosition,
    BrokerFacts,
    CheckResult,
    ServerFacts,
    ServerUnreachable,
    TableProbe,
    TopicFacts,
)

# The tables wpcdc reads on a single site: the five it streams, options and users.
MAIN_TABLES = [f"wp_{suffix}" for suffix in (*WORDPRESS_TABLES, "options", "users")]

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
