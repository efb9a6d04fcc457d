"""Streaming until stopped: the run loop of ``wpcdc run``.

This module owns the life of the streamer around one pipeline: where it starts
(the saved checkpoint, or the end of the binlog when there is none), stopping
on SIGTERM/SIGINT, and rebuilding the pipeline from the checkpoint with a
growing delay after a broker or connection failure (replayed events keep their
ids: promise "recognisable replays", docs/ARCHITECTURE.md). Failures no retry
can fix (refused credentials, missing grants, a lost position) end it.

A stop is honoured in every state, within seconds: while the pipeline streams
it flushes and saves the checkpoint (bounded by its shutdown timeout); while it
starts (the database asked for the checkpoint's position, the mirror loaded,
the broker connected, possibly retrying for a minute) the start is abandoned,
and the checkpoint is left as it was. Blocking calls run in daemon threads
(:class:`DaemonThreads`), so a database that does not answer cannot hold the
exit either.

With ``ha.enabled`` the same loop runs only while this process holds the lead
(:class:`wpcdc.runtime.leader.Leadership`): it stops when the lead is lost, and
its checkpoint saves go through the fence (:class:`~wpcdc.runtime.leader.FencedStore`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from wpcdc.config.settings import Settings
from wpcdc.core.backoff import Backoff
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.errors import BrokerUnavailable, DeliveryFailed
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.core.positions import Coordinate
from wpcdc.mysql.errors import MysqlError, is_access_denied, refused
from wpcdc.mysql.status import check_position_available, current_position
from wpcdc.runtime.build import build_pipeline
from wpcdc.runtime.health import Health, Phase
from wpcdc.runtime.leader import Fence, FencedStore, Leadership
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.snapshot import refuse_unfinished
from wpcdc.runtime.stores import (
    Store,
    checkpoint_store,
    close,
    fence_previous_run,
    make_durable,
    where,
)

log = logging.getLogger("wpcdc.run")

# Between pipeline rebuilds after a broker or connection failure.
RESTART_BACKOFF_FIRST: Final = 1.0
RESTART_BACKOFF_MAX: Final = 30.0
# How long a stop waits for an abandoned start to clean up.
CANCEL_GRACE: Final = 5.0


T = TypeVar("T")


class Stopped(Exception):
    """The stop was requested before the work it interrupted finished."""


def stop_on_signals() -> asyncio.Event:
    """On the running loop: an event that SIGTERM and SIGINT set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


class DaemonThreads(concurrent.futures.ThreadPoolExecutor):
    """The loop's executor for ``asyncio.to_thread``: each call in a daemon thread.

    The standard pool's threads are joined when the loop closes and when the
    interpreter exits, so one blocked on a database that does not answer (up to
    ``mysql.connect_timeout`` and the read timeouts) would delay the exit after
    a stop. Daemon threads are abandoned instead; what they run are database
    calls (reads, and the signal table's watermark rows, each its own
    transaction), so abandoning one loses nothing. (A
    ThreadPoolExecutor only because asyncio accepts nothing else; its pool is
    never used.)
    """

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=call, name="wpcdc-blocking", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to join: the threads are daemons."""


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """The result of ``work``; raises Stopped (after cancelling it) when ``stop``
    is set first. For the start of a pipeline, which holds no acknowledged
    progress: abandoning it loses nothing."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        # Cancel until it ends, letting it clean up (close what it opened): a
        # cancellation can be swallowed on the way (Python 3.11's asyncio.wait_for
        # returns an inner failure that races it, and aiokafka's start uses it),
        # after which the start would go on retrying for a minute.
        deadline = time.monotonic() + CANCEL_GRACE
        while not task.done() and time.monotonic() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so that asyncio does not log it
        raise Stopped
    return task.result()


async def run_until_stopped(
    settings: Settings, *, metrics: Metrics, stop: asyncio.Event, health: Health | None = None
) -> None:
    """Stream until ``stop`` is set; rebuild the pipeline from the checkpoint after
    broker or connection failures; raise on failures no retry can fix. ``health``
    hears where it is (readiness: starting, streaming, which side is unreachable)."""
    store = checkpoint_store(settings)
    try:
        if settings.ha.enabled:
            # Only while this process holds the lead (standby failover).
            await Leadership(
                settings,
                metrics=metrics,
                stop=stop,
                health=health,
                lead=lambda term_stop, fence: _restarting(
                    settings, store, metrics, term_stop, health, fence
                ),
            ).run()
        else:
            metrics.leader.set(1)
            await _restarting(settings, store, metrics, stop, health)
    finally:
        # The last checkpoint on its way to a Kafka store (bounded wait).
        await asyncio.to_thread(close, store)


async def _restarting(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    stop: asyncio.Event,
    health: Health | None,
    fence: Fence | None = None,
) -> None:
    backoff = Backoff(RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX)
    # What the broker acknowledged, across rebuilds: a rebuilt sink checks that
    # the topic still holds it (a broker restarted empty would otherwise go unseen).
    offsets = AcknowledgedOffsets()
    while not stop.is_set():
        try:
            await stream_once(settings, store, metrics, stop, offsets, health, fence)
            return
        except Stopped:
            log.info("stopped while starting; the checkpoint is unchanged")
            return
        except (DeliveryFailed, BrokerUnavailable) as exc:
            reason = "broker"
            message = str(exc)
            phase = Phase.BROKER_UNREACHABLE
        except (MysqlError, OSError) as exc:
            if is_access_denied(exc):
                # No retry fixes credentials or grants.
                raise refused(exc) from None
            reason = "database"
            message = f"{type(exc).__name__}: {exc}"
            phase = Phase.DATABASE_UNREACHABLE
        # Until a rebuilt pipeline streams, readiness names what failed.
        if health is not None:
            health.enter(phase)
        metrics.restarts.labels(reason).inc()
        delay = backoff.next_delay()
        log.warning(
            "%s; restarting from the checkpoint in %.0fs",
            message,
            delay,
            extra={"reason": reason, "topic": settings.kafka.topic},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def stream_once(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    stop: asyncio.Event,
    offsets: AcknowledgedOffsets | None = None,
    health: Health | None = None,
    fence: Fence | None = None,
) -> None:
    """One pipeline, from the checkpoint until ``stop`` or an error; raises
    Stopped when ``stop`` comes while it starts. With ``fence`` (standby
    failover), no checkpoint is saved once the lead is lost."""
    refuse_unfinished(settings.checkpoint.path)
    saves: CheckpointStore = store if fence is None else FencedStore(store, fence)
    checkpoint = await unless_stopped(stop, starting_checkpoint(settings, store, saves))
    async with contextlib.AsyncExitStack() as stack:
        pipeline = await unless_stopped(
            stop,
            stack.enter_async_context(
                build_pipeline(
                    settings, checkpoint=checkpoint, store=saves, metrics=metrics, offsets=offsets
                )
            ),
        )
        log.info(
            "streaming %s on %s:%d to topic %s",
            settings.mysql.database,
            settings.mysql.host,
            settings.mysql.port,
            settings.kafka.topic,
            extra={"topic": settings.kafka.topic, "position": str(checkpoint.position)},
        )
        if health is not None:
            health.enter(Phase.STREAMING)
        await pipeline.run(stop)


async def starting_checkpoint(
    settings: Settings, store: Store, saves: CheckpointStore | None = None
) -> Checkpoint:
    """The saved checkpoint, checked to be still in the binlog; without one, the
    end of the binlog, saved at once (through ``saves`` when given)."""
    # Exactly-once: an earlier run's transaction ends (fenced) before the read,
    # so that the checkpoint read back is the last one ever committed.
    await fence_previous_run(settings)
    # In a thread: a Kafka store reads its topic.
    checkpoint = await asyncio.to_thread(store.load)
    if checkpoint is None:
        position = await asyncio.to_thread(current_position, settings.mysql)
        checkpoint = Checkpoint(position=position)
        # Saved at once, and durable before any event: a crash before the first
        # acknowledgement must resume here, not at a later end of the binlog.
        (saves or store).save(checkpoint)
        await asyncio.to_thread(make_durable, store)
        log.info(
            "no checkpoint in %s: starting at the end of the binlog (%s). "
            "Run `wpcdc snapshot` to load the posts that already exist.",
            where(settings),
            position,
            extra={"position": str(position)},
        )
    else:
        await asyncio.to_thread(
            check_position_available,
            settings.mysql,
            checkpoint.position,
            acknowledged=furthest_acknowledged(checkpoint),
        )
        log.info(
            "resuming at %s", checkpoint.position, extra={"position": str(checkpoint.position)}
        )
    return checkpoint


def furthest_acknowledged(checkpoint: Checkpoint) -> Coordinate | None:
    """The furthest binlog coordinate whose row changes acknowledged events hold:
    the covered markers reach past the checkpoint's position."""
    marks = [c.through for c in checkpoint.covered]
    marks += [r.through for r in checkpoint.covered_ranges]
    return max(marks, default=None)
