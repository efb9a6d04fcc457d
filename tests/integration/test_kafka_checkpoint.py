"""The checkpoint in a compacted Kafka topic (issue 12): `wpcdc run` with
checkpoint.store = "kafka" writes no file, survives kill -9 and resumes from the
topic's checkpoint without re-sending acknowledged events under new ids, and the
topic then matches the database. Real MariaDB, WordPress and the broker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.test_recovery import writer
from tests.support.materialize import compare_with_database, deduplicate, materialize
from tests.support.stack import WordPressStack
from tests.support.streaming import binlog_end
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.positions import Coordinate

pytestmark = pytest.mark.integration


async def _newest(bootstrap: str, topic: str, key: bytes) -> bytes | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return None
        (tp,) = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        newest = None
        async with asyncio.timeout(30):
            while await consumer.position(tp) < end:
                for message in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if message.key == key:
                        newest = message.value
        return newest
    finally:
        await consumer.stop()


def kafka_checkpoint(stack: WordPressStack) -> Checkpoint | None:
    raw = asyncio.run(
        _newest(stack.broker.bootstrap_servers, f"{stack.topic}.checkpoint", stack.topic.encode())
    )
    return None if raw is None else Checkpoint.from_json(raw)


def wait_for(stack: WordPressStack, done: object, timeout: float) -> Checkpoint:
    deadline = time.monotonic() + timeout
    while True:
        checkpoint = kafka_checkpoint(stack)
        if checkpoint is not None and done(checkpoint):  # type: ignore[operator]
            return checkpoint
        assert time.monotonic() < deadline, stack.streamer.log_text()[-3000:]
        time.sleep(0.3)


def settled_checkpoint(stack: WordPressStack) -> Checkpoint:
    """The newest checkpoint once two reads a second apart agree: right after a
    producer dies the broker's end offset may still lag its last write (Tansu), and
    the restarted streamer must be expected to resume where it will read."""
    deadline = time.monotonic() + 20
    last = kafka_checkpoint(stack)
    while True:
        time.sleep(1.0)
        now = kafka_checkpoint(stack)
        if now is not None and now == last:
            return now
        assert time.monotonic() < deadline, f"the checkpoint kept changing: {last} -> {now}"
        last = now


def test_kill_9_and_resume_from_the_kafka_checkpoint(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    state = wp_stack.workdir / "state"
    state.mkdir()
    # As with a read-only root filesystem (root ignores file modes, so a path no
    # file can be created under stands in): any write to checkpoint.path fails.
    unwritable = state / "a-file"
    unwritable.write_text("not a directory")
    streamer.env.update(
        {
            "WPCDC_CHECKPOINT__STORE": "kafka",
            "WPCDC_CHECKPOINT__PATH": str(unwritable / "checkpoint.json"),
        }
    )
    streamer.start()
    assert f"no checkpoint in topic {wp_stack.topic}.checkpoint" in streamer.log_text()
    start = kafka_checkpoint(wp_stack)
    assert start is not None, "the first checkpoint is durable before streaming"

    background = writer(wp_stack.wordpress, posts=80, rounds=4)
    background.start()
    wait_for(wp_stack, lambda c: start.position.key() < c.position.key(), 120)
    time.sleep(1.5)
    streamer.kill()
    crashed_at = settled_checkpoint(wp_stack)

    streamer.start(ready=f"resuming at {crashed_at.position}")
    ids = background.finish()
    target = binlog_end(wp_stack.server)
    final = wait_for(wp_stack, lambda c: target.key() <= c.position.key(), 120)
    assert crashed_at.position.key() < final.position.key()
    assert streamer.stop() == 0
    # The checkpoint lived in the topic only: nothing was written beside it.
    assert list(state.iterdir()) == [unwritable]

    records = wp_stack.read_topic()
    problems = compare_with_database(
        materialize(deduplicate(records)), wp_stack.server, wp_stack.database, ids
    )
    assert problems == [], "\n".join(problems[:20])
    # Nothing the checkpoint in the topic covered is sent again, under any id: the
    # restart resumed from it. (Changes after it, sent but not yet checkpointed when
    # the streamer died, come again: under the same id when the replay groups them
    # alike, under a new id when it groups otherwise, never an old id with other
    # content, which deduplicate() checked; README "Delivery".)
    covered_before = Coordinate.of(crashed_at.position, 0).sequence(0)
    sent = Counter(
        (r.event["subject"], r.event["type"], r.event["sequence"])
        for r in records
        if r.event["sequence"] < covered_before
    )
    again = {key: count for key, count in sent.items() if count > 1}
    assert sent and again == {}, list(again.items())[:5]


def test_snapshot_run_and_verify_share_the_kafka_checkpoint(wp_stack: WordPressStack) -> None:
    streamer, site = wp_stack.streamer, wp_stack.wordpress
    streamer.env.update(
        {
            "WPCDC_CHECKPOINT__STORE": "kafka",
            "WPCDC_CHECKPOINT__PATH": str(wp_stack.workdir / "state" / "checkpoint.json"),
        }
    )
    site.php("return wp_insert_post(['post_title' => 'loaded', 'post_status' => 'publish']);")
    snapshot = wp_stack.wpcdc("snapshot", timeout=120)
    assert snapshot.returncode == 0, snapshot.stderr
    loaded = kafka_checkpoint(wp_stack)
    assert loaded is not None
    # A second full snapshot sees the checkpoint in the topic and refuses.
    again = wp_stack.wpcdc("snapshot", timeout=120)
    assert again.returncode == 2 and "a streaming checkpoint exists" in again.stderr
    streamer.start(ready=f"resuming at {loaded.position}")
    site.php("return wp_insert_post(['post_title' => 'streamed', 'post_status' => 'publish']);")
    target = binlog_end(wp_stack.server)
    wait_for(wp_stack, lambda c: target.key() <= c.position.key(), 60)
    verify = wp_stack.wpcdc("verify", "--wait", "30", timeout=180)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert streamer.stop() == 0
    kinds = {r.event["type"] for r in wp_stack.read_topic()}
    assert {"post_snapshot", "post_created"} <= kinds
