"""The checkpoint in a compacted Kafka topic (``checkpoint.store = "kafka"``).

This module owns keeping the stream's checkpoint on the broker instead of in a
file, so that the container needs no volume: one record per save, keyed by the
events topic's name (several streams may share one checkpoint topic), in a
one-partition topic with ``cleanup.policy=compact`` (by default the events
topic's name + ``.checkpoint``), created when missing. The newest record of the
key is the checkpoint.

The guarantees are the file store's (promise "checkpoint after ack",
docs/ARCHITECTURE.md): what is saved is the checkpoint the pipeline computed,
after the acknowledgements it covers, covered markers included
(:meth:`Checkpoint.to_json`); saves are written one at a time, each after the
previous one is acknowledged (acks=all), so the topic never holds an older
checkpoint after a newer one. :meth:`save` does not block the event loop: the
newest checkpoint waits for the one being written and replaces any older one
still waiting. A crash before a save is acknowledged leaves the one before it,
which is safe (the stream replays from there, ids unchanged).
:meth:`flush` waits until the last save is on the broker: the run calls it for
the first checkpoint (the binlog's end, which must be durable before any
event) and on exit.

With ``kafka.exactly_once`` the stream's checkpoints are not saved here: the
sink commits each one in the transaction of the events it covers
(:meth:`record` is that record), and :meth:`load` reads back only committed
records (``read_committed``, :mod:`wpcdc.kafka.topic`). Only the first
checkpoint (the binlog's end, before any event) is written by :meth:`save`.

The store runs its own event loop in a daemon thread: the pipeline calls
:meth:`save` synchronously, and ``wpcdc verify`` calls :meth:`load` from
threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import BrokerUnavailable, CheckpointError, ConfigError, PreflightFailed
from wpcdc.kafka.options import aiokafka_warnings, client_options, producer_options
from wpcdc.kafka.topic import TopicMissing, open_topic

log = logging.getLogger(__name__)

T = TypeVar("T")

_TOPIC_ERROR_ALREADY_EXISTS: Final = 36
# The topic's settings: compaction keeps the newest record of each key.
TOPIC_CONFIG: Final = {"cleanup.policy": "compact"}


class KafkaCheckpointStore:
    """The checkpoint of the stream writing ``key`` (the events topic), in ``topic``."""

    def __init__(self, settings: KafkaSettings, *, topic: str, key: bytes) -> None:
        self._settings = settings
        self.topic = topic
        self._key = key
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="wpcdc-checkpoint-store", daemon=True
        )
        self._thread.start()
        self._producer: AIOKafkaProducer | None = None
        self._topic_ready = False
        # Written only on the store's loop.
        self._pending: Checkpoint | None = None
        self._writing: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"kafka topic {self.topic!r} (key {self._key.decode(errors='replace')!r})"

    # --- the CheckpointStore protocol ----------------------------------------------

    def load(self) -> Checkpoint | None:
        """The newest checkpoint of the key; None when there is none. Raises
        BrokerUnavailable when the broker cannot be read, CheckpointError when the
        record is not a checkpoint."""
        raw = self._call(self._load(), self._settings.request_timeout * 3)
        if raw is None:
            return None
        try:
            return Checkpoint.from_json(raw)
        except ValueError as exc:
            raise CheckpointError(
                f"the checkpoint in {self!r} cannot be read ({exc}). Delete the topic's "
                "records for this key (or the topic) and run `wpcdc snapshot` to start over"
            ) from None

    def save(self, checkpoint: Checkpoint) -> None:
        """Queue ``checkpoint`` to be written after the save being written; returns at once."""
        if self._closed:
            raise RuntimeError("the checkpoint store is closed")
        self._loop.call_soon_threadsafe(self._queue, checkpoint)

    def record(self, checkpoint: Checkpoint) -> tuple[str, bytes, bytes]:
        """The record that holds ``checkpoint``: topic, key and value (committed in a
        transaction by the sink, with ``kafka.exactly_once``)."""
        return self.topic, self._key, checkpoint.to_json()

    # --- durability ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued checkpoint is acknowledged. Raises BrokerUnavailable
        when the last attempt failed or ``timeout`` passed first."""
        wait = timeout if timeout is not None else self._settings.request_timeout * 2
        try:
            self._call(self._flush(), wait)
        except TimeoutError:
            raise BrokerUnavailable(
                f"the checkpoint was not acknowledged by {self._settings.bootstrap_servers} "
                f"within {wait:g} s (topic {self.topic!r}; last error: {self._failure})"
            ) from None

    def close(self, timeout: float = 2.0) -> None:
        """Flush (at most ``timeout`` seconds; a failure is logged), then stop."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        except BrokerUnavailable as exc:
            log.warning("%s; the previous checkpoint stays", exc)
        self._closed = True
        with contextlib.suppress(Exception):
            self._call(self._stop(), 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    # --- on the store's loop ---------------------------------------------------------

    def _call(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _queue(self, checkpoint: Checkpoint) -> None:
        self._pending = checkpoint
        if self._writing is None or self._writing.done():
            self._writing = self._loop.create_task(self._write())

    async def _write(self) -> None:
        while self._pending is not None:
            checkpoint, self._pending = self._pending, None
            try:
                producer = await self._started()
                await self._ensure_topic()
                delivery = await producer.send(
                    self.topic, checkpoint.to_json(), key=self._key, partition=0
                )
                await delivery
                self._failure = None
            except Exception as exc:
                self._failure = exc
                # Retried by the next save or flush, with the newest checkpoint.
                if self._pending is None:
                    self._pending = checkpoint
                log.warning(
                    "checkpoint not saved to topic %s: %s: %s",
                    self.topic,
                    type(exc).__name__,
                    exc,
                    extra={"topic": self.topic, "position": str(checkpoint.position)},
                )
                await self._reset()
                return

    async def _flush(self) -> None:
        while True:
            if self._writing is not None and not self._writing.done():
                await asyncio.shield(self._writing)
                continue
            if self._pending is None:
                return
            if self._failure is not None:
                await asyncio.sleep(0.5)  # the last attempt failed: retry until the timeout
            self._writing = self._loop.create_task(self._write())

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            try:
                producer = AIOKafkaProducer(**{**producer_options(self._settings), "linger_ms": 0})
            except OSError as exc:
                raise ConfigError(f"kafka.tls: {exc}") from None
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _reset(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 2.0)

    async def _stop(self) -> None:
        await self._reset()

    async def _load(self) -> bytes | None:
        await self._ensure_topic()
        newest: bytes | None = None
        try:
            async with open_topic(self._settings, self.topic) as reader:
                await reader.from_beginning()
                unfinished = await reader.ends()
                while unfinished:
                    for records in (await reader.fetch()).values():
                        for record in records:
                            if record.key == self._key:
                                newest = record.value  # None: a tombstone, no checkpoint
                    await reader.drop_reached(unfinished)
        except TopicMissing:
            return None
        return newest

    async def _ensure_topic(self) -> None:
        if self._topic_ready:
            return
        settings = self._settings
        with aiokafka_warnings() as reasons:
            admin = AIOKafkaAdminClient(**client_options(settings))
            try:
                await asyncio.wait_for(self._create_topic(admin), settings.request_timeout * 2)
            except (KafkaError, OSError, TimeoutError) as exc:
                detail = "; ".join(reasons) or f"{type(exc).__name__}: {exc}"
                raise BrokerUnavailable(
                    f"cannot check checkpoint topic {self.topic!r} on "
                    f"{settings.bootstrap_servers}: {detail}"
                ) from None
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        self._topic_ready = True

    async def _create_topic(self, admin: AIOKafkaAdminClient) -> None:
        settings = self._settings
        await admin.start()
        if self.topic in await admin.list_topics():
            return
        if not settings.create_topic:
            raise PreflightFailed(
                f"checkpoint topic {self.topic!r} does not exist on "
                f"{settings.bootstrap_servers}: create it (1 partition, cleanup.policy=compact) "
                "or set kafka.create_topic = true"
            )
        topic = NewTopic(
            self.topic, 1, settings.replication_factor, topic_configs=dict(TOPIC_CONFIG)
        )
        response = await admin.create_topics([topic])
        for result in response.topic_errors:
            code = int(result[1])
            if code not in (0, _TOPIC_ERROR_ALREADY_EXISTS):
                raise PreflightFailed(
                    f"the broker refused to create checkpoint topic {self.topic!r}: "
                    f"{result[2] if len(result) > 2 and result[2] else code}"
                )
        while self.topic not in await admin.list_topics():
            await asyncio.sleep(0.1)
        log.info("created checkpoint topic %s (compacted)", self.topic)
