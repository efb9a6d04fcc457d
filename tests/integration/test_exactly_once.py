"""Exactly-once delivery (issue 12, kafka.exactly_once): a read_committed consumer sees
every row change once across kill -9 and restart; a second producer with the same
transactional id stops the run; a broker without transactions (Tansu) and the file
checkpoint store are refused at start. Real MariaDB, WordPress, noida-db (a broker
with transactions) and the Tansu broker; `wpcdc run` as a process."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.support.infra import KafkaEndpoint, MysqlEndpoint
from tests.support.stack import WordPressStack
from tests.support.streaming import Streamer, binlog_end, read_topic, wpcdc_env
from tests.support.wordpress import WordPressSite
from wpcdc.config.settings import KafkaSettings
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_PREFLIGHT
from wpcdc.kafka.checkpoints import KafkaCheckpointStore

pytestmark = pytest.mark.integration

CHANGES = 5_000
POSTS = 100
EOS_ENV = {
    "WPCDC_KAFKA__EXACTLY_ONCE": "true",
    "WPCDC_CHECKPOINT__STORE": "kafka",
    # One group per transaction: each UPDATE below is one post_updated event, so
    # "each row change exactly once" is "each title exactly once".
    "WPCDC_FOLD__WINDOW_SECONDS": "0",
}


@pytest.fixture
def eos_stack(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    transactional_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
    wordpress: WordPressSite,
) -> Iterator[WordPressStack]:
    """This test's database (with WordPress) and topic on the broker with transactions,
    and its `wpcdc run` with exactly_once and the Kafka checkpoint store."""
    env = wpcdc_env(
        mysql_server, mysql_database, transactional_broker.bootstrap_servers, kafka_topic, tmp_path
    )
    env.update(EOS_ENV)
    streamer = Streamer(env=env, workdir=tmp_path)
    yield WordPressStack(
        server=mysql_server,
        database=mysql_database,
        broker=transactional_broker,
        topic=kafka_topic,
        workdir=tmp_path,
        streamer=streamer,
        wordpress=wordpress,
    )
    streamer.close()


def committed_checkpoint(stack: WordPressStack) -> Checkpoint | None:
    """The checkpoint as the next run reads it back (read_committed)."""
    settings = KafkaSettings(bootstrap_servers=stack.broker.bootstrap_servers, topic=stack.topic)
    store = KafkaCheckpointStore(
        settings, topic=f"{stack.topic}.checkpoint", key=stack.topic.encode()
    )
    try:
        return store.load()
    finally:
        store.close()


def wait_committed(stack: WordPressStack, timeout: float) -> Checkpoint:
    target = binlog_end(stack.server)
    deadline = time.monotonic() + timeout
    while True:
        checkpoint = committed_checkpoint(stack)
        if checkpoint is not None and target.key() <= checkpoint.position.key():
            return checkpoint
        assert time.monotonic() < deadline, stack.streamer.log_text()[-3000:]
        time.sleep(0.3)


class Updates(threading.Thread):
    """CHANGES autocommitted UPDATEs of post titles, round-robin over ``ids``:
    title ``v{n}`` is the n-th row change."""

    def __init__(self, server: MysqlEndpoint, database: str, ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.server, self.database, self.ids = server, database, ids
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                contextlib.closing(self.server.connect(self.database)) as conn,
                conn.cursor() as cursor,
            ):
                for n in range(CHANGES):
                    post = self.ids[n % len(self.ids)]
                    cursor.execute(
                        "UPDATE wp_posts SET post_title = %s WHERE ID = %s", (f"v{n}", post)
                    )
                    self.done = n + 1
                    if n % 50 == 49:
                        time.sleep(0.02)  # a steady stream, so the kill lands mid-way
        except BaseException as exc:
            self.error = exc


def test_kill_9_mid_5000_changes_read_committed_sees_each_change_once(
    eos_stack: WordPressStack,
) -> None:
    stack, streamer = eos_stack, eos_stack.streamer
    ids = stack.wordpress.php(
        "$ids = []; for ($i = 0; $i < $args; $i++) { $ids[] = wp_insert_post("
        "['post_title' => 'start', 'post_status' => 'publish'], true); } return $ids;",
        POSTS,
    )
    streamer.start()
    updates = Updates(stack.server, stack.database, ids)
    updates.start()
    deadline = time.monotonic() + 60
    while updates.done < CHANGES * 2 // 5:
        assert updates.error is None and time.monotonic() < deadline, updates.error
        time.sleep(0.05)
    streamer.kill()
    killed_at = updates.done
    crashed_at = committed_checkpoint(stack)
    assert crashed_at is not None
    streamer.start(ready=f"resuming at {crashed_at.position}")
    updates.join(120)
    assert updates.error is None and updates.done == CHANGES, updates.error
    wait_committed(stack, 120)
    assert streamer.stop() == 0

    committed = read_topic(
        stack.broker.bootstrap_servers, stack.topic, isolation_level="read_committed"
    )
    titles = Counter(
        r.event["data"]["post"]["title"] for r in committed if r.event["type"] == "post_updated"
    )
    expected = {f"v{n}" for n in range(CHANGES)}
    twice = {t: c for t, c in titles.items() if c > 1}
    missing = expected - set(titles)
    assert twice == {}, f"{len(twice)} changes seen more than once: {list(twice.items())[:10]}"
    assert missing == set(), f"{len(missing)} changes missing: {sorted(missing)[:10]}"
    assert set(titles) == expected
    event_ids = Counter(r.event["id"] for r in committed)
    assert [i for i, c in event_ids.items() if c > 1] == []
    # What a read_uncommitted consumer would have seen: the aborted records too.
    everything = read_topic(stack.broker.bootstrap_servers, stack.topic)
    print(
        f"killed after {killed_at} updates; committed records {len(committed)}, "
        f"all records (read_uncommitted) {len(everything)}"
    )


def test_a_second_producer_with_the_transactional_id_stops_the_run(
    eos_stack: WordPressStack,
) -> None:
    stack, streamer = eos_stack, eos_stack.streamer
    streamer.start()
    post = stack.wordpress.php("return wp_insert_post(['post_title' => 'one'], true);")
    wait_committed(stack, 30)

    async def take_over() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=stack.broker.bootstrap_servers,
            transactional_id=f"wpcdc:{stack.topic}.checkpoint:{stack.topic}",
            enable_idempotence=True,
        )
        await producer.start()
        try:
            await producer._txn_manager.wait_for_pid()
        finally:
            await producer.stop()

    asyncio.run(take_over())
    stack.execute(f"UPDATE wp_posts SET post_title = 'two' WHERE ID = {int(post)}")
    assert streamer.process is not None
    code = streamer.process.wait(30)
    log = streamer.log_text()
    assert code == EXIT_FAILURE, log[-3000:]
    assert "another producer with transactional id" in log, log[-3000:]
    assert "restarting" not in log, "a fenced run must not retry"


def test_a_broker_without_transactions_is_refused_at_start(
    mysql_server: MysqlEndpoint,
    mysql_database: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    env = wpcdc_env(
        mysql_server, mysql_database, kafka_broker.bootstrap_servers, kafka_topic, tmp_path
    )
    streamer = Streamer(env={**env, **EOS_ENV}, workdir=tmp_path)
    try:
        streamer.start(ready="error:", timeout=60)
        assert streamer.process is not None
        code = streamer.process.wait(30)
    finally:
        streamer.close()
    log = streamer.log_text()
    assert code == EXIT_PREFLIGHT, log[-3000:]
    assert "cannot do transactions" in log and "kafka.exactly_once = false" in log, log


def test_exactly_once_with_the_file_store_is_refused(
    mysql_server: MysqlEndpoint, mysql_database: str, kafka_topic: str, tmp_path: Path
) -> None:
    env = wpcdc_env(mysql_server, mysql_database, "127.0.0.1:9", kafka_topic, tmp_path)
    env.update({**EOS_ENV, "WPCDC_CHECKPOINT__STORE": "file"})
    streamer = Streamer(env=env, workdir=tmp_path)
    try:
        streamer.start(ready="error:", timeout=60)
        assert streamer.process is not None
        code = streamer.process.wait(30)
    finally:
        streamer.close()
    log = streamer.log_text()
    assert code == EXIT_CONFIG, log[-3000:]
    assert 'set checkpoint.store = "kafka"' in log, log
