"""Preflight rules: facts about the server and the broker in, check results out.

This module owns every rule ``wpcdc check`` applies and every fix it suggests.
It is pure: the facts are gathered elsewhere (``wpcdc.database``,
``wpcdc.kafka``) and handed in as plain dataclasses, so each rule is tested with
hand-made facts for MariaDB and MySQL alike.

Statuses: PASS (verified), FAIL (a required condition is violated), WARN
(passes, but something deserves a look or could not be verified), INFO
(informational only), SKIP (could not run because a prerequisite failed). The
preflight passes when no required check is FAIL or SKIP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from wpcdc.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings
from wpcdc.core.rows import WORDPRESS_KINDS, classify_table

Flavor = Literal["mariadb", "mysql"]

# The five tables of one WordPress site; the first three are streamed, the
# last two are the lookups that give term_taxonomy ids their meaning.
WORDPRESS_TABLES = tuple(kind.value for kind in WORDPRESS_KINDS)

SKIPPED_NO_DATABASE = "skipped: needs a database connection"
SKIPPED_NO_BROKER = "skipped: needs a broker connection"


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    INFO = "INFO"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    required: bool
    detail: str
    fix: str | None = None

    @property
    def blocking(self) -> bool:
        """True when this result alone makes the preflight fail."""
        return self.required and self.status in (Status.FAIL, Status.SKIP)


# ---------------------------------------------------------------- the facts


@dataclass(frozen=True)
class TableProbe:
    """The outcome of ``SELECT 1 FROM `db`.`table` LIMIT 0`."""

    outcome: Literal["ok", "missing", "denied", "error"]
    message: str = ""


@dataclass(frozen=True)
class ReplicaHost:
    """One row of SHOW REPLICAS / SHOW SLAVE HOSTS."""

    server_id: int
    host: str
    port: int | None = None


@dataclass(frozen=True)
class BinlogPosition:
    file: str
    position: int
    # MySQL's Executed_Gtid_Set; empty on MariaDB (its GTID is a variable).
    gtid_set: str = ""


@dataclass(frozen=True)
class ServerFacts:
    """What the server said, unjudged. Variable names are lower case."""

    version: str
    version_comment: str
    flavor: Flavor
    current_user: str  # as CURRENT_USER() returns it: user@host
    tls_version: str  # "" when the connection is not encrypted
    variables: Mapping[str, str]
    # None when the privileges could not be read at all.
    global_privileges: frozenset[str] | None
    # Tables of mysql.database the user can see.
    tables: frozenset[str]
    table_probes: Mapping[str, TableProbe]
    # None when the list could not be read (typically a missing privilege).
    replica_hosts: tuple[ReplicaHost, ...] | None
    replica_hosts_error: str = ""
    position: BinlogPosition | None = None
    position_error: str = ""


@dataclass(frozen=True)
class ServerUnreachable:
    """The server could not be reached or refused the login."""

    message: str
    error_code: int | None = None


@dataclass(frozen=True)
class TopicFacts:
    partitions: int
    replication_factor: int
    error: str = ""  # a per-topic metadata error, e.g. not authorised


@dataclass(frozen=True)
class BrokerFacts:
    reachable: bool
    error: str = ""
    broker_count: int = 0
    cluster_id: str | None = None
    # None when the topic does not exist (or is not visible to this client).
    topic: TopicFacts | None = None


# ---------------------------------------------------------- small pure helpers


def detect_flavor(version: str, version_comment: str) -> Flavor:
    """MariaDB names itself in VERSION() (Debian's version_comment does not)."""
    text = f"{version} {version_comment}".lower()
    return "mariadb" if "mariadb" in text else "mysql"


@dataclass(frozen=True)
class WordPressLayout:
    """The WordPress sites found in a database for one table prefix."""

    prefix: str
    main_missing: tuple[str, ...]  # main-site (blog 1) tables that are absent
    blogs: tuple[int, ...]  # complete multisite blogs (N >= 2)
    incomplete: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def tables(self) -> list[str]:
        """Every table of the main site and of each complete blog."""
        names = [self.prefix + suffix for suffix in WORDPRESS_TABLES]
        for blog in self.blogs:
            names += [f"{self.prefix}{blog}_{suffix}" for suffix in WORDPRESS_TABLES]
        return names


def wordpress_layout(prefix: str, tables: Iterable[str]) -> WordPressLayout:
    present = set(tables)
    main_missing = tuple(prefix + s for s in WORDPRESS_TABLES if prefix + s not in present)
    found: dict[int, set[str]] = {}
    for name in present:
        ref = classify_table(prefix, name)
        if ref is not None and ref.blog_id != 1:
            found.setdefault(ref.blog_id, set()).add(ref.kind.value)
    blogs: list[int] = []
    incomplete: dict[int, tuple[str, ...]] = {}
    for blog in sorted(found):
        missing = tuple(f"{prefix}{blog}_{s}" for s in WORDPRESS_TABLES if s not in found[blog])
        if missing:
            incomplete[blog] = missing
        else:
            blogs.append(blog)
    return WordPressLayout(
        prefix=prefix, main_missing=main_missing, blogs=tuple(blogs), incomplete=incomplete
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


def setting(key: str) -> str:
    """A setting as users may give it: its dotted key and its environment variable."""
    env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(key.split(".")).upper()
    return f"{key} ({env})"


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _sql_ident(value: str) -> str:
    return "`" + value.replace("`", "``") + "`"


def _account(facts: ServerFacts | None, settings: Settings) -> str:
    """The account to name in GRANT statements, e.g. 'wpcdc'@'%'."""
    user, host = settings.mysql.user, "%"
    if facts is not None and "@" in facts.current_user:
        user, host = facts.current_user.rsplit("@", 1)
    return f"{_sql_string(user)}@{_sql_string(host)}"


def _mycnf_fix(lines: Sequence[str], sql: Sequence[str] = (), *, restart: bool = False) -> str:
    out = ["In my.cnf, section [mysqld]:", *(f"    {line}" for line in lines)]
    if restart:
        out.append("then restart the server (this cannot be changed while it runs).")
    if sql:
        out.append("and, to apply it now without a restart (connections opened afterwards):")
        out += [f"    {statement}" for statement in sql]
    return "\n".join(out)


def _var(facts: ServerFacts, name: str) -> str | None:
    return facts.variables.get(name)


def _is_on(value: str | None) -> bool:
    return value is not None and value.strip().upper() in ("ON", "1", "YES", "TRUE")


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    return f"{hours:g} h"


def _list(items: Sequence[str], limit: int = 12) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


# ----------------------------------------------------------------- the rules


def _connection(server: ServerFacts | ServerUnreachable, settings: Settings) -> CheckResult:
    where = f"{settings.mysql.host}:{settings.mysql.port}"
    if isinstance(server, ServerUnreachable):
        return CheckResult(
            "connection",
            Status.FAIL,
            True,
            f"cannot connect to {where} as {settings.mysql.user!r}: {server.message}",
            _connection_fix(server, settings),
        )
    product = "MariaDB" if server.flavor == "mariadb" else "MySQL"
    tls = f"TLS {server.tls_version}" if server.tls_version else "no TLS"
    return CheckResult(
        "connection",
        Status.PASS,
        True,
        f"{product} {server.version} at {where} as {server.current_user} ({tls})",
    )


def _connection_fix(server: ServerUnreachable, settings: Settings) -> str:
    mysql = settings.mysql
    account = f"{_sql_string(mysql.user)}@'%'"
    code = server.error_code
    if code == 1045:
        return (
            f"Check {setting('mysql.user')} and {setting('mysql.password')}. "
            "If the account does not exist yet, create it:\n"
            f"    CREATE USER {account} IDENTIFIED BY '<password>';"
        )
    if code == 1130:
        return (
            "The server does not accept this account from wpcdc's host. "
            "Create the account for that host (or '%'):\n"
            f"    CREATE USER {account} IDENTIFIED BY '<password>';"
        )
    if code == 1129:
        return "The server blocked this host after connection errors; run:\n    FLUSH HOSTS;"
    # PyMySQL reports a failed TLS handshake as "can't connect" (2003): look at
    # the text before the code.
    text = server.message.lower()
    # 3159 (MySQL) / 4036 (MariaDB): the server requires TLS and it is off here.
    tls_words = ("ssl", "tls", "certificate", "secure transport")
    if code in (2026, 3159, 4036) or any(word in text for word in tls_words):
        return (
            f"Check the TLS settings: {setting('mysql.tls.enabled')}, {setting('mysql.tls.ca')}, "
            f"{setting('mysql.tls.cert')}, {setting('mysql.tls.key')}, "
            f"{setting('mysql.tls.verify_identity')}. The CA must have signed the server's "
            "certificate, and with verify_identity the certificate must name mysql.host."
        )
    if code in (2003, 2002, 2013):
        return (
            f"Check {setting('mysql.host')} and {setting('mysql.port')}, that the server "
            "listens on TCP there (my.cnf: bind-address, no skip-networking) and that no "
            f"firewall blocks it. Connect timeout: {setting('mysql.connect_timeout')}."
        )
    if code == 2005:
        return f"The host name does not resolve: check {setting('mysql.host')}."
    if "cryptography" in server.message:
        return (
            "The account uses caching_sha2_password/sha256_password: install the "
            f"'cryptography' package, or enable TLS ({setting('mysql.tls.enabled')})."
        )
    return (
        f"Check the mysql settings ({setting('mysql.host')}, {setting('mysql.port')}, "
        f"{setting('mysql.user')}, {setting('mysql.password')}) and the server's error log."
    )


def _log_bin(facts: ServerFacts) -> CheckResult:
    value = _var(facts, "log_bin")
    if _is_on(value):
        basename = _var(facts, "log_bin_basename")
        where = f" ({basename})" if basename else ""
        return CheckResult("log_bin", Status.PASS, True, f"binary log is on{where}")
    fix = _mycnf_fix(["log_bin = mysql-bin"], restart=True)
    if facts.flavor == "mysql":
        fix += "\nMySQL 8 logs by default: also remove skip-log-bin / disable-log-bin if present."
    return CheckResult(
        "log_bin",
        Status.FAIL,
        True,
        f"binary log is off (log_bin={value or 'unset'}): there is nothing to stream",
        fix,
    )


def _expect_value(
    facts: ServerFacts, name: str, wanted: str, why: str, *, too_old: str | None = None
) -> CheckResult:
    value = _var(facts, name)
    if value is not None and value.strip().upper() == wanted:
        return CheckResult(name, Status.PASS, True, f"{name}={wanted}")
    if value is None and too_old is not None:
        return CheckResult(
            name,
            Status.FAIL,
            True,
            f"the server has no {name} variable: {why}",
            f"Upgrade the server to {too_old}, then set:\n"
            + _mycnf_fix([f"{name} = {wanted}"], [f"SET GLOBAL {name} = '{wanted}';"]),
        )
    return CheckResult(
        name,
        Status.FAIL,
        True,
        f"{name}={value or 'unset'}, wpcdc needs {wanted}: {why}",
        _mycnf_fix([f"{name} = {wanted}"], [f"SET GLOBAL {name} = '{wanted}';"]),
    )


def _binlog_format(facts: ServerFacts) -> CheckResult:
    return _expect_value(
        facts,
        "binlog_format",
        "ROW",
        "statement-based events do not carry the changed rows",
    )


def _binlog_row_image(facts: ServerFacts) -> CheckResult:
    return _expect_value(
        facts,
        "binlog_row_image",
        "FULL",
        "events would lack the unchanged columns of each row",
    )


def _binlog_row_metadata(facts: ServerFacts) -> CheckResult:
    return _expect_value(
        facts,
        "binlog_row_metadata",
        "FULL",
        "without it the binlog does not carry column names",
        too_old="MySQL 8.0.14+ or MariaDB 10.5+",
    )


def _binlog_compression(facts: ServerFacts) -> CheckResult:
    # Each has its own: MySQL 8.0.20+ compresses whole transactions
    # (TRANSACTION_PAYLOAD events), MariaDB 10.2+ single row events.
    name = "log_bin_compress" if facts.flavor == "mariadb" else "binlog_transaction_compression"
    value = _var(facts, name)
    if value is None:
        return CheckResult(
            "binlog_compression",
            Status.PASS,
            True,
            "this server cannot compress binlog events",
        )
    if not _is_on(value):
        return CheckResult("binlog_compression", Status.PASS, True, f"{name}=OFF")
    return CheckResult(
        "binlog_compression",
        Status.FAIL,
        True,
        f"{name}=ON: the binlog reader skips compressed events without a word, "
        "so their row changes would be lost",
        _mycnf_fix([f"{name} = OFF"], [f"SET GLOBAL {name} = OFF;"])
        + "\nBinlogs written while it was ON still hold compressed events: start wpcdc "
        "from a position after the change (take a fresh snapshot).",
    )


def _free_server_id(settings: Settings, taken: Iterable[int]) -> int:
    used = set(taken)
    candidate = settings.mysql.server_id + 1
    while candidate in used:
        candidate += 1
    return candidate


def _server_id(facts: ServerFacts, settings: Settings) -> CheckResult:
    raw = _var(facts, "server_id")
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
            _mycnf_fix(["server_id = 1"], ["SET GLOBAL server_id = 1;"]),
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


def _replica_ids(facts: ServerFacts, settings: Settings) -> CheckResult:
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
        server_id = _var(facts, "server_id")
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


def _privileges(facts: ServerFacts, settings: Settings, layout: WordPressLayout) -> CheckResult:
    account = _account(facts, settings)
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
        problems.append(f"SELECT denied on {_list(denied)}")
    if broken:
        problems.append(f"SELECT failed on {_list(broken)}: {_probe(facts, broken[0]).message}")
    if denied:
        fixes.append(f"GRANT SELECT ON {_sql_ident(settings.mysql.database)}.* TO {account};")
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


def _wordpress_tables(
    facts: ServerFacts, settings: Settings, layout: WordPressLayout
) -> CheckResult:
    database, prefix = settings.mysql.database, settings.mysql.table_prefix
    blogs = ["main site (blog 1)"] if not layout.main_missing else []
    if layout.blogs:
        blogs.append("multisite blogs " + _list([str(b) for b in layout.blogs], 20))
    found = ", ".join(blogs) if blogs else "no complete site"
    incomplete = ""
    if layout.incomplete:
        parts = [
            f"blog {blog} lacks {', '.join(missing)}"
            for blog, missing in sorted(layout.incomplete.items())
        ]
        incomplete = "; incomplete: " + _list(parts, 5)
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
            f"    GRANT SELECT ON {_sql_ident(database)}.* TO {_account(facts, settings)};"
        )
    return CheckResult("wordpress_tables", Status.FAIL, True, detail, fix)


def _retention_seconds(facts: ServerFacts) -> float | None:
    """How long binlogs are kept; None when they are never purged by age."""
    # MySQL 8.0.29+: with auto purge off, no expiry setting takes effect.
    auto_purge = _var(facts, "binlog_expire_logs_auto_purge")
    if auto_purge is not None and not _is_on(auto_purge):
        return None
    # MySQL 8 prefers the seconds when both are set; MariaDB 10.6+ keeps the two
    # in step. Older MariaDB only has the days (a float there).
    seconds = _number(_var(facts, "binlog_expire_logs_seconds"))
    if seconds > 0:
        return seconds
    days = _number(_var(facts, "expire_logs_days"))
    if days > 0:
        return days * 86400
    return None


def _binlog_retention(facts: ServerFacts, settings: Settings) -> CheckResult:
    hours = settings.preflight.max_downtime_hours
    retention = _retention_seconds(facts)
    size_limit = _number(_var(facts, "max_binlog_total_size"))
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
            f"binlogs kept {_hours(retention)}, max downtime {hours:g} h"
            f" ({setting('preflight.max_downtime_hours')})" + size_note,
        )
    days = math.ceil(hours / 24) + 1
    if "binlog_expire_logs_seconds" in facts.variables:
        name, value = "binlog_expire_logs_seconds", str(days * 86400)
    else:
        name, value = "expire_logs_days", str(days)
    fix = _mycnf_fix([f"{name} = {value}"], [f"SET GLOBAL {name} = {value};"])
    fix = (
        f"Keep binlogs {days} days (the max downtime plus a day of margin).\n" + fix + "\n"
        f"Or lower {setting('preflight.max_downtime_hours')} to "
        f"{math.floor(retention / 3600 * 100) / 100:g} or less."
    )
    return CheckResult(
        "binlog_retention",
        Status.FAIL,
        True,
        f"binlogs are purged after {_hours(retention)}, shorter than the max downtime of "
        f"{hours:g} h: a wpcdc stopped that long could not resume" + size_note,
        fix,
    )


def _gtid(facts: ServerFacts) -> CheckResult:
    if facts.flavor == "mariadb":
        pos = _var(facts, "gtid_binlog_pos") or "(empty: nothing logged yet)"
        strict = _var(facts, "gtid_strict_mode") or "unknown"
        return CheckResult(
            "gtid",
            Status.INFO,
            False,
            f"MariaDB GTIDs (always on): gtid_binlog_pos={pos}, gtid_strict_mode={strict}",
        )
    mode = _var(facts, "gtid_mode") or "OFF"
    how = "GTIDs" if mode.upper() == "ON" else "file and position"
    return CheckResult(
        "gtid", Status.INFO, False, f"gtid_mode={mode}: positions are tracked by {how}"
    )


def _position(facts: ServerFacts) -> CheckResult:
    if facts.position is not None:
        detail = f"{facts.position.file}:{facts.position.position}"
        if facts.position.gtid_set:
            detail += f", executed GTIDs {facts.position.gtid_set}"
        return CheckResult("binlog_position", Status.INFO, False, detail)
    reason = facts.position_error or "the server reports no binary log"
    return CheckResult("binlog_position", Status.INFO, False, f"not available: {reason}")


def _broker(broker: BrokerFacts, settings: Settings) -> CheckResult:
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


def _topic(broker: BrokerFacts, settings: Settings) -> CheckResult:
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
_SERVER_CHECKS = (
    ("log_bin", True),
    ("binlog_format", True),
    ("binlog_row_image", True),
    ("binlog_row_metadata", True),
    ("binlog_compression", True),
    ("server_id", True),
    ("replica_server_ids", True),
    ("privileges", True),
    ("wordpress_tables", True),
    ("binlog_retention", True),
    ("gtid", False),
    ("binlog_position", False),
)


def evaluate(
    server: ServerFacts | ServerUnreachable, broker: BrokerFacts, settings: Settings
) -> list[CheckResult]:
    """Every check, in report order."""
    results = [_connection(server, settings)]
    if isinstance(server, ServerUnreachable):
        results += [
            CheckResult(name, Status.SKIP, required, SKIPPED_NO_DATABASE)
            for name, required in _SERVER_CHECKS
        ]
    else:
        layout = wordpress_layout(settings.mysql.table_prefix, _present_tables(server))
        results += [
            _log_bin(server),
            _binlog_format(server),
            _binlog_row_image(server),
            _binlog_row_metadata(server),
            _binlog_compression(server),
            _server_id(server, settings),
            _replica_ids(server, settings),
            _privileges(server, settings, layout),
            _wordpress_tables(server, settings, layout),
            _binlog_retention(server, settings),
            _gtid(server),
            _position(server),
        ]
    results += [_broker(broker, settings), _topic(broker, settings)]
    return results


def _present_tables(facts: ServerFacts) -> set[str]:
    # A table the account may read is there even if information_schema hid it.
    return set(facts.tables) | {t for t, p in facts.table_probes.items() if p.outcome == "ok"}


def passed(results: Iterable[CheckResult]) -> bool:
    return not any(result.blocking for result in results)
