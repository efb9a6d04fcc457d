"""Which checkpoint store the commands use (issue 12): the file by default, the
compacted topic named after the events topic with checkpoint.store = "kafka"."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from wpcdc.config.settings import Settings
from wpcdc.kafka.checkpoints import KafkaCheckpointStore
from wpcdc.runtime.files import FileCheckpointStore
from wpcdc.runtime.stores import checkpoint_store, checkpoint_topic, close, where


def test_the_file_store_is_the_default(tmp_path: Path) -> None:
    settings = Settings(checkpoint={"path": tmp_path / "cp.json"})
    store = checkpoint_store(settings)
    assert isinstance(store, FileCheckpointStore)
    assert where(settings) == str(tmp_path / "cp.json")


def test_the_kafka_store_is_named_after_the_events_topic_unless_told() -> None:
    settings = Settings(kafka={"topic": "shop.events"}, checkpoint={"store": "kafka"})
    assert checkpoint_topic(settings) == "shop.events.checkpoint"
    assert where(settings) == "topic shop.events.checkpoint"
    store = checkpoint_store(settings)
    try:
        assert isinstance(store, KafkaCheckpointStore) and store.topic == "shop.events.checkpoint"
    finally:
        close(store)  # nothing was saved: closes at once, without a broker
    told = Settings(checkpoint={"store": "kafka", "topic": "ops.checkpoints"})
    assert checkpoint_topic(told) == "ops.checkpoints"


def test_an_unknown_store_is_refused() -> None:
    with pytest.raises(ValidationError, match="'file' or 'kafka'"):
        Settings(checkpoint={"store": "redis"})
