"""Assembling transactions from binlog events, and the position that goes with them.

This module owns :class:`TransactionAssembler`: fed binlog events as plain values
(GTID, BEGIN, row change, commit, rotate), it builds one
:class:`~wpcdc.core.rows.TransactionPart` per transaction (several for a large
one, at most ``max_part_rows`` row changes each; the last carries ``end``) and
keeps the current transaction boundary, the source's position (promise "own
position", docs/ARCHITECTURE.md). After a reconnect it skips the row changes of
the re-read transaction that were already handed out, so each row change is
handed out once. Pure: no I/O (oddities are logged on ``wpcdc.source``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from wpcdc.core.errors import WpcdcError
from wpcdc.core.gtid import GtidState
from wpcdc.core.positions import Position
from wpcdc.core.rows import (
    WATCHED_OPTIONS,
    Op,
    Row,
    RowChange,
    TableKind,
    TableRef,
    Transaction,
    TransactionPart,
    site_row,
)

_OPTIONS, _USERS = TableKind.OPTIONS, TableKind.USERS
# Watched option names as the decoder may give them: text, or bytes.
_WATCHED = WATCHED_OPTIONS | {name.encode() for name in WATCHED_OPTIONS}

logger = logging.getLogger("wpcdc.source")

DEFAULT_MAX_PART_ROWS = 1000


@dataclass(slots=True)
class _Open:
    """The transaction being assembled."""

    start: Position
    gtid: str | None
    # The GTID as its reader parsed it, if it did: (domain, server, sequence) on
    # MariaDB, (uuid, number) on MySQL; committed without parsing the text again.
    parsed: tuple[int, int, int] | tuple[str, int] | None
    thread_id: int | None
    timestamp: int
    # True once BEGIN (or a MariaDB GTID announcing a body) was seen: statements
    # then belong to it. False after a bare GTID: the next statement stands alone.
    explicit: bool
    # Row changes with an index below this were handed out already (before a reconnect).
    handed_out: int = 0
    next_row: int = 0
    buffer: list[RowChange] = field(default_factory=list)
    transaction: Transaction | None = None

    def metadata(self) -> Transaction:
        if self.transaction is None:
            self.transaction = Transaction(
                start=self.start,
                gtid=self.gtid,
                thread_id=self.thread_id,
                timestamp=self.timestamp,
            )
        return self.transaction


class TransactionAssembler:
    """Folds binlog events (as plain values) into transaction parts; owns the position.

    Pure: the source feeds it what it reads, it returns parts. ``position`` is the
    current transaction boundary: where the transaction in progress started, or
    where the next one starts. ``rewind()`` prepares for re-reading from there.
    """

    def __init__(self, *, start: Position, max_part_rows: int = DEFAULT_MAX_PART_ROWS) -> None:
        if max_part_rows < 1:
            raise ValueError("max_part_rows must be at least 1")
        self._max_part_rows = max_part_rows
        self._file = start.file
        self._pos = start.pos
        self._gtids = GtidState(start.gtid_set)
        self._position = start
        self._open: _Open | None = None
        self._skip = 0

    @property
    def position(self) -> Position:
        return self._position

    @property
    def in_transaction(self) -> bool:
        return self._open is not None

    def rewind(self) -> None:
        """Forget the transaction in progress; the reader restarts at ``position``.

        Row changes of it that were already handed out are skipped when it is
        read again.
        """
        if self._open is not None:
            self._skip = self._open.handed_out
            self._open = None

    # -- events ----------------------------------------------------------

    def rotate(self, file: str, pos: int) -> None:
        if self._open is not None:
            logger.warning("rotate to %s:%d inside a transaction ignored", file, pos)
            return
        if (file, pos) != (self._file, self._pos):
            self._file, self._pos = file, pos
            self._position = Position(file, pos, self._gtids.value)

    def sent_up_to(self, file: str, pos: int) -> None:
        """The server has sent every event before ``file:pos`` (a heartbeat says so).

        With no transaction open that is a transaction boundary: the events in
        between hold no transaction (a rotation's format description, MariaDB's
        GTID list and binlog checkpoint events), so the position may move past
        them. Otherwise an idle stream after ``FLUSH BINARY LOGS`` would stay
        before them, short of the binlog's end, for as long as nothing is written.
        """
        if self._open is None and file == self._file and pos > self._pos:
            self._pos = pos
            self._position = Position(file, pos, self._gtids.value)

    def gtid_list(self, gtid_set: str) -> None:
        """A complete GTID state (MariaDB GTID list event at the start of a file)."""
        if not self._gtids.known and self._open is None:
            self._gtids.reset(gtid_set)
            self._position = Position(self._file, self._pos, self._gtids.value)

    def gtid(
        self,
        gtid: str | None,
        timestamp: int,
        *,
        opens: bool,
        understood: bool = True,
        parsed: tuple[int, int, int] | tuple[str, int] | None = None,
    ) -> None:
        """A GTID event starts a transaction. ``opens``: a body closed by XID/COMMIT
        follows (MariaDB says so in its flags); otherwise BEGIN or one statement.
        ``parsed``: the GTID's parts, when the reader has them (see _Open.parsed)."""
        if self._open is not None:
            self._abandon("a GTID event")
        if not understood:
            self._gtids.forget()
        self._open = self._new(gtid, None, timestamp, explicit=opens, parsed=parsed)

    def begin(self, thread_id: int, timestamp: int) -> None:
        if self._open is None:
            self._open = self._new(
                gtid=None, thread_id=thread_id, timestamp=timestamp, explicit=True
            )
        elif not self._open.explicit:
            self._open.thread_id = thread_id
            self._open.explicit = True

    def statement(self, end_pos: int, timestamp: int) -> TransactionPart | None:
        """A query that is neither BEGIN nor COMMIT: inside the open transaction,
        or a transaction of its own (DDL)."""
        if self._open is not None and self._open.explicit:
            return None
        return self.commit(end_pos, timestamp)

    def row(
        self,
        table: TableRef,
        op: Op,
        before: Row | None,
        after: Row | None,
        timestamp: int,
        size: int = -1,
    ) -> TransactionPart | None:
        """A row change on a watched table; returns a part when the buffer is full.
        ``size``: what its images cost in memory, if the reader knows (RowChange.size)."""
        kind = table.kind
        if kind is _OPTIONS or kind is _USERS:
            # Options and users: keep only the watched options and allowed columns;
            # a transient write ends here, before it is counted or built into anything.
            if (
                kind is _OPTIONS
                and (after if after is not None else before or {}).get("option_name")
                not in _WATCHED
                and (before is None or before.get("option_name") not in _WATCHED)
            ):
                return None
            before, after = site_row(kind, before), site_row(kind, after)
            if op is Op.UPDATE and (before is None or after is None):
                # An option renamed into or out of the watched names.
                op = Op.INSERT if before is None else Op.DELETE
        current = self._open
        if current is None:
            # Rows with no transaction: the start position was inside one.
            current = self._open = self._new(None, None, timestamp, explicit=True)
        index = current.next_row
        current.next_row = index + 1
        if index < current.handed_out:
            return None
        # Positional: one per row change, and keywords cost more.
        current.buffer.append(RowChange(table, op, before, after, index, size))
        if len(current.buffer) >= self._max_part_rows:
            return self._part(current, end=None)
        return None

    def commit(self, end_pos: int, timestamp: int) -> TransactionPart:
        """The commit event (XID, COMMIT, XA PREPARE, or a standalone statement) ends at ``end_pos``."""
        current = self._open
        if current is None:
            current = self._new(None, None, timestamp, explicit=True)
        gtid, parsed = current.gtid, current.parsed
        if gtid is not None:
            if parsed is None:
                self._gtids.add(gtid)
            elif len(parsed) == 3:
                self._gtids.add_mariadb(gtid, *parsed)
            else:
                self._gtids.add_mysql(*parsed)
        self._pos = end_pos
        self._position = Position(self._file, end_pos, self._gtids.value)
        self._open = None
        return self._part(current, end=self._position)

    # -- helpers ---------------------------------------------------------

    def _new(
        self,
        gtid: str | None,
        thread_id: int | None,
        timestamp: int,
        *,
        explicit: bool,
        parsed: tuple[int, int, int] | tuple[str, int] | None = None,
    ) -> _Open:
        skip, self._skip = self._skip, 0
        # Positional: one per transaction, and keywords cost more.
        return _Open(self._position, gtid, parsed, thread_id, timestamp, explicit, skip)

    def _part(self, current: _Open, end: Position | None) -> TransactionPart:
        if current.buffer:
            current.handed_out = current.buffer[-1].row + 1
        part = TransactionPart(current.metadata(), tuple(current.buffer), end)
        if end is None:
            current.buffer = []  # more rows follow (at a commit the transaction is done)
        return part

    def _abandon(self, reason: str) -> None:
        current = self._open
        assert current is not None
        if current.next_row > 0:
            # Its changes cannot be placed: refusing beats dropping them silently.
            raise WpcdcError(
                f"the binlog transaction at {current.start} has row changes but no commit "
                f"before {reason}; wpcdc cannot tell whether they were committed. "
                "Please report this with the output of mysqlbinlog around that position."
            )
        logger.debug("transaction at %s without commit before %s", current.start, reason)
        self._open = None
