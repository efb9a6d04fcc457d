"""The GTID state of a binlog position: the set of transactions executed up to it.

This module owns parsing and extending that set in the server's own notation
(MariaDB ``domain-server-seq`` lists, MySQL ``uuid:intervals``), so that a
position can carry it and a GTID-based resume can rely on it. Pure: no I/O
(problems are logged on ``wpcdc.source``, the binlog source's logger).
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger("wpcdc.source")

_MARIADB_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_MYSQL_GTID = re.compile(r"^([0-9a-fA-F-]{36}):(\d+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class GtidState:
    """The GTID set executed up to the current position, in the server's notation.

    MariaDB: the last ``domain-server-seq`` per domain, like ``@@gtid_binlog_pos``
    ("0-1-42,1-2-7"). MySQL: ``uuid:1-42:50-60`` intervals, like
    ``@@gtid_executed``. The state is only as good as its base: built on an
    unknown base (``None``) it stays unknown, because a set holding only the
    GTIDs seen since would tell a GTID-based resume to replay everything before
    them. A MariaDB GTID list event (at the start of each binlog file) gives a
    complete base. MySQL tagged GTIDs (8.3+) are not parsed: they make the state
    unknown.
    """

    def __init__(self, gtid_set: str | None) -> None:
        self._known = False
        self._mariadb: dict[int, tuple[int, int]] = {}
        self._mysql: dict[str, list[list[int]]] = {}
        # ``value`` as last rendered; None once the state changed (it is read
        # for every position built, i.e. once per transaction at least).
        self._text: str | None = None
        self.reset(gtid_set)

    @property
    def known(self) -> bool:
        return self._known

    def reset(self, gtid_set: str | None) -> None:
        """Replace the state with ``gtid_set`` (None or unparseable: unknown)."""
        self._mariadb, self._mysql = {}, {}
        self._text = None
        self._known = gtid_set is not None
        if gtid_set is None:
            return
        for item in gtid_set.replace("\n", "").split(","):
            item = item.strip()
            if item and not self._parse(item):
                logger.warning("GTID set %r is not understood; GTID tracking is off", gtid_set)
                self.forget()
                return

    def _parse(self, item: str) -> bool:
        match = _MARIADB_GTID.match(item)
        if match:
            domain, server, seq = (int(g) for g in match.groups())
            self._add_mariadb(domain, server, seq)
            return True
        uuid, _, intervals = item.partition(":")
        if not _UUID.match(uuid) or not intervals:
            return False
        for interval in intervals.split(":"):
            first, _, last = interval.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                return False  # tagged GTIDs ("uuid:tag:1-5") among others
            self._add_mysql(uuid.lower(), int(first), int(last or first))
        return True

    def forget(self) -> None:
        self._known = False
        self._mariadb, self._mysql = {}, {}
        self._text = None

    def add(self, gtid: str) -> None:
        """Record a committed transaction's GTID ("0-1-42" or "uuid:42")."""
        if not self._known:
            return
        # The hot path (one per transaction): a plain MariaDB "domain-server-seq",
        # without the regex; what it does not take goes the regex way below.
        parts = gtid.split("-")
        if len(parts) == 3:
            domain_text, server_text, seq_text = parts
            if domain_text.isdecimal() and server_text.isdecimal() and seq_text.isdecimal():
                mariadb = self._mariadb
                domain, latest = int(domain_text), (int(server_text), int(seq_text))
                self._add_mariadb(domain, *latest)
                if (
                    len(mariadb) == 1
                    and not self._mysql
                    and mariadb[domain] == latest
                    and _canonical(domain_text)
                    and _canonical(server_text)
                    and _canonical(seq_text)
                ):
                    # One domain, and this GTID is its latest: the set reads as the
                    # GTID itself, no rendering needed.
                    self._text = gtid
                return
        match = _MARIADB_GTID.match(gtid)
        if match:
            domain, server, seq = (int(g) for g in match.groups())
            self._add_mariadb(domain, server, seq)
            return
        match = _MYSQL_GTID.match(gtid)
        if match:
            self._add_mysql(match.group(1).lower(), int(match.group(2)), int(match.group(2)))
            return
        logger.warning("GTID %r is not understood; GTID tracking is off", gtid)
        self.forget()

    def add_mariadb(self, gtid: str, domain: int, server: int, seq: int) -> None:
        """:meth:`add` for a MariaDB GTID its reader parsed: ``gtid`` is
        ``f"{domain}-{server}-{seq}"``. One per transaction: no text parsed again."""
        if not self._known:
            return
        mariadb = self._mariadb
        current = mariadb.get(domain)
        if current is None or seq >= current[1]:
            mariadb[domain] = (server, seq)
            # One domain: the set reads as its latest GTID, no rendering needed.
            self._text = gtid if len(mariadb) == 1 and not self._mysql else None

    def add_mysql(self, uuid: str, number: int) -> None:
        """:meth:`add` for a MySQL GTID its reader parsed (``uuid`` in lower case)."""
        if self._known:
            self._add_mysql(uuid, number, number)

    def _add_mariadb(self, domain: int, server: int, seq: int) -> None:
        current = self._mariadb.get(domain)
        # A GTID list may name several servers per domain; the position is the latest.
        if current is None or seq >= current[1]:
            self._mariadb[domain] = (server, seq)
            self._text = None

    def _add_mysql(self, uuid: str, first: int, last: int) -> None:
        self._text = None
        intervals = self._mysql.setdefault(uuid, [])
        # The common case: the next number of the last interval.
        if intervals and intervals[-1][0] <= first and first <= intervals[-1][1] + 1:
            intervals[-1][1] = max(intervals[-1][1], last)
            return
        intervals.append([first, last])
        intervals.sort()
        merged: list[list[int]] = []
        for start, end in intervals:
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._mysql[uuid] = merged

    def missing(self, other: GtidState) -> list[str]:
        """The transactions of ``other`` this state does not include (empty when
        it includes them all, or when either state is unknown). MariaDB: per
        domain, a lower sequence number; MySQL: the intervals not executed."""
        if not (self._known and other._known):
            return []
        missing = []
        for domain, (server, seq) in sorted(other._mariadb.items()):
            ours = self._mariadb.get(domain)
            if ours is None or ours[1] < seq:
                missing.append(f"{domain}-{server}-{seq}")
        for uuid, intervals in sorted(other._mysql.items()):
            for first, last in intervals:
                if not any(a <= first and last <= b for a, b in self._mysql.get(uuid, [])):
                    missing.append(f"{uuid}:{first}" if first == last else f"{uuid}:{first}-{last}")
        return missing

    @property
    def value(self) -> str | None:
        if not self._known:
            return None
        if self._text is None:
            self._text = self._render()
        return self._text

    def _render(self) -> str:
        if not self._mysql and len(self._mariadb) == 1:  # MariaDB, one domain: the common case
            ((domain, (server, seq)),) = self._mariadb.items()
            return f"{domain}-{server}-{seq}"
        parts = [f"{d}-{s}-{n}" for d, (s, n) in sorted(self._mariadb.items())]
        for uuid, intervals in sorted(self._mysql.items()):
            parts.append(uuid + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in intervals))
        return ",".join(parts)


def _canonical(number: str) -> bool:
    """Whether a decimal string is written as ``str(int(number))`` would (no leading zero)."""
    return number[0] != "0" or len(number) == 1
