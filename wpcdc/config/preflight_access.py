"""Preflight rules on who wpcdc is and where it writes: server ids, privileges,
WordPress tables, binlog retention, the broker and the topic.

Each rule takes the facts and the settings and returns one
:class:`~wpcdc.core.facts.CheckResult` with the fix to apply;
``wpcdc.config.preflight.evaluate`` runs them in report order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from wpcdc.config.preflight_support import (
    SKIPPED_NO_BROKER,
    format_hours,
    grant_account,
    is_on,
    mycnf_fix,
    number,
    setting,
    short_list,
    sql_ident,
    variable,
)
from wpcdc.config.settings import Settings
from wpcdc.core.facts import (
    WORDPRESS_TABLES,
    BrokerFacts,
    CheckResult,
    ServerFacts,
    Status,
    TableProbe,
    WordPressLayout,
)


def _free_server_id(settings: Settings, taken: Iterable[int]) -> int:
    used = set(taken)
    candidate = settings.mysql.server_id + 1
    while candidate in used:
        candidate += 1
    return candidate


def check_server_id(facts: ServerFacts, settings: Settings) -> CheckResult:
    raw = variable(facts, "server_id")
    ours = settings.mysql.server_id
    try:
        theirs = int(raw) if raw is not None else 0
    except ValueError:
        theirs = 0
    if theirs == 0:
        return CheckResult(
            "server_id",
            Status.FAIL,
            True,
            f"server_id={raw or 'unset'}: a server without an id refuses binlog readers",
            mycnf_fix(["server_id = 1"], ["SET GLOBAL server_id = 1;"]),
        )
    if theirs == ours:
        taken = [theirs] + [r.server_id for r in facts.replica_hosts or ()]
        return CheckResult(
            "server_id",
            Status.FAIL,
            True,
            f"the server's own server_id is {theirs}, the same as {setting('mysql.server_id')}",
            f"Give wpcdc another id: set {setting('mysql.server_id')} to e.g. "
            f"{_free_server_id(settings, taken)}.",
        )
    return CheckResult("server_id", Status.PASS, True, f"server {theirs}, wpcdc will use {ours}")


def check_replica_ids(facts: ServerFacts, settings: Settings) -> CheckResult:
    ours = settings.mysql.server_id
    if facts.replica_hosts is None:
        return CheckResult(
            "replica_server_ids",
            Status.WARN,
            True,
            f"not verifiable: cannot list the registered replicas ({facts.replica_hosts_error}); "
            f"make sure no replica uses server_id {ours}",
        )
    clashes = [r for r in facts.replica_hosts if r.server_id == ours]
    if clashes:
        where = ", ".join(f"{r.host}:{r.port}" if r.port else r.host for r in clashes)
        taken = [r.server_id for r in facts.replica_hosts]
        server_id = variable(facts, "server_id")
        if server_id is not None and server_id.isdigit():
            taken.append(int(server_id))
        return CheckResult(
            "replica_server_ids",
            Status.FAIL,
            True,
            f"a registered replica ({where}) already uses server_id {ours}; the server "
            "disconnects one of two readers with the same id (if it is this wpcdc "
            "already running, stop it before the check)",
            f"Give wpcdc an unused id: set {setting('mysql.server_id')} to e.g. "
            f"{_free_server_id(settings, taken)}.",
        )
    count = len(facts.replica_hosts)
    return CheckResult(
        "replica_server_ids",
        Status.PASS,
        True,
        f"no registered replica uses server_id {ours} ({count} registered)",
    )


# MariaDB 10.5+ calls REPLICATION CLIENT "BINLOG MONITOR"; either will do.
_CLIENT_PRIVILEGES = frozenset({"REPLICATION CLIENT", "BINLOG MONITOR"})


def check_privileges(
    facts: ServerFacts, settings: Settings, layout: WordPressLayout
) -> CheckResult:
    account = grant_account(facts, settings)
    problems: list[str] = []
    fixes: list[str] = []
    if facts.global_privileges is None:
        unverified = "global privileges could not be read"
    else:
        unverified = ""
        missing = []
        if "REPLICATION SLAVE" not in facts.global_privileges:
            missing.append("REPLICATION SLAVE")
        if not facts.global_privileges & _CLIENT_PRIVILEGES:
            missing.append(
                "REPLICATION CLIENT (BINLOG MONITOR)"
                if facts.flavor == "mariadb"
                else "REPLICATION CLIENT"
            )
        if missing:
            problems.append("missing " + " and ".join(missing))
            fixes.append(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {account};")
    # Missing tables are the business of the wordpress_tables check; a denied
    # one is a privilege problem whether it exists or not.
    wanted = layout.tables()
    denied = [t for t in wanted if _probe(facts, t).outcome == "denied"]
    broken = [t for t in wanted if _probe(facts, t).outcome == "error"]
    if denied:
        problems.append(f"SELECT denied on {short_list(denied)}")
    if broken:
        problems.append(
            f"SELECT failed on {short_list(broken)}: {_probe(facts, broken[0]).message}"
        )
    if denied:
        fixes.append(f"GRANT SELECT ON {sql_ident(settings.mysql.database)}.* TO {account};")
    if problems:
        detail = f"{facts.current_user}: " + "; ".join(problems)
        if facts.flavor == "mysql":
            detail += " (privileges that come only through a role are not seen here)"
        return CheckResult(
            "privileges", Status.FAIL, True, detail, "\n".join(fixes) if fixes else None
        )
    ok_tables = len([t for t in wanted if _probe(facts, t).outcome == "ok"])
    select = f"SELECT on {ok_tables} of {len(wanted)} WordPress tables"
    if ok_tables < len(wanted):
        select += " (the others are missing)"
    if unverified:
        return CheckResult("privileges", Status.WARN, True, f"{unverified}; {select}")
    return CheckResult(
        "privileges", Status.PASS, True, f"REPLICATION SLAVE, REPLICATION CLIENT; {select}"
    )


def _probe(facts: ServerFacts, table: str) -> TableProbe:
    return facts.table_probes.get(table, TableProbe("error", "not probed"))


def check_wordpress_tables(
    facts: ServerFacts, settings: Settings, layout: WordPressLayout
) -> CheckResult:
    database, prefix = settings.mysql.database, settings.mysql.table_prefix
    blogs = ["main site (blog 1)"] if not layout.main_missing else []
    if layout.blogs:
        blogs.append("multisite blogs " + short_list([str(b) for b in layout.blogs], 20))
    found = ", ".join(blogs) if blogs else "no complete site"
    incomplete = ""
    if layout.incomplete:
        parts = [
            f"blog {blog} lacks {', '.join(missing)}"
            for blog, missing in sorted(layout.incomplete.items())
        ]
        incomplete = "; incomplete: " + short_list(parts, 5)
    if not layout.main_missing:
        return CheckResult(
            "wordpress_tables",
            Status.WARN if layout.incomplete else Status.PASS,
            True,
            f"database {database}, prefix {prefix}: {found}{incomplete}",
        )
    hidden = [t for t in layout.main_missing if _probe(facts, t).outcome == "denied"]
    detail = (
        f"database {database}, prefix {prefix}: missing {', '.join(layout.main_missing)}; "
        f"found: {found}{incomplete}"
    )
    if hidden:
        detail += f" (tables the account may not SELECT are invisible to {facts.current_user})"
    candidates = [p for p in _candidate_prefixes(facts.tables) if p != prefix]
    fix = (
        f"Point wpcdc at the WordPress database: {setting('mysql.database')} and "
        f"{setting('mysql.table_prefix')} must match DB_NAME and $table_prefix in wp-config.php."
    )
    if candidates:
        fix += f"\nThis database has WordPress tables with prefix {', '.join(candidates)}."
    if hidden:
        fix += (
            "\nIf the tables exist, let the account see them:\n"
            f"    GRANT SELECT ON {sql_ident(database)}.* TO {grant_account(facts, settings)};"
        )
    return CheckResult("wordpress_tables", Status.FAIL, True, detail, fix)


def _retention_seconds(facts: ServerFacts) -> float | None:
    """How long binlogs are kept; None when they are never purged by age."""
    # MySQL 8.0.29+: with auto purge off, no expiry setting takes effect.
    auto_purge = variable(facts, "binlog_expire_logs_auto_purge")
    if auto_purge is not None and not is_on(auto_purge):
        return None
    # MySQL 8 prefers the seconds when both are set; MariaDB 10.6+ keeps the two
    # in step. Older MariaDB only has the days (a float there).
    seconds = number(variable(facts, "binlog_expire_logs_seconds"))
    if seconds > 0:
        return seconds
    days = number(variable(facts, "expire_logs_days"))
    if days > 0:
        return days * 86400
    return None


def check_binlog_retention(facts: ServerFacts, settings: Settings) -> CheckResult:
    hours = settings.preflight.max_downtime_hours
    retention = _retention_seconds(facts)
    size_limit = number(variable(facts, "max_binlog_total_size"))
    size_note = ""
    if size_limit > 0:
        size_note = (
            f"; binlogs are also purged beyond max_binlog_total_size={size_limit:.0f} bytes, "
            "which may come sooner under heavy writes"
        )
    if retention is None:
        return CheckResult(
            "binlog_retention",
            Status.WARN if size_note else Status.PASS,
            True,
            "binlogs are never purged by age: watch the disk (PURGE BINARY LOGS)" + size_note,
        )
    if retention >= hours * 3600:
        return CheckResult(
            "binlog_retention",
            Status.WARN if size_note else Status.PASS,
            True,
            f"binlogs kept {format_hours(retention)}, max downtime {hours:g} h"
            f" ({setting('preflight.max_downtime_hours')})" + size_note,
        )
    days = math.ceil(hours / 24) + 1
    if "binlog_expire_logs_seconds" in facts.variables:
        name, value = "binlog_expire_logs_seconds", str(days * 86400)
    else:
        name, value = "expire_logs_days", str(days)
    fix = mycnf_fix([f"{name} = {value}"], [f"SET GLOBAL {name} = {value};"])
    fix = (
        f"Keep binlogs {days} days (the max downtime plus a day of margin).\n" + fix + "\n"
        f"Or lower {setting('preflight.max_downtime_hours')} to "
        f"{math.floor(retention / 3600 * 100) / 100:g} or less."
    )
    return CheckResult(
        "binlog_retention",
        Status.FAIL,
        True,
        f"binlogs are purged after {format_hours(retention)}, shorter than the max downtime of "
        f"{hours:g} h: a wpcdc stopped that long could not resume" + size_note,
        fix,
    )


def _candidate_prefixes(tables: Iterable[str]) -> list[str]:
    """Prefixes that carry a complete WordPress site, for a "did you mean" hint."""
    present = set(tables)
    suffix = WORDPRESS_TABLES[0]
    candidates = {
        name[: -len(suffix)]
        for name in present
        if name.endswith(suffix)
        and all(name[: -len(suffix)] + s in present for s in WORDPRESS_TABLES)
    }
    # wp_2_ is blog 2 of wp_, not a site of its own.
    blog_of = re.compile(r"^(.*?)[1-9][0-9]*_$")
    return sorted(
        p for p in candidates if not ((m := blog_of.match(p)) is not None and m[1] in candidates)
    )


def check_broker(broker: BrokerFacts, settings: Settings) -> CheckResult:
    kafka = settings.kafka
    if not broker.reachable:
        return CheckResult(
            "broker",
            Status.FAIL,
            True,
            f"cannot reach {kafka.bootstrap_servers} ({kafka.security_protocol}): {broker.error}",
            f"Check {setting('kafka.bootstrap_servers')} and {setting('kafka.security_protocol')}"
            ", that the broker listens there and advertises an address this host can reach, "
            f"and the TLS/SASL settings (kafka.tls.*, kafka.sasl.*). "
            f"Timeout: {setting('kafka.request_timeout')}.",
        )
    cluster = f", cluster {broker.cluster_id}" if broker.cluster_id else ""
    plural = "s" if broker.broker_count != 1 else ""
    return CheckResult(
        "broker",
        Status.PASS,
        True,
        f"{broker.broker_count} broker{plural} via {kafka.bootstrap_servers}"
        f" ({kafka.security_protocol}){cluster}",
    )


def check_topic(broker: BrokerFacts, settings: Settings) -> CheckResult:
    kafka = settings.kafka
    if not broker.reachable:
        return CheckResult("topic", Status.SKIP, True, SKIPPED_NO_BROKER)
    if broker.topic is not None:
        if broker.topic.error:
            return CheckResult(
                "topic",
                Status.FAIL,
                True,
                f"topic {kafka.topic}: {broker.topic.error}",
                f"Give the client id {kafka.client_id!r} access to the topic (ACLs), "
                f"or check {setting('kafka.topic')}.",
            )
        return CheckResult(
            "topic",
            Status.PASS,
            True,
            f"topic {kafka.topic} exists: {broker.topic.partitions} partitions, "
            f"replication factor {broker.topic.replication_factor}",
        )
    create = (
        f"kafka-topics.sh --bootstrap-server {kafka.bootstrap_list[0]} --create "
        f"--topic {kafka.topic} --partitions {kafka.partitions} "
        f"--replication-factor {kafka.replication_factor}"
    )
    if not kafka.create_topic:
        return CheckResult(
            "topic",
            Status.FAIL,
            True,
            f"topic {kafka.topic} does not exist (or this client may not see it) "
            f"and {setting('kafka.create_topic')} is false",
            f"Create it:\n    {create}\nor set {setting('kafka.create_topic')} to true.",
        )
    if broker.broker_count and kafka.replication_factor > broker.broker_count:
        return CheckResult(
            "topic",
            Status.FAIL,
            True,
            f"topic {kafka.topic} does not exist and cannot be created with replication "
            f"factor {kafka.replication_factor} on {broker.broker_count} broker(s)",
            f"Lower {setting('kafka.replication_factor')} to {broker.broker_count} or less, "
            f"or create the topic yourself:\n    {create}",
        )
    return CheckResult(
        "topic",
        Status.PASS,
        True,
        f"topic {kafka.topic} does not exist yet: will be created with {kafka.partitions} "
        f"partitions, replication factor {kafka.replication_factor}",
    )


# Checks that need the server, in report order, for the SKIP rows.
