"""Streaming until stopped: the run loop of ``wpcdc run``.

This module owns the life of the streamer around one pipeline: where it starts
(the saved checkpoint, or the end of the binlog when there is none), stopping
on SIGTERM/SIGINT, and rebuilding the pipeline from the checkpoint with a
growing delay after a broker or connection failure (replayed events keep their
ids: promise "recognisable replays", docs/ARCHITECTURE.md). Failures no retry
can fix (refused credentials, missing grants, a lost position) end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Final

from wpcdc.config.settings import Settings
from wpcdc.core.backoff import Backoff
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import BrokerUnavailable, DeliveryFailed
from wpcdc.mysql.errors import MysqlError, is_access_denied, refused
from wpcdc.mysql.status import check_position_available, current_position
from wpcdc.runtime.build import build_pipeline
from wpcdc.runtime.files import FileCheckpointStore
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.snapshot import refuse_unfinished

log = logging.getLogger("wpcdc.run")

# Between pipeline rebuilds after a broker or connection failure.
RESTART_BACKOFF_FIRST: Final = 1.0
RESTART_BACKOFF_MAX: Final = 30.0


def stop_on_signals() -> asyncio.Event:
    """On the running loop: an event that SIGTERM and SIGINT set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run_until_stopped(settings: Settings, *, metrics: Metrics, stop: asyncio.Event) -> None:
    """Stream until ``stop`` is set; rebuild the pipeline from the checkpoint after
    broker or connection failures; raise on failures no retry can fix."""
    store = FileCheckpointStore(settings.checkpoint.path)
    backoff = Backoff(RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX)
    while not stop.is_set():
        try:
            await stream_once(settings, store, metrics, stop)
            return
        except (DeliveryFailed, BrokerUnavailable) as exc:
            reason = "broker"
            message = str(exc)
        except (MysqlError, OSError) as exc:
            if is_access_denied(exc):
                # No retry fixes credentials or grants.
                raise refused(exc) from None
            reason = "database"
            message = f"{type(exc).__name__}: {exc}"
        metrics.restarts.labels(reason).inc()
        delay = backoff.next_delay()
        log.warning("%s; restarting from the checkpoint in %.0fs", message, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def stream_once(
    settings: Settings, store: FileCheckpointStore, metrics: Metrics, stop: asyncio.Event
) -> None:
    """One pipeline, from the checkpoint until ``stop`` or an error."""
    refuse_unfinished(settings.checkpoint.path)
    checkpoint = await starting_checkpoint(settings, store)
    async with build_pipeline(
        settings, checkpoint=checkpoint, store=store, metrics=metrics
    ) as pipeline:
        log.info(
            "streaming %s on %s:%d to topic %s",
            settings.mysql.database,
            settings.mysql.host,
            settings.mysql.port,
            settings.kafka.topic,
        )
        await pipeline.run(stop)


async def starting_checkpoint(settings: Settings, store: FileCheckpointStore) -> Checkpoint:
    """The saved checkpoint, checked to be still in the binlog; without one, the
    end of the binlog, saved at once."""
    checkpoint = store.load()
    if checkpoint is None:
        position = await asyncio.to_thread(current_position, settings.mysql)
        checkpoint = Checkpoint(position=position)
        # Saved at once: a crash before the first acknowledgement must resume
        # here, not at a later end of the binlog.
        store.save(checkpoint)
        log.info(
            "no checkpoint in %s: starting at the end of the binlog (%s). "
            "Run `wpcdc snapshot` to load the posts that already exist.",
            settings.checkpoint.path,
            position,
        )
    else:
        await asyncio.to_thread(check_position_available, settings.mysql, checkpoint.position)
        log.info("resuming at %s", checkpoint.position)
    return checkpoint
