"""Sending closed fold groups, and turning the broker's acknowledgements into ack tracking.

This module owns the way out of the pipeline: each event of a closed group
becomes one record (:func:`wpcdc.core.records.encode`), goes to the sink, and
the acknowledgement of its batch tells the :class:`~wpcdc.core.acks.AckTracker`
(which decides how far the checkpoint may go: promise "checkpoint after ack",
docs/ARCHITECTURE.md). The sink returns one future per batch, shared by its
records: the sender adds one callback per future, which acknowledges every
event the batch carried. The first delivery that fails is latched: the pipeline
ends with :class:`DeliveryFailed` and is rebuilt from the checkpoint, or with
:class:`TopicLost` (the broker lost acknowledged records) or
:class:`ProducerFenced` (another producer took the transactional id), which end
the run (promise "loud failure"). It also counts what it sends in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Protocol

from wpcdc.core.acks import AckTracker
from wpcdc.core.errors import DeliveryFailed, ProducerFenced, TopicLost
from wpcdc.core.events import MetaData
from wpcdc.core.fold import ClosedGroup
from wpcdc.core.records import Headers, encode
from wpcdc.runtime.metrics import Metrics

log = logging.getLogger("wpcdc.stream")


class Sink(Protocol):
    """Where records go (wpcdc.kafka.sink.KafkaSink); the future resolves on
    acknowledgement, and may be shared by the records of one batch."""

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]: ...

    async def flush(self) -> None: ...

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int: ...


class Sender:
    """Sends closed groups through ``sink`` and tracks their acknowledgement."""

    def __init__(
        self, *, sink: Sink, tracker: AckTracker, source_name: str, metrics: Metrics
    ) -> None:
        self._sink = sink
        self._tracker = tracker
        self._source_name = source_name
        self._metrics = metrics
        self._failure: DeliveryFailed | TopicLost | ProducerFenced | None = None
        self._failed = asyncio.Event()
        # Per delivery future (one per batch): the first event's id (for messages) and
        # the (group, event type) pairs it carries; not the events, whose values are
        # in the batch already and would stay in memory until the acknowledgement.
        self._carried: dict[asyncio.Future[None], tuple[str, list[tuple[int, str]]]] = {}

    async def send(self, group: ClosedGroup) -> None:
        """Send every event of ``group``; returns once they are in the sink's buffer."""
        group_id = self._tracker.track(group)
        for event in group.events:
            record = encode(event, self._source_name, self._sink.max_value_size)
            if isinstance(event.data, MetaData):
                errors = sum(1 for change in event.data.changes if change.error is not None)
                if errors:
                    self._metrics.meta_decode_errors.inc(errors)
            if record.omitted:
                self._metrics.oversize.labels(event.type).inc()
                log.warning(
                    "event %s (%s) exceeds kafka.max_message_bytes: sent without %s",
                    event.id,
                    event.type,
                    ", ".join(record.omitted),
                )
            future = await self._sink.send(record.key, record.value, record.headers)
            carried = self._carried.get(future)
            if carried is None:
                carried = self._carried[future] = (event.id, [])
                future.add_done_callback(self._on_delivery)
            carried[1].append((group_id, event.type))

    def _on_delivery(self, future: asyncio.Future[None]) -> None:
        first, carried = self._carried.pop(future, ("", []))
        if not carried:
            return
        if future.cancelled():
            self._fail(DeliveryFailed(f"delivery of {first} was cancelled"))
            return
        error = future.exception()
        if isinstance(error, TopicLost | ProducerFenced):
            self._fail(error)  # no rebuild cures it: raised as it is
            return
        if error is not None:
            self._fail(DeliveryFailed(f"the broker did not acknowledge event {first}: {error}"))
            return
        acked: Counter[str] = Counter()
        for group_id, event_type in carried:
            self._tracker.ack(group_id)
            acked[event_type] += 1
        for event_type, count in acked.items():
            self._metrics.events.labels(event_type).inc(count)

    def _fail(self, error: DeliveryFailed | TopicLost | ProducerFenced) -> None:
        if self._failure is None:
            self._failure = error
            self._failed.set()

    async def failed(self) -> None:
        """Returns once a delivery has failed."""
        await self._failed.wait()

    def raise_on_failure(self) -> None:
        """Raise the first delivery failure, if there was one."""
        if self._failure is not None:
            raise self._failure

    async def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until what was sent is acknowledged or failed."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._sink.flush(), timeout)
