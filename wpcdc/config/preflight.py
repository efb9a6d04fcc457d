"""Preflight rules: facts about the server and the broker in, check results out.

This module owns the order of the checks ``wpcdc check`` applies
(:func:`evaluate`) and the rules on connecting and on the binlog itself
(log_bin, format, row image and metadata, compression, GTIDs, position); the
rules on server ids, privileges, WordPress tables, retention and the broker
are in ``wpcdc.config.preflight_access``. The facts are gathered elsewhere
(``wpcdc.mysql.facts``, ``wpcdc.kafka.facts``) and handed in as the plain
dataclasses of ``wpcdc.core.facts``, so each rule is tested with hand-made facts
for MariaDB and MySQL alike. The statuses are described there.
"""

from __future__ import annotations

from wpcdc.config.preflight_access import (
    check_binlog_retention,
    check_broker,
    check_privileges,
    check_replica_ids,
    check_server_id,
    check_topic,
    check_wordpress_tables,
)
from wpcdc.config.preflight_support import (
    SKIPPED_NO_DATABASE,
    is_on,
    mycnf_fix,
    setting,
    sql_string,
    variable,
)
from wpcdc.config.settings import Settings
from wpcdc.core.facts import (
    BrokerFacts,
    CheckResult,
    ServerFacts,
    ServerUnreachable,
    Status,
    wordpress_layout,
)


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
    account = f"{sql_string(mysql.user)}@'%'"
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
    value = variable(facts, "log_bin")
    if is_on(value):
        basename = variable(facts, "log_bin_basename")
        where = f" ({basename})" if basename else ""
        return CheckResult("log_bin", Status.PASS, True, f"binary log is on{where}")
    fix = mycnf_fix(["log_bin = mysql-bin"], restart=True)
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
    value = variable(facts, name)
    if value is not None and value.strip().upper() == wanted:
        return CheckResult(name, Status.PASS, True, f"{name}={wanted}")
    if value is None and too_old is not None:
        return CheckResult(
            name,
            Status.FAIL,
            True,
            f"the server has no {name} variable: {why}",
            f"Upgrade the server to {too_old}, then set:\n"
            + mycnf_fix([f"{name} = {wanted}"], [f"SET GLOBAL {name} = '{wanted}';"]),
        )
    return CheckResult(
        name,
        Status.FAIL,
        True,
        f"{name}={value or 'unset'}, wpcdc needs {wanted}: {why}",
        mycnf_fix([f"{name} = {wanted}"], [f"SET GLOBAL {name} = '{wanted}';"]),
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
    value = variable(facts, name)
    if value is None:
        return CheckResult(
            "binlog_compression",
            Status.PASS,
            True,
            "this server cannot compress binlog events",
        )
    if not is_on(value):
        return CheckResult("binlog_compression", Status.PASS, True, f"{name}=OFF")
    return CheckResult(
        "binlog_compression",
        Status.FAIL,
        True,
        f"{name}=ON: the binlog reader skips compressed events without a word, "
        "so their row changes would be lost",
        mycnf_fix([f"{name} = OFF"], [f"SET GLOBAL {name} = OFF;"])
        + "\nBinlogs written while it was ON still hold compressed events: start wpcdc "
        "from a position after the change (take a fresh snapshot).",
    )


def _gtid(facts: ServerFacts) -> CheckResult:
    if facts.flavor == "mariadb":
        pos = variable(facts, "gtid_binlog_pos") or "(empty: nothing logged yet)"
        strict = variable(facts, "gtid_strict_mode") or "unknown"
        return CheckResult(
            "gtid",
            Status.INFO,
            False,
            f"MariaDB GTIDs (always on): gtid_binlog_pos={pos}, gtid_strict_mode={strict}",
        )
    mode = variable(facts, "gtid_mode") or "OFF"
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
            check_server_id(server, settings),
            check_replica_ids(server, settings),
            check_privileges(server, settings, layout),
            check_wordpress_tables(server, settings, layout),
            check_binlog_retention(server, settings),
            _gtid(server),
            _position(server),
        ]
    results += [check_broker(broker, settings), check_topic(broker, settings)]
    return results


def _present_tables(facts: ServerFacts) -> set[str]:
    # A table the account may read is there even if information_schema hid it.
    return set(facts.tables) | {t for t, p in facts.table_probes.items() if p.outcome == "ok"}
