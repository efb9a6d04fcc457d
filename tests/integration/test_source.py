"""The binlog source against real servers: WordPress rows, resumes, restarts, failures."""

from __future__ import annotations

import contextlib
import datetime
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.infra import Flavor, MysqlEndpoint, ServerFactory, SharedServers
from tests.support.streaming import eventually
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.binlog_rows import DecoderCache
from wpcdc.core.column_plans import Unsupported
from wpcdc.core.errors import PositionLost, PreflightFailed, ServerMisconfigured
from wpcdc.core.positions import Position
from wpcdc.core.rows import Idle, Op, RowChange, SourceItem, TableKind, TableRef, TransactionPart
from wpcdc.local.wordpress import WordPressSite
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.status import check_position_available, current_position

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mariadb", "mysql")]

POSTS = TableRef(blog_id=1, kind=TableKind.POSTS)
POSTMETA = TableRef(blog_id=1, kind=TableKind.POSTMETA)
TERM_RELATIONSHIPS = TableRef(blog_id=1, kind=TableKind.TERM_RELATIONSHIPS)

# Fast heartbeats keep the tests short; the read timeout stays generous because
# two cores are shared with the server, PHP and other tests.
FAST = {"heartbeat": 0.25, "read_timeout": 3.0, "backoff_initial": 0.2, "backoff_max": 1.0}

# Every reader registers with its own id: a server drops a replica whose id
# another one takes over.
_server_ids = iter(range(random.randint(10_000, 2**31), 2**32))

SCHEMA = [
    """CREATE TABLE wp_posts (
        ID bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
        post_title text NOT NULL,
        post_content longtext NOT NULL,
        post_status varchar(20) NOT NULL DEFAULT 'publish',
        post_date_gmt datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        legacy longtext CHARACTER SET latin1,
        price decimal(10,2)
    ) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE wp_postmeta (
        meta_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
        post_id bigint unsigned NOT NULL DEFAULT 0,
        meta_key varchar(255),
        meta_value longtext
    ) DEFAULT CHARSET=utf8mb4""",
    "CREATE TABLE wp_comments (comment_ID int AUTO_INCREMENT PRIMARY KEY, v text)",
]


# The reader settings() selects; tests marked usefixtures("both_readers") run on each.
READER: dict[str, Any] = {"binlog_reader": "fast"}


@pytest.fixture(params=["fast", "library"])
def both_readers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Runs the test on the fast reader and on mysql-replication's."""
    READER["binlog_reader"] = request.param
    try:
        yield
    finally:
        READER["binlog_reader"] = "fast"


def settings(endpoint: MysqlEndpoint, database: str) -> MysqlSettings:
    return MysqlSettings(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=SecretStr(endpoint.password),
        database=database,
        server_id=next(_server_ids),
        connect_timeout=5,
        **READER,
    )


def source(endpoint: MysqlEndpoint, database: str, start: Position, **tuning: Any) -> BinlogSource:
    return BinlogSource(mysql=settings(endpoint, database), start=start, **{**FAST, **tuning})


def create_schema(endpoint: MysqlEndpoint, database: str) -> None:
    run(endpoint, database, *SCHEMA)


def parts_of(items: list[SourceItem]) -> list[TransactionPart]:
    return [item for item in items if isinstance(item, TransactionPart)]


def changes_of(items: list[SourceItem]) -> list[RowChange]:
    return [change for part in parts_of(items) for change in part.changes]


def has_title(title: str) -> Callable[[RowChange], bool]:
    return lambda c: c.table == POSTS and c.after is not None and c.after["post_title"] == title


class Consumer:
    """Runs ``items()`` in a thread, as the app does, and keeps what arrives."""

    def __init__(self, source: BinlogSource) -> None:
        self.source = source
        self.items: list[SourceItem] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self.source.items():
                self.items.append(item)
        except BaseException as exc:
            self.error = exc

    def wait(self, predicate: Callable[[list[SourceItem]], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(list(self.items)):
            if self.error is not None:
                raise self.error
            if not self._thread.is_alive():
                pytest.fail("items() ended early")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; {len(self.items)} items so far")
            time.sleep(0.02)

    def wait_for_marker(self, title: str, timeout: float = 30.0) -> None:
        """Until the row titled ``title`` arrived and then the source went idle:
        everything written before the marker has been read."""

        def done(items: list[SourceItem]) -> bool:
            for index, item in enumerate(items):
                if isinstance(item, TransactionPart) and any(map(has_title(title), item.changes)):
                    return any(isinstance(later, Idle) for later in items[index:])
            return False

        self.wait(done, timeout)

    def wait_for_error(self, timeout: float = 30.0) -> BaseException:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "items() did not end"
        assert self.error is not None, "items() ended without an error"
        return self.error

    def close(self, timeout: float = 5.0) -> None:
        self.source.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "items() did not end after stop()"
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def consuming(source: BinlogSource) -> Iterator[Consumer]:
    consumer = Consumer(source)
    try:
        yield consumer
    finally:
        consumer.close()


def run(endpoint: MysqlEndpoint, database: str, *statements: str) -> None:
    """Run statements on one connection, without strict mode (zero dates, as WordPress)."""
    with contextlib.closing(endpoint.connect(database)) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = ''")
        for statement in statements:
            cursor.execute(statement)


def insert_marker(endpoint: MysqlEndpoint, database: str) -> str:
    """A row whose arrival shows everything written before it was read."""
    title = f"marker-{uuid.uuid4().hex[:8]}"
    run(
        endpoint,
        database,
        f"INSERT INTO wp_posts (post_title, post_content) VALUES ('{title}', '')",
    )
    return title


def read_until_marker(endpoint: MysqlEndpoint, database: str, start: Position) -> list[SourceItem]:
    title = insert_marker(endpoint, database)
    with consuming(source(endpoint, database, start)) as consumer:
        consumer.wait_for_marker(title)
    return consumer.items


def assert_contiguous(parts: list[TransactionPart], start: Position) -> None:
    """Each transaction starts where the previous one ended; rows are numbered 0..n-1."""
    expected_start, rows = start, 0
    for part in parts:
        assert part.transaction.start == expected_start
        assert [c.row for c in part.changes] == list(range(rows, rows + len(part.changes)))
        rows += len(part.changes)
        if part.end is not None:
            expected_start, rows = part.end, 0


@pytest.mark.usefixtures("both_readers")
def test_wordpress_changes_arrive_as_typed_row_changes(
    mysql_server: MysqlEndpoint, mysql_database: str, wordpress: WordPressSite
) -> None:
    start = current_position(settings(mysql_server, mysql_database))
    post_id = wordpress.php(
        """
        $id = wp_insert_post(['post_title' => 'Hello 😀', 'post_content' => 'Body',
                              'post_status' => 'draft'], true);
        wp_set_post_tags($id, ['alpha', 'beta']);
        update_post_meta($id, 'color', 'blue');
        wp_update_post(['ID' => $id, 'post_title' => 'Hello again']);
        return $id;
        """
    )
    items = read_until_marker(mysql_server, mysql_database, start)
    parts = parts_of(items)
    assert_contiguous(parts, start)
    changes = [
        c
        for c in changes_of(items)
        if post_id in (c.image.get("ID"), c.image.get("post_id"), c.image.get("object_id"))
    ]

    insert = next(c for c in changes if c.table == POSTS and c.op is Op.INSERT)
    assert insert.before is None and insert.after is not None
    assert insert.after["post_title"] == "Hello 😀"
    assert insert.after["post_status"] == "draft"
    assert insert.after["post_date_gmt"] is None  # a draft's zero date
    assert isinstance(insert.after["post_date"], datetime.datetime)
    assert isinstance(insert.after["post_author"], int)

    update = [c for c in changes if c.table == POSTS and c.op is Op.UPDATE]
    assert any(
        c.before is not None
        and c.after is not None
        and c.before["post_title"] == "Hello 😀"
        and c.after["post_title"] == "Hello again"
        for c in update
    )
    meta = next(c for c in changes if c.table == POSTMETA and c.image["meta_key"] == "color")
    assert meta.op is Op.INSERT and meta.image["meta_value"] == "blue"
    tags = [c for c in changes if c.table == TERM_RELATIONSHIPS and c.op is Op.INSERT]
    assert len(tags) >= 2

    txn = next(p.transaction for p in parts if insert in p.changes)
    assert txn.gtid is not None and txn.timestamp > 1_600_000_000
    if mysql_server.flavor == "mariadb":
        assert txn.thread_id is None  # MariaDB writes no BEGIN event
    else:
        assert isinstance(txn.thread_id, int)
    gtid_sets = [p.end.gtid_set for p in parts if p.end is not None]
    assert all(s is not None for s in gtid_sets)


@pytest.mark.usefixtures("both_readers")
def test_values_decode_without_surprises(mysql_server: MysqlEndpoint, mysql_database: str) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    big = "x" * (5 * 1024 * 1024)
    with contextlib.closing(mysql_server.connect(mysql_database)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO wp_posts (post_title, post_content, legacy, price) "
            "VALUES (%s, %s, _binary %s, %s)",
            ("emoji 😀🎉", big, b"\xc3\x81 \x81\x8d\x90 caf\xe9", Decimal("12.50")),
        )
    changes = changes_of(read_until_marker(mysql_server, mysql_database, start))
    row = changes[0].after
    assert row is not None
    assert row["post_title"] == "emoji 😀🎉"
    assert row["post_content"] == big
    # UTF-8 bytes in a latin1 column, and the bytes cp1252 leaves undefined:
    # decoded as MySQL does (the library as shipped raises UnicodeDecodeError).
    assert row["legacy"] == "Ã\x81 \x81\x8d\x90 café"
    assert row["price"] == Decimal("12.50")
    assert row["post_date_gmt"] is None


@pytest.mark.usefixtures("both_readers")
def test_resume_from_a_boundary_yields_exactly_the_following_transactions(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    for n in range(6):
        mysql_server.execute(
            f"INSERT INTO wp_posts (post_title, post_content) VALUES ('p{n}', 'c')", mysql_database
        )
        mysql_server.execute("INSERT INTO wp_comments (v) VALUES ('noise')", mysql_database)
    first = parts_of(read_until_marker(mysql_server, mysql_database, start))
    assert_contiguous(first, start)
    # Transactions on unwatched tables arrive too, without changes.
    assert any(p.changes == () and p.end is not None for p in first)

    checkpoint = first[4].end
    assert checkpoint is not None
    resumed = parts_of(read_until_marker(mysql_server, mysql_database, checkpoint))
    assert_contiguous(resumed, checkpoint)
    assert resumed[: len(first) - 5] == first[5:]


@pytest.mark.usefixtures("both_readers")
def test_a_20000_row_transaction_arrives_in_bounded_parts(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    create_schema(mysql_server, mysql_database)
    mysql_server.execute("CREATE TABLE digits (d int)", mysql_database)
    mysql_server.execute(
        "INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)", mysql_database
    )
    start = current_position(settings(mysql_server, mysql_database))
    mysql_server.execute(
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
        "SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d, 'k', 'v' "
        "FROM digits a, digits b, digits c, digits e, digits f "
        "WHERE a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d < 20000",
        mysql_database,
    )
    items = read_until_marker(mysql_server, mysql_database, start)
    parts = [p for p in parts_of(items) if any(c.table == POSTMETA for c in p.changes)]
    assert [len(p.changes) for p in parts] == [1000] * 20
    big = [p for p in parts_of(items) if p.transaction == parts[0].transaction]
    assert [p.end is not None for p in big] == [False] * 20 + [True]
    assert [c.row for p in big for c in p.changes] == list(range(20000))
    assert sorted(c.image["post_id"] for p in big for c in p.changes) == list(range(20000))


def test_a_new_multisite_table_is_picked_up(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    with consuming(source(mysql_server, mysql_database, start)) as consumer:
        consumer.wait(lambda items: any(isinstance(i, Idle) for i in items))
        run(
            mysql_server,
            mysql_database,
            "CREATE TABLE wp_2_posts LIKE wp_posts",
            "INSERT INTO wp_2_posts (post_title, post_content) VALUES ('blog 2', '')",
        )
        blog2 = TableRef(blog_id=2, kind=TableKind.POSTS)
        consumer.wait(lambda items: any(c.table == blog2 for c in changes_of(items)))
    (change,) = [c for c in changes_of(consumer.items) if c.table == blog2]
    assert change.op is Op.INSERT and change.image["post_title"] == "blog 2"


def test_idle_items_while_nothing_happens_and_stop_ends_items_promptly(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    consumer = Consumer(source(mysql_server, mysql_database, start))
    try:
        consumer.wait(lambda items: sum(isinstance(i, Idle) for i in items) >= 3, timeout=10)
    finally:
        began = time.monotonic()
        consumer.close(timeout=2.0)
    assert time.monotonic() - began < 2.0
    idles = [i for i in consumer.items if isinstance(i, Idle)]
    assert idles[-1].position.key() >= start.key()
    assert idles[0].wall_time <= idles[-1].wall_time


@pytest.mark.usefixtures("both_readers")
def test_statement_based_dml_on_a_watched_table_is_refused(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    with (
        contextlib.closing(mysql_server.connect(mysql_database, sql_mode="")) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SET SESSION binlog_format = 'STATEMENT'")
        cur.execute("INSERT INTO wp_posts (post_title, post_content) VALUES ('a', 'b')")
        cur.execute("UPDATE wp_posts SET post_title = 'x'")
    consumer = Consumer(source(mysql_server, mysql_database, start))
    error = consumer.wait_for_error()
    assert isinstance(error, ServerMisconfigured)
    assert "binlog_format=ROW" in str(error) and "wp_posts" in str(error)


@pytest.mark.usefixtures("both_readers")
def test_a_partial_row_image_is_refused(mysql_server: MysqlEndpoint, mysql_database: str) -> None:
    create_schema(mysql_server, mysql_database)
    run(
        mysql_server,
        mysql_database,
        "INSERT INTO wp_posts (post_title, post_content) VALUES ('a', 'b')",
    )
    start = current_position(settings(mysql_server, mysql_database))
    with contextlib.closing(mysql_server.connect(mysql_database)) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION binlog_row_image = 'MINIMAL'")
        cur.execute("UPDATE wp_posts SET post_title = 'c'")
    error = Consumer(source(mysql_server, mysql_database, start)).wait_for_error()
    assert isinstance(error, ServerMisconfigured) and "binlog_row_image=FULL" in str(error)


@pytest.mark.usefixtures("both_readers")
def test_a_refused_login_is_a_clear_error(mysql_server: MysqlEndpoint, mysql_database: str) -> None:
    mysql = settings(mysql_server, mysql_database).model_copy(
        update={"user": "nobody", "password": SecretStr("wrong")}
    )
    with pytest.raises(PreflightFailed, match="refused"):
        current_position(mysql)
    start = Position("binlog.000001", 4)
    error = Consumer(BinlogSource(mysql=mysql, start=start, **FAST)).wait_for_error()
    assert isinstance(error, PreflightFailed) and "mysql.password" in str(error)


def test_the_watchdog_drops_a_silent_connection(
    mysql_server: MysqlEndpoint, mysql_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    # Heartbeats rarer than the stall timeout: an idle server looks stalled.
    quiet = source(
        mysql_server, mysql_database, start, heartbeat=10, read_timeout=30, stall_timeout=0.5
    )
    with caplog.at_level("WARNING", logger="wpcdc.source"), consuming(quiet) as consumer:
        deadline = time.monotonic() + 10
        while "stalled" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        title = insert_marker(mysql_server, mysql_database)
        consumer.wait(lambda items: any(map(has_title(title), changes_of(items))))
    assert "no binlog packet" in caplog.text and "(stalled); reconnecting" in caplog.text


class _ResetStream:
    """Stands in for a connection's socket reader after a TCP reset."""

    def read(self, size: int) -> bytes:
        raise ConnectionResetError(104, "Connection reset by peer")

    def close(self) -> None:
        pass


def reset_by_peer(src: BinlogSource) -> None:
    """What a TCP reset does to the reader: bytes received and not read are lost,
    and the next read fails."""
    dump = src._dump
    if dump is None:  # mysql-replication reads through PyMySQL's socket file
        src._connection._rfile = _ResetStream()  # type: ignore[union-attr]
        return
    stream = dump._stream

    def reset() -> bool:
        raise ConnectionResetError(104, "Connection reset by peer")

    stream._buffer, stream._at = b"", 0
    stream._split.clear()  # split into packets, not yet read: the reader stops short
    stream._fill = reset  # type: ignore[method-assign]


@pytest.mark.usefixtures("both_readers")
def test_a_dropped_connection_mid_transaction_hands_out_each_row_once(
    mysql_server: MysqlEndpoint, mysql_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_schema(mysql_server, mysql_database)
    start = current_position(settings(mysql_server, mysql_database))
    rows = ",".join(f"({n}, 'k', 'v')" for n in range(3000))
    run(
        mysql_server,
        mysql_database,
        f"INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES {rows}",
    )
    title = insert_marker(mysql_server, mysql_database)
    src = source(mysql_server, mysql_database, start, max_part_rows=100)
    items = src.items()
    handed_out: list[SourceItem] = []
    for item in items:
        handed_out.append(item)
        if isinstance(item, TransactionPart) and len(item.changes) == 100:
            break
    # The connection is reset while the transaction is half handed out. White
    # box: what was received but not read is lost, as with a real TCP reset
    # (a server-side KILL would still deliver the bytes already sent).
    reset_by_peer(src)
    with caplog.at_level("WARNING", logger="wpcdc.source"):
        for item in items:
            handed_out.append(item)
            if any(map(has_title(title), getattr(item, "changes", ()))):
                break
    src.stop()
    big = [p for p in parts_of(handed_out) if p.changes and p.changes[0].table == POSTMETA]
    # It restarted at the transaction's start, and skipped what was handed out.
    assert f"reconnecting at {big[0].transaction.start} " in caplog.text
    assert [c.row for p in big for c in p.changes] == list(range(3000))
    assert_contiguous(parts_of(handed_out), start)


def ledger_of(items: list[SourceItem]) -> list[tuple[Any, ...]]:
    return [(c.table, c.op, c.before, c.after, c.row) for c in changes_of(items)]


def test_a_layout_the_fast_decoder_cannot_read_goes_through_the_library(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="wpcdc.source")
    create_schema(mysql_server, mysql_database)
    # No real type is both refused by the fast decoder and read right by the
    # library (MariaDB's compressed columns and MySQL's VECTOR are unknown to both),
    # so the decoder is made to refuse wp_postmeta's layout.
    get = DecoderCache.get

    def refuse_postmeta(self: DecoderCache, table_map: Any, keep: Any = None) -> Any:
        if table_map.table == "wp_postmeta":
            raise Unsupported("column meta_value: refused by the test")
        return get(self, table_map, keep=keep)

    monkeypatch.setattr(DecoderCache, "get", refuse_postmeta)
    extra = ""
    if mysql_server.flavor == "mysql":
        # A JSON column, so the library's JSON decoding is exercised as well.
        mysql_server.execute("ALTER TABLE wp_postmeta ADD extra JSON", mysql_database)
        extra = ", extra = '{\"a\": [1, 2]}'"
    start = current_position(settings(mysql_server, mysql_database))
    run(
        mysql_server,
        mysql_database,
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (1, 'a', 'x'), (1, 'b', 'y')",
        f"UPDATE wp_postmeta SET meta_value = 'z'{extra} WHERE meta_key = 'a'",
        "DELETE FROM wp_postmeta WHERE meta_key = 'b'",
        "INSERT INTO wp_posts (post_title, post_content) VALUES ('fast', 'path')",
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (2, 'c', '😀')",
    )
    fast = read_until_marker(mysql_server, mysql_database, start)
    READER["binlog_reader"] = "library"
    try:
        reference = read_until_marker(mysql_server, mysql_database, start)
    finally:
        READER["binlog_reader"] = "fast"

    meta = [c for c in changes_of(fast) if c.table == POSTMETA]
    assert [c.op for c in meta] == [Op.INSERT, Op.INSERT, Op.UPDATE, Op.DELETE, Op.INSERT]
    assert meta[2].after is not None and meta[2].after["meta_value"] == "z"
    assert meta[4].image["meta_value"] == "😀"
    # The reference read has one more marker row; all else is identical.
    assert ledger_of(fast) == ledger_of(reference)[:-1]
    fallbacks = [r for r in caplog.records if "mysql-replication decodes" in r.getMessage()]
    assert len(fallbacks) == 1 and "wp_postmeta" in fallbacks[0].getMessage()


# -- throwaway servers ------------------------------------------------------


@pytest.fixture
def minimal_metadata_server(flavor: Flavor, shared_servers: SharedServers) -> MysqlEndpoint:
    """Logs rows without column names; also used for purges and compression. Shared by
    the session (one per flavor)."""
    return shared_servers.get(flavor, extra_args=("--binlog-row-metadata=MINIMAL",))


def fresh_database(endpoint: MysqlEndpoint) -> str:
    name = f"wpcdc_src_{uuid.uuid4().hex[:8]}"
    endpoint.execute(f"CREATE DATABASE {name}")
    create_schema(endpoint, name)
    return name


@pytest.mark.usefixtures("both_readers")
def test_rows_without_column_names_are_refused(minimal_metadata_server: MysqlEndpoint) -> None:
    database = fresh_database(minimal_metadata_server)
    start = current_position(settings(minimal_metadata_server, database))
    minimal_metadata_server.execute(
        "INSERT INTO wp_posts (post_title, post_content) VALUES ('a', 'b')", database
    )
    error = Consumer(source(minimal_metadata_server, database, start)).wait_for_error()
    assert isinstance(error, ServerMisconfigured) and "binlog_row_metadata=FULL" in str(error)


@pytest.mark.usefixtures("both_readers")
def test_compressed_events_are_refused(minimal_metadata_server: MysqlEndpoint) -> None:
    # Each flavor has its own compression: MariaDB compresses events, MySQL 8
    # whole transactions (TRANSACTION_PAYLOAD). Both are unreadable: refused.
    variable = (
        "log_bin_compress"
        if minimal_metadata_server.flavor == "mariadb"
        else "binlog_transaction_compression"
    )
    database = fresh_database(minimal_metadata_server)
    start = current_position(settings(minimal_metadata_server, database))
    minimal_metadata_server.execute(f"SET GLOBAL {variable} = ON")
    try:
        # A new session: MySQL reads binlog_transaction_compression per session.
        minimal_metadata_server.execute(
            f"INSERT INTO wp_posts (post_title, post_content) VALUES ('a', '{'b' * 2000}')",
            database,
        )
    finally:
        minimal_metadata_server.execute(f"SET GLOBAL {variable} = OFF")
    error = Consumer(source(minimal_metadata_server, database, start)).wait_for_error()
    assert isinstance(error, ServerMisconfigured) and f"{variable}=OFF" in str(error)


@pytest.mark.usefixtures("both_readers")
def test_a_purged_start_position_is_lost(minimal_metadata_server: MysqlEndpoint) -> None:
    database = fresh_database(minimal_metadata_server)
    mysql = settings(minimal_metadata_server, database)
    minimal_metadata_server.execute("FLUSH BINARY LOGS")
    start = current_position(mysql)
    check_position_available(mysql, start)
    minimal_metadata_server.execute("FLUSH BINARY LOGS")
    newest = current_position(mysql)
    # A server keeps a file a replica still reads: let earlier tests' readers go.
    eventually(
        lambda: (
            not any(
                str(row[4]).startswith("Binlog Dump")
                for row in minimal_metadata_server.execute("SHOW PROCESSLIST")
            )
        ),
        10,
        "earlier binlog readers to disconnect",
    )

    def purged() -> bool:
        # MariaDB skips, with a warning only, a file that a reader still holds or
        # whose binlog checkpoint is not written yet (slower on a loaded machine).
        minimal_metadata_server.execute(f"PURGE BINARY LOGS TO '{newest.file}'")
        logs = minimal_metadata_server.execute("SHOW BINARY LOGS")
        return start.file not in {str(row[0]) for row in logs}

    eventually(purged, 20, f"{start.file} to be purged")

    with pytest.raises(PositionLost, match="purged"):
        check_position_available(mysql, start)
    error = Consumer(source(minimal_metadata_server, database, start)).wait_for_error()
    assert isinstance(error, PositionLost)
    assert "wpcdc snapshot" in str(error) and "retention" in str(error)
    with pytest.raises(PositionLost, match="past the end"):
        check_position_available(mysql, Position(newest.file, newest.pos + 10_000))


def test_a_killed_server_is_followed_without_loss_or_duplicates(
    mysql_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="wpcdc.source")
    server = mysql_server_factory()
    database = fresh_database(server)
    start = current_position(settings(server, database))
    writing = threading.Event()
    writing.set()

    def write() -> None:
        # Transactions of 20 rows, against a server that dies in between.
        n = 0
        while writing.is_set():
            rows = ",".join(f"({n}, 'k{i}', 'v')" for i in range(20))
            try:
                run(
                    server,
                    database,
                    f"INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES {rows}",
                )
                n += 1
            except Exception:
                time.sleep(0.2)

    writer = threading.Thread(target=write, daemon=True)
    with consuming(source(server, database, start, max_part_rows=7)) as consumer:
        writer.start()
        consumer.wait(lambda items: len(changes_of(items)) >= 200)
        server.restart(kill=True, down_seconds=2)
        consumer.wait(lambda items: len(changes_of(items)) >= 2000, timeout=60)
        writing.clear()
        writer.join(10)
        title = insert_marker(server, database)
        consumer.wait_for_marker(title, timeout=60)
    reference = read_until_marker(server, database, start)

    def ledger(items: list[SourceItem]) -> tuple[list[Any], list[Position]]:
        parts = parts_of(items)
        rows = [(p.transaction.start, c.row, c.image) for p in parts for c in p.changes]
        return rows, [p.transaction.start for p in parts if p.end is not None]

    assert "reconnecting at" in caplog.text
    seen_rows, seen_ends = ledger(consumer.items)
    all_rows, all_ends = ledger(reference)
    # The reference read has one more transaction: its own marker.
    assert seen_rows == all_rows[:-1]
    assert seen_ends == all_ends[:-1]
    assert len(set(seen_ends)) == len(seen_ends)
