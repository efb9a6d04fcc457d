"""The Kafka sink: produces records to the events topic and reports each acknowledgement.

This module owns the producer side of Kafka: starting the producer (its options
come from :mod:`wpcdc.kafka.options`), creating the topic, refusing records the
broker would refuse, batching records per partition and turning aiokafka's
delivery results into one future per batch. It decides nothing about events:
the callers (the stream's sender and the snapshot) shrink oversized events
(:mod:`wpcdc.core.records`), track the futures to advance the checkpoint, and
rebuild the sink after a failure.

Batches: the sink picks each record's partition as aiokafka's default
partitioner does (murmur2 of the key, as Kafka's Java client: promise "per-post
order"), appends it to that partition's open batch (aiokafka ``create_batch``)
and hands the batch to the producer (``send_batch``) when it is full, when
``linger_ms`` has passed since it opened, or on :meth:`KafkaSink.flush`. A
partition's batches reach the producer in the order they were opened. One
future per batch, shared by its records, is what aiokafka's per-record send
would have cost per record (a future, a callback, a metadata object: the sink
reached ~15k events/s that way, ~76k with batches, measured in issue 8).

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
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import BrokerResponseError, KafkaError, for_code
from aiokafka.errors import ProducerFenced as AioProducerFenced
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import (
    BrokerUnavailable,
    ConfigError,
    DeliveryFailed,
    PreflightFailed,
    ProducerFenced,
    TopicLost,
    WpcdcError,
)
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.core.records import Headers
from wpcdc.kafka.options import aiokafka_warnings, client_options, producer_options
from wpcdc.kafka.topic import TopicMissing, open_topic
from wpcdc.kafka.transactions import (
    fenced,
    producer_id,
    refusal,
    transactional_options,
)

log = logging.getLogger(__name__)

_TOPIC_ERROR_ALREADY_EXISTS: Final = 36
_START_BACKOFF_FIRST: Final = 0.2
_START_BACKOFF_MAX: Final = 5.0
# After the flush: closing sends nothing more, it only ends the in-flight requests.
_CLOSE_GRACE: Final = 2.0
# Keys whose partition is remembered (murmur2 in pure Python costs ~1.5 µs a key);
# forgotten all at once beyond this, a few MB at most.
_PARTITION_CACHE: Final = 100_000


class RecordTooLarge(WpcdcError):
    """The record is larger than ``kafka.max_message_bytes``; nothing was sent."""

    def __init__(self, *, key: bytes, size: int, limit: int, max_value_size: int) -> None:
        super().__init__(
            f"record {key!r} is {size} bytes, more than kafka.max_message_bytes ({limit}); "
            f"its value must be at most {max_value_size} bytes"
        )
        self.key = key
        self.size = size
        self.limit = limit
        self.max_value_size = max_value_size


def record_size(key: bytes, value: bytes, headers: Headers | None = None) -> int:
    """Bytes the record takes as a batch of its own, before compression.

    This is what the broker compares with its ``message.max.bytes`` when the
    record travels alone. It is measured uncompressed: the compressed size is
    only known once a batch is built, and a record that fits uncompressed fits
    compressed too, so the check is predictable for the caller's oversize policy.
    """
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or []))


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's default partitioner (Kafka's murmur2) gives ``key``
    among ``partitions`` (sorted): what a producer without the sink would choose."""
    return int(DefaultPartitioner()(key, partitions, partitions))


@dataclass(slots=True, eq=False)
class _Batch:
    """One partition's batch being filled, and the future its records share."""

    partition: int
    builder: BatchBuilder
    acked: asyncio.Future[None]
    first_key: bytes
    records: int = 0
    linger: asyncio.TimerHandle | None = None


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
        self._start_timeout = start_timeout
        # Every batch expires request_timeout after its creation, so a flush ends
        # by then even with the broker gone; the margin covers the retry backoff.
        self._stop_timeout = (
            stop_timeout if stop_timeout is not None else (settings.request_timeout + 5.0)
        )
        self._producer: AIOKafkaProducer | None = None
        self._value_limits: dict[tuple[int, tuple[tuple[str, bytes], ...]], int] = {}
        self._partitions: list[int] | None = None
        self._partition_of: dict[bytes, int] = {}
        # The batch being filled, per partition.
        self._open: dict[int, _Batch] = {}
        # The last hand-over of a batch to the producer, per partition: the next
        # one waits for it, so a partition's batches keep their order.
        self._handing: dict[int, asyncio.Future[None]] = {}
        self._pending: set[asyncio.Future[None]] = set()
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
        # A record's size depends on the key's length, not its bytes, and on the
        # headers: computed once per shape (the search below costs ~50 µs).
        shape = (len(key), tuple(headers or ()))
        size = self._value_limits.get(shape)
        if size is None:
            size = self._value_limits[shape] = self._max_value_size(key, headers)
        return size

    def _max_value_size(self, key: bytes, headers: Headers | None) -> int:
        limit = self._settings.max_message_bytes
        size = max(limit - record_size(key, b"", headers), 0)
        # The lengths inside a record are varints: the overhead grows by a few
        # bytes with the value, so step down to the exact boundary.
        while size > 0 and record_size(key, bytes(size), headers) > limit:
            size -= 1
        return size

    async def start(self) -> None:
        """Connect, retrying with backoff for up to ``start_timeout`` seconds.

        Raises BrokerUnavailable naming the bootstrap servers when no broker
        answers in time, ConfigError when the TLS files or the compression
        library are missing.
        """
        if self._producer is not None or self._stopped:
            raise RuntimeError("a KafkaSink starts once; build a new one to reconnect")
        deadline = time.monotonic() + self._start_timeout
        delay = _START_BACKOFF_FIRST
        attempts = 0
        with aiokafka_warnings() as reasons:
            while True:
                attempts += 1
                producer = self._new_producer()
                remaining = max(deadline - time.monotonic(), 0.1)
                try:
                    await asyncio.wait_for(producer.start(), remaining)
                except asyncio.CancelledError:
                    # The caller gave up (a stop while the broker is unreachable).
                    await _close_quietly(producer)
                    raise
                except (KafkaError, OSError, TimeoutError) as exc:
                    await _close_quietly(producer)
                    if self._transactional_id is not None and _refused(exc):
                        # No retry gives a broker transactions it does not have.
                        raise refusal(
                            exc, settings=self._settings, transactional_id=self._transactional_id
                        ) from None
                    if time.monotonic() + delay >= deadline:
                        raise BrokerUnavailable(
                            f"no Kafka broker answered at {self._settings.bootstrap_servers} "
                            f"within {self._start_timeout:g} s ({attempts} attempts; "
                            f"last: {_describe(exc, reasons)}); check kafka.bootstrap_servers "
                            "and that the broker is running and reachable"
                        ) from None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _START_BACKOFF_MAX)
                    reasons.clear()
                    continue
                break
        if self._transactional_id is not None:
            await self._begin(producer, self._transactional_id)
        self._producer = producer

    async def _begin(self, producer: AIOKafkaProducer, transactional_id: str) -> None:
        """Get the producer id (refusing a broker without transactions), open the first
        transaction."""
        try:
            await producer_id(producer, settings=self._settings, transactional_id=transactional_id)
            await producer.begin_transaction()
        except BaseException:
            await _close_quietly(producer)
            raise

    def _new_producer(self) -> AIOKafkaProducer:
        if self._transactional_id is not None:
            options = transactional_options(self._settings, self._transactional_id)
        else:
            options = producer_options(self._settings)
        try:
            return AIOKafkaProducer(**options)
        except OSError as exc:
            raise ConfigError(f"kafka.tls: {exc}") from None
        except RuntimeError as exc:
            # aiokafka checks for the compression library when it is built.
            raise ConfigError(
                f"kafka.compression = {self._settings.compression!r} cannot be used: {exc}; "
                "install the codec's library or choose gzip"
            ) from None

    async def ensure_topic(self) -> bool:
        """Create the topic when it is missing and ``create_topic`` is on.

        Returns True when it was created. Raises PreflightFailed when it is
        missing and must not be created, or when the broker refuses to create it,
        and TopicLost when the topic no longer holds what it acknowledged (see
        :meth:`check_topic`).
        """
        settings = self._settings
        with aiokafka_warnings() as reasons:
            try:
                options = client_options(settings)
            except OSError as exc:
                raise ConfigError(f"kafka.tls: {exc}") from None
            admin = AIOKafkaAdminClient(**options)
            try:
                created = await asyncio.wait_for(
                    self._ensure_topic(admin), settings.request_timeout * 2
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable(
                    f"cannot check topic {settings.topic!r} on "
                    f"{settings.bootstrap_servers}: {_describe(exc, reasons)}"
                ) from None
            finally:
                await _close_quietly(admin)
        await self.check_topic()
        return created

    async def check_topic(self) -> None:
        """Raise TopicLost unless the topic still has the partitions it had and
        every record this run saw acknowledged (see wpcdc.core.offsets)."""
        try:
            async with open_topic(self._settings, self.topic) as reader:
                partitions: int | None = len(reader.partitions)
                ends = await reader.end_offsets()
        except TopicMissing:
            partitions, ends = None, {}
        except WpcdcError as exc:
            raise BrokerUnavailable(str(exc)) from None
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"cannot read the end offsets of {self.topic!r}: {_describe(exc)}"
            ) from None
        problems = self._offsets.check(partitions, ends)
        if problems:
            raise self._lost("; ".join(problems))

    def _lost(self, what: str) -> TopicLost:
        settings = self._settings
        count = self._offsets.partitions or settings.partitions
        return TopicLost(
            f"topic {self.topic!r} on {settings.bootstrap_servers} lost records the broker "
            f"had acknowledged ({what}): the broker restarted without its data, or the "
            "topic was deleted or recreated. Events the checkpoint has passed may be gone, "
            "so wpcdc stops instead of streaming on with a gap. Restore the broker's "
            f"storage or recreate the topic ({count} partitions), then run "
            "`wpcdc snapshot --force` to send every post again, and start `wpcdc run`."
        )

    async def _ensure_topic(self, admin: AIOKafkaAdminClient) -> bool:
        settings = self._settings
        await admin.start()
        # All topics, never ours by name: a metadata request naming a missing
        # topic makes brokers with auto.create.topics.enable create it.
        if settings.topic in await admin.list_topics():
            return False
        if self._offsets.seen:
            # It held acknowledged records: creating it again would hide the loss.
            raise self._lost("the topic no longer exists")
        if not settings.create_topic:
            raise PreflightFailed(
                f"topic {settings.topic!r} does not exist on {settings.bootstrap_servers}: "
                f"create it ({settings.partitions} partitions, replication factor "
                f"{settings.replication_factor}) or set kafka.create_topic = true"
            )
        topic = NewTopic(settings.topic, settings.partitions, settings.replication_factor)
        response = await admin.create_topics([topic])
        created = True
        for result in response.topic_errors:
            code = int(result[1])
            if code == _TOPIC_ERROR_ALREADY_EXISTS:
                created = False  # another instance created it in the meantime
            elif code != 0:
                message = result[2] if len(result) > 2 and result[2] else for_code(code).__name__
                raise PreflightFailed(
                    f"the broker refused to create topic {settings.topic!r} "
                    f"({settings.partitions} partitions, replication factor "
                    f"{settings.replication_factor}): {message}"
                )
        # Creation is asynchronous on real Kafka clusters: wait until the
        # metadata lists it, so that the first send finds its partitions.
        while settings.topic not in await admin.list_topics():
            await asyncio.sleep(0.1)
        if created:
            log.info("created topic %s with %d partitions", settings.topic, settings.partitions)
        return created

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
        # The size grows with the value's length alone: one memoized limit per
        # key length and headers (record_size itself is monotonic in it).
        if len(value) > self.max_value_size(key, headers):
            raise RecordTooLarge(
                key=key,
                size=record_size(key, value, headers),
                limit=self._settings.max_message_bytes,
                max_value_size=self.max_value_size(key, headers),
            )
        partition = self._partition_of.get(key)
        if partition is None:
            partition = await self._partition(producer, key)
        while True:
            batch = self._open.get(partition) or self._new_batch(producer, partition, key)
            if batch.builder.append(timestamp=None, key=key, value=value, headers=headers):
                batch.records += 1
                self._in_transaction += 1
                return batch.acked
            # Full: it goes now, and the record goes in the next one (the first
            # record of a batch always fits: the size check above bounds it).
            # Waiting for the hand-over is the backpressure (at most one batch
            # queued per partition); meanwhile another caller may open the next.
            await asyncio.wait([self._hand_over(producer, batch)])
            self._raise_if_failed(key)

    def _raise_if_failed(self, key: bytes) -> None:
        if isinstance(self._failure, TopicLost | ProducerFenced):
            raise self._failure
        if self._failure is not None:
            raise DeliveryFailed(
                f"not sending {key!r}: an earlier record was not acknowledged "
                f"({_describe(self._failure)}); rebuild the sink and replay from the checkpoint"
            )

    async def _partition(self, producer: AIOKafkaProducer, key: bytes) -> int:
        if self._partitions is None:
            try:
                known = await asyncio.wait_for(
                    producer.partitions_for(self.topic), self._settings.request_timeout
                )
            except (KafkaError, TimeoutError) as exc:
                self._fail(exc)
                raise DeliveryFailed(
                    f"cannot learn the partitions of {self.topic} on "
                    f"{self._settings.bootstrap_servers}: {_describe(exc)}"
                ) from exc
            # Fixed for the sink's life: a topic whose partition count changes is
            # refused at the next connection (check_topic), so keys never move.
            self._partitions = sorted(known)
        if len(self._partition_of) >= _PARTITION_CACHE:
            self._partition_of.clear()
        partition = self._partition_of[key] = partition_for(key, self._partitions)
        return partition

    def _new_batch(self, producer: AIOKafkaProducer, partition: int, key: bytes) -> _Batch:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        self._pending.add(acked)
        acked.add_done_callback(self._pending.discard)
        batch = _Batch(partition, producer.create_batch(), acked, key)
        self._open[partition] = batch
        linger = self._settings.linger_ms / 1000
        batch.linger = loop.call_later(linger, self._linger_over, producer, batch)
        return batch

    def _linger_over(self, producer: AIOKafkaProducer, batch: _Batch) -> None:
        if self._open.get(batch.partition) is batch:
            self._hand_over(producer, batch)

    def _hand_over(self, producer: AIOKafkaProducer, batch: _Batch) -> asyncio.Future[None]:
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
        self, producer: AIOKafkaProducer, batch: _Batch, previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
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
                f"{self.topic} on {self._settings.bootstrap_servers}: {_describe(exc)}"
            )
            failure.__cause__ = exc
            if not batch.acked.done():
                batch.acked.set_exception(failure)
            return
        delivery.add_done_callback(lambda done: self._settle(batch, done))

    def _settle(self, batch: _Batch, delivery: asyncio.Future[Any]) -> None:
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
            lost = self._lost(wrong)
            self._fail(lost)
            acked.set_exception(lost)
            return
        self._fail(exc)
        self._settle_failure(batch, exc)

    def _settle_failure(self, batch: _Batch, exc: BaseException) -> None:
        if batch.acked.done():
            return
        if isinstance(exc, AioProducerFenced):
            exc = self._fenced(exc)
        if isinstance(exc, TopicLost | ProducerFenced):
            batch.acked.set_exception(exc)
            return
        failure = DeliveryFailed(
            f"{batch.records} records ({batch.first_key!r}...) were not acknowledged by "
            f"{self._settings.bootstrap_servers} (topic {self.topic}): {_describe(exc)}"
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
            await _abort(producer)
        else:
            await self._abort_transaction(producer)
            try:
                await asyncio.wait_for(producer.stop(), _CLOSE_GRACE)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "Kafka sink: the producer did not close within %g s (%s); closing it anyway",
                    _CLOSE_GRACE,
                    _describe(exc),
                )
                await _abort(producer)
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
        if self._open or self._handing:
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
                f"(transactional id {transactional_id!r}): {_describe(exc)}; its events are "
                "aborted and sent again from the last committed checkpoint"
            ) from None

    def _raise_failure(self) -> None:
        failure = self._failure
        if failure is None:
            return
        if isinstance(failure, TopicLost | ProducerFenced):
            raise failure
        raise DeliveryFailed(
            f"records to {self.topic} were not acknowledged ({_describe(failure)}); "
            "rebuild the sink and replay from the checkpoint"
        )

    async def _abort_transaction(self, producer: AIOKafkaProducer) -> None:
        """Abort what the open transaction holds, when it holds anything (a failure, a
        stop before the last commit), so that read_committed consumers are not held
        back until the next producer with the id fences this one. Best effort."""
        manager = producer._txn_manager
        if self._transactional_id is None or manager is None:
            return
        if manager.is_fatal_error():
            # Fenced: aiokafka failed its own transaction future, which nobody
            # awaits ("Future exception was never retrieved" at exit otherwise).
            waiter = manager._transaction_waiter
            if waiter.done() and not waiter.cancelled():
                waiter.exception()
            return
        if not manager.is_in_transaction() or manager.is_empty_transaction():
            return
        try:
            await asyncio.wait_for(producer.abort_transaction(), _CLOSE_GRACE)
        except (KafkaError, TimeoutError) as exc:
            log.warning("Kafka sink: the open transaction was not aborted: %s", _describe(exc))

    async def send_open_batches(self) -> None:
        """Hand every batch being filled to the producer now, without waiting for
        ``linger_ms`` nor for the acknowledgements."""
        if self._producer is not None:
            await self._send_open_batches(self._producer)

    async def _send_open_batches(self, producer: AIOKafkaProducer) -> None:
        for batch in list(self._open.values()):
            self._hand_over(producer, batch)
        if self._handing:
            await asyncio.wait(set(self._handing.values()))

    async def _flush(self, producer: AIOKafkaProducer) -> None:
        await self._send_open_batches(producer)
        await producer.flush()
        # Our futures settle in callbacks that run after aiokafka's own.
        if self._pending:
            await asyncio.wait(set(self._pending))

    async def __aenter__(self) -> KafkaSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _abort(producer: AIOKafkaProducer) -> None:
    """Close a producer without waiting for the broker, leaving no task behind.

    Abandoned instead, its sender task (and the drain task a timed-out stop()
    started) would still be pending when the loop closes ("Task was destroyed
    but it is pending!", seen after broker outages). aiokafka has no public
    abort: its batches are failed, its connections closed (so the in-flight
    requests end at once), then its sender task is cancelled and awaited.
    """
    gone = DeliveryFailed("the sink stopped before the broker acknowledged the record")
    with contextlib.suppress(Exception):
        producer._message_accumulator.fail_all(gone)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.client.close(), _CLOSE_GRACE)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer._sender.close(), _CLOSE_GRACE)
    # stop() does nothing more once this is set; the connections are closed.
    producer._closed = True


def _refused(exc: BaseException) -> bool:
    """An answer of the broker (not a connection failure) to the producer id request."""
    return isinstance(exc, BrokerResponseError)


async def _close_quietly(client: AIOKafkaProducer | AIOKafkaAdminClient) -> None:
    close = client.stop if isinstance(client, AIOKafkaProducer) else client.close
    with contextlib.suppress(Exception):
        await close()


def _describe(exc: BaseException, reasons: list[str] | None = None) -> str:
    name, text = type(exc).__name__, str(exc)
    # aiokafka's errors already start with their class name.
    described = text if text.startswith(name) else (f"{name}: {text}" if text else name)
    if reasons:
        # aiokafka only logs why each bootstrap server failed (refused, TLS, SASL).
        described += f" ({'; '.join(list(dict.fromkeys(reasons))[-3:])})"
    return described
