"""Which checkpoint store a command uses (``checkpoint.store``), and its life.

This module owns the choice between the file (:class:`FileCheckpointStore`,
``checkpoint.path``) and the compacted topic
(:class:`~wpcdc.kafka.checkpoints.KafkaCheckpointStore`), so that ``wpcdc
run``, ``wpcdc snapshot`` and ``wpcdc verify`` read and write the same one. A
file save is durable when it returns; a Kafka save once :func:`make_durable`
returns, which the run calls for its first checkpoint, and :func:`close`
flushes the last one.

With ``kafka.exactly_once`` the checkpoint must be in Kafka (it is committed
in the events' transaction): the file store is refused. The transactional id
is derived from the checkpoint's identity (:func:`transactional_id`), so two
runs on one checkpoint fence each other.
"""

from __future__ import annotations

from pathlib import Path

from wpcdc.config.settings import Settings
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import ConfigError
from wpcdc.kafka.checkpoints import KafkaCheckpointStore
from wpcdc.kafka.transactions import fence_previous
from wpcdc.runtime.files import FileCheckpointStore

Store = FileCheckpointStore | KafkaCheckpointStore


def checkpoint_topic(settings: Settings) -> str:
    return settings.checkpoint.topic or f"{settings.kafka.topic}.checkpoint"


def transactional_id(settings: Settings) -> str:
    """``kafka.transactional_id``, or one per checkpoint identity (topic and key)."""
    return settings.kafka.transactional_id or (
        f"wpcdc:{checkpoint_topic(settings)}:{settings.kafka.topic}"
    )


def check_exactly_once(settings: Settings) -> None:
    """Raise ConfigError when ``kafka.exactly_once`` is on without the Kafka store."""
    if settings.kafka.exactly_once and settings.checkpoint.store != "kafka":
        raise ConfigError(
            "kafka.exactly_once = true needs the checkpoint in Kafka, committed in the same "
            'transaction as the events: set checkpoint.store = "kafka" '
            "(WPCDC_CHECKPOINT__STORE=kafka), or set kafka.exactly_once = false"
        )


async def fence_previous_run(settings: Settings) -> None:
    """With ``kafka.exactly_once``: end the transaction an earlier run left open
    (and fence that run) before the checkpoint is read back; see
    :mod:`wpcdc.kafka.transactions`. Nothing otherwise."""
    if settings.kafka.exactly_once:
        await fence_previous(settings.kafka, transactional_id(settings))


def checkpoint_store(settings: Settings) -> Store:
    check_exactly_once(settings)
    if settings.checkpoint.store == "kafka":
        return KafkaCheckpointStore(
            settings.kafka, topic=checkpoint_topic(settings), key=settings.kafka.topic.encode()
        )
    return FileCheckpointStore(settings.checkpoint.path)


def where(settings: Settings) -> str:
    """Where the checkpoint is, for messages."""
    if settings.checkpoint.store == "kafka":
        return f"topic {checkpoint_topic(settings)}"
    return str(settings.checkpoint.path)


def make_durable(store: Store) -> None:
    """Return once what was saved is durable (blocking: call it in a thread)."""
    if isinstance(store, KafkaCheckpointStore):
        store.flush()


def close(store: Store) -> None:
    """Flush (bounded) and release the store (blocking: call it in a thread)."""
    if isinstance(store, KafkaCheckpointStore):
        store.close()


class DurableSaves:
    """``store`` whose every save returns only once it is durable, for the
    snapshot: its state file may say "done" only after the checkpoint is saved."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self) -> Checkpoint | None:
        return self._store.load()

    def save(self, checkpoint: Checkpoint) -> None:
        self._store.save(checkpoint)
        make_durable(self._store)


def existing(settings: Settings, store: Store) -> Path | None:
    """Where the saved checkpoint is (for the snapshot's refusal), None without one."""
    if isinstance(store, KafkaCheckpointStore):
        return Path(where(settings)) if store.load() is not None else None
    return settings.checkpoint.path if settings.checkpoint.path.exists() else None
