"""The one wiring of the streaming pipeline from settings.

This module owns what the real pipeline is made of: the binlog source from the
checkpoint's position, the mirror of the lookup tables read from the database,
the fold resuming from the checkpoint's covered markers, the ack tracker, the
Kafka sink (started, its topic ensured, stopped on exit), the signal table of
live re-snapshots and the stream's configuration; with ``kafka.exactly_once``
a transactional sink and the commits of its transactions
(:mod:`wpcdc.runtime.transactions`). ``wpcdc run``
(:mod:`wpcdc.runtime.run`) and ``benchmarks/bench_pipeline.py`` both build the
pipeline here, so the benchmark measures what runs in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wpcdc.config.settings import Settings
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.errors import ConfigError
from wpcdc.core.fold import Folder
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.kafka.checkpoints import KafkaCheckpointStore
from wpcdc.kafka.sink import KafkaSink
from wpcdc.mysql.binlog import BinlogSource
from wpcdc.mysql.posts import load_mirror
from wpcdc.mysql.signal import SignalTable
from wpcdc.mysql.status import current_position
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.pipeline import Pipeline, StreamConfig
from wpcdc.runtime.signing import signed
from wpcdc.runtime.stores import check_exactly_once, transactional_id
from wpcdc.runtime.transactions import SinkTransactions


def source_name(settings: Settings) -> str:
    """The CloudEvents ``source`` of every event: ``events.source``, or the database's URI."""
    return settings.events.source or f"wpcdc://{settings.mysql.host}/{settings.mysql.database}"


@contextlib.asynccontextmanager
async def build_pipeline(
    settings: Settings,
    *,
    checkpoint: Checkpoint,
    store: CheckpointStore,
    metrics: Metrics,
    offsets: AcknowledgedOffsets | None = None,
) -> AsyncIterator[Pipeline]:
    """A pipeline streaming from ``checkpoint``, saving to ``store``. Its sink is
    connected and its topic exists on entry (and still holds the ``offsets``
    acknowledged before, when given); the sink and the signal table are closed
    on exit."""
    mirror = await asyncio.to_thread(load_mirror, settings.mysql)
    mirror.site.rules = settings.links.to_rules()
    # A run before this one (or the pipeline this one replaces) read no further than
    # the binlog's end now: row changes before it may have events on the topic.
    read_before = await asyncio.to_thread(current_position, settings.mysql)
    # The pipeline waits for acknowledgements itself before it saves its last
    # checkpoint (StreamConfig.shutdown_timeout): the sink's stop need not wait again.
    # With exactly_once, the checkpoint is committed in the events' transactions.
    committed_in: KafkaCheckpointStore | None = None
    if settings.kafka.exactly_once:
        check_exactly_once(settings)
        if not isinstance(store, KafkaCheckpointStore):
            raise ConfigError('kafka.exactly_once = true needs checkpoint.store = "kafka"')
        committed_in = store
    sink = KafkaSink(
        settings=settings.kafka,
        stop_timeout=0.5,
        offsets=offsets,
        transactional_id=None if committed_in is None else transactional_id(settings),
    )
    signals = SignalTable(settings.mysql)
    await sink.start()
    try:
        await sink.ensure_topic()
        covered = {(c.blog_id, c.post_id): c.through for c in checkpoint.covered}
        yield Pipeline(
            source=BinlogSource(
                mysql=settings.mysql,
                start=checkpoint.position,
                # Idle closes every fold group: a heartbeat means the server had
                # nothing to send for this long, longer than any quiet gap.
                heartbeat=max(1.0, settings.fold.quiet_seconds),
            ),
            sink=signed(sink, settings.signing),
            store=store,
            folder=Folder(
                config=settings.fold.to_config(),
                mirror=mirror,
                covered=covered,
                covered_ranges=checkpoint.covered_ranges,
                covered_rows=checkpoint.covered_rows,
                replay_until=read_before if checkpoint.position < read_before else None,
            ),
            tracker=AckTracker(
                checkpoint.covered, checkpoint.covered_ranges, checkpoint.covered_rows
            ),
            start=checkpoint.position,
            config=StreamConfig(
                source_name=source_name(settings),
                checkpoint_interval=settings.checkpoint.interval_seconds,
                transaction_interval=settings.kafka.transaction_interval_ms / 1000,
            ),
            metrics=metrics,
            signals=signals,
            fold_config=settings.fold.to_config(),
            transactions=None if committed_in is None else SinkTransactions(sink, committed_in),
        )
    finally:
        await sink.stop()
        signals.close()
