"""The streaming pipeline: source thread -> bounded queue -> fold -> sink -> checkpoint.

The binlog reader blocks, so it runs in a thread of its own and hands batches
of items to the asyncio loop through a bounded queue: when the broker is slow,
the reader waits (memory stays bounded) instead of buffering. Every closed fold
group is tracked until the broker acknowledged all its events; the checkpoint
store receives the safe position every ``checkpoint_interval`` seconds and on
shutdown. A delivery failure ends the pipeline with DeliveryFailed: the caller
rebuilds it from the checkpoint (replayed events keep their ids).

Adapters (source, sink, store) come in as arguments; this module imports no
I/O library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.errors import DeliveryFailed
from wpcdc.core.events import Event, MetaData, fit
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.positions import Coordinate, Position, file_index
from wpcdc.core.resnapshot import (
    LOW,
    Chunk,
    Done,
    Request,
    Windows,
    first_chunk,
    next_chunk,
    requests_in,
)
from wpcdc.core.rows import Idle, SourceItem, TransactionPart
from wpcdc.core.snapshot_events import PostBundle, snapshot_event, wanted
from wpcdc.runtime.metrics import Metrics

log = logging.getLogger("wpcdc.stream")

Headers = list[tuple[str, bytes]]
CONTENT_TYPE_HEADER = ("content-type", b"application/cloudevents+json; charset=utf-8")


class Source(Protocol):
    def items(self) -> Iterator[SourceItem]: ...

    def stop(self) -> None: ...


class Sink(Protocol):
    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]: ...

    async def flush(self) -> None: ...

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int: ...


class SignalTable(Protocol):
    """The signal table's I/O (wpcdc.mysql.database.SignalTable); blocking, run in threads."""

    def is_done(self, request_id: int) -> bool: ...

    def read_window(self, chunk: Chunk, token: str) -> list[PostBundle]: ...

    def mark_done(self, request_id: int) -> None: ...


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


@dataclass(frozen=True, slots=True)
class _End:
    """The source's iterator ended, normally or with ``error``."""

    error: BaseException | None


class Handoff:
    """A bounded hand-over from the reader thread to the asyncio loop.

    The reader never holds items back (a blocked binlog read must not delay what
    it already has): each item is appended at once, and the loop takes
    everything waiting as one batch, so batches grow when the loop is busy and
    shrink to one item when it is idle. The reader blocks while ``capacity``
    items wait: memory stays bounded when the broker is slow.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._capacity = capacity
        self._items: deque[object] = deque()
        self._weights: deque[int] = deque()
        self._load = 0
        self._condition = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def put(self, item: object, weight: int = 1) -> bool:
        """From the reader thread; False once the loop has closed the hand-over.

        ``weight`` is what the item costs in memory (row changes): the bound is on
        the total, so a few huge transaction parts cannot hold a million rows."""
        with self._condition:
            while self._load and self._load + weight > self._capacity and not self._closed:
                self._condition.wait(0.2)
            if self._closed:
                return False
            self._items.append(item)
            self._weights.append(weight)
            self._load += weight
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    async def take(self) -> list[object]:
        """On the loop: everything waiting, at least one item."""
        while True:
            with self._condition:
                if self._items:
                    batch = list(self._items)
                    self._items.clear()
                    self._weights.clear()
                    self._load = 0
                    self._condition.notify_all()
                    return batch
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._items.clear()
            self._weights.clear()
            self._load = 0
            self._condition.notify_all()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
    ) -> None:
        self._source = source
        self._sink = sink
        self._store = store
        self._folder = folder
        self._tracker = tracker
        self._start = start
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._saved: Checkpoint | None = None
        # Live re-snapshots (see wpcdc.core.resnapshot).
        self._signals = signals
        self._fold_config = fold_config or FoldConfig()
        self._windows = Windows()
        self._reads: dict[str, asyncio.Future[list[PostBundle]]] = {}
        self._requests: dict[int, Position] = {}  # in progress: where each was asked
        self._done: list[Done] = []
        self._last_save = clock()
        self._reading = True

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set (then flush and checkpoint) or an error."""
        handoff = Handoff(asyncio.get_running_loop(), self._config.queue_rows)
        reader = threading.Thread(
            target=self._read, args=(handoff,), name="wpcdc-binlog", daemon=True
        )
        reader.start()
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            while True:
                taking = asyncio.ensure_future(handoff.take())
                await asyncio.wait({taking, stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
                self._raise_on_failure()
                if not taking.done():
                    taking.cancel()
                    break
                batch = taking.result()
                items = [item for item in batch if not isinstance(item, _End)]
                await self._consume(items)
                self._raise_on_failure()
                self._maybe_save()
                if len(items) < len(batch):
                    end = next(item for item in batch if isinstance(item, _End))
                    if end.error is not None:
                        raise end.error
                    break
            self._raise_on_failure()
        finally:
            stopping.cancel()
            failing.cancel()
            handoff.close()
            self._source.stop()
            for read in self._reads.values():
                read.cancel()
            # Also after an error: acknowledged progress is worth keeping.
            await self._shutdown()

    # --- reader thread -----------------------------------------------------------

    def _read(self, handoff: Handoff) -> None:
        error: BaseException | None = None
        try:
            for item in self._source.items():
                weight = len(item.changes) if isinstance(item, TransactionPart) else 0
                if not handoff.put(item, max(weight, 1)):
                    return
        except BaseException as exc:  # raised again on the loop's side
            error = exc
        handoff.put(_End(error))

    # --- folding and sending -------------------------------------------------------

    async def _consume(self, batch: list[object]) -> None:
        metrics = self._metrics
        for item in batch:
            if isinstance(item, TransactionPart):
                if item.end is not None:
                    metrics.transactions.inc()
                    metrics.last_commit.set(item.transaction.timestamp)
                for change in item.changes:
                    metrics.row_changes.labels(change.table.kind.value).inc()
                closed = self._folder.feed(item)
            elif isinstance(item, Idle):
                closed = self._folder.idle()
            else:
                raise TypeError(f"unexpected source item {item!r}")
            for group in closed:
                await self._send(group)
            if self._signals is not None and isinstance(item, TransactionPart) and item.changes:
                await self._signal_rows(item)
        metrics.open_groups.set(self._folder.open_groups)
        metrics.in_flight.set(self._tracker.in_flight)

    async def _send(self, group: ClosedGroup) -> None:
        group_id = self._tracker.track(group)
        for event in group.events:
            headers: Headers = [CONTENT_TYPE_HEADER, ("ce_type", event.type.encode())]
            limit = self._sink.max_value_size(event.key, headers)
            value, omitted = fit(event, self._config.source_name, limit)
            if isinstance(event.data, MetaData):
                errors = sum(1 for change in event.data.changes if change.error is not None)
                if errors:
                    self._metrics.meta_decode_errors.inc(errors)
            if omitted:
                self._metrics.oversize.labels(event.type).inc()
                log.warning(
                    "event %s (%s) exceeds kafka.max_message_bytes: sent without %s",
                    event.id,
                    event.type,
                    ", ".join(omitted),
                )
            future = await self._sink.send(event.key, value, headers)
            future.add_done_callback(self._on_delivery(group_id, event))

    def _on_delivery(self, group_id: int, event: Event) -> Callable[[asyncio.Future[None]], None]:
        def done(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                self._fail(DeliveryFailed(f"delivery of {event.id} was cancelled"))
                return
            error = future.exception()
            if error is not None:
                self._fail(
                    DeliveryFailed(f"the broker did not acknowledge event {event.id}: {error}")
                )
                return
            self._tracker.ack(group_id)
            self._metrics.events.labels(event.type).inc()

        return done

    def _fail(self, error: DeliveryFailed) -> None:
        if self._failure is None:
            self._failure = error
            self._failed.set()

    def _raise_on_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # --- live re-snapshots -----------------------------------------------------------

    async def _signal_rows(self, item: TransactionPart) -> None:
        assert self._signals is not None
        for change in item.changes:
            mark = self._windows.watermark(change)
            if mark is not None:
                kind, token = mark
                if kind == LOW:
                    self._windows.opened(token)
                else:
                    await self._close_window(token, item)
            elif self._windows:
                key = self._folder.target(change)
                if key is not None:
                    self._windows.changed(key)
        for request_id, row in requests_in(item.changes):
            if await asyncio.to_thread(self._signals.is_done, request_id):
                continue  # met again on a replay, and already served
            try:
                request = Request.parse(request_id, row.get("data"))
            except ValueError as exc:
                log.warning("ignoring re-snapshot request: %s", exc)
                continue
            log.info("re-snapshot %d requested: %s", request_id, request.to_json())
            self._requests[request_id] = item.transaction.start
            self._open_window(first_chunk(request, self._config.resnapshot_chunk))

    def _open_window(self, chunk: Chunk) -> None:
        assert self._signals is not None
        token = self._windows.start(chunk)
        self._reads[token] = asyncio.ensure_future(
            asyncio.to_thread(self._signals.read_window, chunk, token)
        )

    async def _close_window(self, token: str, item: TransactionPart) -> None:
        read = await self._reads.pop(token)
        chunk, keep = self._windows.close(token, read)
        # Older changes of these posts go first; the snapshot is newer than all of them.
        for group in self._folder.close_posts((b.blog_id, int(b.post["ID"])) for b in keep):
            await self._send(group)
        position = item.transaction.start
        for bundle in keep:
            if not wanted(bundle, self._fold_config):
                continue
            event = snapshot_event(
                bundle,
                position=position,
                timestamp=item.transaction.timestamp,
                config=self._fold_config,
                reason="requested",
            )
            # `last` at the very start: a snapshot covers no row change of the stream.
            await self._send(
                ClosedGroup(event.blog_id, event.post_id, position, Coordinate(0, 0, 0), [event])
            )
        following = next_chunk(chunk, read, self._config.resnapshot_chunk)
        if following is not None:
            self._open_window(following)
            return
        request_id = chunk.request.request_id
        self._requests.pop(request_id, None)
        self._done.append(Done(request_id, position))
        log.info("re-snapshot %d emitted", request_id)

    def _mark_done(self, checkpoint: Checkpoint) -> None:
        # Done once the checkpoint has passed the last watermark: its events are acked.
        assert self._signals is not None
        passed = [d for d in self._done if d.position.key() < checkpoint.position.key()]
        for done in passed:
            self._signals.mark_done(done.request_id)
            self._done.remove(done)

    # --- checkpoints ---------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        consumed = self._folder.position or self._start
        holds = [p for p in (self._folder.low_watermark(), *self._requests.values()) if p]
        # An unfinished re-snapshot request must be met again after a restart.
        hold = min(holds, key=Position.key) if holds else None
        return self._tracker.checkpoint(consumed, hold)

    def _maybe_save(self) -> None:
        if self._clock() - self._last_save >= self._config.checkpoint_interval:
            self._save()

    def _save(self) -> None:
        checkpoint = self.checkpoint()
        self._last_save = self._clock()
        if checkpoint == self._saved:
            return
        self._store.save(checkpoint)
        self._saved = checkpoint
        if self._done:
            self._mark_done(checkpoint)
        self._metrics.checkpoint_file.set(file_index(checkpoint.position.file))
        self._metrics.checkpoint_pos.set(checkpoint.position.pos)
        self._metrics.checkpoint_saved.set(time.time())
        log.debug("checkpoint %s (%d covered)", checkpoint.position, len(checkpoint.covered))

    async def _shutdown(self) -> None:
        """Wait (bounded) for what was sent, then save the checkpoint it allows."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._sink.flush(), self._config.shutdown_timeout)
        self._save()
        log.info("checkpoint saved at %s", self.checkpoint().position)
