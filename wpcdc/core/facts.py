"""The facts ``wpcdc check`` judges, and the shape of its verdicts.

This module owns what the server and the broker said, unjudged, as plain
dataclasses (:class:`ServerFacts`, :class:`ServerUnreachable`,
:class:`BrokerFacts`...), the reading of the server's flavor and of the
WordPress tables it holds (:func:`detect_flavor`, :func:`wordpress_layout`),
and the result of one check (:class:`Status`, :class:`CheckResult`,
:func:`passed`). The adapters gather the facts (``wpcdc.mysql.facts``,
``wpcdc.kafka.facts``); the rules that judge them against the settings live in
``wpcdc.config.preflight``. Pure: no I/O.

Statuses: PASS (verified), FAIL (a required condition is violated), WARN
(passes, but something deserves a look or could not be verified), INFO
(informational only), SKIP (could not run because a prerequisite failed). The
preflight passes when no required check is FAIL or SKIP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from wpcdc.core.rows import WORDPRESS_KINDS, classify_table

Flavor = Literal["mariadb", "mysql"]

# The five tables of one WordPress site; the first three are streamed, the
# last two are the lookups that give term_taxonomy ids their meaning.
WORDPRESS_TABLES = tuple(kind.value for kind in WORDPRESS_KINDS)


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
        """Every table wpcdc reads: those of the main site and of each complete blog,
        with their options, and the network's users (links in events)."""
        names = [self.prefix + suffix for suffix in (*WORDPRESS_TABLES, "options", "users")]
        for blog in self.blogs:
            names += [f"{self.prefix}{blog}_{suffix}" for suffix in (*WORDPRESS_TABLES, "options")]
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


def passed(results: Iterable[CheckResult]) -> bool:
    """The preflight passes: no required check failed or was skipped."""
    return not any(result.blocking for result in results)
