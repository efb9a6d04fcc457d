"""One integration test's share of the real servers, as one value.

A :class:`Stack` holds the session's shared MySQL/MariaDB server and broker,
with this test's own database, topic, working directory and `wpcdc run` process
(not started); a :class:`WordPressStack` also has WordPress installed in that
database. The fixtures ``stack`` and ``wp_stack`` in tests/conftest.py build
them from the single-purpose fixtures, which keep their scopes and teardown.
The methods are the lines the tests would otherwise repeat.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from tests.support.streaming import Record, Streamer, read_topic, wpcdc_env
from tests.support.wordpress import install_wordpress
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.local.wordpress import WordPressSite


@dataclass(frozen=True)
class Stack:
    server: MysqlEndpoint
    database: str
    broker: KafkaEndpoint
    topic: str
    workdir: Path
    streamer: Streamer

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one SQL statement in this test's database."""
        return self.server.execute(sql, self.database)

    def read_topic(self, topic: str | None = None) -> list[Record]:
        """Every record now on this test's topic (or ``topic``), decoded and validated."""
        return read_topic(self.broker.bootstrap_servers, topic or self.topic)

    def wait_caught_up(self, timeout: float = 30) -> Checkpoint:
        """Wait until the streamer's checkpoint covers everything now in the binlog."""
        return self.streamer.wait_caught_up(self.server, timeout)

    def wpcdc(
        self, *args: str, timeout: float, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a `wpcdc` command to its end as an operator would: with the streamer's
        settings (its environment, plus ``env``), in the working directory."""
        return subprocess.run(
            [sys.executable, "-m", "wpcdc", *args],
            env={**self.streamer.env, **(env or {})},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@dataclass(frozen=True)
class WordPressStack(Stack):
    wordpress: WordPressSite


def throwaway_site(
    factory: ServerFactory, broker: KafkaEndpoint, topic: str, workdir: Path, database: str
) -> tuple[MysqlEndpoint, WordPressSite, Streamer]:
    """A server of this test's own (to restart, kill or purge), WordPress installed
    in ``database`` on it, and a `wpcdc run` for them (not started)."""
    server = factory()
    server.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    site = install_wordpress(server, database)
    streamer = Streamer(
        env=wpcdc_env(server, database, broker.bootstrap_servers, topic, workdir), workdir=workdir
    )
    return server, site, streamer
