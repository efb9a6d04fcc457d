"""Per-partition batches: the sink's records gathered into one batch, and one future, per partition.

This module owns how :class:`~wpcdc.kafka.sink.KafkaSink` batches: each
record's partition as aiokafka's default partitioner picks it (murmur2 of the
key, as Kafka's Java client: promise "per-post order"), the batch being filled
per partition (aiokafka ``create_batch``), its hand-over to the producer when
it is full, when ``linger_ms`` has passed since it opened, or on a flush, in
the order a partition's batches were opened, and the future its records share.
Sending a handed-over batch and settling its future (what an acknowledgement
means) are the sink's: :class:`PartitionBatches` calls the sink's ``deliver``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import DeliveryFailed

# Keys whose partition is remembered (murmur2 in pure Python costs ~1.5 µs a key);
# forgotten all at once beyond this, a few MB at most.
_PARTITION_CACHE: Final = 100_000


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's default partitioner (Kafka's murmur2) gives ``key``
    among ``partitions`` (sorted): what a producer without the sink would choose."""
    return int(DefaultPartitioner()(key, partitions, partitions))


@dataclass(slots=True, eq=False)
class Batch:
    """One partition's batch being filled, and the future its records share."""

    partition: int
    builder: BatchBuilder
    acked: asyncio.Future[None]
    first_key: bytes
    records: int = 0
    linger: asyncio.TimerHandle | None = None


# Sends a batch the producer may take now (the sink's side of a hand-over).
Deliver = Callable[[AIOKafkaProducer, Batch], Awaitable[None]]


class PartitionBatches:
    """The open batches of one sink, per partition, and their ordered hand-over."""

    def __init__(self, settings: KafkaSettings, deliver: Deliver) -> None:
        self._settings = settings
        self._deliver = deliver
        self._partitions: list[int] | None = None
        self._partition_of: dict[bytes, int] = {}
        # The batch being filled, per partition.
        self._open: dict[int, Batch] = {}
        # The last hand-over of a batch to the producer, per partition: the next
        # one waits for it, so a partition's batches keep their order.
        self._handing: dict[int, asyncio.Future[None]] = {}
        self._pending: set[asyncio.Future[None]] = set()

    @property
    def busy(self) -> bool:
        """True while a batch is being filled or handed over."""
        return bool(self._open or self._handing)

    def known_partition(self, key: bytes) -> int | None:
        """The key's partition when it was asked before (the common case: no await)."""
        return self._partition_of.get(key)

    async def partition(self, producer: AIOKafkaProducer, key: bytes) -> int:
        """The key's partition; the first call learns the topic's partitions
        (raising KafkaError or TimeoutError when the producer cannot)."""
        if self._partitions is None:
            known = await asyncio.wait_for(
                producer.partitions_for(self._settings.topic), self._settings.request_timeout
            )
            # Fixed for the sink's life: a topic whose partition count changes is
            # refused at the next connection (check_topic), so keys never move.
            self._partitions = sorted(known)
        if len(self._partition_of) >= _PARTITION_CACHE:
            self._partition_of.clear()
        partition = self._partition_of[key] = partition_for(key, self._partitions)
        return partition

    def open_batch(self, producer: AIOKafkaProducer, partition: int, key: bytes) -> Batch:
        """The partition's batch being filled, opened (with ``key`` first) when none is."""
        return self._open.get(partition) or self._new_batch(producer, partition, key)

    def _new_batch(self, producer: AIOKafkaProducer, partition: int, key: bytes) -> Batch:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        self._pending.add(acked)
        acked.add_done_callback(self._pending.discard)
        batch = Batch(partition, producer.create_batch(), acked, key)
        self._open[partition] = batch
        linger = self._settings.linger_ms / 1000
        batch.linger = loop.call_later(linger, self._linger_over, producer, batch)
        return batch

    def _linger_over(self, producer: AIOKafkaProducer, batch: Batch) -> None:
        if self._open.get(batch.partition) is batch:
            self.hand_over(producer, batch)

    def hand_over(self, producer: AIOKafkaProducer, batch: Batch) -> asyncio.Future[None]:
        """Close the batch and queue it behind the partition's previous one;
        the returned future is done once the producer took it (or refused it)."""
        if self._open.get(batch.partition) is batch:
            del self._open[batch.partition]
        if batch.linger is not None:
            batch.linger.cancel()
        # Closed, the producer sends it at once instead of lingering again.
        batch.builder.close()
        previous = self._handing.get(batch.partition)
        handing = asyncio.ensure_future(self._queue(producer, batch, previous))
        self._handing[batch.partition] = handing
        handing.add_done_callback(lambda _: self._handed(batch.partition, handing))
        return handing

    def _handed(self, partition: int, handing: asyncio.Future[None]) -> None:
        if self._handing.get(partition) is handing:
            del self._handing[partition]

    async def _queue(
        self, producer: AIOKafkaProducer, batch: Batch, previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._deliver(producer, batch)

    async def hand_over_all(self, producer: AIOKafkaProducer) -> None:
        """Hand every batch being filled to the producer, and wait until it took them."""
        for batch in list(self._open.values()):
            self.hand_over(producer, batch)
        if self._handing:
            await asyncio.wait(set(self._handing.values()))

    async def settled(self) -> None:
        """Wait until every batch's future is done."""
        if self._pending:
            await asyncio.wait(set(self._pending))

    def abandon(self) -> None:
        """Drop every batch (the sink stopped): none is handed over any more, and
        every future not yet done fails with DeliveryFailed."""
        for batch in list(self._open.values()):
            if batch.linger is not None:
                batch.linger.cancel()
        self._open.clear()
        for handing in list(self._handing.values()):
            handing.cancel()
        for acked in list(self._pending):
            if not acked.done():
                acked.set_exception(
                    DeliveryFailed("the sink stopped before the broker acknowledged the record")
                )
