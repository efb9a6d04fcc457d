"""The Kafka sink against a real broker: acks, order per key, size limit, topic, outage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.infra import KafkaEndpoint
from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import BrokerUnavailable, DeliveryFailed, PreflightFailed
from wpcdc.kafka.sink import KafkaSink, RecordTooLarge
from wpcdc.local.broker import TansuBroker
from wpcdc.local.ports import free_port

pytestmark = pytest.mark.integration


def _settings(bootstrap: str, topic: str, **overrides: Any) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, topic=topic, **overrides)


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        async with asyncio.timeout(20):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _describe(bootstrap: str, topic: str) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.describe_topics(None)
        return next((t for t in topics if t["topic"] == topic), {})
    finally:
        await admin.close()


def test_acked_records_arrive_in_order_per_key(
    kafka_broker: KafkaEndpoint, kafka_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    settings = _settings(bootstrap, kafka_topic, partitions=3, linger_ms=5)
    keys = [b"1:10", b"1:11", b"2:10", b"1:12"]

    async def scenario() -> list[Any]:
        async with KafkaSink(settings=settings) as sink:
            assert await sink.ensure_topic() is True
            futures = [
                await sink.send(keys[i % len(keys)], b"v%d" % i, headers=[("ce_type", b"t%d" % i)])
                for i in range(40)
            ]
            assert await asyncio.gather(*futures) == [None] * 40
        return await _read_all(bootstrap, kafka_topic, 40)

    records = asyncio.run(scenario())
    by_key: dict[bytes, list[tuple[bytes, tuple[tuple[str, bytes], ...]]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append((record.value, tuple(record.headers)))
    for k, key in enumerate(keys):
        indexes = range(k, 40, len(keys))
        assert by_key[key] == [(b"v%d" % i, (("ce_type", b"t%d" % i),)) for i in indexes]


def test_oversized_record_is_refused_before_sending(
    kafka_broker: KafkaEndpoint, kafka_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    settings = _settings(bootstrap, kafka_topic, max_message_bytes=10_000, partitions=1)
    headers = [("ce_type", b"post_updated")]

    async def scenario() -> tuple[int, list[Any]]:
        async with KafkaSink(settings=settings) as sink:
            await sink.ensure_topic()
            limit = sink.max_value_size(b"1:1", headers)
            assert 9_800 < limit < 10_000
            with pytest.raises(RecordTooLarge) as refused:
                await sink.send(b"1:1", b"x" * (limit + 1), headers)
            assert refused.value.limit == 10_000
            assert refused.value.max_value_size == limit
            with pytest.raises(RecordTooLarge):
                await sink.send(b"1:1", b"x" * 50_000)
            # The largest allowed value goes through, and the sink still works.
            await (await sink.send(b"1:1", b"y" * limit, headers))
            assert not sink.failed
        return limit, await _read_all(bootstrap, kafka_topic, 1)

    limit, records = asyncio.run(scenario())
    assert [r.value for r in records] == [b"y" * limit]


def test_ensure_topic_creates_it_with_the_configured_partitions(
    kafka_broker: KafkaEndpoint, kafka_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    sink = KafkaSink(settings=_settings(bootstrap, kafka_topic, partitions=4))

    async def scenario() -> tuple[bool, bool, dict[str, Any]]:
        created = await sink.ensure_topic()
        again = await sink.ensure_topic()
        return created, again, await _describe(bootstrap, kafka_topic)

    created, again, topic = asyncio.run(scenario())
    assert (created, again) == (True, False)
    assert len(topic["partitions"]) == 4


def test_missing_topic_without_create_topic_fails_preflight(
    kafka_broker: KafkaEndpoint, kafka_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    sink = KafkaSink(settings=_settings(bootstrap, kafka_topic, create_topic=False))

    with pytest.raises(PreflightFailed) as failed:
        asyncio.run(sink.ensure_topic())
    message = str(failed.value)
    assert kafka_topic in message and bootstrap in message and "create_topic" in message
    assert asyncio.run(_describe(bootstrap, kafka_topic)) == {}


def test_start_gives_up_naming_the_bootstrap_servers() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    sink = KafkaSink(settings=_settings(bootstrap, "t"), start_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=bootstrap.replace(".", r"\.")):
        asyncio.run(sink.start())
    assert time.monotonic() - started < 3


def test_broker_outage_fails_deliveries_and_a_new_sink_recovers(tmp_path: Path) -> None:
    broker = TansuBroker.start(tmp_path / "broker")
    settings = _settings(broker.bootstrap_servers, "outage", request_timeout=3.0, partitions=2)

    async def scenario() -> None:
        nonlocal broker
        sink = KafkaSink(settings=settings)
        await sink.start()
        await sink.ensure_topic()
        await (await sink.send(b"1:1", b"before"))

        # A crash: on SIGTERM Tansu waits ~5 s for connected clients to leave.
        broker.process.kill()
        broker.process.wait()
        lost = time.monotonic()
        futures = [await sink.send(b"1:%d" % i, b"during") for i in range(5)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, DeliveryFailed) for r in results), results
        assert time.monotonic() - lost < 3.0 + 2.0
        assert sink.failed
        with pytest.raises(DeliveryFailed, match="replay"):
            await sink.send(b"1:1", b"after failure")
        stopping = time.monotonic()
        await sink.stop()
        assert time.monotonic() - stopping < 2.0

        # A new sink keeps trying while the broker is down, and starts once it is back.
        async def restart_later() -> None:
            nonlocal broker
            await asyncio.sleep(1.0)
            broker = await asyncio.to_thread(
                TansuBroker.start, tmp_path / "broker", port=broker.port
            )

        restart = asyncio.create_task(restart_later())
        again = KafkaSink(settings=settings, start_timeout=20)
        await again.start()
        await restart
        await again.ensure_topic()  # memory storage: the restart lost the topic
        await (await again.send(b"1:1", b"after"))

        # Stopping with records in flight to a dead broker ends once they expire
        # (request_timeout), and every future is settled.
        broker.process.kill()
        broker.process.wait()
        futures = [await again.send(b"1:%d" % i, b"unacked") for i in range(3)]
        stopping = time.monotonic()
        await again.stop()
        assert time.monotonic() - stopping < 3.0 + 2.0
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, DeliveryFailed) for r in results), results

    try:
        asyncio.run(scenario())
    finally:
        broker.stop()


def _envelope(post_id: int, n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"0-1-{n}/0/post_updated",
        "source": "wpcdc://test/wordpress",
        "type": "post_updated",
        "subject": f"post/{post_id}",
        "time": "2026-11-23T10:00:00Z",
        "sequence": f"{n:010d}",
        "data": {"blog_id": 1, "post_id": post_id, "post": {"content": "body " * 200}},
    }


@pytest.mark.parametrize("compression", ["lz4", "gzip", "zstd", "snappy", "none"])
def test_compressed_batches_are_read_by_wpcdc_tail_and_a_plain_consumer(
    kafka_broker: KafkaEndpoint, kafka_topic: str, tmp_path: Path, compression: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    settings = _settings(bootstrap, kafka_topic, partitions=3, compression=compression)
    envelopes = [_envelope(post_id=n % 7, n=n) for n in range(60)]

    async def produce() -> int:
        async with KafkaSink(settings=settings) as sink:
            await sink.ensure_topic()
            futures = [
                await sink.send(b"1:%d" % e["data"]["post_id"], orjson.dumps(e)) for e in envelopes
            ]
            await asyncio.gather(*futures)
        return len(set(futures))

    batches = asyncio.run(produce())
    assert batches <= 3  # one batch per partition: the records went in one linger_ms
    records = asyncio.run(_read_all(bootstrap, kafka_topic, len(envelopes)))
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(
        e["id"] for e in envelopes
    )
    # Per post, in the order sent.
    by_key: dict[bytes, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append(orjson.loads(record.value)["sequence"])
    assert all(sequences == sorted(sequences) for sequences in by_key.values())

    command = ["tail", "--topic", kafka_topic, "--from-beginning", "--no-follow", "--json"]
    tail = subprocess.run(
        [sys.executable, "-m", "wpcdc", *command],
        env={**os.environ, "WPCDC_KAFKA__BOOTSTRAP_SERVERS": bootstrap},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tail.returncode == 0, tail.stderr
    printed = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert sorted(printed, key=lambda e: e["sequence"]) == envelopes
