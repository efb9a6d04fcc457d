"""The streaming pipeline: binlog source -> fold -> sender -> checkpoint.

This module owns the loop that composes the pipeline's parts, each owning one
thing:

- :class:`~wpcdc.runtime.handoff.LoopReader`: the binlog read on the loop's
  thread, in batches (:class:`~wpcdc.runtime.handoff.Reader`, a thread and a
  bounded queue, for the library reader's blocking reads);
- the :class:`~wpcdc.core.fold.Folder` (pure): row changes into closed groups
  of events;
- :class:`~wpcdc.runtime.sender.Sender`: events to records to the sink, and
  acknowledgements into the :class:`~wpcdc.core.acks.AckTracker`;
- :class:`~wpcdc.runtime.resnapshot.Resnapshots`: live re-snapshot windows
  (only with a signal table);
- :class:`~wpcdc.runtime.checkpointer.Checkpointer`: what position to save,
  and when; with ``kafka.exactly_once``,
  :class:`~wpcdc.runtime.transactions.TransactionalCommits` instead commits it
  in the transaction of the events it covers.

The loop stops when ``stop`` is set (then flushes and saves the checkpoint) or
on an error. A delivery failure ends it with DeliveryFailed: the caller
rebuilds it from the checkpoint (replayed events keep their ids: promise
"recognisable replays", docs/ARCHITECTURE.md). Adapters (source, sink, store,
signal table) come in as arguments; :mod:`wpcdc.runtime.build` wires the real
ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.positions import Position
from wpcdc.core.rows import Idle, TableKind, TransactionPart
from wpcdc.runtime.checkpointer import Checkpointer
from wpcdc.runtime.handoff import Batch, LoopReader, Reader, Source, SteppedSource
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.resnapshot import Resnapshots, SignalTable
from wpcdc.runtime.sender import Sender, Sink
from wpcdc.runtime.transactions import TransactionalCommits, Transactions

log = logging.getLogger("wpcdc.stream")

# Seconds between updates of the gauges (open groups, in flight, unacknowledged age).
REPORT_INTERVAL = 0.25

_SIGNAL = TableKind.SIGNAL

# Allocations between two collections of the youngest generation while streaming
# (CPython's default: 700). The stream allocates a dict per row image and a few
# objects per row change, nearly all short-lived and none in a reference cycle:
# at 700, collections that find nothing took 8% of a bulk job (benchmarks/README.md).
YOUNG_COLLECTION_THRESHOLD = 50_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect the youngest generation less often; restored on exit (it is global)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_COLLECTION_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass(frozen=True, slots=True)
class StreamConfig:
    source_name: str
    checkpoint_interval: float = 2.0
    # Bounded hand-over: at most this many row changes (transactions without
    # watched rows count one) wait for the loop.
    queue_rows: int = 1000
    # Live re-snapshots read this many posts per watermark window.
    resnapshot_chunk: int = 200
    shutdown_timeout: float = 8.0
    # With transactions (kafka.exactly_once): seconds between commits.
    transaction_interval: float = 0.2


class Pipeline:
    def __init__(
        self,
        *,
        source: Source,
        sink: Sink,
        store: CheckpointStore,
        folder: Folder,
        tracker: AckTracker,
        start: Position,
        config: StreamConfig,
        metrics: Metrics,
        signals: SignalTable | None = None,
        fold_config: FoldConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        transactions: Transactions | None = None,
    ) -> None:
        self._folder = folder
        self._tracker = tracker
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._reported = float("-inf")
        # The fold's row changes per table already added to the metric.
        self._rows_counted = dict(folder.fed_rows)
        # The fast reader runs on the loop; the library's blocking reads in a thread.
        self._reader: Reader | LoopReader = (
            LoopReader(source, config.queue_rows, clock)
            if isinstance(source, SteppedSource) and source.reads_on_loop
            else Reader(source, config.queue_rows, clock)
        )
        self._sender = Sender(
            sink=sink, tracker=tracker, source_name=config.source_name, metrics=metrics
        )
        self._resnapshots = (
            None
            if signals is None
            else Resnapshots(
                signals=signals,
                folder=folder,
                sender=self._sender,
                fold_config=fold_config or FoldConfig(),
                chunk_size=config.resnapshot_chunk,
            )
        )
        self._checkpointer = Checkpointer(
            store=store,
            folder=folder,
            tracker=tracker,
            start=start,
            resnapshots=self._resnapshots,
            interval=config.checkpoint_interval,
            metrics=metrics,
            clock=clock,
        )
        self._commits = (
            None
            if transactions is None
            else TransactionalCommits(
                transactions=transactions,
                checkpointer=self._checkpointer,
                tracker=tracker,
                interval=config.transaction_interval,
                clock=clock,
            )
        )

    @property
    def folder(self) -> Folder:
        return self._folder

    @property
    def tracker(self) -> AckTracker:
        return self._tracker

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set (then flush and checkpoint) or an error."""
        with _fewer_collections():
            await self._stream(stop)

    async def _stream(self, stop: asyncio.Event) -> None:
        self._reader.start()
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(self._sender.failed())
        taking: asyncio.Future[Batch] | None = None
        try:
            while True:
                if taking is None:
                    taking = asyncio.ensure_future(self._reader.take())
                # Wake for the next item, or when an open group is due to close.
                deadline = self._folder.next_deadline()
                timeout = None if deadline is None else max(deadline - self._clock(), 0.0)
                waits: set[asyncio.Future[Any]] = {taking, stopping, failing}
                await asyncio.wait(
                    waits,
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                self._sender.raise_on_failure()
                if stopping.done():
                    break
                batch = None
                if taking.done():
                    batch, taking = taking.result(), None
                    await self._consume(batch)
                for group in self._folder.tick(self._clock()):
                    await self._sender.send(group)
                self._report()
                self._sender.raise_on_failure()
                if self._commits is not None:
                    await self._commits.maybe_commit()
                else:
                    self._checkpointer.maybe_save()
                if batch is not None and batch.end is not None:
                    if batch.end.error is not None:
                        raise batch.end.error
                    break
            self._sender.raise_on_failure()
        finally:
            if taking is not None:
                taking.cancel()
            stopping.cancel()
            failing.cancel()
            self._reader.stop()
            if self._resnapshots is not None:
                self._resnapshots.cancel()
            # Also after an error: acknowledged progress is worth keeping.
            await self._shutdown()

    def checkpoint(self) -> Checkpoint:
        """The checkpoint that may be saved now."""
        return self._checkpointer.checkpoint()

    async def _commit_last(self) -> None:
        """Commit what the open transaction holds (bounded), unless a delivery
        failed: then it is left to be aborted, and the next run resumes from the
        checkpoint committed last."""
        assert self._commits is not None
        try:
            self._sender.raise_on_failure()
            await asyncio.wait_for(self._commits.commit(), self._config.shutdown_timeout)
        except Exception as exc:
            log.warning("the last transaction was not committed (%s); it is aborted", exc)
            return
        saved = self._checkpointer.saved
        if saved is not None:
            log.info(
                "checkpoint committed at %s",
                saved.position,
                extra={"position": str(saved.position)},
            )

    async def _consume(self, batch: Batch) -> None:
        metrics = self._metrics
        folder, sender, resnapshots = self._folder, self._sender, self._resnapshots
        fed_rows = folder.fed_rows
        transactions = 0
        last_commit: int | None = None
        for item, arrival in zip(batch.items, batch.arrivals, strict=True):
            observe = False
            if item.__class__ is TransactionPart:
                if item.end is not None:
                    transactions += 1
                    last_commit = item.transaction.timestamp
                signals = fed_rows[_SIGNAL]
                closed = folder.feed(item, arrival)
                # Windows are open, or the part holds a signal-table row (the fold
                # counted it): most parts concern no re-snapshot, and cost no call.
                observe = resnapshots is not None and (
                    resnapshots.watching or fed_rows[_SIGNAL] != signals
                )
            elif isinstance(item, Idle):
                closed = folder.idle(item.position)
            else:
                raise TypeError(f"unexpected source item {item!r}")
            for group in closed:
                await sender.send(group)
            if observe and resnapshots is not None and isinstance(item, TransactionPart):
                await resnapshots.observe(item)
        # Counted per batch: a labelled counter costs about a microsecond per call.
        if transactions:
            metrics.transactions.inc(transactions)
        if last_commit is not None:
            metrics.last_commit.set(last_commit)
        counted = self._rows_counted
        for kind, count in fed_rows.items():
            if count != counted[kind]:
                metrics.row_changes.labels(kind.value).inc(count - counted[kind])
                counted[kind] = count

    def _report(self) -> None:
        # The gauges are scraped every few seconds; finding the oldest open group
        # walks them all, so not after every batch of a bulk job.
        now = self._clock()
        if now - self._reported < REPORT_INTERVAL:
            return
        self._reported = now
        metrics = self._metrics
        metrics.open_groups.set(self._folder.open_groups)
        metrics.open_bytes.set(self._folder.open_bytes)
        metrics.in_flight.set(self._tracker.in_flight)
        # What a consumer feels: how long ago the oldest change not yet on the topic
        # was committed (0 when everything read is acknowledged).
        pending = [
            t
            for t in (self._tracker.oldest_unacknowledged_timestamp(), self._folder_oldest_time())
            if t is not None
        ]
        metrics.unacknowledged_age.set(max(time.time() - min(pending), 0.0) if pending else 0.0)

    def _folder_oldest_time(self) -> int | None:
        oldest = self._folder.oldest_open_first()
        return None if oldest is None else oldest[1]

    async def _shutdown(self) -> None:
        """Wait (bounded) for what was sent, then save the checkpoint it allows."""
        if self._commits is not None:
            await self._commit_last()
            return
        await self._sender.flush(self._config.shutdown_timeout)
        self._checkpointer.save()
        position = self.checkpoint().position
        log.info("checkpoint saved at %s", position, extra={"position": str(position)})
