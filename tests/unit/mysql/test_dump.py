"""The fast reader's event parsing on hand-built dump packets: what each control event
means, which tables are skipped before any value is read, and the loud refusals."""

from __future__ import annotations

import io
import socket
import struct
import time
from typing import Any

import pymysql
import pytest

from tests.support.binlog_bytes import (
    UPDATE,
    WRITE,
    Col,
    image,
    int_,
    rows_event,
    string,
    table_map_event,
)
from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.backoff import Backoff
from wpcdc.core.binlog_rows import DecoderCache
from wpcdc.core.column_plans import Unsupported
from wpcdc.core.errors import PositionLost, ServerMisconfigured
from wpcdc.core.group import row_bytes
from wpcdc.core.positions import Position
from wpcdc.core.rows import Idle, Op, SourceItem, TableKind, TransactionPart, Wait
from wpcdc.mysql import dump, dump_stream
from wpcdc.mysql.binlog_events import EventHandler, WatchedTables

START = Position("binlog.000007", 4)
SID = bytes.fromhex("3e11fa4771ca11e19e33c80aa9429562")
EOF_PACKET = b"\xfe\x00\x00\x02\x00"


def event(kind: int, body: bytes, *, log_pos: int = 0, server_id: int = 1, ts: int = 1700) -> bytes:
    """A dump packet: the OK byte, the 19-byte header, the body and a CRC32 (not checked)."""
    header = struct.pack("<IBIIIH", ts, kind, server_id, 19 + len(body) + 4, log_pos, 0)
    return b"\x00" + header + body + b"\xde\xad\xbe\xef"


def format_description(version: str) -> bytes:
    lengths = bytearray(0xA4)
    for kind in (dump.WRITE_ROWS_V1, dump.UPDATE_ROWS_V1, dump.DELETE_ROWS_V1):
        lengths[kind - 1] = 8
    for kind in (dump.WRITE_ROWS_V2, dump.UPDATE_ROWS_V2, dump.DELETE_ROWS_V2):
        lengths[kind - 1] = 10
    lengths[dump.QUERY - 1], lengths[dump.ROTATE - 1], lengths[dump.TABLE_MAP - 1] = 13, 8, 8
    body = struct.pack("<H50sIB", 4, version.encode(), 0, 19) + bytes(lengths) + b"\x01"
    return event(dump.FORMAT_DESCRIPTION, body)


def query(sql: str, *, schema: str = "wp", thread: int = 42, log_pos: int = 0) -> bytes:
    status = b"\x00\x00\x00\x00\x00"  # Q_FLAGS2_CODE and its value, never read
    post = struct.pack("<IIBHH", thread, 0, len(schema), 0, len(status))
    return event(
        dump.QUERY, post + status + schema.encode() + b"\x00" + sql.encode(), log_pos=log_pos
    )


def table_map(table_id: int, schema: str, table: str) -> bytes:
    # One BIGINT column, no optional metadata: enough for the name check.
    body = (
        table_id.to_bytes(6, "little")
        + b"\x00\x00"
        + bytes([len(schema)])
        + schema.encode()
        + b"\x00"
        + bytes([len(table)])
        + table.encode()
        + b"\x00"
        + b"\x01\x08\x00\x00"
    )
    return event(dump.TABLE_MAP, body)


def garbage_rows(kind: int, table_id: int) -> bytes:
    # A row event whose rows cannot be decoded: only a skipped table gets past it.
    return event(kind, table_id.to_bytes(6, "little") + b"\x00\x00" + b"\xff" * 30)


class FakeConnection:
    """The dump stream as a server sends it: framed packets on a buffered file."""

    def __init__(self, packets: list[bytes]) -> None:
        stream = framed([*packets, EOF_PACKET])
        self._rfile = io.BufferedReader(io.BytesIO(stream))  # type: ignore[arg-type]


def framed(packets: list[bytes]) -> bytes:
    """Packets as the server frames them: 3-byte length, sequence number, payload."""
    return b"".join(
        len(p).to_bytes(3, "little") + bytes([n % 256]) + p for n, p in enumerate(packets, start=1)
    )


def dump_reader(
    connection: object, handler: EventHandler, read_timeout: float | None = None
) -> dump.DumpReader:
    return dump.DumpReader(
        connection,
        checksum=True,
        handler=handler,
        tables=handler.tables,
        database="wp",
        decoders=DecoderCache(),
        logged=set(),
        read_timeout=read_timeout,
    )


def read(packets: list[bytes], start: Position = START) -> tuple[list[SourceItem], EventHandler]:
    handler = EventHandler(
        assembler=TransactionAssembler(start=start),
        tables=WatchedTables("wp_"),
        database="wp",
        prefix="wp_",
        backoff=Backoff(0.1, 1.0),
        clock=lambda: 5.0,
    )
    # A file never makes the reader wait: only items.
    return list(dump_reader(FakeConnection(packets), handler).items()), handler  # type: ignore[arg-type]


def parts(items: list[SourceItem]) -> list[TransactionPart]:
    return [item for item in items if isinstance(item, TransactionPart)]


def test_gtid_text_spells_mysql_gtids_like_the_library() -> None:
    assert f"{dump.uuid_text(SID)}:23" == "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"


def test_mysql_transactions_carry_gtid_thread_and_end_position() -> None:
    gtid_body = b"\x01" + SID + struct.pack("<Q", 9) + b"\x00" * 16
    items, handler = read(
        [
            format_description("9.7.4"),
            event(dump.GTID, gtid_body, ts=1701),
            query("BEGIN", thread=77),
            table_map(50, "other_db", "wp_posts"),
            garbage_rows(dump.WRITE_ROWS_V2, 50),
            event(dump.XID, struct.pack("<Q", 1), log_pos=900),
        ],
        start=Position("binlog.000007", 4, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-8"),
    )
    (part,) = parts(items)
    assert part.changes == ()
    assert part.transaction.gtid == "3e11fa47-71ca-11e1-9e33-c80aa9429562:9"
    assert part.transaction.thread_id == 77 and part.transaction.timestamp == 1701
    assert part.end == Position("binlog.000007", 900, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9")
    assert handler.assembler.position == part.end


def test_mariadb_gtid_list_gtid_and_unwatched_rows_are_read_without_decoding() -> None:
    gtid_list = struct.pack("<I", 1) + struct.pack("<IIQ", 0, 1, 41)
    items, _ = read(
        [
            format_description("10.11.6-MariaDB-log"),
            event(dump.MARIADB_GTID_LIST, gtid_list),
            event(dump.MARIADB_GTID, struct.pack("<QIB", 42, 0, 0x0C), server_id=1),
            table_map(51, "wp", "wp_comments"),
            garbage_rows(dump.WRITE_ROWS_V1, 51),
            garbage_rows(dump.DELETE_ROWS_V1, 999),  # a table id never mapped
            event(dump.XID, struct.pack("<Q", 1), log_pos=1234),
        ]
    )
    (part,) = parts(items)
    assert part.transaction.gtid == "0-1-42" and part.transaction.thread_id is None
    assert part.end == Position("binlog.000007", 1234, "0-1-42")


def test_ddl_stands_alone_and_rotate_and_heartbeat_move_the_position() -> None:
    items, handler = read(
        [
            format_description("10.11.6-MariaDB-log"),
            query("CREATE TABLE t (a int)", log_pos=300),
            event(dump.ROTATE, struct.pack("<Q", 4) + b"binlog.000008"),
            event(dump.HEARTBEAT, b"binlog.000008", log_pos=500),
        ]
    )
    ddl = parts(items)[0]
    assert ddl.end == Position("binlog.000007", 300)
    idle = items[-1]
    assert isinstance(idle, Idle) and idle.position == Position("binlog.000008", 500)
    assert handler.assembler.position == Position("binlog.000008", 500)


def test_statement_based_dml_on_a_watched_table_is_refused() -> None:
    with pytest.raises(ServerMisconfigured, match="binlog_format=ROW"):
        read([query("BEGIN"), query("UPDATE wp_posts SET post_title = 'x'")])


@pytest.mark.parametrize(
    ("kind", "error", "advice"),
    [
        (0x28, ServerMisconfigured, "binlog_transaction_compression=OFF"),
        (0xA5, ServerMisconfigured, "log_bin_compress=OFF"),
        (0x1A, PositionLost, "INCIDENT"),
    ],
    ids=["mysql-compressed", "mariadb-compressed", "incident"],
)
def test_event_types_that_hide_row_changes_are_refused(
    kind: int, error: type[Exception], advice: str
) -> None:
    with pytest.raises(error, match=advice):
        read([format_description("9.7.4"), event(kind, b"\x00" * 12)])


def test_events_nobody_needs_are_passed_over() -> None:
    # INTVAR, ROWS_QUERY, MariaDB annotate rows and binlog checkpoint.
    others = [event(kind, b"\x00" * 9) for kind in (0x05, 0x1D, 0xA0, 0xA1)]
    items, handler = read([format_description("9.7.4"), *others])
    assert items == [] and handler.assembler.position == START


def test_rows_of_a_table_map_without_column_names_are_refused() -> None:
    with pytest.raises(ServerMisconfigured, match="binlog_row_metadata=FULL"):
        read(
            [
                format_description("9.7.4"),
                query("BEGIN"),
                table_map(52, "wp", "wp_posts"),
                garbage_rows(dump.WRITE_ROWS_V2, 52),
            ]
        )


def test_start_dump_sends_the_library_sequence() -> None:
    class Cursor:
        def __init__(self, log: list[Any]) -> None:
            self.log = log

        def __enter__(self) -> Cursor:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def execute(self, sql: str, args: Any = None) -> None:
            self.log.append((sql, args))

        def fetchone(self) -> tuple[str, str]:
            return ("binlog_checksum", "CRC32")

    class Connection:
        def __init__(self) -> None:
            self.log: list[Any] = []
            self.sent = b""
            self._next_seq_id = 0

        def cursor(self) -> Cursor:
            return Cursor(self.log)

        def _write_bytes(self, data: bytes) -> None:
            self.sent += data

    connection = Connection()
    checksum = dump_stream.start_dump(
        connection, server_id=4242, position=Position("binlog.000003", 1234), heartbeat=0.25
    )
    assert checksum
    statements = [sql for sql, _ in connection.log]
    assert "SET @master_binlog_checksum = @@global.binlog_checksum" in statements
    assert ("SET @master_heartbeat_period = %s", (250_000_000,)) in connection.log
    assert "SET @mariadb_slave_capability = 4" in statements
    name = b"binlog.000003"
    assert connection.sent == (
        struct.pack("<I", len(name) + 11)
        + bytes([dump_stream.COM_BINLOG_DUMP])
        + struct.pack("<IHI", 1234, 0, 4242)
        + name
    )
    assert connection._next_seq_id == 1


META = [
    Col("meta_id", 8, unsigned=True),
    Col("post_id", 8, unsigned=True),
    Col("meta_key", 15, (1020).to_bytes(2, "little"), nullable=True),
    Col("meta_value", 252, b"\x04", nullable=True),
]


def meta_image(meta_id: int, value: str) -> bytes:
    return image([int_(meta_id, "Q"), int_(7, "Q"), string("color", 2), string(value, 4)])


def meta_transaction(version: int) -> list[bytes]:
    kinds = {
        1: (dump.WRITE_ROWS_V1, dump.UPDATE_ROWS_V1),
        2: (dump.WRITE_ROWS_V2, dump.UPDATE_ROWS_V2),
    }
    write, update = kinds[version]
    mapped = event(dump.TABLE_MAP, table_map_event(60, "wp", "wp_postmeta", META))
    _, inserted, _ = rows_event(WRITE, 60, 4, [meta_image(1, "blue")], version=version)
    _, changed, _ = rows_event(
        UPDATE, 60, 4, [meta_image(1, "blue"), meta_image(1, "red 😀")], version=version
    )
    return [
        format_description("9.7.4" if version == 2 else "10.11.6-MariaDB-log"),
        query("BEGIN"),
        mapped,
        event(write, inserted),
        mapped,
        event(update, changed),
        event(dump.XID, struct.pack("<Q", 1), log_pos=777),
    ]


EXPECTED = [
    (Op.INSERT, None, {"meta_id": 1, "post_id": 7, "meta_key": "color", "meta_value": "blue"}),
    (
        Op.UPDATE,
        {"meta_id": 1, "post_id": 7, "meta_key": "color", "meta_value": "blue"},
        {"meta_id": 1, "post_id": 7, "meta_key": "color", "meta_value": "red 😀"},
    ),
]


def changes(items: list[SourceItem]) -> list[tuple[Any, ...]]:
    return [(c.op, c.before, c.after) for p in parts(items) for c in p.changes]


@pytest.mark.parametrize("version", [1, 2])
def test_rows_of_a_watched_table_come_from_the_generated_decoder(version: int) -> None:
    items, _ = read(meta_transaction(version))
    assert changes(items) == EXPECTED
    (part,) = parts(items)
    assert {c.table.kind for c in part.changes} == {TableKind.POSTMETA}


def test_row_changes_carry_a_memory_estimate_near_what_their_images_hold() -> None:
    # From the event's bytes, not from each value: within a factor of two of
    # row_bytes, what the fold would work out from the images themselves.
    items, _ = read(meta_transaction(2))
    (part,) = parts(items)
    for change in part.changes:
        exact = row_bytes(change.before) + row_bytes(change.after)
        assert exact / 2 <= change.size <= exact * 2


@pytest.mark.parametrize("version", [1, 2])
def test_a_layout_the_decoder_refuses_is_decoded_by_the_library_and_logged_once(
    version: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: DecoderCache, table_map: Any, keep: Any = None) -> Any:
        raise Unsupported("column meta_value: refused by the test")

    monkeypatch.setattr(DecoderCache, "get", refuse)
    caplog.set_level("WARNING", logger="wpcdc.source")
    items, _ = read(meta_transaction(version) * 2)
    assert changes(items) == EXPECTED * 2
    warnings = [r.getMessage() for r in caplog.records]
    assert (
        len(warnings) == 1 and "wp_postmeta" in warnings[0] and "refused by the test" in warnings[0]
    )


USERS = [
    Col("ID", 8, unsigned=True),
    Col("user_login", 15, (240).to_bytes(2, "little")),
    Col("user_pass", 15, (1020).to_bytes(2, "little")),
    Col("user_nicename", 15, (200).to_bytes(2, "little")),
    Col("user_email", 15, (400).to_bytes(2, "little")),
    Col("display_name", 15, (1000).to_bytes(2, "little")),
]


def test_of_a_users_row_only_the_kept_columns_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[Any] = []
    real_get = DecoderCache.get

    def spy(self: DecoderCache, table_map: Any, keep: Any = None) -> Any:
        decoded.append(keep)
        return real_get(self, table_map, keep)

    monkeypatch.setattr(DecoderCache, "get", spy)
    user = image(
        [
            int_(3, "Q"),
            string("admin"),
            string("$P$secret-hash", 2),
            string("jane-doe"),
            string("jane@example.com", 2),
            string("Jane Doe", 2),
        ]
    )
    _, inserted, _ = rows_event(WRITE, 61, 6, [user], version=2)
    items, _ = read(
        [
            format_description("9.7.4"),
            query("BEGIN"),
            event(dump.TABLE_MAP, table_map_event(61, "wp", "wp_users", USERS)),
            event(dump.WRITE_ROWS_V2, inserted),
            event(dump.XID, struct.pack("<Q", 1), log_pos=777),
        ]
    )
    assert decoded == [frozenset({"ID", "user_nicename", "display_name"})]
    (change,) = [c for p in parts(items) for c in p.changes]
    assert change.after == {"ID": 3, "user_nicename": "jane-doe", "display_name": "Jane Doe"}


def test_a_partial_row_image_from_the_decoder_is_refused() -> None:
    mapped = event(dump.TABLE_MAP, table_map_event(60, "wp", "wp_postmeta", META))
    _, partial, _ = rows_event(
        WRITE, 60, 4, [meta_image(1, "blue")], present=[True, True, True, False]
    )
    with pytest.raises(ServerMisconfigured, match="binlog_row_image=FULL"):
        read(
            [
                format_description("9.7.4"),
                query("BEGIN"),
                mapped,
                event(dump.WRITE_ROWS_V2, partial),
            ]
        )


def test_a_server_error_is_raised_as_pymysql_raises_it() -> None:
    error = b"\xff" + struct.pack("<H", 1236) + b"#HY000" + b"Could not find first log file"
    with pytest.raises(pymysql.err.OperationalError) as raised:
        read([format_description("9.7.4"), error])
    assert raised.value.args[0] == 1236


def test_a_connection_closed_mid_packet_is_a_lost_connection() -> None:
    class Truncated:
        _rfile = io.BufferedReader(io.BytesIO(b"\x40\x00\x00\x01\x00abc"))  # type: ignore[arg-type]

    reader = dump_reader(Truncated(), read([])[1])
    with pytest.raises(pymysql.err.OperationalError) as raised:
        list(reader.items())
    assert raised.value.args[0] == 2013


def test_an_event_over_16_mib_is_read_from_its_packets() -> None:
    heartbeat = event(dump.HEARTBEAT, b"binlog.000007" + b"\x00" * 0x1000000, log_pos=99)
    first, rest = heartbeat[:0xFFFFFF], heartbeat[0xFFFFFF:]

    class Split:
        _rfile = io.BufferedReader(
            io.BytesIO(  # type: ignore[arg-type]
                b"\xff\xff\xff\x01"
                + first
                + len(rest).to_bytes(3, "little")
                + b"\x02"
                + rest
                + len(EOF_PACKET).to_bytes(3, "little")
                + b"\x03"
                + EOF_PACKET
            )
        )

    (idle,) = list(dump_reader(Split(), read([])[1]).items())
    assert isinstance(idle, Idle)


# --- the stream read without blocking (a real socket pair) -----------------------


class SocketConnection:
    """A dump connection whose bytes come from the test through a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock


def socket_reader(sock: socket.socket, read_timeout: float | None = None) -> dump.DumpReader:
    return dump_reader(SocketConnection(sock), read([])[1], read_timeout)


def heartbeats(count: int) -> list[bytes]:
    return [
        event(dump.HEARTBEAT, f"binlog.{n:06d}".encode(), log_pos=100 + n)
        for n in range(1, count + 1)
    ]


def test_packets_cut_anywhere_by_the_network_arrive_whole_and_waits_come_between() -> None:
    stream = framed([format_description("9.7.4"), *heartbeats(40), EOF_PACKET])
    ours, server = socket.socketpair()
    with ours, server:
        steps = socket_reader(ours).items()
        received: list[object] = []
        waits = 0
        # 7-byte pieces: headers, bodies and checksums are all cut somewhere.
        pieces = [stream[i : i + 7] for i in range(0, len(stream), 7)]
        for step in steps:
            if isinstance(step, Wait):
                assert step.sock is ours and step.deadline is None
                waits += 1
                server.sendall(pieces.pop(0))
                continue
            received.append(step)
        assert not pieces  # it read to the EOF packet and no further
    assert len(received) == 40 and all(isinstance(item, Idle) for item in received)
    assert waits == len(stream) // 7 + 1


def test_a_read_that_gets_nothing_for_the_read_timeout_times_out() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        steps = socket_reader(ours, read_timeout=0.05).items()
        wait = next(steps)
        assert isinstance(wait, Wait) and wait.deadline is not None
        assert 0 < wait.deadline - time.monotonic() <= 0.05
        # Woken before the deadline with nothing to read: it waits again.
        assert isinstance(next(steps), Wait)
        time.sleep(0.06)
        with pytest.raises(TimeoutError):
            next(steps)


def test_the_server_closing_mid_packet_is_a_lost_connection() -> None:
    stream = framed([format_description("9.7.4"), *heartbeats(1)])
    ours, server = socket.socketpair()
    with ours:
        server.sendall(stream[:-5])
        server.close()
        with pytest.raises(pymysql.err.OperationalError) as raised:
            list(socket_reader(ours).items())
    assert raised.value.args[0] == 2013
