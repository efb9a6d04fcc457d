"""What only Oracle MySQL does, against a real MySQL (the Debian sid tree's, GTIDs on).

SHOW BINARY LOG STATUS; GTID sets carried exactly through wpcdc restarts and
server restarts; BEGIN thread ids and what the fold does with them; the FLUSH
TABLES WITH READ LOCK snapshot and how long it holds writers; a session that
compresses its transactions (exit 3); a purged GTID range (exit 4); accounts
with MySQL's default authentication, with and without TLS.
"""

from __future__ import annotations

import contextlib
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pymysql
import pytest
from pydantic import SecretStr

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from tests.support.materialize import compare_with_database, deduplicate, materialize
from tests.support.stack import WordPressStack, throwaway_site
from tests.support.streaming import read_topic
from tests.support.wordpress import BackgroundPhp
from wpcdc.config.settings import MysqlSettings
from wpcdc.core.errors import EXIT_OK, EXIT_POSITION_LOST, EXIT_PREFLIGHT, WpcdcError
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.gtid import GtidState
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.rows import Idle, TableKind, TransactionPart
from wpcdc.local.wordpress import WordPressSite
from wpcdc.mysql import consistent
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.status import current_position

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mysql")]

# Posts, then rounds of title and meta edits, as a busy site writes.
WRITER = """
$ids = [];
for ($i = 0; $i < $args['posts']; $i++) {
    $ids[] = wp_insert_post(['post_title' => "post $i", 'post_status' => 'publish',
        'tags_input' => ['t' . ($i % 3)], 'meta_input' => ['round' => 0]], true);
}
foreach ($ids as $k => $id) {
    wp_update_post(['ID' => $id, 'post_title' => "post $k edited"]);
    update_post_meta($id, 'round', 1);
}
return $ids;
"""


def settings(server: MysqlEndpoint, database: str, **changes: Any) -> MysqlSettings:
    return MysqlSettings(
        host=server.host,
        port=server.port,
        user=server.user,
        password=SecretStr(server.password),
        database=database,
        server_id=random.randint(10_000, 2**31),
        **changes,
    )


def executed_gtids(server: MysqlEndpoint) -> str:
    """The server's GTID set, in wpcdc's notation (for comparing with a checkpoint)."""
    ((value,),) = server.execute("SELECT @@GLOBAL.gtid_executed")
    return str(GtidState(str(value)).value)


def run_wpcdc(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wpcdc", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_show_binary_log_status_is_where_a_stream_starts(
    mysql_server: MysqlEndpoint, mysql_database: str
) -> None:
    # MySQL 8.4 removed SHOW MASTER STATUS; wpcdc asks for the new name first.
    with pytest.raises(pymysql.err.ProgrammingError) as refused:
        mysql_server.execute("SHOW MASTER STATUS")
    assert refused.value.args[0] == 1064
    (row,) = mysql_server.execute("SHOW BINARY LOG STATUS")
    position = current_position(settings(mysql_server, mysql_database))
    assert (position.file, position.pos) == (row[0], row[1])
    ((uuid_,),) = mysql_server.execute("SELECT @@server_uuid")
    assert position.gtid_set == str(row[4]).replace("\n", "")
    assert re.fullmatch(rf"{uuid_}:1(-\d+)?", position.gtid_set or ""), position.gtid_set


def test_gtid_state_stays_exact_across_wpcdc_and_server_restarts(
    mysql_server_factory: ServerFactory,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    database = "wp_gtid"
    server, site, streamer = throwaway_site(
        mysql_server_factory, kafka_broker, kafka_topic, tmp_path, database
    )
    try:
        streamer.start()
        ids = site.php(WRITER, {"posts": 15})
        first = streamer.wait_caught_up(server, timeout=60)
        assert first.position.gtid_set == executed_gtids(server)

        # wpcdc stopped while WordPress writes: the restart resumes at the checkpoint.
        assert streamer.stop() == 0
        ids += site.php(WRITER, {"posts": 15})
        streamer.start()
        resumed = streamer.wait_caught_up(server, timeout=60)
        assert resumed.position.gtid_set == executed_gtids(server)

        # The server killed under the running streamer: it reconnects by itself and
        # continues in the binlog file the restarted server opens.
        server.restart(kill=True, down_seconds=2)
        ids += site.php(WRITER, {"posts": 15})
        after = streamer.wait_caught_up(server, timeout=90)
        assert streamer.process is not None and streamer.process.poll() is None
        assert after.position.file != first.position.file
        assert after.position.gtid_set == executed_gtids(server)
        assert streamer.stop() == 0
    finally:
        streamer.close()

    records = read_topic(kafka_broker.bootstrap_servers, kafka_topic)
    ((uuid_,),) = server.execute("SELECT @@server_uuid")
    assert records and all(r.event["binloggtid"].startswith(f"{uuid_}:") for r in records)
    problems = compare_with_database(materialize(deduplicate(records)), server, database, ids)
    assert problems == [], "\n".join(problems[:20])


def read_parts(server: MysqlEndpoint, database: str, start: Position) -> list[TransactionPart]:
    """Every transaction part from ``start`` until the source goes idle at the end."""
    end = current_position(settings(server, database))
    source = BinlogSource(mysql=settings(server, database), start=start, heartbeat=0.25)
    parts: list[TransactionPart] = []
    deadline = time.monotonic() + 60
    for item in source.items():
        if isinstance(item, TransactionPart):
            parts.append(item)
        elif isinstance(item, Idle) and end <= item.position:
            break
        assert time.monotonic() < deadline, "the source did not reach the end of the binlog"
    source.stop()
    return parts


@pytest.mark.flavors("mariadb", "mysql")
def test_begin_thread_ids_tell_connections_apart(
    flavor: str, mysql_server: MysqlEndpoint, mysql_database: str, wordpress: WordPressSite
) -> None:
    post = int(wordpress.php("return wp_insert_post(['post_title' => 'shared'], true);"))
    start = current_position(settings(mysql_server, mysql_database))
    edit = """
    global $wpdb;
    wp_update_post(['ID' => $args['post'], 'post_title' => $args['title']]);
    update_post_meta($args['post'], 'editor', $args['title']);
    return (int) $wpdb->get_var('SELECT CONNECTION_ID()');
    """
    # Two requests, one connection each, editing the same post within a second.
    first = wordpress.php(edit, {"post": post, "title": "first"})
    second = wordpress.php(edit, {"post": post, "title": "second"})
    parts = [
        p
        for p in read_parts(mysql_server, mysql_database, start)
        if any(c.table.kind is TableKind.POSTS and c.image["ID"] == post for c in p.changes)
    ]
    threads = [p.transaction.thread_id for p in parts]
    if flavor == "mysql":
        # Every transaction of a request carries its connection's id, from its BEGIN.
        assert threads == sorted(threads, key=[first, second].index), threads
        assert set(threads) == {first, second}
    else:
        assert set(threads) == {None}  # MariaDB logs row transactions without BEGIN

    # The fold closes a post's group when another connection touches it (binlog
    # time cannot: the window here is an hour), so MySQL gives two groups.
    folder = Folder(config=FoldConfig(window_seconds=3600), mirror=Mirror())
    closed = [g for part in parts for g in folder.feed(part)] + folder.close_all()
    groups = [g for g in closed if g.post_id == post]
    assert len(groups) == (2 if flavor == "mysql" else 1), groups


@pytest.fixture
def snapshot_settings(mysql_server: MysqlEndpoint, wordpress: WordPressSite) -> MysqlSettings:
    return settings(mysql_server, wordpress.database)


def test_flush_tables_with_read_lock_holds_writers_for_milliseconds(
    mysql_server: MysqlEndpoint, wordpress: WordPressSite, snapshot_settings: MysqlSettings
) -> None:
    post = int(wordpress.php("return wp_insert_post(['post_title' => 'busy'], true);"))
    latencies: list[float] = []
    stop = threading.Event()

    def write() -> None:
        with contextlib.closing(mysql_server.connect(wordpress.database)) as conn:
            cursor = conn.cursor()
            n = 0
            while not stop.is_set():
                n += 1
                began = time.monotonic()
                cursor.execute(f"UPDATE wp_posts SET post_title = 'n{n}' WHERE ID = {post}")
                latencies.append(time.monotonic() - began)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    points = []
    try:
        time.sleep(0.3)
        for _ in range(5):
            snapshot = consistent.ConsistentSnapshot.open(snapshot_settings)
            points.append(snapshot.point)
            snapshot.close()
    finally:
        stop.set()
        writer.join(10)
    assert {p.method for p in points} == {"flush_tables_with_read_lock"}
    assert all(p.position.gtid_set for p in points)
    # Measured ~2-9 ms per snapshot on a 2-core machine; the bounds leave room for load.
    assert max(p.locked_seconds for p in points) < 0.5, points
    assert len(latencies) > 50 and max(latencies) < 1.0, max(latencies)


def test_the_snapshot_waits_for_a_long_statement_instead_of_stalling_writers(
    mysql_server: MysqlEndpoint,
    wordpress: WordPressSite,
    snapshot_settings: MysqlSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A flush started under a running statement would hold every writer of that
    # table until the statement ends, even after the flush gave up.
    monkeypatch.setattr(consistent, "FTWRL_ATTEMPTS", 2)
    long_query = BackgroundPhp(
        wordpress, "global $wpdb; return $wpdb->get_var('SELECT SLEEP(6) FROM wp_posts LIMIT 1');"
    )
    long_query.start()
    time.sleep(1.5)  # past LONG_STATEMENT_SECONDS
    latencies: list[float] = []
    began = time.monotonic()
    with pytest.raises(WpcdcError, match="still running after 2 waits") as gave_up:
        consistent.ConsistentSnapshot.open(snapshot_settings)
    waited = time.monotonic() - began
    assert "SELECT SLEEP(6)" in str(gave_up.value)
    # Writers of the table the long statement reads go on meanwhile.
    with contextlib.closing(mysql_server.connect(wordpress.database)) as conn:
        for n in range(5):
            began = time.monotonic()
            conn.cursor().execute(f"UPDATE wp_posts SET post_title = 'w{n}' WHERE ID = 1")
            latencies.append(time.monotonic() - began)
    long_query.finish()
    assert waited < 5 and max(latencies) < 0.5, (waited, latencies)


@pytest.fixture
def default_account(mysql_server: MysqlEndpoint, wordpress: WordPressSite) -> Iterator[str]:
    """An account with MySQL's default authentication (caching_sha2_password) and the
    grants README lists, plus RELOAD for snapshots."""
    name = f"wpcdc_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'account-pw-1'")
    try:
        mysql_server.execute(
            f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, RELOAD ON *.* TO '{name}'@'%'"
        )
        mysql_server.execute(f"GRANT SELECT ON `{wordpress.database}`.* TO '{name}'@'%'")
        ((plugin,),) = mysql_server.execute(f"SELECT plugin FROM mysql.user WHERE user = '{name}'")
        assert plugin == "caching_sha2_password"
        yield name
    finally:
        mysql_server.execute(f"DROP USER IF EXISTS '{name}'@'%'")


@pytest.mark.parametrize("tls", [False, True], ids=["plain-tcp", "tls"])
def test_an_account_with_the_default_authentication_checks_snapshots_and_streams(
    tls: bool, wp_stack: WordPressStack, default_account: str
) -> None:
    server = wp_stack.server
    env = {"WPCDC_MYSQL__USER": default_account, "WPCDC_MYSQL__PASSWORD": "account-pw-1"}
    if tls:
        assert server.datadir is not None, "TLS needs the private server's CA"
        env |= {
            "WPCDC_MYSQL__TLS__ENABLED": "true",
            "WPCDC_MYSQL__TLS__CA": str(server.datadir / "ca.pem"),
            # The server's generated certificate names no host.
            "WPCDC_MYSQL__TLS__VERIFY_IDENTITY": "false",
        }
    # Empty the server's cache of verified passwords: the first login does the full
    # exchange (RSA without TLS, the password inside TLS with it).
    server.execute("FLUSH PRIVILEGES")
    checked = wp_stack.wpcdc("check", "--json", timeout=120, env=env)
    checks = {c["name"]: c for c in orjson.loads(checked.stdout)["checks"]}
    assert checked.returncode == EXIT_OK, checked.stdout
    assert ("TLS" in checks["connection"]["detail"]) and (
        ("no TLS" in checks["connection"]["detail"]) is not tls
    ), checks["connection"]

    snapshot = wp_stack.wpcdc("snapshot", timeout=120, env=env)
    assert snapshot.returncode == EXIT_OK, snapshot.stderr[-2000:]
    assert "flush_tables_with_read_lock" in snapshot.stderr
    # The account as README grants it cannot see WordPress's statements: said once.
    assert "lacks the PROCESS privilege" in snapshot.stderr

    wp_stack.streamer.env.update(env)
    wp_stack.streamer.start()
    post = wp_stack.wordpress.php(
        "return wp_insert_post(['post_title' => 'over the account'], true);"
    )
    wp_stack.wait_caught_up()
    assert wp_stack.streamer.stop() == 0
    types = [r.event["type"] for r in wp_stack.read_topic() if r.event["subject"] == f"post/{post}"]
    assert "post_created" in types, types


def test_a_session_that_compresses_its_transactions_stops_wpcdc_with_exit_3(
    wp_stack: WordPressStack,
) -> None:
    wp_stack.streamer.start()
    with contextlib.closing(wp_stack.server.connect(wp_stack.database)) as conn:
        cursor = conn.cursor()
        # A plugin (or an operator's session) may turn it on for itself only.
        cursor.execute("SET SESSION binlog_transaction_compression = ON")
        cursor.execute("UPDATE wp_posts SET post_title = 'compressed' WHERE ID = 1")
    process = wp_stack.streamer.process
    assert process is not None
    assert process.wait(60) == EXIT_PREFLIGHT, wp_stack.streamer.log_text()[-3000:]
    log = wp_stack.streamer.log_text()
    assert "binlog_transaction_compression=OFF" in log and "wpcdc snapshot" in log


def test_a_purged_gtid_range_stops_wpcdc_with_exit_4(
    mysql_server_factory: ServerFactory,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    database = "wp_purge"
    server, site, streamer = throwaway_site(
        mysql_server_factory, kafka_broker, kafka_topic, tmp_path, database
    )
    try:
        streamer.start()
        site.php(WRITER, {"posts": 3})
        saved = streamer.wait_caught_up(server, timeout=60)
        assert streamer.stop() == 0
    finally:
        streamer.close()
    # While wpcdc is stopped, WordPress writes and the binlogs holding it are purged.
    site.php(WRITER, {"posts": 3})
    server.execute("FLUSH BINARY LOGS")
    (newest,) = server.execute("SHOW BINARY LOG STATUS")
    server.execute(f"PURGE BINARY LOGS TO '{newest[0]}'")
    ((purged,),) = server.execute("SELECT @@GLOBAL.gtid_purged")
    read = GtidState(saved.position.gtid_set).value
    assert GtidState(f"{read},{purged}").value != read  # purged GTIDs wpcdc never read

    done = run_wpcdc(streamer.env, tmp_path, "run")
    assert done.returncode == EXIT_POSITION_LOST, done.stderr[-3000:]
    assert "purged" in done.stderr and "wpcdc snapshot" in done.stderr
