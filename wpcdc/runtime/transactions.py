"""Exactly-once delivery (``kafka.exactly_once``): when the pipeline commits a transaction.

This module owns the transaction boundaries of the stream. The sink keeps a
transaction open; every ``kafka.transaction_interval_ms`` (and on shutdown)
:class:`TransactionalCommits` ends it:

1. the sink hands over every batch and waits until all are acknowledged
   (:meth:`Transactions.drain`): nothing is in flight, so
2. the checkpoint the :class:`~wpcdc.runtime.checkpointer.Checkpointer`
   computes now covers *exactly* the events the transaction holds: its
   position is before every open fold group (their events were not sent) and
   its covered markers name every acknowledged group past it (promise
   "checkpoint after ack", docs/ARCHITECTURE.md);
3. that checkpoint is written in the same transaction, which is committed
   (:meth:`Transactions.commit`), and the next one opened.

The pipeline sends nothing between 1 and 3 (it awaits the commit), so a
read_committed consumer sees a transaction's events and the checkpoint that
covers them together, or neither: after a kill -9 the next run reads back the
last committed checkpoint and resumes exactly after the last committed events.

What it costs: a read_committed consumer sees an event only once its
transaction is committed, i.e. up to ``transaction_interval_ms`` plus one
commit (a few broker round trips) later than the acknowledgement; and the
pipeline stops taking row changes while it drains and commits (the reader
thread keeps filling the bounded hand-off meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.kafka.checkpoints import KafkaCheckpointStore
from wpcdc.kafka.sink import KafkaSink
from wpcdc.runtime.checkpointer import Checkpointer

log = logging.getLogger("wpcdc.stream")


class Transactions(Protocol):
    """The sink's side of a transaction (wpcdc.kafka.sink.KafkaSink with the
    checkpoint's record from the store: :class:`SinkTransactions`)."""

    @property
    def pending(self) -> int:
        """Records sent in the open transaction."""
        ...

    async def drain(self) -> None: ...

    async def commit(self, checkpoint: Checkpoint) -> None: ...


@dataclass(eq=False)
class SinkTransactions:
    """The Kafka sink's transaction, ended with the checkpoint record of ``store``."""

    sink: KafkaSink
    store: KafkaCheckpointStore

    @property
    def pending(self) -> int:
        return self.sink.pending

    async def drain(self) -> None:
        await self.sink.drain()

    async def commit(self, checkpoint: Checkpoint) -> None:
        await self.sink.commit(*self.store.record(checkpoint))


@dataclass(eq=False, kw_only=True)
class TransactionalCommits:
    """Commits the events sent and the checkpoint that covers them in one transaction."""

    transactions: Transactions
    checkpointer: Checkpointer
    tracker: AckTracker
    interval: float
    clock: Callable[[], float]
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        self._last = self.clock()

    async def maybe_commit(self) -> None:
        """Commit when ``interval`` seconds have passed since the last commit."""
        if self.clock() - self._last >= self.interval:
            await self.commit()

    async def commit(self) -> None:
        """Drain, then commit the open transaction with the checkpoint it allows
        (unless it holds nothing and the checkpoint did not move). Raises what
        the sink raises (DeliveryFailed, ProducerFenced, TopicLost)."""
        self._last = self.clock()
        started = time.monotonic()
        await self.transactions.drain()
        if self.tracker.in_flight:
            # Cannot happen once drained (the sender's callbacks run before the
            # drain returns); committing now would put events the checkpoint does
            # not cover in the transaction, so wait for the next turn instead.
            log.warning(
                "%d groups still in flight after a drain: commit postponed", self.tracker.in_flight
            )
            return
        checkpoint = self.checkpointer.checkpoint()
        if not self.transactions.pending and checkpoint == self.checkpointer.saved:
            return
        records = self.transactions.pending
        await self.transactions.commit(checkpoint)
        self.checkpointer.committed(checkpoint)
        log.debug(
            "transaction committed: %d records and the checkpoint %s in %.1f ms",
            records,
            checkpoint.position,
            (time.monotonic() - started) * 1000,
        )
