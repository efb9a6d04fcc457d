"""Reading a topic as a bystander: no consumer group, no commits.

This module owns how wpcdc reads a topic (``wpcdc tail``, ``wpcdc verify``):
a consumer that assigns itself every partition, so reading never moves anyone's
offsets nor triggers a rebalance of the real consumers (:func:`open_topic`,
:class:`TopicReader`); knowing when a partition has reached the end it had when
the read started (:meth:`TopicReader.ends`, :meth:`TopicReader.drop_reached`);
and reading a whole topic to that end (:func:`read_to_end`, :class:`KafkaTopic`).
Every read is ``read_committed``: only what committed transactions wrote
(``kafka.exactly_once``), and the end of a partition is its last stable offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import WpcdcError
from wpcdc.kafka.options import aiokafka_warnings, client_options

__all__ = [
    "KafkaTopic",
    "TopicMissing",
    "TopicPartition",
    "TopicReader",
    "open_topic",
    "read_to_end",
]

# A fetch must fit the largest record plus its batch overhead.
_FETCH_HEADROOM: Final = 64 * 1024
# How long one fetch waits for records.
POLL_MS: Final = 500


class TopicMissing(WpcdcError):
    """The topic to read does not exist on the broker."""


class TopicReader:
    """A started consumer with every partition of ``topic`` assigned to it."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self.topic = topic
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        self.partitions = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(self.partitions)

    async def from_beginning(self) -> None:
        await self._consumer.seek_to_beginning(*self.partitions)

    async def from_end(self) -> None:
        # On the Tansu broker the end offset is the last *batch's* base offset
        # + 1, not the last record's: starting there shows the rest of that
        # batch as if it were new.
        await self._consumer.seek_to_end(*self.partitions)

    async def end_offsets(self) -> dict[int, int]:
        """The end offset of every partition now, by partition number."""
        ends = await self._consumer.end_offsets(self.partitions)
        return {tp.partition: int(end) for tp, end in ends.items()}

    async def ends(self) -> dict[TopicPartition, int]:
        """The end offset each partition has now, for those not yet read to it."""
        ends = await self._consumer.end_offsets(self.partitions)
        return {
            tp: ends[tp] for tp in self.partitions if await self._consumer.position(tp) < ends[tp]
        }

    async def fetch(
        self, *partitions: TopicPartition, timeout_ms: int = POLL_MS
    ) -> dict[TopicPartition, list[Any]]:
        """The records that arrive within ``timeout_ms``, by partition (of ``partitions``,
        or of all when none is given)."""
        return await self._consumer.getmany(*partitions, timeout_ms=timeout_ms)  # type: ignore[no-any-return]

    async def drop_reached(self, ends: dict[TopicPartition, int]) -> None:
        """Remove from ``ends`` the partitions read to their end offset."""
        # Fetches return whole batches, so on brokers whose end offset is the
        # last batch's base offset + 1 (Tansu) the last batch still arrives in full.
        for tp, end in list(ends.items()):
            if await self._consumer.position(tp) >= end:
                del ends[tp]


@contextlib.asynccontextmanager
async def open_topic(settings: KafkaSettings, topic: str) -> AsyncIterator[TopicReader]:
    """A reader of ``topic`` with no consumer group and no commits. Raises WpcdcError
    when the broker cannot be reached or the topic does not exist; stopped on exit."""
    where = settings.bootstrap_servers
    try:
        client = client_options(settings)
    except OSError as exc:
        raise WpcdcError(f"kafka.tls: {exc}") from None
    fetch_bytes = max(settings.max_message_bytes + _FETCH_HEADROOM, 1024 * 1024)
    consumer = AIOKafkaConsumer(
        **client,
        group_id=None,
        enable_auto_commit=False,
        # Records of aborted transactions (kafka.exactly_once) are never shown, and
        # nothing past an open one: the same as read_uncommitted on a topic written
        # without transactions.
        isolation_level="read_committed",
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_bytes=max(fetch_bytes, 50 * 1024 * 1024),
    )
    try:
        with aiokafka_warnings() as reasons:
            try:
                await asyncio.wait_for(consumer.start(), settings.request_timeout)
                # All topics, never ours by name: brokers with
                # auto.create.topics.enable create a topic a metadata request names.
                topics = await asyncio.wait_for(consumer.topics(), settings.request_timeout)
            except (KafkaError, OSError, TimeoutError) as exc:
                detail = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""
                raise WpcdcError(
                    f"cannot read from the Kafka broker at {where}: "
                    f"{type(exc).__name__}{detail}; check kafka.bootstrap_servers"
                ) from None
        if topic not in topics:
            raise TopicMissing(
                f"topic {topic!r} does not exist on {where}; check --topic (default: kafka.topic)"
            )
        yield TopicReader(consumer, topic)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def read_to_end(
    settings: KafkaSettings, topic: str, add: Callable[[bytes | None, bytes | None], None]
) -> None:
    """Pass every record of ``topic`` to ``add(key, value)``, from the beginning to
    the end the topic has when the read starts, partition order kept. Raises
    WpcdcError when the broker stops answering mid-read."""
    async with open_topic(settings, topic) as reader:
        await reader.from_beginning()
        unfinished = await reader.ends()
        # A broker that stops answering mid-read must not hang the caller.
        stall_limit = max(settings.request_timeout * 2, 10.0)
        last_progress = time.monotonic()
        while unfinished:
            fetched = await reader.fetch(*unfinished)
            for records in fetched.values():
                for record in records:
                    add(record.key, record.value)
                if records:
                    last_progress = time.monotonic()
            await reader.drop_reached(unfinished)
            if unfinished and time.monotonic() - last_progress > stall_limit:
                behind = ", ".join(f"partition {tp.partition}" for tp in unfinished)
                raise WpcdcError(
                    f"reading topic {topic!r} stalled for {stall_limit:g} s ({behind}); "
                    "check the broker"
                )


class Records(Protocol):
    """What a topic's records are read into (wpcdc verify's TopicState)."""

    def add_record(self, key: bytes | None, value: bytes | None) -> None: ...


class KafkaTopic:
    """Reads a topic from its beginning to the end it has when the read starts
    (the topic side of ``wpcdc verify``)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic

    def read(self, state: Records) -> None:
        asyncio.run(read_to_end(self._settings, self._topic, state.add_record))
