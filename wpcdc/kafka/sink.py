"""The Kafka sink: produces records to the events topic and reports each acknowledgement.

This module owns the producer side of Kafka's delivery contract: refusing
records the broker would refuse, sending records in batches and turning
aiokafka's delivery results into one future per batch, the sink's failure,
flush, stop and transaction commits. Its parts: the producer's life (options,
start with backoff, abort) in :mod:`wpcdc.kafka.producer`, the topic's checks
in :mod:`wpcdc.kafka.topic_guard`, the per-partition batches in
:mod:`wpcdc.kafka.batches`, record sizes in :mod:`wpcdc.kafka.record_limits`.
It decides nothing about events: the callers (the stream's sender and the
snapshot) shrink oversized events (:mod:`wpcdc.core.records`), track the
futures to advance the checkpoint, and rebuild the sink after a failure.

Batches (:mod:`wpcdc.kafka.batches`): the sink picks each record's partition
as aiokafka's default partitioner does (murmur2 of the key, as Kafka's Java
client: promise "per-post order"), appends it to that partition's open batch
(aiokafka ``create_batch``) and hands the batch to the producer
(``send_batch``) when it is full, when ``linger_ms`` has passed since it
opened, or on :meth:`KafkaSink.flush`. A partition's batches reach the
producer in the order they were opened. One future per batch, shared by its
records, is what aiokafka's per-record send would have cost per record (a
future, a callback, a metadata object: the sink reached ~15k events/s that
way, ~76k with batches, measured in issue 8).

Delivery contract:

* :meth:`KafkaSink.send` returns once the record is in its partition's batch
  (it waits only while the partition's queue is full: backpressure). The
  returned future, shared by the records of one batch, resolves when the
  broker acknowledged the batch with ``acks=all``, or fails with
  :class:`DeliveryFailed`.
* After the first failed delivery the sink is *broken*: every later ``send``
  raises :class:`DeliveryFailed`. Records queued behind the failed one may still
  be written, so the caller must rebuild the sink and replay from its
  checkpoint; event ids make the replayed duplicates recognisable.
* An acknowledgement is trusted only while the topic still holds what was
  acknowledged before (:class:`~wpcdc.core.offsets.AcknowledgedOffsets`,
  shared by the sinks of one run): an offset that goes backwards fails the
  record, and :meth:`KafkaSink.ensure_topic` checks the topic's partitions and
  end offsets on every connection. Either raises :class:`TopicLost`, which no
  rebuild can cure.
* Errors::

      WpcdcError
       ├── RecordTooLarge      raised by send() before anything is sent; shrink the event
       ├── DeliveryFailed      a record was not acknowledged; rebuild and replay
       ├── BrokerUnavailable   start() or ensure_topic() could not reach the brokers
       ├── ProducerFenced      a newer producer has the transactional id; stop (exit 1)
       └── TopicLost           the broker lost acknowledged records; stop (exit 3)

Transactions (``transactional_id`` given: ``kafka.exactly_once``): the producer
is idempotent and transactional (:mod:`wpcdc.kafka.transactions`); a
transaction is open from :meth:`KafkaSink.start` on, and every batch joins it
(aiokafka's ``send_batch`` adds the batch's partition to the transaction, as
``send`` does: ``MessageAccumulator._append_batch``). An acknowledgement then
means "written, not yet visible to read_committed consumers".
:meth:`KafkaSink.drain` hands over every batch and waits for their
acknowledgements; :meth:`KafkaSink.commit` adds one last record (the
checkpoint) to the transaction, commits it and opens the next. Between the
two the caller sends nothing, so a committed transaction holds exactly the
events the checkpoint it carries covers. Records of a transaction that is not
committed (a failure, a kill) are aborted: read_committed consumers never see
them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.errors import ProducerFenced as AioProducerFenced

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import DeliveryFailed, ProducerFenced, TopicLost
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.core.records import Headers
from wpcdc.kafka.batches import Batch, PartitionBatches
from wpcdc.kafka.producer import (
    CLOSE_GRACE,
    abort,
    abort_transaction,
    describe,
    start_producer,
)
from wpcdc.kafka.record_limits import RecordLimits
from wpcdc.kafka.topic_guard import TopicGuard
from wpcdc.kafka.transactions import fenced

log = logging.getLogger(__name__)


class KafkaSink:
    """Produces records to ``settings.topic`` and reports each acknowledgement.

    Call :meth:`ensure_topic` before the first :meth:`send`: brokers that create
    topics on first use (``auto.create.topics.enable``; the Tansu broker always
    does) would otherwise create it with their own partition count.
    """

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        start_timeout: float = 60.0,
        stop_timeout: float | None = None,
        offsets: AcknowledgedOffsets | None = None,
        transactional_id: str | None = None,
    ) -> None:
        self._settings = settings
        # Set: every record is sent in a transaction (see the module docstring).
        self._transactional_id = transactional_id
        # Shared by the sinks of one run, so a rebuilt sink knows what the topic held.
        self._offsets = offsets if offsets is not None else AcknowledgedOffsets()
        self._guard = TopicGuard(settings, self._offsets)
        self._start_timeout = start_timeout
        # Every batch expires request_timeout after its creation, so a flush ends
        # by then even with the broker gone; the margin covers the retry backoff.
        self._stop_timeout = (
            stop_timeout if stop_timeout is not None else (settings.request_timeout + 5.0)
        )
        self._producer: AIOKafkaProducer | None = None
        self._limits = RecordLimits(settings.max_message_bytes)
        self._batches = PartitionBatches(settings, self._deliver)
        self._failure: BaseException | None = None
        self._stopped = False
        # Records sent since the last commit (transactions only).
        self._in_transaction = 0

    @property
    def topic(self) -> str:
        return self._settings.topic

    @property
    def transactional(self) -> bool:
        return self._transactional_id is not None

    @property
    def pending(self) -> int:
        """Records sent in the open transaction (0 without transactions)."""
        return self._in_transaction if self._transactional_id is not None else 0

    @property
    def failed(self) -> bool:
        """True once a delivery failed: the sink takes no more records."""
        return self._failure is not None

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        """The largest value that :meth:`send` accepts with this key and headers."""
        return self._limits.max_value_size(key, headers)

    async def start(self) -> None:
        """Connect, retrying with backoff for up to ``start_timeout`` seconds.

        Raises BrokerUnavailable naming the bootstrap servers when no broker
        answers in time, ConfigError when the TLS files or the compression
        library are missing.
        """
        if self._producer is not None or self._stopped:
            raise RuntimeError("a KafkaSink starts once; build a new one to reconnect")
        self._producer = await start_producer(
            self._settings, transactional_id=self._transactional_id, timeout=self._start_timeout
        )

    async def ensure_topic(self) -> bool:
        """Create the topic when it is missing and ``create_topic`` is on.

        Returns True when it was created. Raises PreflightFailed when it is
        missing and must not be created, or when the broker refuses to create it,
        and TopicLost when the topic no longer holds what it acknowledged (see
        :meth:`check_topic`).
        """
        return await self._guard.ensure_topic()

    async def check_topic(self) -> None:
        """Raise TopicLost unless the topic still has the partitions it had and
        every record this run saw acknowledged (see wpcdc.core.offsets)."""
        await self._guard.check_topic()

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        """Add one record to its partition's batch; the future (shared by the
        batch's records) resolves when the broker acknowledged the batch.

        Waits only while the partition's queue is full. Raises RecordTooLarge
        before sending anything when the record exceeds ``max_message_bytes``,
        and DeliveryFailed when the sink is broken or a full batch could not be
        queued within ``request_timeout``.
        """
        producer = self._producer
        if producer is None:
            raise RuntimeError("KafkaSink.send() before start() or after stop()")
        self._raise_if_failed(key)
        self._limits.check(key, value, headers)
        batches = self._batches
        partition = batches.known_partition(key)
        if partition is None:
            partition = await self._partition(producer, key)
        while True:
            batch = batches.open_batch(producer, partition, key)
            if batch.builder.append(timestamp=None, key=key, value=value, headers=headers):
                batch.records += 1
                self._in_transaction += 1
                return batch.acked
            # Full: it goes now, and the record goes in the next one (the first
            # record of a batch always fits: the size check above bounds it).
            # Waiting for the hand-over is the backpressure (at most one batch
            # queued per partition); meanwhile another caller may open the next.
            await asyncio.wait([batches.hand_over(producer, batch)])
            self._raise_if_failed(key)

    def _raise_if_failed(self, key: bytes) -> None:
        if isinstance(self._failure, TopicLost | ProducerFenced):
            raise self._failure
        if self._failure is not None:
            raise DeliveryFailed(
                f"not sending {key!r}: an earlier record was not acknowledged "
                f"({describe(self._failure)}); rebuild the sink and replay from the checkpoint"
            )

    async def _partition(self, producer: AIOKafkaProducer, key: bytes) -> int:
        try:
            return await self._batches.partition(producer, key)
        except (KafkaError, TimeoutError) as exc:
            self._fail(exc)
            raise DeliveryFailed(
                f"cannot learn the partitions of {self.topic} on "
                f"{self._settings.bootstrap_servers}: {describe(exc)}"
            ) from exc

    async def _deliver(self, producer: AIOKafkaProducer, batch: Batch) -> None:
        """Send a batch handed over (behind the partition's previous one)."""
        if self._failure is not None:
            # Sending it behind a failed batch could reorder the partition.
            self._settle_failure(batch, self._failure)
            return
        try:
            delivery = await producer.send_batch(
                batch.builder, self.topic, partition=batch.partition
            )
        except KafkaError as exc:
            # The queue stayed full (or the metadata unknown) for request_timeout.
            self._fail(exc)
            if isinstance(exc, AioProducerFenced):
                self._settle_failure(batch, exc)
                return
            failure = DeliveryFailed(
                f"cannot queue {batch.records} records ({batch.first_key!r}...) for "
                f"{self.topic} on {self._settings.bootstrap_servers}: {describe(exc)}"
            )
            failure.__cause__ = exc
            if not batch.acked.done():
                batch.acked.set_exception(failure)
            return
        delivery.add_done_callback(lambda done: self._settle(batch, done))

    def _settle(self, batch: Batch, delivery: asyncio.Future[Any]) -> None:
        acked = batch.acked
        if acked.done():  # the caller cancelled it
            return
        if delivery.cancelled():
            acked.cancel()
            return
        exc = delivery.exception()
        if exc is None:
            metadata = delivery.result()
            # The batch's records are at base offset .. + records - 1: both ends
            # must be past what the partition acknowledged before.
            wrong = self._offsets.acknowledged(batch.partition, metadata.offset)
            if wrong is None and batch.records > 1:
                last = metadata.offset + batch.records - 1
                wrong = self._offsets.acknowledged(batch.partition, last)
            if wrong is None:
                acked.set_result(None)
                return
            lost = self._guard.lost(wrong)
            self._fail(lost)
            acked.set_exception(lost)
            return
        self._fail(exc)
        self._settle_failure(batch, exc)

    def _settle_failure(self, batch: Batch, exc: BaseException) -> None:
        if batch.acked.done():
            return
        if isinstance(exc, AioProducerFenced):
            exc = self._fenced(exc)
        if isinstance(exc, TopicLost | ProducerFenced):
            batch.acked.set_exception(exc)
            return
        failure = DeliveryFailed(
            f"{batch.records} records ({batch.first_key!r}...) were not acknowledged by "
            f"{self._settings.bootstrap_servers} (topic {self.topic}): {describe(exc)}"
        )
        failure.__cause__ = exc
        batch.acked.set_exception(failure)

    def _fenced(self, exc: BaseException) -> ProducerFenced:
        return fenced(self._transactional_id or "", exc)

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, AioProducerFenced):
            exc = self._fenced(exc)
        if self._failure is None:
            self._failure = exc
            log.warning("Kafka delivery failed, the sink takes no more records: %s", exc)

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged or failed.

        Does not raise for failed records: their futures carry the errors. Ends
        within about ``request_timeout`` even when the broker is gone, since
        aiokafka fails each batch that long after creating it.
        """
        if self._producer is not None:
            await self._flush(self._producer)

    async def stop(self) -> None:
        """Flush, then close: bounded by ``stop_timeout`` plus a short grace to close.

        Records still unacknowledged when time runs out have their futures
        failed with DeliveryFailed: none is left pending, and no task of the
        producer outlives the call.
        """
        producer, self._producer = self._producer, None
        self._stopped = True
        if producer is None:
            return
        try:
            await asyncio.wait_for(self._flush(producer), self._stop_timeout)
        except TimeoutError:
            # The broker does not answer: aiokafka's own stop() would wait for
            # the same records to drain, up to request_timeout.
            log.warning("Kafka sink: records unacknowledged after %g s fail", self._stop_timeout)
            await abort(producer)
        else:
            if self._transactional_id is not None:
                await abort_transaction(producer)
            try:
                await asyncio.wait_for(producer.stop(), CLOSE_GRACE)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "Kafka sink: the producer did not close within %g s (%s); closing it anyway",
                    CLOSE_GRACE,
                    describe(exc),
                )
                await abort(producer)
        self._batches.abandon()

    async def drain(self) -> None:
        """Hand every batch to the producer and wait until the broker acknowledged
        them all (transactions: before :meth:`commit`). Raises the sink's failure
        (DeliveryFailed, ProducerFenced, TopicLost) when there was one."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("KafkaSink.drain() before start() or after stop()")
        await self._flush(producer)
        self._raise_failure()

    async def commit(self, topic: str, key: bytes, value: bytes) -> None:
        """Add the record (the checkpoint: ``topic``'s partition 0) to the open
        transaction, commit the transaction and open the next one.

        Call it after :meth:`drain`, with nothing sent in between. Raises
        ProducerFenced when a newer producer has the id, DeliveryFailed when the
        commit failed or did not end within ``request_timeout`` (the transaction
        is then aborted by the broker or by the next producer with the id: the
        caller replays from the checkpoint committed before).
        """
        producer, transactional_id = self._producer, self._transactional_id
        if producer is None or transactional_id is None:
            raise RuntimeError("KafkaSink.commit() of a sink without a started transaction")
        if self._batches.busy:
            raise RuntimeError("KafkaSink.commit() with batches not handed over: drain() first")
        self._raise_failure()
        try:
            async with asyncio.timeout(self._settings.request_timeout):
                delivery = await producer.send(topic, value, key=key, partition=0)
                await delivery
                await producer.commit_transaction()
                self._in_transaction = 0
                await producer.begin_transaction()
        except (KafkaError, TimeoutError) as exc:
            self._fail(exc)
            if isinstance(self._failure, ProducerFenced):
                raise self._failure from None
            raise DeliveryFailed(
                f"the transaction was not committed by {self._settings.bootstrap_servers} "
                f"(transactional id {transactional_id!r}): {describe(exc)}; its events are "
                "aborted and sent again from the last committed checkpoint"
            ) from None

    def _raise_failure(self) -> None:
        failure = self._failure
        if failure is None:
            return
        if isinstance(failure, TopicLost | ProducerFenced):
            raise failure
        raise DeliveryFailed(
            f"records to {self.topic} were not acknowledged ({describe(failure)}); "
            "rebuild the sink and replay from the checkpoint"
        )

    async def send_open_batches(self) -> None:
        """Hand every batch being filled to the producer now, without waiting for
        ``linger_ms`` nor for the acknowledgements."""
        if self._producer is not None:
            await self._batches.hand_over_all(self._producer)

    async def _flush(self, producer: AIOKafkaProducer) -> None:
        await self._batches.hand_over_all(producer)
        await producer.flush()
        # Our futures settle in callbacks that run after aiokafka's own.
        await self._batches.settled()

    async def __aenter__(self) -> KafkaSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
