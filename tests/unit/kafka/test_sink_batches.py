"""The sink's batches: the key picks the partition as Kafka's default partitioner
does, a partition's records go in order in batches that share one future, and
a batch goes when full, when linger_ms passed or on flush (issue 8).

The producer here is a stand-in that records the batches handed to it (real
aiokafka batch builders) and lets the test acknowledge them; the real broker is
in tests/integration/test_sink.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import DeliveryFailed
from wpcdc.kafka.sink import KafkaSink, partition_for


class BatchingProducer:
    """What the sink uses of AIOKafkaProducer: partitions_for, create_batch, send_batch."""

    def __init__(self, partitions: int, batch_size: int) -> None:
        self.partitions = partitions
        self.batch_size = batch_size
        self.handed: list[tuple[int, BatchBuilder, asyncio.Future[object]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[object]:
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.handed.append((partition, batch, delivery))
        return delivery

    async def flush(self) -> None:
        return None

    def records(self, index: int) -> list[tuple[bytes, bytes]]:
        """The (key, value) pairs of the index-th batch handed over."""
        records = MemoryRecords(bytes(self.handed[index][1]._build()))
        batch = records.next_batch()
        assert batch is not None
        return [(record.key, record.value) for record in batch]

    def acknowledge(self, index: int, offset: int) -> None:
        partition, _, delivery = self.handed[index]
        delivery.set_result(SimpleNamespace(partition=partition, offset=offset))


def sink_with(producer: BatchingProducer, **settings: object) -> KafkaSink:
    sink = KafkaSink(settings=KafkaSettings(topic="events", **settings))  # type: ignore[arg-type]
    sink._producer = producer  # type: ignore[assignment]
    return sink


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_the_partition_is_the_java_clients_murmur2(key: bytes, partition: int) -> None:
    # Kafka's own test vectors (org.apache.kafka.clients.producer.Partitioner, 1000 partitions).
    assert partition_for(key, list(range(1000))) == partition


def test_post_keys_land_where_aiokafkas_default_partitioner_puts_them() -> None:
    default = DefaultPartitioner()
    for partitions in (1, 3, 6, 12):
        all_partitions = list(range(partitions))
        for blog in (1, 2, 17):
            for post in range(0, 5000, 7):
                key = f"{blog}:{post}".encode()
                expected = default(key, all_partitions, all_partitions)
                assert partition_for(key, all_partitions) == expected


def test_records_of_a_partition_share_one_future_and_keep_their_order() -> None:
    async def main() -> None:
        producer = BatchingProducer(partitions=3, batch_size=16384)
        sink = sink_with(producer, linger_ms=10_000)
        keys = [f"1:{post}".encode() for post in range(12)]
        futures = [await sink.send(key, b"v%d" % i) for i, key in enumerate(keys * 2)]
        assert producer.handed == []  # lingering
        by_partition = {partition_for(key, [0, 1, 2]) for key in keys}
        # One future per partition's batch, shared by its records.
        assert len(set(futures)) == len(by_partition)
        await sink.send_open_batches()
        assert sorted(p for p, _, _ in producer.handed) == sorted(by_partition)
        for index, (partition, _, _) in enumerate(producer.handed):
            expected = [
                (key, b"v%d" % i)
                for i, key in enumerate(keys * 2)
                if partition_for(key, [0, 1, 2]) == partition
            ]
            assert producer.records(index) == expected
        assert not any(f.done() for f in futures)
        for index in range(len(producer.handed)):
            producer.acknowledge(index, 0)
        await asyncio.sleep(0)
        assert all(f.done() and f.result() is None for f in futures)

    asyncio.run(main())


def test_a_full_batch_goes_at_once_and_the_record_opens_the_next() -> None:
    async def main() -> None:
        producer = BatchingProducer(partitions=1, batch_size=1024)
        sink = sink_with(producer, linger_ms=10_000)
        futures = [await sink.send(b"1:1", bytes(300)) for _ in range(7)]
        await asyncio.sleep(0)
        # ~3 records of 300 bytes fill 1 KB: the full batches went without a flush.
        assert len(producer.handed) == 2
        assert [len(producer.records(i)) for i in range(2)] == [3, 3]
        assert futures[0] is futures[2] and futures[2] is not futures[3]
        assert futures[6] is not futures[5]
        producer.acknowledge(0, 0)
        producer.acknowledge(1, 3)
        await asyncio.sleep(0)
        assert [f.done() for f in futures] == [True] * 6 + [False]

    asyncio.run(main())


def test_a_batch_goes_once_linger_ms_passed() -> None:
    async def main() -> None:
        producer = BatchingProducer(partitions=2, batch_size=16384)
        sink = sink_with(producer, linger_ms=20)
        acked = await sink.send(b"1:1", b"v")
        await asyncio.sleep(0.01)
        assert producer.handed == []
        await asyncio.sleep(0.05)
        assert len(producer.handed) == 1
        producer.acknowledge(0, 5)
        await asyncio.wait_for(acked, 1)

    asyncio.run(main())


def test_a_failed_batch_fails_its_future_and_every_later_send() -> None:
    async def main() -> None:
        producer = BatchingProducer(partitions=1, batch_size=16384)
        sink = sink_with(producer, linger_ms=10_000)
        acked = await sink.send(b"1:1", b"v")
        await sink.send_open_batches()
        producer.handed[0][2].set_exception(OSError("connection reset"))
        with pytest.raises(DeliveryFailed, match=r"1 records .*not acknowledged"):
            await acked
        assert sink.failed
        with pytest.raises(DeliveryFailed, match="replay from the checkpoint"):
            await sink.send(b"1:2", b"w")

    asyncio.run(main())


def test_callers_waiting_on_a_full_batch_share_the_next_one() -> None:
    async def main() -> None:
        producer = BatchingProducer(partitions=1, batch_size=1024)
        sink = sink_with(producer, linger_ms=10_000)
        for _ in range(3):
            await sink.send(b"1:1", bytes(300))
        # Two callers at once: the first finds the batch full and waits for its hand-over.
        first, second = await asyncio.gather(
            sink.send(b"1:1", b"a" * 300), sink.send(b"1:1", b"b" * 300)
        )
        assert first is second  # neither batch was left behind
        await sink.send_open_batches()
        assert [len(producer.records(i)) for i in range(len(producer.handed))] == [3, 2]
        assert sorted(value[:1] for _, value in producer.records(1)) == [b"a", b"b"]

    asyncio.run(main())
