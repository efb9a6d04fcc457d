"""Exactly-once bookkeeping with in-memory adapters (noida-db covers the real broker in
tests/integration/test_exactly_once.py): every committed transaction carries the
checkpoint that covers exactly its events, nothing is committed past a failure,
and the settings that cannot work are refused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    TransactionalIdAuthorizationFailed,
    UnknownError,
    UnsupportedVersionError,
)
from aiokafka.errors import (
    ProducerFenced as AioProducerFenced,
)
from prometheus_client import CollectorRegistry

from tests.support.fakes import ListSource, MemorySink, MemoryStore
from tests.unit.runtime.test_pipeline import edits, run_until
from wpcdc.config.settings import CheckpointSettings, KafkaSettings, Settings
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import (
    BrokerUnavailable,
    ConfigError,
    DeliveryFailed,
    PreflightFailed,
    ProducerFenced,
)
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.rows import Idle, SourceItem
from wpcdc.kafka.transactions import refusal
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.pipeline import Pipeline, StreamConfig
from wpcdc.runtime.stores import check_exactly_once, transactional_id


@dataclass
class MemoryTransactions:
    """A transaction over a MemorySink whose deliveries wait (``hold``) until drained;
    ``committed`` holds (records on the topic once committed, the checkpoint)."""

    sink: MemorySink = field(default_factory=lambda: MemorySink(hold=True))
    committed: list[tuple[int, Checkpoint]] = field(default_factory=list)
    _start: int = 0

    @property
    def pending(self) -> int:
        return len(self.sink.records) - self._start

    async def drain(self) -> None:
        for acked in self.sink.pending:
            if not acked.done():
                acked.set_result(None)
        self.sink.pending.clear()
        await asyncio.sleep(0)  # the sender's callbacks run, as after aiokafka's

    async def commit(self, checkpoint: Checkpoint) -> None:
        self._start = len(self.sink.records)
        self.committed.append((self._start, checkpoint))


def transactional_pipeline(
    items: list[SourceItem], transactions: MemoryTransactions, store: MemoryStore, start: object
) -> Pipeline:
    return Pipeline(
        source=ListSource(items),
        sink=transactions.sink,
        store=store,
        folder=Folder(config=FoldConfig(), mirror=Mirror()),
        tracker=AckTracker(),
        start=start,  # type: ignore[arg-type]
        config=StreamConfig(source_name="wpcdc://test", transaction_interval=0.0),
        metrics=Metrics(CollectorRegistry()),
        transactions=transactions,
    )


def test_each_commit_carries_the_checkpoint_after_exactly_its_events() -> None:
    log = edits(5)
    idle = Idle(position=log.log[-1].end, wall_time=0.0)  # type: ignore[arg-type]
    transactions, store = MemoryTransactions(), MemoryStore()
    pipe = transactional_pipeline(
        [*log.log, idle], transactions, store, log.log[0].transaction.start
    )
    asyncio.run(
        run_until(
            pipe,
            lambda: (
                bool(transactions.committed)
                and transactions.committed[-1][1].position == log.log[-1].end
            ),
        )
    )
    # The checkpoint went with the events, never through the store.
    assert store.saved == []
    ends = [t.end for t in log.log]
    for records, checkpoint in transactions.committed:
        # The edits are one event each: a checkpoint after k transactions covers k events.
        assert checkpoint.position in [log.log[0].transaction.start, *ends]
        covered = 0 if checkpoint.position not in ends else ends.index(checkpoint.position) + 1
        assert records == covered, (records, checkpoint.position)
    assert transactions.committed[-1][0] == 5


def test_nothing_is_committed_past_a_failed_delivery() -> None:
    log = edits(4)
    transactions = MemoryTransactions(sink=MemorySink(fail_after=2))
    pipe = transactional_pipeline(
        list(log.log), transactions, MemoryStore(), log.log[0].transaction.start
    )

    async def run() -> None:
        await pipe.run(asyncio.Event())

    with pytest.raises(DeliveryFailed, match="broker down"):
        asyncio.run(run())
    # Only what was acknowledged before the failure may have been committed.
    assert all(records <= 2 for records, _ in transactions.committed)
    if transactions.committed:
        assert transactions.committed[-1][1].position.key() <= log.log[2].transaction.start.key()


def test_an_idle_stream_commits_nothing_new() -> None:
    log = edits(1)
    idle = Idle(position=log.log[-1].end, wall_time=0.0)  # type: ignore[arg-type]
    transactions = MemoryTransactions()
    pipe = transactional_pipeline(
        [*log.log, idle], transactions, MemoryStore(), log.log[0].transaction.start
    )

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipe.run(stop))
        async with asyncio.timeout(5):
            while not transactions.committed or transactions.committed[-1][0] != 1:
                await asyncio.sleep(0.01)
        count = len(transactions.committed)
        await asyncio.sleep(0.2)  # many turns of the loop, nothing read
        assert len(transactions.committed) == count
        stop.set()
        await task

    asyncio.run(run())


KAFKA = KafkaSettings(bootstrap_servers="broker:9092", topic="events")


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (UnknownError(), PreflightFailed, "cannot do transactions"),
        (UnsupportedVersionError(), PreflightFailed, "kafka.exactly_once = false"),
        (TransactionalIdAuthorizationFailed("tx"), PreflightFailed, "TransactionalId"),
        (KafkaConnectionError(), BrokerUnavailable, "check that the broker is running"),
        (TimeoutError(), BrokerUnavailable, "transaction coordinator"),
        (AioProducerFenced(), ProducerFenced, "another `wpcdc run`"),
    ],
)
def test_what_a_failed_producer_id_means(error: Exception, kind: type, says: str) -> None:
    refused = refusal(error, settings=KAFKA, transactional_id="tx")
    assert type(refused) is kind
    assert says in str(refused)
    if kind is not ProducerFenced:
        assert "broker:9092" in str(refused)


def test_exactly_once_needs_the_kafka_store(tmp_path: Path) -> None:
    settings = Settings(
        kafka=KafkaSettings(exactly_once=True), checkpoint=CheckpointSettings(path=tmp_path / "c")
    )
    with pytest.raises(ConfigError, match=r'set checkpoint\.store = "kafka"'):
        check_exactly_once(settings)
    check_exactly_once(
        settings.model_copy(update={"checkpoint": CheckpointSettings(store="kafka")})
    )


def test_the_transactional_id_names_the_checkpoint_identity() -> None:
    settings = Settings(kafka=KafkaSettings(topic="shop.events", exactly_once=True))
    assert transactional_id(settings) == "wpcdc:shop.events.checkpoint:shop.events"
    own = Settings(
        kafka=KafkaSettings(topic="shop.events", transactional_id="shop-1"),
        checkpoint=CheckpointSettings(topic="shop.offsets"),
    )
    assert transactional_id(own) == "shop-1"
    assert transactional_id(own.model_copy(update={"kafka": KafkaSettings(topic="t")})) == (
        "wpcdc:shop.offsets:t"
    )
