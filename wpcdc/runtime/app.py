"""Wiring: settings in, adapters built with explicit arguments, results out.

Each command of the CLI is one function here; the CLI only parses options and
prints. Nothing here holds a rule: rules live in the pure modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal

import pymysql
from prometheus_client import CollectorRegistry, start_http_server

from wpcdc.config.preflight import (
    BrokerFacts,
    CheckResult,
    ServerFacts,
    ServerUnreachable,
    evaluate,
)
from wpcdc.config.settings import Settings
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import (
    BrokerUnavailable,
    DeliveryFailed,
    PositionLost,
    PreflightFailed,
    WpcdcError,
)
from wpcdc.core.fold import AUTO_DRAFT, Folder
from wpcdc.core.resnapshot import Request
from wpcdc.kafka.client import read_broker_facts
from wpcdc.kafka.sink import KafkaSink
from wpcdc.mysql.binlog import BinlogSource, check_position_available, current_position
from wpcdc.mysql.database import (
    ConsistentSnapshot,
    SignalTable,
    load_mirror,
    read_server_facts,
    request_resnapshot,
)
from wpcdc.runtime.files import FileCheckpointStore
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.pipeline import Pipeline, StreamConfig
from wpcdc.runtime.snapshot import (
    ProgressReporter,
    SnapshotOptions,
    SnapshotRefused,
    SnapshotResult,
    SnapshotStateFile,
    Snapshotter,
    Start,
    decide_start,
    refuse_unfinished,
    state_path,
)


def check(settings: Settings) -> list[CheckResult]:
    """Run the preflight against the configured server and broker."""
    server, broker = asyncio.run(_gather_facts(settings))
    return evaluate(server, broker, settings)


async def _gather_facts(settings: Settings) -> tuple[ServerFacts | ServerUnreachable, BrokerFacts]:
    # Both sides may wait for their timeouts; waiting for them side by side
    # keeps the worst case to the longer of the two. PyMySQL blocks, so it gets
    # a thread.
    server, broker = await asyncio.gather(
        asyncio.to_thread(read_server_facts, settings.mysql),
        read_broker_facts(settings.kafka),
    )
    return server, broker


# --- wpcdc run ---------------------------------------------------------------------

log = logging.getLogger("wpcdc.run")

# MySQL error codes for refused logins and missing grants.
ACCESS_DENIED = frozenset({1044, 1045, 1142, 1143, 1227, 1698})

# Between pipeline rebuilds after a broker or connection failure.
RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0


def source_name(settings: Settings) -> str:
    return settings.events.source or f"wpcdc://{settings.mysql.host}/{settings.mysql.database}"


def run(settings: Settings) -> None:
    """Stream until SIGTERM/SIGINT; rebuild the pipeline from the checkpoint after
    broker or connection failures; raise on failures no retry can fix."""
    asyncio.run(_run(settings))


async def _run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    if settings.metrics.port:
        start_http_server(settings.metrics.port, settings.metrics.host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, settings.metrics.port)
    store = FileCheckpointStore(settings.checkpoint.path)
    delay = RESTART_BACKOFF_FIRST
    while not stop.is_set():
        try:
            await _stream_once(settings, store, metrics, stop)
            return
        except (DeliveryFailed, BrokerUnavailable) as exc:
            reason = "broker"
            message = str(exc)
        except (pymysql.err.MySQLError, OSError) as exc:
            if exc.args and exc.args[0] in ACCESS_DENIED:
                # No retry fixes credentials or grants.
                raise PreflightFailed(
                    f"the database refused wpcdc: {exc.args[-1]}. Run `wpcdc check` for the fix."
                ) from None
            reason = "database"
            message = f"{type(exc).__name__}: {exc}"
        metrics.restarts.labels(reason).inc()
        log.warning("%s; restarting from the checkpoint in %.0fs", message, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RESTART_BACKOFF_MAX)


async def _stream_once(
    settings: Settings, store: FileCheckpointStore, metrics: Metrics, stop: asyncio.Event
) -> None:
    refuse_unfinished(settings.checkpoint.path)
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
    mirror = await asyncio.to_thread(load_mirror, settings.mysql)
    sink = KafkaSink(settings=settings.kafka)
    signals = SignalTable(settings.mysql)
    await sink.start()
    try:
        await sink.ensure_topic()
        covered = {(c.blog_id, c.post_id): c.through for c in checkpoint.covered}
        pipeline = Pipeline(
            source=BinlogSource(
                mysql=settings.mysql,
                start=checkpoint.position,
                # Idle closes fold groups: it must mean "quiet for longer than the
                # window", so that it agrees with what a replay would decide.
                heartbeat=float(settings.fold.window_seconds + 1),
            ),
            sink=sink,
            store=store,
            folder=Folder(
                config=settings.fold.to_config(),
                mirror=mirror,
                covered=covered,
                covered_ranges=checkpoint.covered_ranges,
            ),
            tracker=AckTracker(checkpoint.covered, checkpoint.covered_ranges),
            start=checkpoint.position,
            config=StreamConfig(
                source_name=source_name(settings),
                checkpoint_interval=settings.checkpoint.interval_seconds,
            ),
            metrics=metrics,
            signals=signals,
            fold_config=settings.fold.to_config(),
        )
        log.info(
            "streaming %s on %s:%d to topic %s",
            settings.mysql.database,
            settings.mysql.host,
            settings.mysql.port,
            settings.kafka.topic,
        )
        await pipeline.run(stop)
    finally:
        await sink.stop()
        signals.close()


# --- wpcdc resnapshot ----------------------------------------------------------------


def resnapshot(settings: Settings, request: Request) -> int:
    """Ask the running streamer to re-emit posts; returns the request's id."""
    return request_resnapshot(settings.mysql, request.to_json())


# --- wpcdc snapshot ------------------------------------------------------------------


def snapshot(
    settings: Settings, options: SnapshotOptions, progress: ProgressReporter
) -> tuple[SnapshotResult, str]:
    """The initial load (full) or a re-emit (limited); see wpcdc.runtime.snapshot. Returns the
    result and, for a dry run, why the real run would be refused (else empty)."""
    return asyncio.run(_snapshot(settings, options, progress))


async def _snapshot(
    settings: Settings, options: SnapshotOptions, progress: ProgressReporter
) -> tuple[SnapshotResult, str]:
    state_file = SnapshotStateFile(state_path(settings.checkpoint.path))
    state = None if options.limited else state_file.load()
    existing = settings.checkpoint.path if settings.checkpoint.path.exists() else None
    refusal = ""
    try:
        start = decide_start(options, checkpoint=existing, state=state)
    except SnapshotRefused as exc:
        if not options.dry_run:
            raise
        start, refusal = Start.FRESH, str(exc)
    if start is Start.RESUME and state is not None:
        # P becomes the streaming checkpoint: the stream must still find it.
        try:
            await asyncio.to_thread(check_position_available, settings.mysql, state.position)
        except PositionLost as exc:
            raise PositionLost(
                f"the unfinished snapshot cannot be resumed: its position {state.position} is "
                f"no longer in the binlog ({str(exc).split('. ')[0]}). Start over with "
                "`wpcdc snapshot --force`, and keep binlogs longer than a snapshot takes."
            ) from None
    fold = settings.fold.to_config()
    open_read = functools.partial(
        ConsistentSnapshot.open,
        settings.mysql,
        exclude_post_types=sorted(fold.ignored_post_types),
        exclude_statuses=() if fold.emit_auto_drafts else (AUTO_DRAFT,),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sink = None if options.dry_run else KafkaSink(settings=settings.kafka)
    snapshotter = Snapshotter(
        open_read=open_read,
        sink=sink,
        options=options,
        start=start,
        fold=fold,
        source_name=source_name(settings),
        state_file=state_file,
        checkpoints=FileCheckpointStore(settings.checkpoint.path),
        progress=progress,
        state=state,
        stop=stop,
    )
    again = (
        ""
        if start is Start.LIMITED or options.dry_run
        else " The progress of every acknowledged chunk is saved: run `wpcdc snapshot` again "
        "to continue."
    )
    try:
        if sink is None:
            return await snapshotter.run(), refusal
        await sink.start()
        try:
            await sink.ensure_topic()
            return await snapshotter.run(), refusal
        finally:
            await sink.stop()
    except (DeliveryFailed, BrokerUnavailable) as exc:
        raise type(exc)(f"{exc}.{again}") from None
    except (pymysql.err.MySQLError, OSError) as exc:
        if exc.args and exc.args[0] in ACCESS_DENIED:
            raise PreflightFailed(
                f"the database refused wpcdc: {exc.args[-1]}. Run `wpcdc check` for the fix."
            ) from None
        raise WpcdcError(f"the database read failed: {type(exc).__name__}: {exc}.{again}") from None
