"""Shared pieces of the preflight rules: reading server variables, writing fixes.

This module owns how a fix names a setting (its dotted key and its environment
variable), quotes SQL, and phrases a my.cnf change, and how the rules read the
server's variables, and the detail of a check skipped for want of a
connection. The rules themselves are in ``wpcdc.config.preflight`` and
``wpcdc.config.preflight_access``.
"""

from __future__ import annotations

from collections.abc import Sequence

from wpcdc.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings
from wpcdc.core.facts import ServerFacts

SKIPPED_NO_DATABASE = "skipped: needs a database connection"
SKIPPED_NO_BROKER = "skipped: needs a broker connection"


def setting(key: str) -> str:
    """A setting as users may give it: its dotted key and its environment variable."""
    env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(key.split(".")).upper()
    return f"{key} ({env})"


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_ident(value: str) -> str:
    return "`" + value.replace("`", "``") + "`"


def grant_account(facts: ServerFacts | None, settings: Settings) -> str:
    """The account to name in GRANT statements, e.g. 'wpcdc'@'%'."""
    user, host = settings.mysql.user, "%"
    if facts is not None and "@" in facts.current_user:
        user, host = facts.current_user.rsplit("@", 1)
    return f"{sql_string(user)}@{sql_string(host)}"


def mycnf_fix(lines: Sequence[str], sql: Sequence[str] = (), *, restart: bool = False) -> str:
    out = ["In my.cnf, section [mysqld]:", *(f"    {line}" for line in lines)]
    if restart:
        out.append("then restart the server (this cannot be changed while it runs).")
    if sql:
        out.append("and, to apply it now without a restart (connections opened afterwards):")
        out += [f"    {statement}" for statement in sql]
    return "\n".join(out)


def variable(facts: ServerFacts, name: str) -> str | None:
    return facts.variables.get(name)


def is_on(value: str | None) -> bool:
    return value is not None and value.strip().upper() in ("ON", "1", "YES", "TRUE")


def number(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def format_hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    return f"{hours:g} h"


def short_list(items: Sequence[str], limit: int = 12) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"
