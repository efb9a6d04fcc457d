"""From decoded binlog events to source items: what each event means for a transaction.

This module owns the event handling of the binlog source, for both readers:
which tables are watched (:class:`WatchedTables`), which events the library
reader asks for (:data:`HANDLED_EVENTS`), and :class:`EventHandler`, which feeds
each event to the :class:`~wpcdc.core.assembly.TransactionAssembler` and yields
the parts and idle markers it completes. The fast reader
(:mod:`wpcdc.mysql.dump`) calls its value-level methods with what it parsed from
the packets; ``EventHandler.handle`` maps mysql-replication's event objects onto
the same methods, so what an event means is decided here once. It refuses, loudly (promise "loud failure",
docs/ARCHITECTURE.md), what would make row changes invisible or unplaceable:
row events without column names or full row images, statement-based DML on a
watched table, compressed events (``ServerMisconfigured``) and INCIDENT events
(``PositionLost``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.backoff import Backoff
from wpcdc.core.errors import PositionLost, ServerMisconfigured
from wpcdc.core.rows import Idle, Op, Row, SourceItem, TableRef, TransactionPart, classify_table
from wpcdc.core.statements import DML_VERBS, named_tables, opens_transaction, statement_kind
from wpcdc.mysql.library import (
    DeleteRowsEvent,
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    NotImplementedEvent,
    PartialUpdateRowsEvent,
    QueryEvent,
    RotateEvent,
    RowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
    XAPrepareEvent,
    XidEvent,
)

logger = logging.getLogger("wpcdc.source")

# Binlog event type codes mysql-replication has no class for (NotImplementedEvent).
_ANONYMOUS_GTID = 0x22
_TRANSACTION_PAYLOAD = 0x28  # MySQL binlog_transaction_compression=ON
_HEARTBEAT_V2 = 0x29
_GTID_TAGGED = 0x2A  # MySQL 8.3+ tagged GTIDs, which the library cannot parse
_INCIDENT = 0x1A
_MARIADB_COMPRESSED = frozenset(range(0xA5, 0xAC))  # QUERY_/…ROWS_COMPRESSED_EVENT
_MARIADB_GTID_STANDALONE = 0x01  # Gtid_log_event::FL_STANDALONE: no XID/COMMIT follows


class WatchedTables:
    """Stands in for the list mysql-replication takes as ``only_tables``.

    The library only asks ``table in only_tables`` (for each TableMap and rows
    event), so a predicate is enough: watched tables are recognised by name, and
    a table created later (a new multisite blog, ``wp_7_posts``) is watched from
    its first row without re-reading ``information_schema`` or rebuilding the
    reader. Rows of other tables are skipped before they are decoded.
    """

    __slots__ = ("_cache", "_prefix")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._cache: dict[str, TableRef | None] = {}

    def ref(self, table: str) -> TableRef | None:
        try:
            return self._cache[table]
        except KeyError:
            ref = classify_table(self._prefix, table)
            if len(self._cache) < 100_000:
                self._cache[table] = ref
            return ref

    def __contains__(self, table: object) -> bool:
        return isinstance(table, str) and self.ref(table) is not None

    def __repr__(self) -> str:
        return f"<tables matching {self._prefix}[N_]posts|postmeta|term_*|terms>"


# The events the reader asks the library for: the ones EventHandler.handle tells apart.
HANDLED_EVENTS = [
    QueryEvent,
    XidEvent,
    XAPrepareEvent,
    GtidEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    RotateEvent,
    HeartbeatLogEvent,
    WriteRowsEvent,
    UpdateRowsEvent,
    PartialUpdateRowsEvent,
    DeleteRowsEvent,
    # Unknown event types arrive as this: compressed payloads, anonymous GTIDs.
    NotImplementedEvent,
]


def _full(bitmap: bytes, columns: int) -> bool:
    mask = (1 << columns) - 1
    return int.from_bytes(bitmap, "little") & mask == mask


def unnamed_columns(table: str) -> ServerMisconfigured:
    """The refusal for row events without column names (binlog_row_metadata=MINIMAL)."""
    return ServerMisconfigured(
        f"row events for {table} carry no column names, so wpcdc cannot tell "
        "the columns apart. Set binlog_row_metadata=FULL (MySQL 8.0.14+, MariaDB "
        "10.5+) globally and in the server configuration, then restart wpcdc."
    )


def partial_images(table: str) -> ServerMisconfigured:
    """The refusal for row events without every column (binlog_row_image not FULL)."""
    return ServerMisconfigured(
        f"row events for {table} carry only some columns, so the before and "
        "after images are incomplete. Set binlog_row_image=FULL globally and in the "
        "server configuration, then restart wpcdc."
    )


@dataclass(eq=False, kw_only=True)
class EventHandler:
    """Turns binlog events into source items, one event at a time.

    The one place deciding what each event means, for both readers: the fast
    reader (:mod:`wpcdc.mysql.dump`) calls the value-level methods (``commit``,
    ``gtid``, ``query``, ``rows``...) with what it parsed from the packet, and
    ``handle`` maps a mysql-replication event object onto the same methods.
    Owns no connection: it resets the source's reconnect backoff whenever the
    stream demonstrably works (a commit, a heartbeat).
    """

    assembler: TransactionAssembler
    tables: WatchedTables
    database: str
    prefix: str
    backoff: Backoff
    clock: Callable[[], float]

    def handle(self, event: Any) -> Iterator[SourceItem]:
        """The parts and idle markers this library event completes (none for most events)."""
        if isinstance(event, RowsEvent):
            yield from self._library_rows(event)
        elif isinstance(event, XidEvent | XAPrepareEvent):
            yield self.commit(event.packet.log_pos, event.timestamp)
        elif isinstance(event, MariadbGtidEvent):
            self.mariadb_gtid(event.gtid, event.flags, event.timestamp)
        elif isinstance(event, GtidEvent):
            self.gtid(event.gtid, event.timestamp)
        elif isinstance(event, QueryEvent):
            yield from self.query(
                event.query,
                event.schema,
                event.slave_proxy_id,
                event.timestamp,
                event.packet.log_pos,
            )
        elif isinstance(event, HeartbeatLogEvent):
            yield from self.heartbeat(event.ident, event.packet.log_pos)
        elif isinstance(event, RotateEvent):
            self.assembler.rotate(event.next_binlog, event.position)
        elif isinstance(event, MariadbGtidListEvent):
            self.assembler.gtid_list(",".join(g.gtid for g in event.gtid_list))
        elif isinstance(event, NotImplementedEvent):
            yield from self.unknown(event.event_type, event.timestamp)

    # -- events as plain values ------------------------------------------

    def commit(self, log_pos: int, timestamp: int) -> TransactionPart:
        """XID or XA PREPARE ending at ``log_pos``."""
        part = self.assembler.commit(log_pos, timestamp)
        self.backoff.reset()
        return part

    def gtid(self, gtid: str, timestamp: int, parsed: tuple[str, int] | None = None) -> None:
        """A MySQL GTID event: BEGIN or one statement follows. ``parsed``: (uuid in
        lower case, number), when the reader has them."""
        self.assembler.gtid(gtid, timestamp, opens=False, parsed=parsed)

    def mariadb_gtid(
        self, gtid: str, flags: int, timestamp: int, parsed: tuple[int, int, int] | None = None
    ) -> None:
        """A MariaDB GTID event. ``parsed``: (domain, server, sequence), when the
        reader has them."""
        opens = not flags & _MARIADB_GTID_STANDALONE
        self.assembler.gtid(gtid, timestamp, opens=opens, parsed=parsed)

    def rotate(self, file: str, pos: int) -> None:
        self.assembler.rotate(file, pos)

    def gtid_list(self, gtid_set: str) -> None:
        self.assembler.gtid_list(gtid_set)

    def heartbeat(self, file: str, log_pos: int) -> Iterator[SourceItem]:
        """A heartbeat: the server sent everything before ``file:log_pos``."""
        self.assembler.sent_up_to(file, log_pos)
        return self._idle()

    def query(
        self, query: str, schema: bytes, thread_id: int, timestamp: int, log_pos: int
    ) -> Iterator[SourceItem]:
        assembler = self.assembler
        kind = statement_kind(query)
        if kind == "begin":
            assembler.begin(thread_id, timestamp)
        elif kind == "commit":
            yield self.commit(log_pos, timestamp)
        elif kind == "statement":
            self._check_statement(query, schema, log_pos)
            if opens_transaction(query):
                assembler.begin(thread_id, timestamp)
                return
            part = assembler.statement(log_pos, timestamp)
            if part is not None:
                yield part
                self.backoff.reset()

    def unknown(self, kind: int, timestamp: int) -> Iterator[SourceItem]:
        """An event type neither reader decodes: refused when it hides row changes."""
        if kind in (_ANONYMOUS_GTID, _GTID_TAGGED):
            self.assembler.gtid(None, timestamp, opens=False, understood=kind == _ANONYMOUS_GTID)
        elif kind == _HEARTBEAT_V2:
            yield from self._idle()
        elif kind == _TRANSACTION_PAYLOAD:
            raise ServerMisconfigured(
                "the server writes compressed transactions (binlog_transaction_compression=ON), "
                "which wpcdc cannot decode. Set binlog_transaction_compression=OFF (globally "
                "and in the server configuration); the transactions already compressed can only "
                "be recovered by `wpcdc snapshot --force`."
            )
        elif kind in _MARIADB_COMPRESSED:
            raise ServerMisconfigured(
                "the server writes compressed binlog events (log_bin_compress=ON), which wpcdc "
                "cannot decode. Set log_bin_compress=OFF (globally and in the server "
                "configuration); the events already compressed can only be recovered by "
                "`wpcdc snapshot --force`."
            )
        elif kind == _INCIDENT:
            raise PositionLost(
                f"the server logged an INCIDENT event after {self.assembler.position}: changes "
                "may be missing from the binlog there. Run `wpcdc snapshot --force` to reload the "
                "current state."
            )

    def check_rows(
        self, table: str, named: bool, columns: int, present: bytes, present_after: bytes | None
    ) -> None:
        """Refuse row events of a watched table that wpcdc cannot place: no column
        names (``named`` False), or a before or after image without every column."""
        if not named:
            raise unnamed_columns(table)
        if not _full(present, columns) or (
            present_after is not None and not _full(present_after, columns)
        ):
            raise partial_images(table)

    def changes(
        self,
        ref: TableRef,
        op: Op,
        pairs: Iterable[tuple[Row | None, Row | None]],
        timestamp: int,
    ) -> Iterator[SourceItem]:
        """The row changes of one rows event, as (before, after) images."""
        row = self.assembler.row
        for before, after in pairs:
            part = row(ref, op, before, after, timestamp)
            if part is not None:
                yield part

    # -- helpers ---------------------------------------------------------

    def _idle(self) -> Iterator[SourceItem]:
        self.backoff.reset()
        if not self.assembler.in_transaction:
            yield Idle(position=self.assembler.position, wall_time=self.clock())

    def _check_statement(self, query: str, schema_bytes: bytes, log_pos: int) -> None:
        schema = schema_bytes.decode("utf-8", "replace") if schema_bytes else ""
        verb, tables = named_tables(
            query,
            default_schema=schema,
            database=self.database,
            prefix=self.prefix,
        )
        if not tables:
            return
        where = f"{self.assembler.position.file}:{log_pos}"
        if verb in DML_VERBS:
            raise ServerMisconfigured(
                f"the binlog holds a {verb} on {', '.join(tables)} as an SQL statement "
                f"(at {where}), not as row changes, so wpcdc cannot see which rows changed. "
                "Set binlog_format=ROW globally and in the server configuration, make sure "
                "no client sets a session binlog_format, then restart wpcdc from a snapshot "
                "(`wpcdc snapshot --force`)."
            )
        if verb in {"TRUNCATE", "DROP"}:
            logger.warning(
                "%s of watched table(s) %s at %s: their rows go without row changes; "
                "consumers keep the last state they saw",
                verb,
                ", ".join(tables),
                where,
            )
        else:
            logger.info("%s on watched table(s) %s at %s", verb, ", ".join(tables), where)

    def _library_rows(self, event: Any) -> Iterator[SourceItem]:
        ref = self.tables.ref(event.table)
        if ref is None or event.schema != self.database:
            return  # the library filters these already
        columns = event.columns
        update = isinstance(event, UpdateRowsEvent)
        self.check_rows(
            event.table,
            not (columns and columns[0].name is None),
            event.number_of_columns,
            event.columns_present_bitmap,
            event.columns_present_bitmap2 if update else None,
        )
        if update:
            op, pairs = Op.UPDATE, ((r["before_values"], r["after_values"]) for r in event.rows)
        elif isinstance(event, WriteRowsEvent):
            op, pairs = Op.INSERT, ((None, r["values"]) for r in event.rows)
        else:
            op, pairs = Op.DELETE, ((r["values"], None) for r in event.rows)
        yield from self.changes(ref, op, pairs, event.timestamp)
