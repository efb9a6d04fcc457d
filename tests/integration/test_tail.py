"""`wpcdc tail` as users run it: the real CLI against a real broker."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.infra import KafkaEndpoint
from wpcdc.commands.tail import RAW_MARKER

pytestmark = pytest.mark.integration

GARBAGE = (b"junk", b"\x00this is not json")


def _event(kind: str, blog_id: int, post_id: int, second: int, **data: Any) -> dict[str, Any]:
    subject = f"post/{post_id}" if blog_id == 1 else f"blog/{blog_id}/post/{post_id}"
    return {
        "specversion": "1.0",
        "id": f"0-1-{second}/0/{kind}",
        "source": "wpcdc://test/wordpress",
        "type": kind,
        "subject": subject,
        "time": f"2026-11-23T10:00:0{second}Z",
        "sequence": f"{second:010d}",
        "data": {"blog_id": blog_id, "post_id": post_id, "post_type": "post", **data},
    }


EVENTS = [
    _event("post_created", 1, 7, 1, post={"title": "Hello", "status": "draft"}),
    _event(
        "taxonomy_changed", 1, 7, 2, added=[{"taxonomy": "post_tag", "slug": "foo"}], removed=[]
    ),
    _event(
        "post_published",
        1,
        7,
        3,
        post={"title": "Hello", "status": "publish"},
        changed=["status"],
        before={"status": "draft"},
    ),
    _event("post_meta_changed", 2, 9, 4, changes=[{"key": "colour", "op": "added"}]),
]
LINES = [
    '10:00:01.000  post_created       post/7          "Hello" (draft)',
    "10:00:02.000  taxonomy_changed   post/7          +post_tag:foo",
    "10:00:03.000  post_published     post/7          status draft→publish",
    "10:00:04.000  post_meta_changed  blog/2/post/9   +colour",
]


def _key(event: dict[str, Any]) -> bytes:
    return f"{event['data']['blog_id']}:{event['data']['post_id']}".encode()


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


@pytest.fixture
def topic(kafka_broker: KafkaEndpoint, kafka_topic: str) -> str:
    """Two partitions holding EVENTS and, between them, one record from someone else."""
    records = [(_key(e), orjson.dumps(e)) for e in EVENTS]
    records.insert(2, GARBAGE)
    asyncio.run(_create(kafka_broker.bootstrap_servers, kafka_topic, partitions=2))
    asyncio.run(_produce(kafka_broker.bootstrap_servers, kafka_topic, records))
    return kafka_topic


def _env(kafka_broker: KafkaEndpoint) -> dict[str, str]:
    return {
        **os.environ,
        "WPCDC_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "TZ": "UTC",
        "NO_COLOR": "1",
    }


def _tail(kafka_broker: KafkaEndpoint, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wpcdc", "tail", *args],
        env=_env(kafka_broker),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _history(kafka_broker: KafkaEndpoint, cwd: Path, topic: str, *args: str) -> list[str]:
    done = _tail(kafka_broker, cwd, "--topic", topic, "--from-beginning", "--no-follow", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _events(lines: list[str]) -> list[str]:
    return [line for line in lines if RAW_MARKER not in line]


def test_prints_one_line_per_event_and_shows_foreign_records_raw(
    kafka_broker: KafkaEndpoint, topic: str, tmp_path: Path
) -> None:
    lines = _history(kafka_broker, tmp_path, topic)
    events = _events(lines)
    assert sorted(events) == LINES
    # One post's events share a partition: they come out in order.
    assert [line for line in events if "post/7" in line] == LINES[:3]
    (raw,) = [line for line in lines if RAW_MARKER in line]
    assert "key=b'junk'" in raw and "value=b'\\x00this is not json'" in raw
    assert "not JSON" in raw


def test_json_prints_the_envelopes_and_keeps_foreign_records_off_stdout(
    kafka_broker: KafkaEndpoint, topic: str, tmp_path: Path
) -> None:
    done = _tail(
        kafka_broker, tmp_path, "--topic", topic, "--from-beginning", "--no-follow", "--json"
    )
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted(printed, key=lambda e: e["time"]) == EVENTS
    assert RAW_MARKER in done.stderr and "b'junk'" in done.stderr


def test_filters_by_type_post_and_blog_and_stops_at_max(
    kafka_broker: KafkaEndpoint, topic: str, tmp_path: Path
) -> None:
    by_type = _history(
        kafka_broker, tmp_path, topic, "--type", "post_published", "--type", "post_meta_changed"
    )
    assert sorted(_events(by_type)) == [LINES[2], LINES[3]]
    assert _events(_history(kafka_broker, tmp_path, topic, "--post", "9", "--blog", "2")) == [
        LINES[3]
    ]
    assert (
        _events(_history(kafka_broker, tmp_path, topic, "--blog", "1", "--max", "2")) == (LINES[:2])
    )


def test_without_from_beginning_old_records_are_skipped(
    kafka_broker: KafkaEndpoint, topic: str, tmp_path: Path
) -> None:
    done = _tail(kafka_broker, tmp_path, "--topic", topic, "--no-follow")
    assert (done.returncode, done.stdout) == (0, "")


def test_missing_topic_is_an_error_naming_it_and_the_broker(
    kafka_broker: KafkaEndpoint, kafka_topic: str, tmp_path: Path
) -> None:
    done = _tail(kafka_broker, tmp_path, "--topic", kafka_topic, "--no-follow")
    assert done.returncode == 1
    assert kafka_topic in done.stderr and kafka_broker.bootstrap_servers in done.stderr


def test_follows_new_events_until_ctrl_c(
    kafka_broker: KafkaEndpoint, topic: str, tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "wpcdc", "tail", "--topic", topic],
        env=_env(kafka_broker),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()])
    reader.start()
    try:
        new = _event("post_trashed", 1, 7, 5, changed=["status"], before={"status": "publish"})
        record = [(_key(new), orjson.dumps(new))]
        # tail starts at the end: keep adding the event until it has seen one.
        deadline = time.monotonic() + 30
        while True:
            asyncio.run(_produce(kafka_broker.bootstrap_servers, topic, record))
            try:
                line = lines.get(timeout=1.0)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "tail printed nothing"
        assert (
            line.rstrip("\n") == "10:00:05.000  post_trashed       post/7          status publish→?"
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()
        reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
