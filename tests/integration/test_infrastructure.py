"""The test infrastructure itself: real servers answer and WordPress writes real rows."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from wpcdc.local.wordpress import WordPressError, WordPressSite

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mariadb", "mysql")]


def test_server_logs_full_row_images(mysql_server: MysqlEndpoint) -> None:
    rows = dict(
        mysql_server.execute(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
            "('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata')"
        )
    )
    assert rows == {
        "log_bin": "ON",
        "binlog_format": "ROW",
        "binlog_row_image": "FULL",
        "binlog_row_metadata": "FULL",
    }


def test_wordpress_writes_through_core_apis(
    wordpress: WordPressSite, mysql_server: MysqlEndpoint
) -> None:
    post_id = wordpress.php(
        """
        return wp_insert_post([
            'post_title' => $args['title'],
            'post_status' => 'draft',
            'tags_input' => ['alpha', 'beta'],
            'meta_input' => ['colour' => ['r' => 1, 'g' => 2]],
        ], true);
        """,
        {"title": "Héllo 😀"},
    )
    assert isinstance(post_id, int)
    db = wordpress.database
    title, status = mysql_server.execute(
        f"SELECT post_title, post_status FROM wp_posts WHERE ID = {post_id}", db
    )[0]
    assert (title, status) == ("Héllo 😀", "draft")
    meta = mysql_server.execute(
        f"SELECT meta_value FROM wp_postmeta WHERE post_id = {post_id} AND meta_key = 'colour'", db
    )
    assert meta == [('a:2:{s:1:"r";i:1;s:1:"g";i:2;}',)]
    tags = mysql_server.execute(
        "SELECT t.slug FROM wp_term_relationships r "
        "JOIN wp_term_taxonomy tt USING (term_taxonomy_id) JOIN wp_terms t USING (term_id) "
        f"WHERE r.object_id = {post_id} AND tt.taxonomy = 'post_tag' ORDER BY t.slug",
        db,
    )
    assert tags == [("alpha",), ("beta",)]


def test_php_errors_are_reported(wordpress: WordPressSite) -> None:
    with pytest.raises(WordPressError, match="no_such_function"):
        wordpress.php("return no_such_function();")


def test_broker_round_trip(kafka_broker: KafkaEndpoint, kafka_topic: str) -> None:
    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait(kafka_topic, f"m{i}".encode(), key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            kafka_topic,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            async with asyncio.timeout(20):
                while len(got) < 3:
                    batch = await consumer.getmany(timeout_ms=500)
                    got.extend(m.value for msgs in batch.values() for m in msgs if m.value)
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == [b"m0", b"m1", b"m2"]


def test_throwaway_server_restarts_on_the_same_port(mysql_server_factory: ServerFactory) -> None:
    server = mysql_server_factory()
    server.execute("CREATE DATABASE kept")
    port = server.port
    server.restart(kill=True)
    assert server.port == port
    assert ("kept",) in server.execute("SHOW DATABASES")
