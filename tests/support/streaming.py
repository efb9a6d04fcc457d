"""Running the real `wpcdc run` as a process, and reading what it put on the topic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.infra import MysqlEndpoint
from tests.support.schemas import validate
from wpcdc.core import envelope
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.positions import Position


def wpcdc_env(
    server: MysqlEndpoint, database: str, bootstrap_servers: str, topic: str, workdir: Path
) -> dict[str, str]:
    """The environment of a `wpcdc` process for this test's database and topic."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WPCDC_")}
    env.update(
        {
            "WPCDC_MYSQL__HOST": server.host,
            "WPCDC_MYSQL__PORT": str(server.port),
            "WPCDC_MYSQL__USER": server.user,
            "WPCDC_MYSQL__PASSWORD": server.password,
            "WPCDC_MYSQL__DATABASE": database,
            # Unique among the server's replicas, also across concurrent test runs.
            "WPCDC_MYSQL__SERVER_ID": str(random.randint(10_000, 2_000_000_000)),
            "WPCDC_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
            "WPCDC_KAFKA__TOPIC": topic,
            "WPCDC_KAFKA__PARTITIONS": "3",
            "WPCDC_KAFKA__REQUEST_TIMEOUT": "5",
            "WPCDC_CHECKPOINT__PATH": str(workdir / "checkpoint.json"),
            "WPCDC_CHECKPOINT__INTERVAL_SECONDS": "0.2",
            "WPCDC_METRICS__PORT": "0",
        }
    )
    return env


def binlog_end(server: MysqlEndpoint) -> Position:
    for statement in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
        with contextlib.suppress(Exception):
            row = server.execute(statement)[0]
            return Position(str(row[0]), int(row[1]))
    raise AssertionError("cannot read the binlog position")


@dataclass
class Streamer:
    """One `wpcdc run` process; start/stop/kill it as an operator (or a crash) would."""

    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.env["WPCDC_CHECKPOINT__PATH"])

    def checkpoint(self) -> Checkpoint | None:
        try:
            return Checkpoint.from_json(self.checkpoint_path.read_bytes())
        except FileNotFoundError:
            return None

    def start(
        self,
        extra_env: dict[str, str] | None = None,
        timeout: float = 60,
        ready: str = "reading the binlog from",
    ) -> None:
        """Start `wpcdc run`; return once its log shows ``ready``."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        log = self.workdir / f"wpcdc-run-{self.runs}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wpcdc", "run", "--log-level", "DEBUG"],
                env={**self.env, **(extra_env or {})},
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_for_log(ready, timeout)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"wpcdc run exited with {self.process.returncode}:\n{self.log_text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as an orchestrator stops a container; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"wpcdc run did not stop within {timeout}s after SIGTERM"
            ) from None

    def kill(self) -> None:
        """SIGKILL: no flush, no checkpoint, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def wait_caught_up(self, server: MysqlEndpoint, timeout: float = 30) -> Checkpoint:
        """Wait until every change now in the binlog is in acknowledged events."""
        target = binlog_end(server)
        deadline = time.monotonic() + timeout
        while True:
            checkpoint = self.checkpoint()
            if checkpoint is not None and target <= checkpoint.position:
                return checkpoint
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"wpcdc run exited:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"checkpoint {checkpoint and checkpoint.position} did not reach {target} "
                    f"within {timeout}s:\n{self.log_text()[-3000:]}"
                )
            time.sleep(0.1)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    partition: int
    offset: int
    event: dict[str, Any]
    # When wpcdc produced it (the producer's CreateTime), ms since the epoch.
    timestamp_ms: int = 0


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    validate_schema: bool = True,
    isolation_level: str = "read_uncommitted",
) -> list[Record]:
    """Every record on the topic now, partition by partition, decoded and validated
    (``read_committed``: only what committed transactions hold)."""
    return asyncio.run(_read_topic(bootstrap_servers, topic, validate_schema, isolation_level))


async def _read_topic(
    bootstrap_servers: str, topic: str, validate_schema: bool, isolation_level: str
) -> list[Record]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Record] = []
        async with asyncio.timeout(60):
            for tp in assigned:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for message in batch.get(tp, []):
                        event = envelope.decode(message.value)
                        if validate_schema:
                            validate(event)
                        records.append(
                            Record(
                                message.key,
                                message.value,
                                message.partition,
                                message.offset,
                                event,
                                message.timestamp,
                            )
                        )
        return records
    finally:
        await consumer.stop()


def events_of(records: list[Record], subject: str) -> list[dict[str, Any]]:
    """The events of one post, in the order the topic holds them."""
    return [r.event for r in records if r.event["subject"] == subject]


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
